//! Decisions both backends make the same way, between reading rows and writing them.

use crate::{Delivery, ExistingPolicy, ImportRow, Message, RowOutcome, StoreError, Suppression};
use jiff::Timestamp;
use nudge_core::contact::{NewContact, plan_create, plan_update};
use nudge_core::status::{TransitionError, plan_transition};
use nudge_core::timeline::TimelineEvent;
use nudge_core::{
    ChangeSource, Contact, ContactInput, ContactPatch, Email, FieldDef, MessageStatus, Patch,
    SkipRule, TagName,
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Maps a refused status change to the field the user should correct.
pub fn transition_error(e: TransitionError) -> StoreError {
    let field = match e {
        TransitionError::ReasonRequired { .. } => "reason",
        TransitionError::NotAllowed { .. } => "status",
    };
    StoreError::invalid(field, e.to_string())
}

/// Items of `wanted` not in `current`, and items of `current` not in `wanted`.
pub fn diff<T: PartialEq + Clone>(current: &[T], wanted: &[T]) -> (Vec<T>, Vec<T>) {
    let added = wanted
        .iter()
        .filter(|w| !current.contains(w))
        .cloned()
        .collect();
    let removed = current
        .iter()
        .filter(|c| !wanted.contains(c))
        .cloned()
        .collect();
    (added, removed)
}

/// An import row for an existing contact: what the file gives replaces what is stored, and an
/// empty cell keeps it.
pub fn input_as_patch(input: &ContactInput) -> ContactPatch {
    let set = |v: &Option<String>| v.clone().map_or(Patch::Keep, Patch::Set);
    ContactPatch {
        email: None,
        first_name: set(&input.first_name),
        last_name: set(&input.last_name),
        phone: set(&input.phone),
        language: set(&input.language),
        time_zone: set(&input.time_zone),
        owner_id: input.owner_id.map_or(Patch::Keep, Patch::Set),
        source: Patch::Keep,
        fields: input
            .fields
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// A new contact whose address matches an erased one keeps the status it had then, when that
/// status forbids mail; the returned event says so on its timeline.
pub fn apply_suppression(
    contact: &mut NewContact,
    suppression: Option<&Suppression>,
) -> Option<TimelineEvent> {
    let s = suppression.filter(|s| s.status.is_blocking())?;
    contact.status = s.status;
    Some(TimelineEvent::suppression_matched(s.status))
}

/// What an import does with one row.
pub enum ImportDecision {
    Create {
        contact: NewContact,
        events: Vec<TimelineEvent>,
        outcome: RowOutcome,
    },
    /// `tags` are added to the contact's tags; an import never removes one.
    Update {
        contact: Contact,
        events: Vec<TimelineEvent>,
        tags: Vec<TagName>,
    },
    Nothing(RowOutcome),
}

#[allow(clippy::too_many_arguments)] // One row's whole context; a struct would only rename it.
pub fn plan_import_row(
    line: u64,
    input: &ContactInput,
    group: Option<(Uuid, &str)>,
    existing: Option<&Contact>,
    suppression: Option<&Suppression>,
    defs: &[FieldDef],
    policy: ExistingPolicy,
    at: jiff::Timestamp,
) -> ImportDecision {
    let Some(current) = existing else {
        return match plan_create(input, defs) {
            Err(errors) => ImportDecision::Nothing(RowOutcome::Rejected(errors.to_string())),
            Ok(mut contact) => {
                let mut events = vec![TimelineEvent::import_created(line, group, &contact.tags)];
                let outcome = match apply_suppression(&mut contact, suppression) {
                    Some(event) => {
                        events.push(event);
                        RowOutcome::Flagged(format!(
                            "this address was erased earlier while {}; it stays {}",
                            contact.status, contact.status
                        ))
                    }
                    None => RowOutcome::Created,
                };
                ImportDecision::Create {
                    contact,
                    events,
                    outcome,
                }
            }
        };
    };
    if policy == ExistingPolicy::Skip {
        // The row must still be valid: a skipped row is one that would have been accepted.
        return match plan_create(input, defs) {
            Err(errors) => ImportDecision::Nothing(RowOutcome::Rejected(errors.to_string())),
            Ok(_) => ImportDecision::Nothing(RowOutcome::Skipped),
        };
    }
    let tags = match input
        .tags
        .iter()
        .map(|t| TagName::parse(t))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(tags) => tags,
        Err(reason) => {
            return ImportDecision::Nothing(RowOutcome::Rejected(format!("tags: {reason}")));
        }
    };
    let (mut next, mut events) = match plan_update(current, &input_as_patch(input), defs, at) {
        Ok(planned) => planned,
        Err(errors) => return ImportDecision::Nothing(RowOutcome::Rejected(errors.to_string())),
    };
    if let Some(raw) = input.status.as_deref() {
        let to = match raw.parse() {
            Ok(to) => to,
            Err(e) => {
                return ImportDecision::Nothing(RowOutcome::Rejected(format!("status: {e}")));
            }
        };
        match plan_transition(current.status, to, ChangeSource::Import, None) {
            Ok(Some(t)) => {
                next.status = t.to;
                next.updated_at = at;
                events.push(TimelineEvent::status_changed(&t));
            }
            Ok(None) => {}
            Err(e) => return ImportDecision::Nothing(RowOutcome::Rejected(format!("status: {e}"))),
        }
    }
    events.insert(0, TimelineEvent::import_updated(line));
    ImportDecision::Update {
        contact: next,
        events,
        tags,
    }
}

/// A contact an import batch creates or changes, with what its timeline and tags get.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRow {
    pub contact: Contact,
    pub events: Vec<TimelineEvent>,
    pub tags: Vec<TagName>,
}

/// Everything one import batch writes, decided before anything is written.
#[derive(Debug, Default)]
pub struct BatchPlan {
    pub outcomes: Vec<RowOutcome>,
    /// New contacts; a later row with the same address is folded into its first row.
    pub created: Vec<PlannedRow>,
    /// Changes to stored contacts, in row order (one contact may appear more than once).
    pub updated: Vec<PlannedRow>,
}

/// The addresses of a batch, parsed once: per row, the matching key and the suppression hash.
pub struct BatchKeys(Vec<Option<(String, String)>>);

impl BatchKeys {
    pub fn new(rows: &[ImportRow]) -> Self {
        Self(
            rows.iter()
                .map(|r| {
                    let email = Email::parse(r.input.email.as_deref()?).ok()?;
                    Some((email.key(), email.suppression_hash()))
                })
                .collect(),
        )
    }

    /// The keys to look stored contacts up by.
    pub fn keys(&self) -> Vec<String> {
        self.0.iter().flatten().map(|(k, _)| k.clone()).collect()
    }

    /// The hashes to look suppressions up by.
    pub fn hashes(&self) -> Vec<String> {
        self.0.iter().flatten().map(|(_, h)| h.clone()).collect()
    }
}

/// Plans a whole batch. `existing` maps email keys to the stored contacts the batch mentions;
/// `suppressed` maps suppression hashes to erased addresses.
#[allow(clippy::too_many_arguments)] // The batch's whole context; a struct would only rename it.
pub fn plan_batch(
    rows: &[ImportRow],
    keys: &BatchKeys,
    group: Option<(Uuid, &str)>,
    mut existing: HashMap<String, Contact>,
    suppressed: &HashMap<String, Suppression>,
    defs: &[FieldDef],
    policy: ExistingPolicy,
    at: jiff::Timestamp,
) -> BatchPlan {
    let mut plan = BatchPlan::default();
    // Contacts this batch creates, by key, so that a later row with the same address updates
    // the first instead of creating a second.
    let mut created_by_key: HashMap<&str, usize> = HashMap::new();
    for (row, key) in rows.iter().zip(&keys.0) {
        let (key, hash) = match key {
            Some((k, h)) => (Some(k.as_str()), Some(h.as_str())),
            None => (None, None),
        };
        let created = key.and_then(|k| created_by_key.get(k).copied());
        let current = match created {
            Some(i) => plan.created.get(i).map(|r| &r.contact),
            None => key.and_then(|k| existing.get(k)),
        };
        let suppression = hash.and_then(|h| suppressed.get(h));
        let decision = plan_import_row(
            row.line,
            &row.input,
            group,
            current,
            suppression,
            defs,
            policy,
            at,
        );
        match decision {
            ImportDecision::Nothing(outcome) => plan.outcomes.push(outcome),
            ImportDecision::Create {
                mut contact,
                events,
                outcome,
            } => {
                contact.source.get_or_insert_with(|| "import".to_owned());
                let (contact, _, tags) = contact.into_contact(Uuid::now_v7(), at);
                if let Some(k) = key {
                    created_by_key.insert(k, plan.created.len());
                }
                plan.created.push(PlannedRow {
                    contact,
                    events,
                    tags,
                });
                plan.outcomes.push(outcome);
            }
            ImportDecision::Update {
                contact,
                events,
                tags,
            } => {
                match created.and_then(|i| plan.created.get_mut(i)) {
                    Some(first) => {
                        // Fold this row into the first one, without a second "imported" entry.
                        let fresh: Vec<TagName> = tags
                            .into_iter()
                            .filter(|t| !first.tags.contains(t))
                            .collect();
                        first.contact = contact;
                        first.events.extend(events.into_iter().skip(1));
                        first.events.extend(
                            fresh
                                .iter()
                                .map(|t| TimelineEvent::tag_added(t.as_str(), "import")),
                        );
                        first.tags.extend(fresh);
                    }
                    None => {
                        if let Some(k) = key {
                            existing.insert(k.to_owned(), contact.clone());
                        }
                        plan.updated.push(PlannedRow {
                            contact,
                            events,
                            tags,
                        });
                    }
                }
                plan.outcomes.push(RowOutcome::Updated);
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn diff_lists_both_ways() {
        assert_eq!(diff(&[1, 2, 3], &[3, 4]), (vec![4], vec![1, 2]));
        assert_eq!(diff::<u8>(&[], &[]), (vec![], vec![]));
    }
}

/// What recording an attempt writes on its ledger row. A column that is `None` keeps what it
/// holds, so both backends update a row with one statement whatever the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishColumns<'a> {
    pub status: MessageStatus,
    pub message_id: Option<&'a str>,
    pub sent_at: Option<Timestamp>,
    pub due_at: Option<Timestamp>,
    pub last_error: Option<&'a str>,
    pub skip_rule: Option<SkipRule>,
    pub smtp_account_id: Option<Uuid>,
}

impl<'a> FinishColumns<'a> {
    /// The columns for `delivery`, recorded at `at`.
    pub fn of(delivery: &'a Delivery, at: Timestamp) -> Self {
        let only = |status| FinishColumns {
            status,
            message_id: None,
            sent_at: None,
            due_at: None,
            last_error: None,
            skip_rule: None,
            smtp_account_id: None,
        };
        match delivery {
            Delivery::Sent {
                message_id,
                smtp_account_id,
            } => FinishColumns {
                message_id: Some(message_id),
                sent_at: Some(at),
                smtp_account_id: *smtp_account_id,
                ..only(MessageStatus::Sent)
            },
            Delivery::Retry { at: next, error } => FinishColumns {
                due_at: Some(*next),
                last_error: Some(error),
                ..only(MessageStatus::Retrying)
            },
            Delivery::Failed { error, .. } => FinishColumns {
                last_error: Some(error),
                ..only(MessageStatus::Failed)
            },
            Delivery::Skipped(rule) => FinishColumns {
                skip_rule: Some(*rule),
                ..only(MessageStatus::Skipped)
            },
        }
    }
}

/// The timeline entry of a recorded attempt. A bounce's change of the contact's status is the
/// caller's, from the contact it holds.
pub fn finish_event(id: Uuid, subject: &str, delivery: &Delivery) -> TimelineEvent {
    match delivery {
        Delivery::Sent { .. } => TimelineEvent::email_sent(id, subject),
        Delivery::Retry { at, error } => TimelineEvent::email_deferred(id, subject, error, *at),
        Delivery::Failed { error, bounce } if *bounce => {
            TimelineEvent::email_bounced(id, subject, error)
        }
        Delivery::Failed { error, .. } => TimelineEvent::email_failed(id, subject, error),
        Delivery::Skipped(rule) => TimelineEvent::email_skipped(id, subject, *rule),
    }
}

/// A finish by a dispatcher whose lease ran out (another took the message) or of a message
/// that is no longer being sent.
pub fn lease_lost(id: Uuid, owner: &str) -> StoreError {
    StoreError::Conflict {
        code: "lease_lost",
        field: None,
        message: format!("message {id} is no longer leased to {owner}"),
    }
}

/// A batch of outcomes split for recording: each message's first outcome with its position,
/// and the positions of messages named again. A repeat finds the lease ended by the first.
pub fn first_outcomes(
    outcomes: &[(Uuid, Delivery)],
) -> (Vec<(usize, Uuid, &Delivery)>, Vec<(usize, Uuid)>) {
    let mut seen = HashSet::new();
    let mut first = Vec::with_capacity(outcomes.len());
    let mut again = Vec::new();
    for (i, (id, delivery)) in outcomes.iter().enumerate() {
        if seen.insert(*id) {
            first.push((i, *id, delivery));
        } else {
            again.push((i, *id));
        }
    }
    (first, again)
}

/// A timeline entry of a recorded batch, in order; a bounce's change of the contact is the
/// backend's to make (it holds the contact) at its place.
#[derive(Debug)]
pub enum BatchEntry {
    Event(Uuid, TimelineEvent),
    Bounce(Uuid),
}

/// What recording a batch comes to once its update has run: the result of each outcome, in the
/// caller's order, and the timeline entries of the rows it recorded.
#[derive(Debug)]
pub struct RecordedBatch {
    pub results: Vec<Result<Message, StoreError>>,
    pub timeline: Vec<BatchEntry>,
}

/// Turns the rows a batch update returned (`finished`, by id) into results and timeline
/// entries. A message the update did not return is no longer leased to `owner` when it is
/// still stored (`present`), and is gone otherwise.
pub fn recorded_batch(
    outcomes: &[(Uuid, Delivery)],
    mut finished: HashMap<Uuid, Message>,
    present: &HashSet<Uuid>,
    owner: &str,
) -> RecordedBatch {
    let (first, again) = first_outcomes(outcomes);
    let gone = |id: Uuid| {
        if present.contains(&id) {
            lease_lost(id, owner)
        } else {
            StoreError::NotFound
        }
    };
    let mut done = Vec::with_capacity(outcomes.len());
    let mut timeline = Vec::with_capacity(first.len());
    let mut recorded = HashSet::new();
    for (i, id, delivery) in first {
        let Some(m) = finished.remove(&id) else {
            done.push((i, Err(gone(id))));
            continue;
        };
        let event = finish_event(id, &m.content.subject, delivery);
        timeline.push(BatchEntry::Event(m.contact_id, event));
        if let Delivery::Failed { bounce: true, .. } = delivery {
            timeline.push(BatchEntry::Bounce(m.contact_id));
        }
        recorded.insert(id);
        done.push((i, Ok(m)));
    }
    for (i, id) in again {
        let error = if recorded.contains(&id) {
            lease_lost(id, owner)
        } else {
            gone(id)
        };
        done.push((i, Err(error)));
    }
    done.sort_by_key(|(i, _)| *i);
    RecordedBatch {
        results: done.into_iter().map(|(_, result)| result).collect(),
        timeline,
    }
}
