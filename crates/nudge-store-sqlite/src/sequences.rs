//! Sequences, their enrolments, and the engine's work on them: due steps and trigger jobs.
//!
//! The engine's methods work a whole claimed batch in one transaction with a few multi-row
//! statements (read the enrolments, their contacts and sequences; decide each in the core;
//! write the messages, states and timeline entries), so that SQLite's single writer runs
//! thousands of steps a second.

use crate::contacts::{self, insert_timeline, insert_timelines, push_ids};
use crate::messages::{self, Outgoing};
use crate::rows::{backend, micros, ts};
use crate::{group_tree, load_group};
use jiff::{SignedDuration, Timestamp};
use nudge_core::sequence::{
    EnrolmentSummary, TriggerAction, apply_action, decide_step, enrolment_event, plan_triggers,
};
use nudge_core::timeline::TimelineEvent;
use nudge_core::{
    ChangeSource, Contact, EnrolmentAction, EnrolmentState, EnrolmentStatus, MessageClass,
    SequenceDef, Status, Suspension,
};
use nudge_store::sequences::{sequence_from_json, sequence_to_json, step_key};
use nudge_store::{
    ChangeContext, ContactRecord, Enrolment, EnrolmentFilter, EnrolmentOrder, MessageContent,
    NewMessage, Page, PageRequest, Result, SequenceRecord, StartOutcome, StartTarget, StepOutcome,
    StoreError,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

const SEQUENCE_COLUMNS: &str = "id, name, definition, version, created_at, updated_at";

/// Ids per `IN (...)` list: well under SQLite's limit of bound values.
const IN_CHUNK: usize = 1000;

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} is unreadable: {detail}"))
}

fn sequence(r: &SqliteRow) -> Result<SequenceRecord> {
    let definition: String = r.try_get("definition").map_err(backend)?;
    let definition: serde_json::Value =
        serde_json::from_str(&definition).map_err(|e| corrupt("sequence", e))?;
    let version: i64 = r.try_get("version").map_err(backend)?;
    Ok(SequenceRecord {
        id: r.try_get("id").map_err(backend)?,
        def: sequence_from_json(r.try_get("name").map_err(backend)?, &definition)?,
        version: u32::try_from(version).map_err(|e| corrupt("sequence version", e))?,
        created_at: ts(r.try_get("created_at").map_err(backend)?)?,
        updated_at: ts(r.try_get("updated_at").map_err(backend)?)?,
    })
}

pub async fn load(conn: &mut SqliteConnection, id: Uuid) -> Result<SequenceRecord> {
    let sql = format!("SELECT {SEQUENCE_COLUMNS} FROM sequences WHERE id = ?");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| sequence(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

/// The sequences with these ids, by id: each is read and parsed once per call.
async fn load_many(
    conn: &mut SqliteConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, SequenceRecord>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {SEQUENCE_COLUMNS} FROM sequences WHERE id IN ("
        ));
        push_ids(&mut q, chunk);
        q.push(")");
        for r in q.build().fetch_all(&mut *conn).await.map_err(backend)? {
            let s = sequence(&r)?;
            found.insert(s.id, s);
        }
    }
    Ok(found)
}

pub async fn list(conn: &mut SqliteConnection) -> Result<Vec<SequenceRecord>> {
    let sql = format!("SELECT {SEQUENCE_COLUMNS} FROM sequences ORDER BY created_at, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    rows.iter().map(sequence).collect()
}

/// The core's rules, and that every start group exists.
async fn check(conn: &mut SqliteConnection, def: &SequenceDef) -> Result<()> {
    let mut errors = def.check().err().unwrap_or_default();
    for (i, group) in def.start_groups.iter().enumerate() {
        match load_group(conn, *group).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => errors.add(format!("start_groups[{i}]"), "no such group"),
            Err(e) => return Err(e),
        }
    }
    errors.into_result(()).map_err(StoreError::Invalid)
}

/// Keeps `sequence_start_groups` in step with the definition: the group-join trigger finds
/// the sequences a group starts there.
async fn save_start_groups(conn: &mut SqliteConnection, id: Uuid, def: &SequenceDef) -> Result<()> {
    sqlx::query("DELETE FROM sequence_start_groups WHERE sequence_id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    for group in &def.start_groups {
        sqlx::query(
            "INSERT INTO sequence_start_groups (group_id, sequence_id) VALUES (?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(group)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    Ok(())
}

pub async fn create(
    conn: &mut SqliteConnection,
    def: SequenceDef,
    at: Timestamp,
) -> Result<SequenceRecord> {
    check(conn, &def).await?;
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO sequences (id, name, definition, version, has_condition, created_at, \
         updated_at) VALUES (?, ?, ?, 1, ?, ?, ?)",
    )
    .bind(id)
    .bind(&def.name)
    .bind(sequence_to_json(&def).to_string())
    .bind(def.condition.is_some())
    .bind(micros(at))
    .bind(micros(at))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    save_start_groups(conn, id, &def).await?;
    load(conn, id).await
}

pub async fn update(
    conn: &mut SqliteConnection,
    id: Uuid,
    def: SequenceDef,
    at: Timestamp,
) -> Result<SequenceRecord> {
    load(conn, id).await?;
    check(conn, &def).await?;
    sqlx::query(
        "UPDATE sequences SET name = ?, definition = ?, version = version + 1, \
         has_condition = ?, updated_at = ? WHERE id = ?",
    )
    .bind(&def.name)
    .bind(sequence_to_json(&def).to_string())
    .bind(def.condition.is_some())
    .bind(micros(at))
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    save_start_groups(conn, id, &def).await?;
    load(conn, id).await
}

pub async fn delete(conn: &mut SqliteConnection, id: Uuid) -> Result<()> {
    // Enrolments and start groups go with the row (ON DELETE CASCADE); messages stay.
    let gone = sqlx::query("DELETE FROM sequences WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await
        .map_err(backend)?;
    if gone.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// A contact to enrol, and how it came in (`manual`, `form`, `start_group`, `condition`).
pub struct Entry<'a> {
    pub sequence: &'a SequenceRecord,
    pub contact: Uuid,
    pub how: &'static str,
}

/// Starts enrolments at `at`, each with its `sequence_entered` entry. A contact already in the
/// sequence is left alone: the partial unique index on current enrolments refuses the row and
/// `ON CONFLICT DO NOTHING` passes over it. Returns the ids of the enrolments started.
pub async fn enrol(
    conn: &mut SqliteConnection,
    entries: &[Entry<'_>],
    at: Timestamp,
) -> Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = entries.iter().map(|_| Uuid::now_v7()).collect();
    let mut started = HashSet::new();
    // 12 values a row.
    for (chunk, chunk_ids) in entries.chunks(IN_CHUNK).zip(ids.chunks(IN_CHUNK)) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO enrolments (id, sequence_id, contact_id, status, suspension, next_step, \
             next_due_at, last_step, last_message_at, reason, created_at, updated_at) ",
        );
        q.push_values(chunk.iter().zip(chunk_ids), |mut row, (e, id)| {
            let state = EnrolmentState::start(&e.sequence.def, at);
            row.push_bind(*id)
                .push_bind(e.sequence.id)
                .push_bind(e.contact);
            push_state(&mut row, &state);
            row.push_bind(micros(at)).push_bind(micros(at));
        });
        q.push(" ON CONFLICT DO NOTHING RETURNING id");
        let rows: Vec<Uuid> = q
            .build_query_scalar()
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        started.extend(rows);
    }
    let mut events = Vec::with_capacity(started.len());
    let mut out = Vec::with_capacity(started.len());
    for (e, id) in entries.iter().zip(ids) {
        if started.contains(&id) {
            let s = e.sequence;
            events.push((
                e.contact,
                TimelineEvent::sequence_entered(s.id, &s.def.name, e.how),
            ));
            out.push(id);
        }
    }
    insert_timelines(conn, at, &events).await?;
    Ok(out)
}

/// Binds a state's seven columns: status, suspension, next_step, next_due_at, last_step,
/// last_message_at, reason.
fn push_state(
    row: &mut sqlx::query_builder::Separated<'_, Sqlite, &'static str>,
    s: &EnrolmentState,
) {
    row.push_bind(s.status.as_str())
        .push_bind(s.suspension.map(Suspension::as_str))
        .push_bind(s.next_step.map(i64::from))
        .push_bind(s.next_due_at.map(micros))
        .push_bind(s.last_step.map(i64::from))
        .push_bind(s.last_message_at.map(micros))
        .push_bind(s.reason.clone());
}

/// Writes new states, releasing any lease: a step, a trigger or a hand that changed the
/// enrolment supersedes an engine's claim on it.
async fn save_states(
    conn: &mut SqliteConnection,
    states: &[(Uuid, EnrolmentState)],
    at: Timestamp,
) -> Result<()> {
    for chunk in states.chunks(IN_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "UPDATE enrolments SET status = v.column2, suspension = v.column3, \
             next_step = v.column4, next_due_at = v.column5, last_step = v.column6, \
             last_message_at = v.column7, reason = v.column8, lease_owner = NULL, \
             lease_until = NULL, updated_at = ",
        );
        q.push_bind(micros(at)).push(" FROM (");
        q.push_values(chunk, |mut row, (id, state)| {
            row.push_bind(*id);
            push_state(&mut row, state);
        });
        q.push(") AS v WHERE enrolments.id = v.column1");
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

const ENROLMENT_COLUMNS: &str = "e.id, e.sequence_id, e.contact_id, e.status, e.suspension, \
    e.next_step, e.next_due_at, e.last_step, e.last_message_at, e.reason, e.created_at, \
    e.updated_at";

/// An enrolment row without the names the overview joins in.
struct EnrolmentRow {
    id: Uuid,
    sequence_id: Uuid,
    contact_id: Uuid,
    state: EnrolmentState,
    created_at: Timestamp,
    updated_at: Timestamp,
}

fn step_of(r: &SqliteRow, column: &str) -> Result<Option<u32>> {
    let n: Option<i64> = r.try_get(column).map_err(backend)?;
    n.map(|n| u32::try_from(n).map_err(|e| corrupt(column, e)))
        .transpose()
}

fn time_of(r: &SqliteRow, column: &str) -> Result<Option<Timestamp>> {
    let t: Option<i64> = r.try_get(column).map_err(backend)?;
    t.map(ts).transpose()
}

fn enrolment_row(r: &SqliteRow) -> Result<EnrolmentRow> {
    let status: String = r.try_get("status").map_err(backend)?;
    let suspension: Option<String> = r.try_get("suspension").map_err(backend)?;
    Ok(EnrolmentRow {
        id: r.try_get("id").map_err(backend)?,
        sequence_id: r.try_get("sequence_id").map_err(backend)?,
        contact_id: r.try_get("contact_id").map_err(backend)?,
        state: EnrolmentState {
            status: EnrolmentStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            suspension: suspension
                .map(|s| Suspension::parse(&s).ok_or_else(|| corrupt("suspension", &s)))
                .transpose()?,
            next_step: step_of(r, "next_step")?,
            next_due_at: time_of(r, "next_due_at")?,
            last_step: step_of(r, "last_step")?,
            last_message_at: time_of(r, "last_message_at")?,
            reason: r.try_get("reason").map_err(backend)?,
        },
        created_at: ts(r.try_get("created_at").map_err(backend)?)?,
        updated_at: ts(r.try_get("updated_at").map_err(backend)?)?,
    })
}

/// The overview's row: the enrolment with its sequence's and contact's names.
fn enrolment(r: &SqliteRow) -> Result<Enrolment> {
    let row = enrolment_row(r)?;
    let email: String = r.try_get("email").map_err(backend)?;
    let first: Option<String> = r.try_get("first_name").map_err(backend)?;
    let last: Option<String> = r.try_get("last_name").map_err(backend)?;
    let name = [first, last]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Enrolment {
        id: row.id,
        sequence_id: row.sequence_id,
        sequence_name: r.try_get("sequence_name").map_err(backend)?,
        contact_id: row.contact_id,
        contact_name: if name.is_empty() { email.clone() } else { name },
        contact_email: email,
        state: row.state,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn overview_select() -> String {
    format!(
        "SELECT {ENROLMENT_COLUMNS}, s.name AS sequence_name, c.email, c.first_name, \
         c.last_name FROM enrolments e JOIN sequences s ON s.id = e.sequence_id \
         JOIN contacts c ON c.id = e.contact_id WHERE 1 = 1"
    )
}

pub async fn get(conn: &mut SqliteConnection, id: Uuid) -> Result<Enrolment> {
    let mut q = QueryBuilder::<Sqlite>::new(overview_select());
    q.push(" AND e.id = ").push_bind(id);
    q.build()
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| enrolment(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub async fn list_enrolments(
    conn: &mut SqliteConnection,
    filter: &EnrolmentFilter,
    order: EnrolmentOrder,
    page: PageRequest,
) -> Result<Page<Enrolment>> {
    let (column, desc) = match order {
        EnrolmentOrder::Newest => (None, true),
        EnrolmentOrder::LastMessageAsc => (Some("e.last_message_at"), false),
        EnrolmentOrder::LastMessageDesc => (Some("e.last_message_at"), true),
        EnrolmentOrder::NextMessageAsc => (Some("e.next_due_at"), false),
        EnrolmentOrder::NextMessageDesc => (Some("e.next_due_at"), true),
    };
    let (dir, beyond) = if desc { ("DESC", "<") } else { ("ASC", ">") };
    let mut q = QueryBuilder::<Sqlite>::new(overview_select());
    if let Some(sequence) = filter.sequence {
        q.push(" AND e.sequence_id = ").push_bind(sequence);
    }
    if let Some(status) = filter.status {
        q.push(" AND e.status = ").push_bind(status.as_str());
    }
    if let Some(contact) = filter.contact {
        q.push(" AND e.contact_id = ").push_bind(contact);
    }
    match (page.cursor, column) {
        (None, _) => {}
        (Some(cursor), None) => {
            q.push(" AND e.id < ").push_bind(cursor);
        }
        (Some(cursor), Some(column)) => {
            // Rows are sorted by (time is NULL, time, id): continue after the cursor row's key.
            let sql = format!("SELECT {column} FROM enrolments e WHERE e.id = ?");
            let key: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(cursor)
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?
                .ok_or_else(|| StoreError::invalid("cursor", "that enrolment no longer exists"))?;
            match key {
                Some(key) => {
                    q.push(format!(" AND ({column} IS NULL OR {column} {beyond} "))
                        .push_bind(key)
                        .push(format!(" OR ({column} = "))
                        .push_bind(key)
                        .push(format!(" AND e.id {beyond} "))
                        .push_bind(cursor)
                        .push("))");
                }
                None => {
                    q.push(format!(" AND {column} IS NULL AND e.id {beyond} "))
                        .push_bind(cursor);
                }
            }
        }
    }
    match column {
        None => q.push(" ORDER BY e.id DESC"),
        Some(column) => q.push(format!(
            " ORDER BY {column} IS NULL, {column} {dir}, e.id {dir}"
        )),
    };
    q.push(" LIMIT ").push_bind(i64::from(page.limit) + 1);
    let rows = q.build().fetch_all(conn).await.map_err(backend)?;
    let items = rows.iter().map(enrolment).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, page.limit, |e| e.id))
}

async fn load_row(conn: &mut SqliteConnection, id: Uuid) -> Result<EnrolmentRow> {
    let sql = format!("SELECT {ENROLMENT_COLUMNS} FROM enrolments e WHERE e.id = ?");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| enrolment_row(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub async fn start(
    conn: &mut SqliteConnection,
    sequence_id: Uuid,
    target: StartTarget,
    at: Timestamp,
) -> Result<StartOutcome> {
    let sequence = load(conn, sequence_id).await?;
    let contacts: Vec<Uuid> = match target {
        StartTarget::Contact(id) => {
            contacts::load(conn, id).await?;
            vec![id]
        }
        StartTarget::Group(id) => {
            load_group(conn, id).await?;
            let groups = group_tree(conn).await?.with_descendants(id);
            let mut members = Vec::new();
            for chunk in groups.chunks(IN_CHUNK) {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "SELECT DISTINCT contact_id FROM contact_groups WHERE group_id IN (",
                );
                push_ids(&mut q, chunk);
                q.push(")");
                let found: Vec<Uuid> = q
                    .build_query_scalar()
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(backend)?;
                members.extend(found);
            }
            // A contact in several of the groups is one contact.
            let mut seen = HashSet::new();
            members.retain(|c| seen.insert(*c));
            members
        }
    };
    let entries: Vec<Entry> = contacts
        .iter()
        .map(|c| Entry {
            sequence: &sequence,
            contact: *c,
            how: "manual",
        })
        .collect();
    let started = enrol(conn, &entries, at).await?.len();
    Ok(StartOutcome {
        enrolled: started as u64,
        already: (contacts.len() - started) as u64,
    })
}

pub async fn change(
    conn: &mut SqliteConnection,
    id: Uuid,
    action: EnrolmentAction,
    at: Timestamp,
) -> Result<Enrolment> {
    let row = load_row(conn, id).await?;
    let sequence = load(conn, row.sequence_id).await?;
    let contact = contacts::load(conn, row.contact_id).await?;
    let next = apply_action(&sequence.def, &row.state, &contact, action, at).map_err(|e| {
        StoreError::Conflict {
            code: "invalid_action",
            field: Some("action"),
            message: e.to_string(),
        }
    })?;
    let event = enrolment_event(sequence.id, &sequence.def.name, &row.state, &next);
    save_states(conn, &[(id, next)], at).await?;
    insert_timeline(conn, row.contact_id, at, event.as_slice()).await?;
    get(conn, id).await
}

pub async fn claim_due(
    conn: &mut SqliteConnection,
    now: Timestamp,
    limit: u32,
    owner: &str,
    lease: SignedDuration,
) -> Result<Vec<Uuid>> {
    let until = now.checked_add(lease).map_err(backend)?;
    // The inner query walks the `enrolments_due` partial index in due order and stops at the
    // limit; its WHERE repeats the index's condition so that SQLite may use it.
    let mut claimed: Vec<(i64, Uuid)> = sqlx::query_as(
        "UPDATE enrolments SET lease_owner = ?, lease_until = ? \
         WHERE id IN (SELECT id FROM enrolments \
             WHERE status = 'active' AND next_due_at IS NOT NULL AND next_due_at <= ? \
             AND (lease_until IS NULL OR lease_until <= ?) \
             ORDER BY next_due_at, id LIMIT ?) \
         RETURNING next_due_at, id",
    )
    .bind(owner)
    .bind(micros(until))
    .bind(micros(now))
    .bind(micros(now))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    claimed.sort();
    Ok(claimed.into_iter().map(|(_, id)| id).collect())
}

/// The rows of `ids` that `owner` still holds.
async fn held(conn: &mut SqliteConnection, ids: &[Uuid], owner: &str) -> Result<Vec<EnrolmentRow>> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IN_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {ENROLMENT_COLUMNS} FROM enrolments e WHERE e.lease_owner = "
        ));
        q.push_bind(owner.to_owned()).push(" AND e.id IN (");
        push_ids(&mut q, chunk);
        q.push(")");
        for r in q.build().fetch_all(&mut *conn).await.map_err(backend)? {
            rows.push(enrolment_row(&r)?);
        }
    }
    Ok(rows)
}

fn distinct(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    let mut seen = HashSet::new();
    ids.filter(|id| seen.insert(*id)).collect()
}

pub async fn run_steps(
    conn: &mut SqliteConnection,
    ids: &[Uuid],
    owner: &str,
    at: Timestamp,
) -> Result<Vec<StepOutcome>> {
    let mut rows = held(conn, &distinct(ids.iter().copied()), owner).await?;
    let order: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    rows.sort_by_key(|r| order.get(&r.id).copied());
    let people = contacts::load_many(conn, &distinct(rows.iter().map(|r| r.contact_id))).await?;
    let sequences = load_many(conn, &distinct(rows.iter().map(|r| r.sequence_id))).await?;

    struct Planned<'a> {
        row: &'a EnrolmentRow,
        next: EnrolmentState,
        message: Option<NewMessage>,
        contact: &'a Contact,
        sequence: &'a SequenceRecord,
    }
    let mut planned = Vec::with_capacity(rows.len());
    for row in &rows {
        // Both go with their enrolment (ON DELETE CASCADE), so neither is missing here.
        let (Some(contact), Some(sequence)) =
            (people.get(&row.contact_id), sequences.get(&row.sequence_id))
        else {
            continue;
        };
        let plan = decide_step(&sequence.def, &row.state, contact, at);
        let message = plan
            .send
            .and_then(|i| sequence.def.messages.get(i as usize))
            .map(|step| NewMessage {
                contact_id: row.contact_id,
                class: MessageClass::Automation,
                // Rendered by the dispatcher when it is sent.
                content: MessageContent {
                    subject: step.subject.clone(),
                    html: step.html.clone(),
                    text: step.text.clone(),
                    from_email: None,
                    from_name: None,
                },
                idempotency_key: step_key(row.id, step.id, sequence.version),
                due_at: at,
            });
        planned.push(Planned {
            row,
            next: plan.next,
            message,
            contact,
            sequence,
        });
    }

    let keys: Vec<String> = planned
        .iter()
        .filter_map(|p| p.message.as_ref().map(|m| m.idempotency_key.clone()))
        .collect();
    let existing = messages::ids_by_key(conn, &keys).await?;
    let mut outgoing = Vec::new();
    let mut states = Vec::with_capacity(planned.len());
    let mut events = Vec::new();
    let mut outcomes = Vec::with_capacity(planned.len());
    for p in planned {
        let message = match p.message {
            Some(m) => Some(match existing.get(&m.idempotency_key) {
                Some(id) => *id,
                None => {
                    let o = Outgoing::new(m, p.contact, None);
                    let id = o.id;
                    outgoing.push(o);
                    id
                }
            }),
            None => None,
        };
        let s = p.sequence;
        if let Some(event) = enrolment_event(s.id, &s.def.name, &p.row.state, &p.next) {
            events.push((p.row.contact_id, event));
        }
        states.push((p.row.id, p.next.clone()));
        outcomes.push(StepOutcome {
            enrolment_id: p.row.id,
            message,
            state: p.next,
        });
    }
    messages::insert(conn, &outgoing, at).await?;
    save_states(conn, &states, at).await?;
    insert_timelines(conn, at, &events).await?;
    Ok(outcomes)
}

pub async fn claim_jobs(
    conn: &mut SqliteConnection,
    now: Timestamp,
    limit: u32,
    owner: &str,
    lease: SignedDuration,
) -> Result<Vec<i64>> {
    let until = now.checked_add(lease).map_err(backend)?;
    let mut claimed: Vec<i64> = sqlx::query_scalar(
        "UPDATE jobs SET lease_owner = ?, lease_until = ? \
         WHERE id IN (SELECT id FROM jobs WHERE lease_until IS NULL OR lease_until <= ? \
             ORDER BY id LIMIT ?) \
         RETURNING id",
    )
    .bind(owner)
    .bind(micros(until))
    .bind(micros(now))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    claimed.sort_unstable();
    Ok(claimed)
}

pub async fn run_jobs(
    conn: &mut SqliteConnection,
    ids: &[i64],
    owner: &str,
    at: Timestamp,
) -> Result<u64> {
    let mut jobs: Vec<(i64, Uuid, Option<Uuid>)> = Vec::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, contact_id, group_id FROM jobs WHERE lease_owner = ",
        );
        q.push_bind(owner.to_owned()).push(" AND id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        let found: Vec<(i64, Uuid, Option<Uuid>)> = q
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        jobs.extend(found);
    }
    if jobs.is_empty() {
        return Ok(0);
    }
    jobs.sort_unstable_by_key(|(id, _, _)| *id);
    // A contact's jobs are planned together, on its state now: the groups it joined, and
    // whatever its fields and status are.
    let contact_ids = distinct(jobs.iter().map(|(_, c, _)| *c));
    let mut joined: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (_, contact, group) in &jobs {
        if let Some(g) = group {
            joined.entry(*contact).or_default().push(*g);
        }
    }
    let sql = format!(
        "SELECT {SEQUENCE_COLUMNS} FROM sequences WHERE has_condition = 1 \
         OR id IN (SELECT sequence_id FROM sequence_start_groups) ORDER BY created_at, id"
    );
    let triggered = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?
        .iter()
        .map(sequence)
        .collect::<Result<Vec<_>>>()?;
    if !triggered.is_empty() {
        let by_id: HashMap<Uuid, &SequenceRecord> = triggered.iter().map(|s| (s.id, s)).collect();
        let pairs: Vec<(Uuid, &SequenceDef)> = triggered.iter().map(|s| (s.id, &s.def)).collect();
        let people = contacts::load_many(conn, &contact_ids).await?;
        let mut theirs = enrolments_of(conn, &contact_ids).await?;
        let mut entries = Vec::new();
        let mut states = Vec::new();
        let mut events = Vec::new();
        for contact_id in &contact_ids {
            let Some(contact) = people.get(contact_id) else {
                continue;
            };
            let groups = joined.remove(contact_id).unwrap_or_default();
            let current = theirs.remove(contact_id).unwrap_or_default();
            for action in plan_triggers(&pairs, contact, &groups, &current, at) {
                match action {
                    TriggerAction::Enrol { sequence_id } => {
                        let Some(sequence) = by_id.get(&sequence_id) else {
                            continue;
                        };
                        let by_group = sequence.def.start_groups.iter().any(|g| groups.contains(g));
                        entries.push(Entry {
                            sequence,
                            contact: *contact_id,
                            how: if by_group { "start_group" } else { "condition" },
                        });
                    }
                    TriggerAction::Update { enrolment_id, next } => {
                        let Some(old) = current.iter().find(|e| e.id == enrolment_id) else {
                            continue;
                        };
                        if let Some(s) = by_id.get(&old.sequence_id)
                            && let Some(event) =
                                enrolment_event(s.id, &s.def.name, &old.state, &next)
                        {
                            events.push((*contact_id, event));
                        }
                        states.push((enrolment_id, next));
                    }
                }
            }
        }
        save_states(conn, &states, at).await?;
        insert_timelines(conn, at, &events).await?;
        enrol(conn, &entries, at).await?;
    }
    for chunk in jobs.chunks(IN_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM jobs WHERE id IN (");
        let mut list = q.separated(", ");
        for (id, _, _) in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(jobs.len() as u64)
}

/// Every enrolment of these contacts, finished ones included, by contact.
async fn enrolments_of(
    conn: &mut SqliteConnection,
    contacts: &[Uuid],
) -> Result<HashMap<Uuid, Vec<EnrolmentSummary>>> {
    let mut out: HashMap<Uuid, Vec<EnrolmentSummary>> = HashMap::new();
    for chunk in contacts.chunks(IN_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {ENROLMENT_COLUMNS} FROM enrolments e WHERE e.contact_id IN ("
        ));
        push_ids(&mut q, chunk);
        q.push(") ORDER BY e.id");
        for r in q.build().fetch_all(&mut *conn).await.map_err(backend)? {
            let row = enrolment_row(&r)?;
            out.entry(row.contact_id)
                .or_default()
                .push(EnrolmentSummary {
                    id: row.id,
                    sequence_id: row.sequence_id,
                    state: row.state,
                });
        }
    }
    Ok(out)
}

pub async fn next_due(conn: &mut SqliteConnection) -> Result<Option<Timestamp>> {
    // A waiting trigger job is due at once: the epoch, before any clock's now (a store has no
    // clock, and the test clock's now is not the wall clock's). A claimed one is due when the
    // lease of the engine working on it runs out.
    let job: Option<i64> = sqlx::query_scalar("SELECT min(coalesce(lease_until, 0)) FROM jobs")
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
    // An enrolment is due at its time, or when a live lease on it runs out. Only the rows due
    // before the first unleased one can be earlier than it, and those are the few being worked
    // on: both queries walk a short stretch of the `enrolments_due` index.
    let step: Option<i64> = sqlx::query_scalar(
        "SELECT min(CASE WHEN lease_until > next_due_at THEN lease_until ELSE next_due_at END) \
         FROM enrolments \
         WHERE status = 'active' AND next_due_at IS NOT NULL AND next_due_at <= coalesce( \
             (SELECT next_due_at FROM enrolments \
              WHERE status = 'active' AND next_due_at IS NOT NULL AND lease_until IS NULL \
              ORDER BY next_due_at LIMIT 1), \
             9223372036854775807)",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    [job, step].into_iter().flatten().min().map(ts).transpose()
}

/// A double opt-in confirmed: the contact becomes subscribed, and its enrolments that waited
/// for that are due at once.
pub async fn confirm(
    conn: &mut SqliteConnection,
    id: Uuid,
    at: Timestamp,
) -> Result<ContactRecord> {
    let contact = contacts::load(conn, id).await?;
    if contact.status != Status::Pending {
        return contacts::record(conn, id).await;
    }
    let ctx = ChangeContext::new(ChangeSource::Confirmation, at);
    contacts::change_status(conn, id, Status::Subscribed, None, ctx).await?;
    let sql = format!(
        "SELECT {ENROLMENT_COLUMNS} FROM enrolments e \
         WHERE e.contact_id = ? AND e.status = 'active' AND e.next_due_at IS NULL"
    );
    let waiting = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?
        .iter()
        .map(enrolment_row)
        .collect::<Result<Vec<_>>>()?;
    let sequences = load_many(conn, &distinct(waiting.iter().map(|r| r.sequence_id))).await?;
    let mut states = Vec::with_capacity(waiting.len());
    let mut events = Vec::new();
    for row in waiting {
        let mut next = row.state.clone();
        next.next_due_at = Some(at);
        next.reason = None;
        if let Some(s) = sequences.get(&row.sequence_id)
            && let Some(event) = enrolment_event(s.id, &s.def.name, &row.state, &next)
        {
            events.push((id, event));
        }
        states.push((row.id, next));
    }
    save_states(conn, &states, at).await?;
    insert_timelines(conn, at, &events).await?;
    contacts::record(conn, id).await
}
