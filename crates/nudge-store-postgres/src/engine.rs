//! The engine's work on PostgreSQL: due enrolments and trigger jobs, claimed under a lease like
//! the send ledger, and run in batches.
//!
//! Several engines may claim from one database. A claim is one statement taking its rows with
//! `FOR UPDATE SKIP LOCKED`, so two claims never wait for each other nor take the same row. A
//! run locks the contacts first (in id order), then the rows it claimed, and checks that it
//! still holds their lease; everything for a batch is read and written with a few statements
//! whatever its size, since the engine must queue many steps per second.

use crate::contacts::insert_timelines;
use crate::messages::{self, Outgoing};
use crate::rows::{self, CONTACT_COLUMNS, backend, pg_ts};
use crate::sequences::{self, ENROLMENT_COLUMNS, EnrolmentRow, NewEnrolment, enrolment_row};
use jiff::{SignedDuration, Timestamp};
use nudge_core::sequence::{
    EnrolmentSummary, TriggerAction, decide_step, enrolment_event, plan_triggers,
};
use nudge_core::timeline::TimelineEvent;
use nudge_core::{Contact, EnrolmentState, MessageClass, SequenceDef};
use nudge_store::sequences::step_key;
use nudge_store::{MessageContent, NewMessage, Result, StepOutcome};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

fn contacts_of(found: &[sqlx::postgres::PgRow]) -> Result<HashMap<Uuid, Contact>> {
    found
        .iter()
        .map(|r| rows::contact(r).map(|c| (c.id, c)))
        .collect()
}

pub async fn claim_due(
    conn: &mut PgConnection,
    now: Timestamp,
    limit: u32,
    owner: &str,
    lease: SignedDuration,
) -> Result<Vec<Uuid>> {
    let until = now.checked_add(lease).map_err(backend)?;
    // The subquery walks the `enrolments_due` partial index in due order and stops after
    // `limit` rows; a lease that ran out belongs to an engine that died mid-run.
    let claimed: Vec<(Uuid, jiff_sqlx::Timestamp)> = sqlx::query_as(
        "UPDATE enrolments SET lease_owner = $1, lease_until = $2 \
         WHERE id IN (SELECT id FROM enrolments \
             WHERE status = 'active' AND next_due_at IS NOT NULL AND next_due_at <= $3 \
             AND (lease_until IS NULL OR lease_until <= $3) \
             ORDER BY next_due_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
         RETURNING id, next_due_at",
    )
    .bind(owner)
    .bind(pg_ts(until))
    .bind(pg_ts(now))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    let mut claimed: Vec<(Timestamp, Uuid)> = claimed
        .into_iter()
        .map(|(id, due)| (due.to_jiff(), id))
        .collect();
    // RETURNING follows no order; the most overdue come first.
    claimed.sort_unstable();
    Ok(claimed.into_iter().map(|(_, id)| id).collect())
}

pub async fn run_steps(
    conn: &mut PgConnection,
    ids: &[Uuid],
    owner: &str,
    at: Timestamp,
) -> Result<Vec<StepOutcome>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // An enrolment never changes contact, so the subquery's unlocked read is good for finding
    // the contacts to lock first. An erased contact took its enrolments with it.
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id IN (SELECT contact_id \
         FROM enrolments WHERE id = ANY($1) AND lease_owner = $2) ORDER BY c.id FOR NO KEY UPDATE"
    );
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .bind(owner)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    let contacts = contacts_of(&found)?;
    // Only now is the lease checked for good: a change to the enrolment (which locks its
    // contact first) has released it, and a lease that ran out may have been claimed again.
    let sql = format!(
        "SELECT {ENROLMENT_COLUMNS} FROM enrolments e WHERE e.id = ANY($1) \
         AND e.lease_owner = $2 ORDER BY e.id FOR UPDATE"
    );
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .bind(owner)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    let mut held: HashMap<Uuid, EnrolmentRow> = found
        .iter()
        .map(|r| enrolment_row(r).map(|e| (e.id, e)))
        .collect::<Result<_>>()?;
    let mut sequence_ids: Vec<Uuid> = held.values().map(|e| e.sequence_id).collect();
    sequence_ids.sort_unstable();
    sequence_ids.dedup();
    // Not locked: a deletion of the sequence waits for the enrolment rows held above, and an
    // edit bumps the version, which the step keys carry.
    let sequences = sequences::by_ids(conn, &sequence_ids).await?;

    let mut outcomes = Vec::new();
    let mut outgoing = Vec::new();
    let mut sends = Vec::new();
    let mut events = Vec::new();
    for id in ids {
        let Some(row) = held.remove(id) else {
            continue;
        };
        let (Some(contact), Some(sequence)) = (
            contacts.get(&row.contact_id),
            sequences.get(&row.sequence_id),
        ) else {
            continue;
        };
        let plan = decide_step(&sequence.def, &row.state, contact, at);
        let step = plan
            .send
            .and_then(|i| sequence.def.messages.get(i as usize));
        if let Some(step) = step {
            sends.push(outcomes.len());
            outgoing.push(Outgoing {
                message: NewMessage {
                    contact_id: row.contact_id,
                    class: MessageClass::Automation,
                    content: MessageContent {
                        subject: step.subject.clone(),
                        html: step.html.clone(),
                        text: step.text.clone(),
                        from_email: None,
                        from_name: None,
                    },
                    idempotency_key: step_key(row.id, step.id, sequence.version),
                    due_at: at,
                },
                to: None,
            });
        }
        if let Some(event) =
            enrolment_event(sequence.id, &sequence.def.name, &row.state, &plan.next)
        {
            events.push((row.contact_id, event));
        }
        outcomes.push(StepOutcome {
            enrolment_id: row.id,
            message: None,
            state: plan.next,
        });
    }
    // The messages' timeline entries come before the enrolments' (a step's mail, then "left
    // the sequence").
    let queued = messages::queue_all(conn, outgoing, Some(&contacts), at).await?;
    for (i, (message, _)) in sends.into_iter().zip(queued) {
        if let Some(outcome) = outcomes.get_mut(i) {
            outcome.message = Some(message.id);
        }
    }
    let states: Vec<(Uuid, EnrolmentState)> = outcomes
        .iter()
        .map(|o| (o.enrolment_id, o.state.clone()))
        .collect();
    sequences::write_states(conn, &states, at).await?;
    let entries: Vec<(Uuid, &TimelineEvent)> = events.iter().map(|(c, e)| (*c, e)).collect();
    insert_timelines(conn, at, &entries).await?;
    Ok(outcomes)
}

pub async fn claim_jobs(
    conn: &mut PgConnection,
    now: Timestamp,
    limit: u32,
    owner: &str,
    lease: SignedDuration,
) -> Result<Vec<i64>> {
    let until = now.checked_add(lease).map_err(backend)?;
    let mut claimed: Vec<i64> = sqlx::query_scalar(
        "UPDATE jobs SET lease_owner = $1, lease_until = $2 \
         WHERE id IN (SELECT id FROM jobs WHERE lease_until IS NULL OR lease_until <= $3 \
             ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
         RETURNING id",
    )
    .bind(owner)
    .bind(pg_ts(until))
    .bind(pg_ts(now))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    claimed.sort_unstable();
    Ok(claimed)
}

pub async fn run_jobs(
    conn: &mut PgConnection,
    ids: &[i64],
    owner: &str,
    at: Timestamp,
) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    // A job never changes contact; see `run_steps` for the order of the locks.
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id IN (SELECT contact_id FROM jobs \
         WHERE id = ANY($1) AND lease_owner = $2) ORDER BY c.id FOR NO KEY UPDATE"
    );
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .bind(owner)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    let contacts = contacts_of(&found)?;
    let triggered = sequences::with_triggers(conn).await?;
    let jobs: Vec<(i64, Uuid, Option<Uuid>)> = sqlx::query_as(
        "SELECT id, contact_id, group_id FROM jobs WHERE id = ANY($1) AND lease_owner = $2 \
         ORDER BY id FOR UPDATE",
    )
    .bind(ids)
    .bind(owner)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    // A contact's jobs are planned together: the groups it joined, against its state now.
    let mut joined: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (_, contact, group) in &jobs {
        let groups = joined.entry(*contact).or_default();
        groups.extend(*group);
    }
    let mut actions = Vec::new();
    let mut enrolments: HashMap<Uuid, EnrolmentRow> = HashMap::new();
    if !triggered.is_empty() && !joined.is_empty() {
        let who: Vec<Uuid> = joined.keys().copied().collect();
        let sql = format!(
            "SELECT {ENROLMENT_COLUMNS} FROM enrolments e WHERE e.contact_id = ANY($1) \
             ORDER BY e.id FOR UPDATE"
        );
        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&who)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        let mut by_contact: HashMap<Uuid, Vec<EnrolmentSummary>> = HashMap::new();
        for r in &found {
            let row = enrolment_row(r)?;
            by_contact
                .entry(row.contact_id)
                .or_default()
                .push(EnrolmentSummary {
                    id: row.id,
                    sequence_id: row.sequence_id,
                    state: row.state.clone(),
                });
            enrolments.insert(row.id, row);
        }
        let defs: Vec<(Uuid, &SequenceDef)> = triggered.iter().map(|s| (s.id, &s.def)).collect();
        for (contact_id, groups) in &joined {
            let Some(contact) = contacts.get(contact_id) else {
                continue;
            };
            let mine = by_contact.get(contact_id).map_or(&[][..], Vec::as_slice);
            for action in plan_triggers(&defs, contact, groups, mine, at) {
                actions.push((*contact_id, action));
            }
        }
    }

    let mut new = Vec::new();
    let mut states = Vec::new();
    let mut events = Vec::new();
    for (contact_id, action) in actions {
        match action {
            TriggerAction::Enrol { sequence_id } => {
                let Some(sequence) = triggered.iter().find(|s| s.id == sequence_id) else {
                    continue;
                };
                let by_group = joined
                    .get(&contact_id)
                    .is_some_and(|g| sequence.def.start_groups.iter().any(|s| g.contains(s)));
                new.push(NewEnrolment {
                    sequence,
                    contact_id,
                    how: if by_group { "start_group" } else { "condition" },
                });
            }
            TriggerAction::Update { enrolment_id, next } => {
                let Some(row) = enrolments.get(&enrolment_id) else {
                    continue;
                };
                let name = triggered
                    .iter()
                    .find(|s| s.id == row.sequence_id)
                    .map_or("", |s| s.def.name.as_str());
                if let Some(event) = enrolment_event(row.sequence_id, name, &row.state, &next) {
                    events.push((contact_id, event));
                }
                states.push((enrolment_id, next));
            }
        }
    }
    sequences::write_states(conn, &states, at).await?;
    let entries: Vec<(Uuid, &TimelineEvent)> = events.iter().map(|(c, e)| (*c, e)).collect();
    insert_timelines(conn, at, &entries).await?;
    sequences::enrol(conn, &new, at).await?;
    let done: Vec<i64> = jobs.iter().map(|(id, _, _)| *id).collect();
    let ran = sqlx::query("DELETE FROM jobs WHERE id = ANY($1)")
        .bind(done)
        .execute(conn)
        .await
        .map_err(backend)?
        .rows_affected();
    Ok(ran)
}

pub async fn next_due(conn: &mut PgConnection) -> Result<Option<Timestamp>> {
    // A job is due at once; the store has no clock, so "at once" is the Unix epoch, which lies
    // before any engine's now. A leased job (or enrolment) is due again when its lease runs out,
    // in case its engine died.
    //
    // Every leased enrolment was due when it was claimed, so none that could come first lies
    // beyond the first one without a lease: the second query reads only the head of the
    // `enrolments_due` index, however many enrolments are active.
    let (jobs, enrolments): (Option<jiff_sqlx::Timestamp>, Option<jiff_sqlx::Timestamp>) =
        sqlx::query_as(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE lease_until IS NULL) \
                 THEN 'epoch'::timestamptz ELSE (SELECT min(lease_until) FROM jobs) END, \
             (SELECT min(GREATEST(e.next_due_at, e.lease_until)) FROM enrolments e \
                 WHERE e.status = 'active' AND e.next_due_at IS NOT NULL \
                 AND e.next_due_at <= COALESCE((SELECT f.next_due_at FROM enrolments f \
                     WHERE f.status = 'active' AND f.next_due_at IS NOT NULL \
                     AND f.lease_until IS NULL ORDER BY f.next_due_at, f.id LIMIT 1), \
                     'infinity'))",
        )
        .fetch_one(conn)
        .await
        .map_err(backend)?;
    Ok([jobs, enrolments]
        .into_iter()
        .flatten()
        .map(|t| t.to_jiff())
        .min())
}
