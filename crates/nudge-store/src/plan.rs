//! Decisions both backends make the same way, between reading rows and writing them.

use crate::{ExistingPolicy, RowOutcome, StoreError, Suppression};
use nudge_core::contact::{NewContact, plan_create, plan_update};
use nudge_core::status::{TransitionError, plan_transition};
use nudge_core::timeline::TimelineEvent;
use nudge_core::{ChangeSource, Contact, ContactInput, ContactPatch, FieldDef, Patch};

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
    Update {
        contact: Contact,
        events: Vec<TimelineEvent>,
    },
    Nothing(RowOutcome),
}

pub fn plan_import_row(
    line: u64,
    input: &ContactInput,
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
                let mut events = vec![TimelineEvent::imported(false, line)];
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
    events.insert(0, TimelineEvent::imported(true, line));
    ImportDecision::Update {
        contact: next,
        events,
    }
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
