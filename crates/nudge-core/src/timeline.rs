//! Timeline entries: the contact's dossier ("relatie-dossier") of everything that happened.

use crate::status::Transition;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    ContactCreated,
    SuppressionMatched,
    FieldChanged,
    GroupJoined,
    GroupLeft,
    TagAdded,
    TagRemoved,
    StatusChanged,
    Imported,
    Note,
    EmailQueued,
    EmailSent,
    EmailSkipped,
    EmailDeferred,
    EmailFailed,
    EmailBounced,
    EmailOpened,
    EmailClicked,
    FormSubmitted,
    SequenceEntered,
    SequenceChanged,
    SequenceLeft,
}

impl TimelineKind {
    pub const ALL: [TimelineKind; 22] = [
        TimelineKind::ContactCreated,
        TimelineKind::SuppressionMatched,
        TimelineKind::FieldChanged,
        TimelineKind::GroupJoined,
        TimelineKind::GroupLeft,
        TimelineKind::TagAdded,
        TimelineKind::TagRemoved,
        TimelineKind::StatusChanged,
        TimelineKind::Imported,
        TimelineKind::Note,
        TimelineKind::EmailQueued,
        TimelineKind::EmailSent,
        TimelineKind::EmailSkipped,
        TimelineKind::EmailDeferred,
        TimelineKind::EmailFailed,
        TimelineKind::EmailBounced,
        TimelineKind::EmailOpened,
        TimelineKind::EmailClicked,
        TimelineKind::FormSubmitted,
        TimelineKind::SequenceEntered,
        TimelineKind::SequenceChanged,
        TimelineKind::SequenceLeft,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TimelineKind::ContactCreated => "contact_created",
            TimelineKind::SuppressionMatched => "suppression_matched",
            TimelineKind::FieldChanged => "field_changed",
            TimelineKind::GroupJoined => "group_joined",
            TimelineKind::GroupLeft => "group_left",
            TimelineKind::TagAdded => "tag_added",
            TimelineKind::TagRemoved => "tag_removed",
            TimelineKind::StatusChanged => "status_changed",
            TimelineKind::Imported => "imported",
            TimelineKind::Note => "note",
            TimelineKind::EmailQueued => "email_queued",
            TimelineKind::EmailSent => "email_sent",
            TimelineKind::EmailSkipped => "email_skipped",
            TimelineKind::EmailDeferred => "email_deferred",
            TimelineKind::EmailFailed => "email_failed",
            TimelineKind::EmailBounced => "email_bounced",
            TimelineKind::EmailOpened => "email_opened",
            TimelineKind::EmailClicked => "email_clicked",
            TimelineKind::FormSubmitted => "form_submitted",
            TimelineKind::SequenceEntered => "sequence_entered",
            TimelineKind::SequenceChanged => "sequence_changed",
            TimelineKind::SequenceLeft => "sequence_left",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What happened, before the store gives it an id, a contact and a time.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEvent {
    pub kind: TimelineKind,
    pub summary: String,
    pub data: Value,
}

/// A stored timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub id: Uuid,
    pub contact_id: Uuid,
    pub at: jiff::Timestamp,
    pub kind: TimelineKind,
    pub summary: String,
    pub data: Value,
}

impl TimelineEvent {
    pub fn form_submitted(form_id: Uuid, form: &str, ip: Option<&str>, created: bool) -> Self {
        Self {
            kind: TimelineKind::FormSubmitted,
            summary: format!("Submitted the form {form}"),
            data: json!({ "form_id": form_id, "form": form, "ip": ip, "created": created }),
        }
    }

    /// `how`: `form`, `start_group`, `condition`, `manual` or `api`.
    pub fn sequence_entered(sequence_id: Uuid, name: &str, how: &str) -> Self {
        Self {
            kind: TimelineKind::SequenceEntered,
            summary: format!("Entered the sequence {name} ({how})"),
            data: json!({ "sequence_id": sequence_id, "sequence": name, "how": how }),
        }
    }

    /// An enrolment was suspended, resumed, paused, reactivated or postponed, or now waits.
    pub fn sequence_changed(
        sequence_id: Uuid,
        name: &str,
        status: crate::sequence::EnrolmentStatus,
        reason: Option<&str>,
    ) -> Self {
        let mut summary = format!("Sequence {name}: {}", status.as_str());
        if let Some(reason) = reason {
            summary.push_str(&format!(" ({reason})"));
        }
        Self::sequence(
            TimelineKind::SequenceChanged,
            summary,
            sequence_id,
            name,
            status,
            reason,
        )
    }

    /// The enrolment completed or was cancelled.
    pub fn sequence_left(
        sequence_id: Uuid,
        name: &str,
        status: crate::sequence::EnrolmentStatus,
        reason: Option<&str>,
    ) -> Self {
        let mut summary = format!("Left the sequence {name} ({})", status.as_str());
        if let Some(reason) = reason {
            summary.push_str(&format!(": {reason}"));
        }
        Self::sequence(
            TimelineKind::SequenceLeft,
            summary,
            sequence_id,
            name,
            status,
            reason,
        )
    }

    fn sequence(
        kind: TimelineKind,
        summary: String,
        sequence_id: Uuid,
        name: &str,
        status: crate::sequence::EnrolmentStatus,
        reason: Option<&str>,
    ) -> Self {
        Self {
            kind,
            summary,
            data: json!({
                "sequence_id": sequence_id,
                "sequence": name,
                "status": status.as_str(),
                "reason": reason,
            }),
        }
    }

    pub fn contact_created(source: &str) -> Self {
        Self {
            kind: TimelineKind::ContactCreated,
            summary: format!("Contact created ({source})"),
            data: json!({ "source": source }),
        }
    }

    /// The address of a new contact matches an erased one that could not be mailed.
    pub fn suppression_matched(status: crate::Status) -> Self {
        Self {
            kind: TimelineKind::SuppressionMatched,
            summary: format!("This address was erased earlier while {status}; it stays {status}"),
            data: json!({ "status": status }),
        }
    }

    /// An import updated the contact; the changes follow as their own entries.
    pub fn import_updated(row: u64) -> Self {
        Self {
            kind: TimelineKind::Imported,
            summary: format!("Updated by import (row {row})"),
            data: json!({ "row": row, "updated": true }),
        }
    }

    /// An import created the contact, in the given group and with the given tags. One entry says
    /// it all: a million-row import writes a million entries, not three million.
    pub fn import_created(row: u64, group: Option<(Uuid, &str)>, tags: &[crate::TagName]) -> Self {
        let mut summary = format!("Created by import (row {row})");
        if let Some((_, name)) = group {
            summary.push_str(&format!("; joined group {name}"));
        }
        if !tags.is_empty() {
            let names: Vec<&str> = tags.iter().map(crate::TagName::as_str).collect();
            summary.push_str(&format!("; tags {}", names.join(", ")));
        }
        Self {
            kind: TimelineKind::Imported,
            summary,
            data: json!({
                "row": row,
                "updated": false,
                "group_id": group.map(|(id, _)| id),
                "group": group.map(|(_, name)| name),
                "tags": tags,
            }),
        }
    }

    pub fn field_changed(field: &str, old: &Value, new: &Value) -> Self {
        Self {
            kind: TimelineKind::FieldChanged,
            summary: format!("{field}: {} → {}", show(old), show(new)),
            data: json!({ "field": field, "old": old, "new": new }),
        }
    }

    pub fn group_joined(group_id: Uuid, name: &str, source: &str) -> Self {
        Self {
            kind: TimelineKind::GroupJoined,
            summary: format!("Joined group {name}"),
            data: json!({ "group_id": group_id, "group": name, "source": source }),
        }
    }

    pub fn group_left(group_id: Uuid, name: &str, source: &str) -> Self {
        Self {
            kind: TimelineKind::GroupLeft,
            summary: format!("Left group {name}"),
            data: json!({ "group_id": group_id, "group": name, "source": source }),
        }
    }

    pub fn tag_added(tag: &str, source: &str) -> Self {
        Self {
            kind: TimelineKind::TagAdded,
            summary: format!("Tag {tag} added"),
            data: json!({ "tag": tag, "source": source }),
        }
    }

    pub fn tag_removed(tag: &str, source: &str) -> Self {
        Self {
            kind: TimelineKind::TagRemoved,
            summary: format!("Tag {tag} removed"),
            data: json!({ "tag": tag, "source": source }),
        }
    }

    pub fn status_changed(t: &Transition) -> Self {
        let mut summary = format!("Status {} → {} ({})", t.from, t.to, t.source.as_str());
        if let Some(reason) = &t.reason {
            summary.push_str(": ");
            summary.push_str(reason);
        }
        Self {
            kind: TimelineKind::StatusChanged,
            summary,
            data: json!({
                "from": t.from, "to": t.to, "source": t.source, "reason": t.reason,
            }),
        }
    }
}

/// Entries about one outbound message; `data.message_id` ties them to the ledger row.
impl TimelineEvent {
    pub fn email_queued(message: Uuid, class: crate::MessageClass, subject: &str) -> Self {
        Self {
            kind: TimelineKind::EmailQueued,
            summary: format!("Email queued ({}): {subject}", class.as_str()),
            data: json!({ "message_id": message, "class": class, "subject": subject }),
        }
    }

    pub fn email_sent(message: Uuid, subject: &str) -> Self {
        Self {
            kind: TimelineKind::EmailSent,
            summary: format!("Email sent: {subject}"),
            data: json!({ "message_id": message, "subject": subject }),
        }
    }

    pub fn email_skipped(message: Uuid, subject: &str, rule: crate::SkipRule) -> Self {
        Self {
            kind: TimelineKind::EmailSkipped,
            summary: format!("Email skipped by the rule {}: {subject}", rule.as_str()),
            data: json!({ "message_id": message, "subject": subject, "rule": rule }),
        }
    }

    pub fn email_deferred(
        message: Uuid,
        subject: &str,
        error: &str,
        next: jiff::Timestamp,
    ) -> Self {
        Self {
            kind: TimelineKind::EmailDeferred,
            summary: format!("Email deferred, next attempt {next}: {subject}: {error}"),
            data: json!({ "message_id": message, "subject": subject, "error": error, "next_attempt_at": next }),
        }
    }

    pub fn email_failed(message: Uuid, subject: &str, error: &str) -> Self {
        Self {
            kind: TimelineKind::EmailFailed,
            summary: format!("Email failed: {subject}: {error}"),
            data: json!({ "message_id": message, "subject": subject, "error": error }),
        }
    }

    pub fn email_opened(message: Uuid, subject: &str) -> Self {
        Self {
            kind: TimelineKind::EmailOpened,
            summary: format!("Email opened: {subject}"),
            data: json!({ "message_id": message, "subject": subject }),
        }
    }

    pub fn email_clicked(message: Uuid, subject: &str, url: &str) -> Self {
        Self {
            kind: TimelineKind::EmailClicked,
            summary: format!("Link clicked in {subject}: {url}"),
            data: json!({ "message_id": message, "subject": subject, "url": url }),
        }
    }

    pub fn email_bounced(message: Uuid, subject: &str, error: &str) -> Self {
        Self {
            kind: TimelineKind::EmailBounced,
            summary: format!("Email bounced (hard): {subject}: {error}"),
            data: json!({ "message_id": message, "subject": subject, "error": error }),
        }
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(empty)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{ChangeSource, Status};

    #[test]
    fn kinds_round_trip() {
        for kind in TimelineKind::ALL {
            assert_eq!(TimelineKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_value(kind).expect("serialises");
            assert_eq!(json, Value::String(kind.as_str().into()));
        }
    }

    #[test]
    fn summaries_say_what_changed() {
        let cases = [
            (
                TimelineEvent::field_changed("first_name", &Value::Null, &json!("Jan")),
                "first_name: (empty) → Jan",
            ),
            (
                TimelineEvent::status_changed(&Transition {
                    from: Status::Unsubscribed,
                    to: Status::Subscribed,
                    source: ChangeSource::Admin,
                    reason: Some("asked by phone".into()),
                }),
                "Status unsubscribed → subscribed (admin): asked by phone",
            ),
            (TimelineEvent::tag_added("vip", "api"), "Tag vip added"),
            (
                TimelineEvent::import_created(
                    5,
                    Some((Uuid::nil(), "Klanten")),
                    &[crate::TagName::parse("vip").expect("valid")],
                ),
                "Created by import (row 5); joined group Klanten; tags vip",
            ),
            (
                TimelineEvent::import_created(6, None, &[]),
                "Created by import (row 6)",
            ),
        ];
        for (event, summary) in cases {
            assert_eq!(event.summary, summary);
        }
    }
}
