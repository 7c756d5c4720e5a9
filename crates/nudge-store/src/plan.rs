//! Decisions both backends make the same way, between reading rows and writing them.

use crate::{ExistingPolicy, ImportRow, RowOutcome, StoreError, Suppression};
use nudge_core::contact::{NewContact, plan_create, plan_update};
use nudge_core::status::{TransitionError, plan_transition};
use nudge_core::timeline::TimelineEvent;
use nudge_core::{
    ChangeSource, Contact, ContactInput, ContactPatch, Email, FieldDef, Patch, TagName,
};
use std::collections::HashMap;
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
    events.insert(0, TimelineEvent::imported(true, line));
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

/// Plans a whole batch. `existing` maps email keys to the stored contacts the batch mentions;
/// `suppressed` maps suppression hashes to erased addresses.
pub fn plan_batch(
    rows: &[ImportRow],
    mut existing: HashMap<String, Contact>,
    suppressed: &HashMap<String, Suppression>,
    defs: &[FieldDef],
    policy: ExistingPolicy,
    at: jiff::Timestamp,
) -> BatchPlan {
    let mut plan = BatchPlan::default();
    let mut created_index: HashMap<Uuid, usize> = HashMap::new();
    for row in rows {
        let email = row
            .input
            .email
            .as_deref()
            .and_then(|e| Email::parse(e).ok());
        let key = email.as_ref().map(Email::key);
        let current = key.as_ref().and_then(|k| existing.get(k));
        let suppression = email
            .as_ref()
            .and_then(|e| suppressed.get(&e.suppression_hash()));
        match plan_import_row(row.line, &row.input, current, suppression, defs, policy, at) {
            ImportDecision::Nothing(outcome) => plan.outcomes.push(outcome),
            ImportDecision::Create {
                mut contact,
                mut events,
                outcome,
            } => {
                contact.source.get_or_insert_with(|| "import".to_owned());
                let (contact, _, tags) = contact.into_contact(Uuid::now_v7(), at);
                events.extend(
                    tags.iter()
                        .map(|t| TimelineEvent::tag_added(t.as_str(), "import")),
                );
                if let Some(k) = key {
                    existing.insert(k, contact.clone());
                }
                created_index.insert(contact.id, plan.created.len());
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
                if let Some(k) = key {
                    existing.insert(k, contact.clone());
                }
                match created_index
                    .get(&contact.id)
                    .and_then(|i| plan.created.get_mut(*i))
                {
                    Some(first) => {
                        // The address appeared earlier in this batch: fold this row into that
                        // one, without a second "imported" entry.
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
                    None => plan.updated.push(PlannedRow {
                        contact,
                        events,
                        tags,
                    }),
                }
                plan.outcomes.push(RowOutcome::Updated);
            }
        }
    }
    plan
}

/// The email keys and suppression hashes of a batch's valid addresses, for its two lookups.
pub fn batch_lookup_keys(rows: &[ImportRow]) -> (Vec<String>, Vec<String>) {
    rows.iter()
        .filter_map(|r| r.input.email.as_deref())
        .filter_map(|e| Email::parse(e).ok())
        .map(|e| (e.key(), e.suppression_hash()))
        .unzip()
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
