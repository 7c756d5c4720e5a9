//! Sequences (automailers): ordered messages with delays, and the rules that move a contact's
//! enrolment through them (product.md §5, seed 002).
//!
//! Everything here is a decision on values the caller read: the engine claims a due enrolment,
//! asks [`decide_step`] what to do, and the store writes the answer together with the message it
//! queues. Triggers (start groups, a bound condition) are decided by [`plan_triggers`], manual
//! actions by [`apply_action`].

use crate::contact::Contact;
use crate::error::FieldErrors;
use crate::status::{MessageClass, SendDecision, Status, send_gate};
use crate::timeline::TimelineEvent;
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};
use serde_json::Value;
use uuid::Uuid;

/// How long a suspended enrolment may have been due and still resume by itself (seed 002).
pub const RESUME_WINDOW: SignedDuration = SignedDuration::from_hours(30 * 24);

/// How far from now a hand reactivation puts the next message.
pub const REACTIVATE_AFTER: SignedDuration = SignedDuration::from_mins(1);

/// The longest delay between two messages: ten years is a typo guard, not a product limit.
const MAX_DELAY: SignedDuration = SignedDuration::from_hours(3650 * 24);

/// The wait before a message, counted from when the previous one was due (the first one's from
/// the enrolment). Days are 24 hours: a delay is a gap, not a calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay {
    duration: SignedDuration,
}

impl Delay {
    pub const ZERO: Delay = Delay {
        duration: SignedDuration::ZERO,
    };

    /// Parses an ISO 8601 duration of weeks, days, hours, minutes and seconds (`P3D`, `PT12H`,
    /// `P1DT6H`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let span: Span = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an ISO 8601 duration such as P3D or PT12H"))?;
        if span.get_years() != 0 || span.get_months() != 0 {
            return Err(
                "must be given in weeks, days, hours or minutes, not months or years".into(),
            );
        }
        if span.is_negative() {
            return Err("must not be negative".into());
        }
        let duration = span
            .to_duration(SpanRelativeTo::days_are_24_hours())
            .map_err(|_| "is too long".to_owned())?;
        if duration > MAX_DELAY {
            return Err("is longer than ten years".into());
        }
        Ok(Self { duration })
    }

    pub fn duration(self) -> SignedDuration {
        self.duration
    }
}

impl std::fmt::Display for Delay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.duration.as_secs();
        let (days, rest) = (secs / 86_400, secs % 86_400);
        let (hours, rest) = (rest / 3_600, rest % 3_600);
        let (minutes, seconds) = (rest / 60, rest % 60);
        f.write_str("P")?;
        if days > 0 || secs == 0 {
            write!(f, "{days}D")?;
        }
        if rest > 0 || hours > 0 {
            f.write_str("T")?;
            for (n, unit) in [(hours, "H"), (minutes, "M"), (seconds, "S")] {
                if n > 0 {
                    write!(f, "{n}{unit}")?;
                }
            }
        }
        Ok(())
    }
}

/// When messages may go out: on some weekdays, between two times of day in the contact's time
/// zone (UTC for a contact without one or with an unknown one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendingWindow {
    pub days: Vec<Weekday>,
    pub from: Time,
    pub to: Time,
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

pub fn weekday_name(day: Weekday) -> &'static str {
    WEEKDAYS
        .iter()
        .find(|(_, d)| *d == day)
        .map_or("mon", |(name, _)| name)
}

impl SendingWindow {
    /// Checks a window given as day names (`mon` .. `sun`) and `HH:MM` times; errors are keyed
    /// `window.days`, `window.from` and `window.to`.
    pub fn parse(days: &[String], from: &str, to: &str) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let mut parsed = Vec::new();
        for day in days {
            match WEEKDAYS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(day.trim()))
            {
                Some((_, d)) if !parsed.contains(d) => parsed.push(*d),
                Some(_) => {}
                None => errors.add(
                    "window.days",
                    format!("{day:?} is not a day; use mon, tue, wed, thu, fri, sat or sun"),
                ),
            }
        }
        if days.is_empty() {
            errors.add("window.days", "needs at least one day");
        }
        let time = |s: &str| {
            Time::strptime("%H:%M", s.trim()).map_err(|_| format!("{s:?} is not a time like 09:00"))
        };
        let from = time(from).map_err(|e| errors.add("window.from", e)).ok();
        let to = time(to).map_err(|e| errors.add("window.to", e)).ok();
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            errors.add("window.to", "must be later than window.from");
        }
        errors.into_result(())?;
        parsed.sort_by_key(|d| d.to_monday_zero_offset());
        match (from, to) {
            (Some(from), Some(to)) => Ok(Self {
                days: parsed,
                from,
                to,
            }),
            _ => Err(FieldErrors::one("window", "is incomplete")),
        }
    }

    /// `at` itself when the window is open then, else the next moment it opens.
    pub fn next_opening(&self, at: Timestamp, tz: &TimeZone) -> Timestamp {
        let zoned = at.to_zoned(tz.clone());
        let mut date = zoned.date();
        for _ in 0..8 {
            if self.days.contains(&date.weekday()) {
                let open = date.to_datetime(self.from).to_zoned(tz.clone());
                let close = date.to_datetime(self.to).to_zoned(tz.clone());
                if let (Ok(open), Ok(close)) = (open, close) {
                    if zoned < open {
                        return open.timestamp();
                    }
                    if zoned < close {
                        return at;
                    }
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        at
    }
}

/// The time zone a contact's schedule runs in.
pub fn contact_time_zone(contact: &Contact) -> TimeZone {
    contact
        .time_zone
        .as_deref()
        .and_then(|name| TimeZone::get(name).ok())
        .unwrap_or(TimeZone::UTC)
}

/// A sequence bound to a contact's state: it holds while `field` has one of `values`. The field
/// is a custom field's key, or `status` for the contact's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: String,
    pub values: Vec<String>,
}

impl Condition {
    pub fn holds(&self, contact: &Contact) -> bool {
        if self.field == "status" {
            return self.values.iter().any(|v| v == contact.status.as_str());
        }
        let matches = |v: &Value| match v {
            Value::String(s) => self.values.contains(s),
            Value::Number(n) => self.values.contains(&n.to_string()),
            Value::Bool(b) => self.values.contains(&b.to_string()),
            _ => false,
        };
        match contact.fields.get(&self.field) {
            Some(Value::Array(items)) => items.iter().any(matches),
            Some(v) => matches(v),
            None => false,
        }
    }

    fn describe(&self) -> String {
        format!("{} is one of {}", self.field, self.values.join(", "))
    }
}

/// One message of a sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub id: Uuid,
    pub subject: String,
    pub html: String,
    pub text: Option<String>,
    pub delay: Delay,
}

/// A sequence as its author defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceDef {
    pub name: String,
    pub messages: Vec<Step>,
    pub start_groups: Vec<Uuid>,
    pub condition: Option<Condition>,
    pub window: Option<SendingWindow>,
}

/// The longest sequence name, in characters.
pub const SEQUENCE_NAME_MAX: usize = 200;

impl SequenceDef {
    /// The rules the store cannot check: a name, at least one message, each with a subject and
    /// a body. (Template syntax is checked by the caller, which holds the template engine.)
    pub fn check(&self) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = self.name.trim();
        if name.is_empty() {
            errors.add("name", "is empty");
        } else if name.chars().count() > SEQUENCE_NAME_MAX {
            errors.add("name", "is longer than 200 characters");
        }
        if self.messages.is_empty() {
            errors.add("messages", "needs at least one message");
        }
        for (i, step) in self.messages.iter().enumerate() {
            if step.subject.trim().is_empty() {
                errors.add(format!("messages[{i}].subject"), "is empty");
            }
            if step.html.trim().is_empty() {
                errors.add(format!("messages[{i}].html"), "is empty");
            }
        }
        if let Some(c) = &self.condition {
            if c.field.trim().is_empty() {
                errors.add("condition.field", "is empty");
            }
            if c.values.is_empty() {
                errors.add("condition.values", "needs at least one value");
            }
        }
        errors.into_result(())
    }

    fn delay_before(&self, step: usize) -> SignedDuration {
        self.messages
            .get(step)
            .map_or(SignedDuration::ZERO, |s| s.delay.duration())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnrolmentStatus {
    Active,
    /// Stopped by the sequence's condition (or, past the resume window, waiting for a hand).
    Suspended,
    /// Stopped by a user.
    Paused,
    Completed,
    Cancelled,
}

impl EnrolmentStatus {
    pub const ALL: [EnrolmentStatus; 5] = [
        EnrolmentStatus::Active,
        EnrolmentStatus::Suspended,
        EnrolmentStatus::Paused,
        EnrolmentStatus::Completed,
        EnrolmentStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EnrolmentStatus::Active => "active",
            EnrolmentStatus::Suspended => "suspended",
            EnrolmentStatus::Paused => "paused",
            EnrolmentStatus::Completed => "completed",
            EnrolmentStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// An enrolment still in its sequence: a contact has at most one such per sequence.
    pub fn is_current(self) -> bool {
        matches!(
            self,
            EnrolmentStatus::Active | EnrolmentStatus::Suspended | EnrolmentStatus::Paused
        )
    }
}

/// Why a suspended enrolment is suspended: it decides whether it resumes by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suspension {
    /// The condition stopped holding; it resumes when it holds again (within the window).
    Condition,
    /// The condition held again, but the next message was due too long ago: only a hand
    /// reactivates it.
    Stale,
}

impl Suspension {
    pub fn as_str(self) -> &'static str {
        match self {
            Suspension::Condition => "condition",
            Suspension::Stale => "stale",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Suspension::Condition, Suspension::Stale]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Where a contact stands in a sequence. Steps are indexes into the sequence's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentState {
    pub status: EnrolmentStatus,
    pub suspension: Option<Suspension>,
    pub next_step: Option<u32>,
    /// `None` while the enrolment waits for something other than time (a confirmation).
    pub next_due_at: Option<Timestamp>,
    pub last_step: Option<u32>,
    pub last_message_at: Option<Timestamp>,
    /// Why it waits, stopped or was suspended, in words for the overview.
    pub reason: Option<String>,
}

impl EnrolmentState {
    /// A new enrolment at `at`: its first message is due after the first delay.
    pub fn start(sequence: &SequenceDef, at: Timestamp) -> Self {
        Self {
            status: EnrolmentStatus::Active,
            suspension: None,
            next_step: Some(0),
            next_due_at: Some(at.saturating_add(sequence.delay_before(0)).unwrap_or(at)),
            last_step: None,
            last_message_at: None,
            reason: None,
        }
    }
}

/// What to do with a due enrolment: the step whose message to queue (the store queues it under
/// the enrolment's idempotency key, and the send gate records it skipped where it must), and
/// the enrolment's state afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan {
    pub send: Option<u32>,
    pub next: EnrolmentState,
}

/// The reason an enrolment waits for a double opt-in.
pub const WAITING_FOR_CONFIRMATION: &str = "waiting for the contact to confirm (double opt-in)";

/// Decides what a due enrolment does now (architecture.md, "a scheduled sequence email").
pub fn decide_step(
    sequence: &SequenceDef,
    state: &EnrolmentState,
    contact: &Contact,
    now: Timestamp,
) -> StepPlan {
    let mut next = state.clone();
    let keep = |next: EnrolmentState| StepPlan { send: None, next };
    if state.status != EnrolmentStatus::Active {
        return keep(next);
    }
    let Some(step) = state
        .next_step
        .filter(|s| (*s as usize) < sequence.messages.len())
    else {
        next.status = EnrolmentStatus::Completed;
        next.next_step = None;
        next.next_due_at = None;
        return keep(next);
    };
    if let Some(condition) = &sequence.condition
        && !condition.holds(contact)
    {
        next.status = EnrolmentStatus::Suspended;
        next.suspension = Some(Suspension::Condition);
        next.reason = Some(format!(
            "suspended: {} no longer holds",
            condition.describe()
        ));
        return keep(next);
    }
    if contact.status == Status::Pending {
        next.next_due_at = None;
        next.reason = Some(WAITING_FOR_CONFIRMATION.into());
        return keep(next);
    }
    if let SendDecision::Skipped(rule) = send_gate(contact.status, MessageClass::Automation) {
        next.status = EnrolmentStatus::Cancelled;
        next.next_step = None;
        next.next_due_at = None;
        next.reason = Some(format!(
            "stopped: the contact is {} ({})",
            contact.status.as_str(),
            rule.as_str()
        ));
        return StepPlan {
            send: Some(step),
            next,
        };
    }
    if let Some(window) = &sequence.window {
        let open = window.next_opening(now, &contact_time_zone(contact));
        if open > now {
            next.next_due_at = Some(open);
            next.reason = Some("waiting for the sending window".into());
            return keep(next);
        }
    }
    let due = state.next_due_at.unwrap_or(now).min(now);
    next.last_step = Some(step);
    next.last_message_at = Some(now);
    next.reason = None;
    let following = step + 1;
    if (following as usize) < sequence.messages.len() {
        next.next_step = Some(following);
        next.next_due_at = Some(
            due.saturating_add(sequence.delay_before(following as usize))
                .unwrap_or(due),
        );
    } else {
        next.status = EnrolmentStatus::Completed;
        next.next_step = None;
        next.next_due_at = None;
    }
    StepPlan {
        send: Some(step),
        next,
    }
}

/// A contact's enrolment as trigger planning sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentSummary {
    pub id: Uuid,
    pub sequence_id: Uuid,
    pub state: EnrolmentState,
}

/// A change that a contact's new state causes in its sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerAction {
    Enrol {
        sequence_id: Uuid,
    },
    Update {
        enrolment_id: Uuid,
        next: EnrolmentState,
    },
}

/// Decides what a change to a contact means for the sequences with triggers: joining a start
/// group enrols, a bound condition enrols when it first holds, suspends when it stops holding
/// and resumes when it holds again, unless the next message was due more than
/// [`RESUME_WINDOW`] ago (seed 002's 30-day rule).
///
/// `enrolments` are all of the contact's enrolments, finished ones included: a condition enrols
/// a contact only once, while joining a start group again enrols again after a finished run.
pub fn plan_triggers(
    sequences: &[(Uuid, &SequenceDef)],
    contact: &Contact,
    joined_groups: &[Uuid],
    enrolments: &[EnrolmentSummary],
    now: Timestamp,
) -> Vec<TriggerAction> {
    let mut actions = Vec::new();
    for (sequence_id, sequence) in sequences {
        let mine = enrolments.iter().filter(|e| e.sequence_id == *sequence_id);
        let current = mine.clone().find(|e| e.state.status.is_current());
        let holds = sequence.condition.as_ref().map(|c| c.holds(contact));
        let Some(current) = current else {
            let joined = sequence
                .start_groups
                .iter()
                .any(|g| joined_groups.contains(g));
            let entered = holds == Some(true) && mine.clone().next().is_none();
            if (joined && holds != Some(false)) || entered {
                actions.push(TriggerAction::Enrol {
                    sequence_id: *sequence_id,
                });
            }
            continue;
        };
        let state = &current.state;
        let update = |next| TriggerAction::Update {
            enrolment_id: current.id,
            next,
        };
        match (holds, state.status, state.suspension) {
            (Some(false), EnrolmentStatus::Active, _) => {
                let mut next = state.clone();
                next.status = EnrolmentStatus::Suspended;
                next.suspension = Some(Suspension::Condition);
                next.reason = sequence
                    .condition
                    .as_ref()
                    .map(|c| format!("suspended: {} no longer holds", c.describe()));
                actions.push(update(next));
            }
            (Some(true), EnrolmentStatus::Suspended, Some(Suspension::Condition)) => {
                let mut next = state.clone();
                let stale = state
                    .next_due_at
                    .is_some_and(|due| now.duration_since(due) > RESUME_WINDOW);
                if stale {
                    next.suspension = Some(Suspension::Stale);
                    next.reason = Some(format!(
                        "stays suspended: the next message was due on {}, more than 30 days ago; \
                         reactivate it by hand",
                        state
                            .next_due_at
                            .map(|d| d.strftime("%Y-%m-%d").to_string())
                            .unwrap_or_default()
                    ));
                } else {
                    next.status = EnrolmentStatus::Active;
                    next.suspension = None;
                    next.reason = None;
                    next.next_due_at = state.next_due_at.map(|due| overdue_now(due, now));
                }
                actions.push(update(next));
            }
            _ => {}
        }
    }
    actions
}

/// The timeline entry for an enrolment's change from `old` to `new`, if it is one worth telling:
/// leaving the sequence, or a new status or reason (waiting, suspended, resumed, ...).
pub fn enrolment_event(
    sequence_id: Uuid,
    name: &str,
    old: &EnrolmentState,
    new: &EnrolmentState,
) -> Option<TimelineEvent> {
    let reason = new.reason.as_deref();
    if new.status != old.status && !new.status.is_current() {
        return Some(TimelineEvent::sequence_left(
            sequence_id,
            name,
            new.status,
            reason,
        ));
    }
    let postponed = new.next_due_at != old.next_due_at && new.last_step == old.last_step;
    if new.status != old.status || new.reason != old.reason || postponed {
        return Some(TimelineEvent::sequence_changed(
            sequence_id,
            name,
            new.status,
            reason,
        ));
    }
    None
}

/// A resumed enrolment's overdue message goes now, and the gaps after it count from now: a
/// contact back from a week's suspension gets the next mail at once, not two in a row.
fn overdue_now(due: Timestamp, now: Timestamp) -> Timestamp {
    due.max(now)
}

/// What a user can do to one enrolment (seed 002's per-recipient actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolmentAction {
    Pause,
    Resume,
    /// Wakes a suspended or paused enrolment with its next message a minute from now (or at the
    /// next window opening); later gaps stay as designed.
    Reactivate,
    /// Moves the next message to a later time.
    Postpone(Timestamp),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("a {0} enrolment cannot be changed")]
    Finished(&'static str),
    #[error("only an active enrolment can be paused")]
    NotActive,
    #[error("only a paused enrolment can be resumed; a suspended one is reactivated")]
    NotPaused,
    #[error("the new time must lie in the future")]
    NotInFuture,
}

/// Applies a user's action to an enrolment.
pub fn apply_action(
    sequence: &SequenceDef,
    state: &EnrolmentState,
    contact: &Contact,
    action: EnrolmentAction,
    now: Timestamp,
) -> Result<EnrolmentState, ActionError> {
    if !state.status.is_current() {
        return Err(ActionError::Finished(state.status.as_str()));
    }
    let mut next = state.clone();
    match action {
        EnrolmentAction::Pause => {
            if state.status != EnrolmentStatus::Active {
                return Err(ActionError::NotActive);
            }
            next.status = EnrolmentStatus::Paused;
            next.reason = Some("paused by hand".into());
        }
        EnrolmentAction::Resume => {
            if state.status != EnrolmentStatus::Paused {
                return Err(ActionError::NotPaused);
            }
            next.status = EnrolmentStatus::Active;
            next.reason = None;
            next.next_due_at = state.next_due_at.map(|due| overdue_now(due, now));
        }
        EnrolmentAction::Reactivate => {
            let soon = now.saturating_add(REACTIVATE_AFTER).unwrap_or(now);
            let due = match &sequence.window {
                Some(w) => w.next_opening(soon, &contact_time_zone(contact)),
                None => soon,
            };
            next.status = EnrolmentStatus::Active;
            next.suspension = None;
            next.reason = None;
            next.next_due_at = Some(due);
        }
        EnrolmentAction::Postpone(until) => {
            if until <= now {
                return Err(ActionError::NotInFuture);
            }
            next.next_due_at = Some(until);
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::Email;
    use std::collections::BTreeMap;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("a timestamp")
    }

    fn contact(status: Status, fields: &[(&str, Value)]) -> Contact {
        Contact {
            id: Uuid::nil(),
            email: Email::parse("a@example.com").expect("an email"),
            first_name: None,
            last_name: None,
            phone: None,
            language: None,
            time_zone: None,
            owner_id: None,
            status,
            source: None,
            consent: None,
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
            created_at: ts("2026-01-01T00:00:00Z"),
            updated_at: ts("2026-01-01T00:00:00Z"),
        }
    }

    fn step(delay: &str) -> Step {
        Step {
            id: Uuid::now_v7(),
            subject: "s".into(),
            html: "<p>h</p>".into(),
            text: None,
            delay: Delay::parse(delay).expect("a delay"),
        }
    }

    fn three_mails() -> SequenceDef {
        SequenceDef {
            name: "Welcome".into(),
            messages: vec![step("P0D"), step("P3D"), step("P4D")],
            start_groups: vec![],
            condition: None,
            window: None,
        }
    }

    #[test]
    fn delays_parse_iso_durations_and_refuse_calendar_units() {
        assert_eq!(
            Delay::parse("P3D").map(Delay::duration),
            Ok(SignedDuration::from_hours(72))
        );
        assert_eq!(
            Delay::parse("P1DT6H").map(Delay::duration),
            Ok(SignedDuration::from_hours(30))
        );
        assert_eq!(Delay::parse("P3D").map(|d| d.to_string()), Ok("P3D".into()));
        assert!(Delay::parse("P1M").is_err());
        assert!(Delay::parse("-P1D").is_err());
        assert!(Delay::parse("three days").is_err());
        assert!(Delay::parse("P20000D").is_err());
    }

    #[test]
    fn a_sequence_runs_its_messages_after_their_delays_then_completes() {
        let seq = three_mails();
        let start = ts("2026-03-02T10:00:00Z");
        let c = contact(Status::Subscribed, &[]);
        let s0 = EnrolmentState::start(&seq, start);
        assert_eq!(s0.next_due_at, Some(start));
        let p1 = decide_step(&seq, &s0, &c, start);
        assert_eq!(p1.send, Some(0));
        assert_eq!(p1.next.next_due_at, Some(ts("2026-03-05T10:00:00Z")));
        // Processed late: the next gap still counts from when the message was due.
        let late = ts("2026-03-05T10:00:07Z");
        let p2 = decide_step(&seq, &p1.next, &c, late);
        assert_eq!(p2.send, Some(1));
        assert_eq!(p2.next.last_message_at, Some(late));
        assert_eq!(p2.next.next_due_at, Some(ts("2026-03-09T10:00:00Z")));
        let p3 = decide_step(&seq, &p2.next, &c, ts("2026-03-09T10:00:00Z"));
        assert_eq!(p3.send, Some(2));
        assert_eq!(p3.next.status, EnrolmentStatus::Completed);
        assert_eq!(p3.next.next_due_at, None);
    }

    #[test]
    fn statuses_decide_at_step_time() {
        let seq = three_mails();
        let now = ts("2026-03-02T10:00:00Z");
        let s0 = EnrolmentState::start(&seq, now);
        let pending = decide_step(&seq, &s0, &contact(Status::Pending, &[]), now);
        assert_eq!(pending.send, None);
        assert_eq!(pending.next.status, EnrolmentStatus::Active);
        assert_eq!(pending.next.next_due_at, None);
        for status in [Status::Unsubscribed, Status::Bounced, Status::Complained] {
            let plan = decide_step(&seq, &s0, &contact(status, &[]), now);
            assert_eq!(plan.send, Some(0), "the skipped message is recorded");
            assert_eq!(plan.next.status, EnrolmentStatus::Cancelled);
        }
        let t = decide_step(&seq, &s0, &contact(Status::Transactional, &[]), now);
        assert_eq!(t.next.status, EnrolmentStatus::Active);
        assert_eq!(t.send, Some(0));
    }

    #[test]
    fn a_message_due_outside_the_window_waits_for_the_next_opening() {
        let mut seq = three_mails();
        seq.window = Some(
            SendingWindow::parse(
                &[
                    "mon".into(),
                    "tue".into(),
                    "wed".into(),
                    "thu".into(),
                    "fri".into(),
                ],
                "09:00",
                "17:00",
            )
            .expect("a window"),
        );
        let mut c = contact(Status::Subscribed, &[]);
        c.time_zone = Some("Europe/Amsterdam".into());
        // Friday 18:00 in Amsterdam (17:00 UTC in winter) waits for Monday 09:00 (08:00 UTC).
        let friday = ts("2026-03-06T17:00:00Z");
        let plan = decide_step(&seq, &EnrolmentState::start(&seq, friday), &c, friday);
        assert_eq!(plan.send, None);
        assert_eq!(plan.next.next_due_at, Some(ts("2026-03-09T08:00:00Z")));
        let monday = ts("2026-03-09T08:00:00Z");
        assert_eq!(decide_step(&seq, &plan.next, &c, monday).send, Some(0));
        assert!(SendingWindow::parse(&["funday".into()], "9", "08:00").is_err());
    }

    fn one_update(actions: Vec<TriggerAction>) -> EnrolmentState {
        match actions.as_slice() {
            [TriggerAction::Update { next, .. }] => next.clone(),
            other => panic!("expected one update, got {other:?}"),
        }
    }

    fn bound() -> SequenceDef {
        let mut seq = three_mails();
        seq.condition = Some(Condition {
            field: "stage".into(),
            values: vec!["lead".into(), "trial".into()],
        });
        seq
    }

    #[test]
    fn a_condition_enrols_suspends_and_resumes_within_thirty_days() {
        let seq = bound();
        let id = Uuid::now_v7();
        let sequences = [(id, &seq)];
        let now = ts("2026-03-02T10:00:00Z");
        let lead = contact(Status::Subscribed, &[("stage", "lead".into())]);
        let customer = contact(Status::Subscribed, &[("stage", "customer".into())]);
        assert_eq!(
            plan_triggers(&sequences, &lead, &[], &[], now),
            vec![TriggerAction::Enrol { sequence_id: id }]
        );
        assert!(plan_triggers(&sequences, &customer, &[], &[], now).is_empty());

        let active = EnrolmentSummary {
            id: Uuid::now_v7(),
            sequence_id: id,
            state: EnrolmentState::start(&seq, now),
        };
        let suspended = one_update(plan_triggers(
            &sequences,
            &customer,
            &[],
            std::slice::from_ref(&active),
            now,
        ));
        assert_eq!(suspended.status, EnrolmentStatus::Suspended);
        let suspended = EnrolmentSummary {
            state: suspended,
            ..active.clone()
        };
        let soon = ts("2026-03-31T10:00:00Z");
        let resumed = one_update(plan_triggers(
            &sequences,
            &lead,
            &[],
            std::slice::from_ref(&suspended),
            soon,
        ));
        assert_eq!(resumed.status, EnrolmentStatus::Active);
        assert_eq!(resumed.next_due_at, Some(soon), "the overdue mail goes now");

        let late = ts("2026-04-02T10:00:01Z");
        let stale = one_update(plan_triggers(
            &sequences,
            &lead,
            &[],
            std::slice::from_ref(&suspended),
            late,
        ));
        assert_eq!(stale.status, EnrolmentStatus::Suspended);
        assert_eq!(stale.suspension, Some(Suspension::Stale));
        assert!(
            stale
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("30 days"))
        );
        let stale = EnrolmentSummary {
            state: stale,
            ..active
        };
        assert!(plan_triggers(&sequences, &lead, &[], &[stale], late).is_empty());
    }

    #[test]
    fn joining_a_start_group_enrols_once_at_a_time() {
        let group = Uuid::now_v7();
        let mut seq = three_mails();
        seq.start_groups = vec![group];
        let id = Uuid::now_v7();
        let now = ts("2026-03-02T10:00:00Z");
        let c = contact(Status::Subscribed, &[]);
        assert_eq!(
            plan_triggers(&[(id, &seq)], &c, &[group], &[], now),
            vec![TriggerAction::Enrol { sequence_id: id }]
        );
        assert!(plan_triggers(&[(id, &seq)], &c, &[], &[], now).is_empty());
        let current = EnrolmentSummary {
            id: Uuid::now_v7(),
            sequence_id: id,
            state: EnrolmentState::start(&seq, now),
        };
        assert!(plan_triggers(&[(id, &seq)], &c, &[group], &[current], now).is_empty());
    }

    #[test]
    fn reactivating_puts_the_next_message_a_minute_ahead() {
        let seq = three_mails();
        let c = contact(Status::Subscribed, &[]);
        let mut state = EnrolmentState::start(&seq, ts("2026-01-01T00:00:00Z"));
        state.status = EnrolmentStatus::Suspended;
        state.suspension = Some(Suspension::Stale);
        let now = ts("2026-03-02T10:00:00Z");
        let next =
            apply_action(&seq, &state, &c, EnrolmentAction::Reactivate, now).expect("reactivated");
        assert_eq!(next.status, EnrolmentStatus::Active);
        assert_eq!(next.next_due_at, Some(ts("2026-03-02T10:01:00Z")));
        assert_eq!(
            apply_action(&seq, &state, &c, EnrolmentAction::Resume, now),
            Err(ActionError::NotPaused)
        );
        assert_eq!(
            apply_action(&seq, &state, &c, EnrolmentAction::Postpone(now), now),
            Err(ActionError::NotInFuture)
        );
        let later = ts("2026-04-01T00:00:00Z");
        let postponed = apply_action(&seq, &state, &c, EnrolmentAction::Postpone(later), now)
            .expect("postponed");
        assert_eq!(postponed.next_due_at, Some(later));
        let mut done = state.clone();
        done.status = EnrolmentStatus::Completed;
        assert!(apply_action(&seq, &done, &c, EnrolmentAction::Pause, now).is_err());
    }
}
