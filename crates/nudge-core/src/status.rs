//! Contact statuses, message classes, the send gate and the rules for moving between statuses.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The six statuses of product.md §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Subscribed,
    Pending,
    Unsubscribed,
    Transactional,
    Bounced,
    Complained,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Subscribed,
        Status::Pending,
        Status::Unsubscribed,
        Status::Transactional,
        Status::Bounced,
        Status::Complained,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Subscribed => "subscribed",
            Status::Pending => "pending",
            Status::Unsubscribed => "unsubscribed",
            Status::Transactional => "transactional",
            Status::Bounced => "bounced",
            Status::Complained => "complained",
        }
    }

    /// Statuses that a contact leaves only by an explicit re-subscription.
    pub fn is_blocking(self) -> bool {
        matches!(
            self,
            Status::Unsubscribed | Status::Bounced | Status::Complained
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of subscribed, pending, unsubscribed, transactional, bounced, complained")]
pub struct UnknownStatus;

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(UnknownStatus)
    }
}

/// What kind of message is about to go out; the gate treats each differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageClass {
    Campaign,
    Automation,
    Transactional,
}

impl MessageClass {
    pub const ALL: [MessageClass; 3] = [
        MessageClass::Campaign,
        MessageClass::Automation,
        MessageClass::Transactional,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageClass::Campaign => "campaign",
            MessageClass::Automation => "automation",
            MessageClass::Transactional => "transactional",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Why the gate refused a message; recorded on the skipped message and the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipRule {
    /// Double opt-in not confirmed: only transactional mail.
    PendingUnconfirmed,
    /// The contact unsubscribed: only transactional mail.
    Unsubscribed,
    /// A transactional-only contact gets no broadcasts.
    TransactionalOnly,
    /// A hard bounce: nothing at all.
    Bounced,
    /// A spam complaint: nothing at all.
    Complained,
    /// The automation does not allow steps for pending contacts.
    PendingNotAllowed,
}

impl SkipRule {
    pub const ALL: [SkipRule; 6] = [
        SkipRule::PendingUnconfirmed,
        SkipRule::Unsubscribed,
        SkipRule::TransactionalOnly,
        SkipRule::Bounced,
        SkipRule::Complained,
        SkipRule::PendingNotAllowed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipRule::PendingUnconfirmed => "pending_unconfirmed",
            SkipRule::Unsubscribed => "unsubscribed",
            SkipRule::TransactionalOnly => "transactional_only",
            SkipRule::Bounced => "bounced",
            SkipRule::Complained => "complained",
            SkipRule::PendingNotAllowed => "pending_not_allowed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendDecision {
    Allowed,
    Skipped(SkipRule),
}

/// The send gate: whether an email of `class` may go to a contact with `status`.
///
/// This is the table of product.md §2, and it is checked again right before SMTP.
pub fn send_gate(status: Status, class: MessageClass) -> SendDecision {
    use MessageClass as C;
    use SendDecision::{Allowed, Skipped};
    use Status as S;
    match (status, class) {
        (S::Subscribed, _) => Allowed,
        (S::Pending, C::Transactional) => Allowed,
        (S::Pending, _) => Skipped(SkipRule::PendingUnconfirmed),
        (S::Unsubscribed, C::Transactional) => Allowed,
        (S::Unsubscribed, _) => Skipped(SkipRule::Unsubscribed),
        (S::Transactional, C::Campaign) => Skipped(SkipRule::TransactionalOnly),
        (S::Transactional, _) => Allowed,
        (S::Bounced, _) => Skipped(SkipRule::Bounced),
        (S::Complained, _) => Skipped(SkipRule::Complained),
    }
}

/// The last column of the table: steps that send no email (tags, fields, webhooks, ...).
pub fn non_email_step_gate(status: Status, automation_allows_pending: bool) -> SendDecision {
    if status == Status::Pending && !automation_allows_pending {
        SendDecision::Skipped(SkipRule::PendingNotAllowed)
    } else {
        SendDecision::Allowed
    }
}

/// Who or what asks for a status change; the rules depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// A user in the admin UI or a script with an API key.
    Admin,
    Import,
    Form,
    /// The contact confirmed a double opt-in.
    Confirmation,
    UnsubscribeLink,
    OneClick,
    PreferencePage,
    Bounce,
    Complaint,
    Automation,
}

impl ChangeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeSource::Admin => "admin",
            ChangeSource::Import => "import",
            ChangeSource::Form => "form",
            ChangeSource::Confirmation => "confirmation",
            ChangeSource::UnsubscribeLink => "unsubscribe_link",
            ChangeSource::OneClick => "one_click",
            ChangeSource::PreferencePage => "preference_page",
            ChangeSource::Bounce => "bounce",
            ChangeSource::Complaint => "complaint",
            ChangeSource::Automation => "automation",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("leaving {from} needs a re-subscription with a reason")]
    ReasonRequired { from: Status },
    #[error("{by} cannot change the status from {from} to {to}")]
    NotAllowed {
        from: Status,
        to: Status,
        by: &'static str,
    },
}

/// A status change the rules allow; `None` from [`plan_transition`] means nothing changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    pub source: ChangeSource,
    pub reason: Option<String>,
}

/// Checks a requested status change against the rules of product.md §2.
///
/// An admin may set any status, but leaving unsubscribed, bounced or complained needs a reason.
/// Other sources may only make the moves their nature implies (a bounce can only bounce).
pub fn plan_transition(
    from: Status,
    to: Status,
    source: ChangeSource,
    reason: Option<&str>,
) -> Result<Option<Transition>, TransitionError> {
    use ChangeSource as Src;
    use Status as S;
    if from == to {
        return Ok(None);
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let not_allowed = || TransitionError::NotAllowed {
        from,
        to,
        by: source.as_str(),
    };
    let allowed = match source {
        Src::Admin | Src::Automation => {
            if from.is_blocking() && reason.is_none() {
                return Err(TransitionError::ReasonRequired { from });
            }
            source == Src::Admin || !from.is_blocking()
        }
        Src::Import => !from.is_blocking() || matches!(to, S::Bounced | S::Complained),
        // A form starts a new opt-in: it may bring a contact back to pending, never further.
        Src::Form => match to {
            S::Pending => true,
            S::Subscribed | S::Transactional => !from.is_blocking(),
            _ => false,
        },
        Src::Confirmation => to == S::Subscribed && from != S::Transactional,
        Src::UnsubscribeLink | Src::OneClick | Src::PreferencePage => {
            to == S::Unsubscribed && !matches!(from, S::Bounced | S::Complained)
        }
        Src::Bounce => to == S::Bounced && from != S::Complained,
        Src::Complaint => to == S::Complained,
    };
    if !allowed {
        return Err(not_allowed());
    }
    Ok(Some(Transition {
        from,
        to,
        source,
        reason: reason.map(str::to_owned),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageClass::{Automation as A, Campaign as C, Transactional as T};
    use SendDecision::{Allowed as Y, Skipped};
    use Status::*;

    /// product.md §2, row by row.
    #[test]
    fn send_gate_matches_the_product_table() {
        let table: &[(Status, [SendDecision; 3])] = &[
            (Subscribed, [Y, Y, Y]),
            (
                Pending,
                [
                    Skipped(SkipRule::PendingUnconfirmed),
                    Skipped(SkipRule::PendingUnconfirmed),
                    Y,
                ],
            ),
            (
                Unsubscribed,
                [
                    Skipped(SkipRule::Unsubscribed),
                    Skipped(SkipRule::Unsubscribed),
                    Y,
                ],
            ),
            (Transactional, [Skipped(SkipRule::TransactionalOnly), Y, Y]),
            (Bounced, [Skipped(SkipRule::Bounced); 3]),
            (Complained, [Skipped(SkipRule::Complained); 3]),
        ];
        assert_eq!(table.len(), Status::ALL.len());
        for (status, row) in table {
            for (class, expected) in [C, A, T].into_iter().zip(row) {
                assert_eq!(send_gate(*status, class), *expected, "{status} x {class:?}");
            }
        }
    }

    #[test]
    fn non_email_steps_run_for_everyone_but_pending_needs_permission() {
        for status in Status::ALL {
            assert_eq!(non_email_step_gate(status, true), Y, "{status}");
            let expected = if status == Pending {
                Skipped(SkipRule::PendingNotAllowed)
            } else {
                Y
            };
            assert_eq!(non_email_step_gate(status, false), expected, "{status}");
        }
    }

    #[test]
    fn transition_table() {
        use ChangeSource::*;
        // (from, to, source, reason, allowed)
        let cases: &[(Status, Status, ChangeSource, Option<&str>, bool)] = &[
            (Pending, Subscribed, Confirmation, None, true),
            (Unsubscribed, Subscribed, Confirmation, None, true),
            (Bounced, Subscribed, Confirmation, None, true),
            (Transactional, Subscribed, Confirmation, None, false),
            (Subscribed, Unsubscribed, UnsubscribeLink, None, true),
            (Pending, Unsubscribed, OneClick, None, true),
            (Transactional, Unsubscribed, PreferencePage, None, true),
            (Bounced, Unsubscribed, UnsubscribeLink, None, false),
            (Subscribed, Bounced, Bounce, None, true),
            (Complained, Bounced, Bounce, None, false),
            (Subscribed, Complained, Complaint, None, true),
            (Bounced, Complained, Complaint, None, true),
            (Subscribed, Pending, Bounce, None, false),
            (Unsubscribed, Subscribed, Admin, None, false),
            (Unsubscribed, Subscribed, Admin, Some("  "), false),
            (
                Unsubscribed,
                Subscribed,
                Admin,
                Some("asked by phone"),
                true,
            ),
            (
                Complained,
                Transactional,
                Admin,
                Some("customer request"),
                true,
            ),
            (Subscribed, Bounced, Admin, None, true),
            (Pending, Subscribed, Admin, None, true),
            (Unsubscribed, Subscribed, Import, None, false),
            (Subscribed, Unsubscribed, Import, None, true),
            (Unsubscribed, Bounced, Import, None, true),
            (Unsubscribed, Pending, Form, None, true),
            (Unsubscribed, Subscribed, Form, None, false),
            (Subscribed, Unsubscribed, Form, None, false),
            (Subscribed, Transactional, Automation, None, true),
            (Bounced, Subscribed, Automation, Some("because"), false),
        ];
        for (from, to, source, reason, allowed) in cases {
            let got = plan_transition(*from, *to, *source, *reason);
            assert_eq!(
                got.is_ok(),
                *allowed,
                "{from} -> {to} by {source:?}: {got:?}"
            );
        }
    }

    #[test]
    fn leaving_a_blocking_status_without_reason_names_the_reason() {
        let err = plan_transition(Bounced, Subscribed, ChangeSource::Admin, None);
        assert_eq!(err, Err(TransitionError::ReasonRequired { from: Bounced }));
    }

    #[test]
    fn same_status_is_no_change() {
        for status in Status::ALL {
            assert_eq!(
                plan_transition(status, status, ChangeSource::Bounce, None),
                Ok(None)
            );
        }
    }

    #[test]
    fn status_names_round_trip() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        }
        assert_eq!("Subscribed".parse::<Status>(), Err(UnknownStatus));
    }
}
