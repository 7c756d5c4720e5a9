//! Sequences, their enrolments, and the enrolment overview and actions on PostgreSQL.
//!
//! Locks are taken in one order everywhere: contacts, then sequences, then enrolments (a
//! sequence's deletion takes the sequence and then, by cascade, its enrolments, and never a
//! contact), so no two of these transactions can wait for each other in a circle.

use crate::contacts::{self, SUBTREE, SUBTREE_END, insert_timelines};
use crate::rows::{self, backend, pg_ts};
use crate::{Lock, load_group};
use jiff::Timestamp;
use nudge_core::sequence::{apply_action, enrolment_event};
use nudge_core::timeline::TimelineEvent;
use nudge_core::{EnrolmentAction, EnrolmentState, EnrolmentStatus, SequenceDef, Suspension};
use nudge_store::sequences::{sequence_from_json, sequence_to_json};
use nudge_store::{
    Enrolment, EnrolmentFilter, EnrolmentOrder, Page, PageRequest, Result, SequenceRecord,
    StartOutcome, StartTarget, StoreError,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use std::collections::HashMap;
use uuid::Uuid;

const SEQUENCE_COLUMNS: &str = "s.id, s.name, s.definition, s.version, s.created_at, s.updated_at";

pub const ENROLMENT_COLUMNS: &str = "e.id, e.sequence_id, e.contact_id, e.status, e.suspension, \
    e.next_step, e.next_due_at, e.last_step, e.last_message_at, e.reason";

fn corrupt(what: &str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} is unreadable: {value}"))
}

fn sequence(r: &PgRow) -> Result<SequenceRecord> {
    let name: String = r.try_get("name").map_err(backend)?;
    let definition: serde_json::Value = r.try_get("definition").map_err(backend)?;
    let version: i32 = r.try_get("version").map_err(backend)?;
    Ok(SequenceRecord {
        id: r.try_get("id").map_err(backend)?,
        def: sequence_from_json(name, &definition)?,
        version: u32::try_from(version).map_err(|_| corrupt("version", version))?,
        created_at: rows::ts(r, "created_at")?,
        updated_at: rows::ts(r, "updated_at")?,
    })
}

fn step_of(r: &PgRow, column: &str) -> Result<Option<u32>> {
    let step: Option<i32> = r.try_get(column).map_err(backend)?;
    step.map(|s| u32::try_from(s).map_err(|_| corrupt(column, s)))
        .transpose()
}

fn step_to_db(step: Option<u32>) -> Result<Option<i32>> {
    step.map(|s| i32::try_from(s).map_err(|_| corrupt("step", s)))
        .transpose()
}

fn ts_of(r: &PgRow, column: &str) -> Result<Option<Timestamp>> {
    let t: Option<jiff_sqlx::Timestamp> = r.try_get(column).map_err(backend)?;
    Ok(t.map(|t| t.to_jiff()))
}

/// An enrolment row as the writers read it (`ENROLMENT_COLUMNS`).
#[derive(Debug, Clone)]
pub struct EnrolmentRow {
    pub id: Uuid,
    pub sequence_id: Uuid,
    pub contact_id: Uuid,
    pub state: EnrolmentState,
}

pub fn enrolment_row(r: &PgRow) -> Result<EnrolmentRow> {
    let status: String = r.try_get("status").map_err(backend)?;
    let suspension: Option<String> = r.try_get("suspension").map_err(backend)?;
    Ok(EnrolmentRow {
        id: r.try_get("id").map_err(backend)?,
        sequence_id: r.try_get("sequence_id").map_err(backend)?,
        contact_id: r.try_get("contact_id").map_err(backend)?,
        state: EnrolmentState {
            status: EnrolmentStatus::parse(&status)
                .ok_or_else(|| corrupt("enrolment status", &status))?,
            suspension: suspension
                .map(|s| Suspension::parse(&s).ok_or_else(|| corrupt("suspension", &s)))
                .transpose()?,
            next_step: step_of(r, "next_step")?,
            next_due_at: ts_of(r, "next_due_at")?,
            last_step: step_of(r, "last_step")?,
            last_message_at: ts_of(r, "last_message_at")?,
            reason: r.try_get("reason").map_err(backend)?,
        },
    })
}

/// The core's rules and that the start groups exist, all reasons at once. The groups stay
/// locked against deletion until the commit.
async fn check(conn: &mut PgConnection, def: &SequenceDef) -> Result<()> {
    let mut errors = def.check().err().unwrap_or_default();
    let found: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM groups WHERE id = ANY($1) ORDER BY id FOR KEY SHARE")
            .bind(&def.start_groups)
            .fetch_all(conn)
            .await
            .map_err(backend)?;
    for (i, id) in def.start_groups.iter().enumerate() {
        if !found.contains(id) {
            errors.add(format!("start_groups[{i}]"), "no such group");
        }
    }
    errors.into_result(()).map_err(StoreError::Invalid)
}

/// Keeps `sequence_start_groups` in step with the definition: the database triggers find a
/// group's sequences through it.
async fn set_start_groups(conn: &mut PgConnection, id: Uuid, groups: &[Uuid]) -> Result<()> {
    sqlx::query("DELETE FROM sequence_start_groups WHERE sequence_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query(
        "INSERT INTO sequence_start_groups (group_id, sequence_id) \
         SELECT DISTINCT g, $2 FROM UNNEST($1::uuid[]) AS g",
    )
    .bind(groups)
    .bind(id)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub async fn create(
    conn: &mut PgConnection,
    def: SequenceDef,
    at: Timestamp,
) -> Result<SequenceRecord> {
    check(conn, &def).await?;
    let id = Uuid::now_v7();
    let sql = format!(
        "INSERT INTO sequences AS s (id, name, definition, version, has_condition, created_at, \
         updated_at) VALUES ($1, $2, $3, 1, $4, $5, $5) RETURNING {SEQUENCE_COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&def.name)
        .bind(sequence_to_json(&def))
        .bind(def.condition.is_some())
        .bind(pg_ts(at))
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
    set_start_groups(conn, id, &def.start_groups).await?;
    sequence(&row)
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<SequenceRecord>> {
    let sql = format!("SELECT {SEQUENCE_COLUMNS} FROM sequences s ORDER BY s.created_at, s.id");
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    found.iter().map(sequence).collect()
}

pub async fn get(conn: &mut PgConnection, id: Uuid, lock: Lock) -> Result<SequenceRecord> {
    let sql = format!(
        "SELECT {SEQUENCE_COLUMNS} FROM sequences s WHERE s.id = $1{}",
        lock.clause()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| sequence(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

/// The sequences with these ids that still exist, by id, with one query.
pub async fn by_ids(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, SequenceRecord>> {
    let sql = format!("SELECT {SEQUENCE_COLUMNS} FROM sequences s WHERE s.id = ANY($1)");
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    found
        .iter()
        .map(|r| sequence(r).map(|s| (s.id, s)))
        .collect()
}

/// The sequences that triggers can start or stop: those with start groups or a condition,
/// held against deletion until the commit.
pub async fn with_triggers(conn: &mut PgConnection) -> Result<Vec<SequenceRecord>> {
    let sql = format!(
        "SELECT {SEQUENCE_COLUMNS} FROM sequences s WHERE s.has_condition \
         OR EXISTS (SELECT 1 FROM sequence_start_groups g WHERE g.sequence_id = s.id) \
         ORDER BY s.created_at, s.id FOR KEY SHARE"
    );
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    found.iter().map(sequence).collect()
}

pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    def: SequenceDef,
    at: Timestamp,
) -> Result<SequenceRecord> {
    check(conn, &def).await?;
    let sql = format!(
        "UPDATE sequences s SET name = $2, definition = $3, version = s.version + 1, \
         has_condition = $4, updated_at = $5 WHERE s.id = $1 RETURNING {SEQUENCE_COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&def.name)
        .bind(sequence_to_json(&def))
        .bind(def.condition.is_some())
        .bind(pg_ts(at))
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or(StoreError::NotFound)?;
    set_start_groups(conn, id, &def.start_groups).await?;
    sequence(&row)
}

pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    let gone = sqlx::query("DELETE FROM sequences WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map_err(backend)?;
    if gone.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// An enrolment to start.
pub struct NewEnrolment<'a> {
    pub sequence: &'a SequenceRecord,
    pub contact_id: Uuid,
    /// How the contact entered, for the timeline: `form`, `start_group`, `condition`, `manual`.
    pub how: &'static str,
}

/// Starts enrolments at `at`, with one statement and a `sequence_entered` entry each, leaving
/// alone a contact already in the sequence (the partial unique index decides, so a concurrent
/// start cannot enrol twice either). For each, in order: the new enrolment's id, if started.
/// The caller holds the contacts and the sequences.
pub async fn enrol(
    conn: &mut PgConnection,
    new: &[NewEnrolment<'_>],
    at: Timestamp,
) -> Result<Vec<Option<Uuid>>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = new.iter().map(|_| Uuid::now_v7()).collect();
    let states: Vec<(Uuid, EnrolmentState)> = ids
        .iter()
        .zip(new)
        .map(|(id, n)| (*id, EnrolmentState::start(&n.sequence.def, at)))
        .collect();
    let columns = StateColumns::new(&states)?;
    let sequences: Vec<Uuid> = new.iter().map(|n| n.sequence.id).collect();
    let contacts: Vec<Uuid> = new.iter().map(|n| n.contact_id).collect();
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO enrolments (id, sequence_id, contact_id, status, suspension, next_step, \
         next_due_at, last_step, last_message_at, reason, created_at, updated_at) \
         SELECT u.id, u.sequence_id, u.contact_id, u.status, u.suspension, u.next_step, \
         u.next_due_at, u.last_step, u.last_message_at, u.reason, $10, $10 \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int4[], \
         $7::timestamptz[], $8::int4[], $9::timestamptz[], $11::text[]) \
         AS u (id, sequence_id, contact_id, status, suspension, next_step, next_due_at, \
         last_step, last_message_at, reason) \
         ON CONFLICT (sequence_id, contact_id) WHERE status IN ('active', 'suspended', 'paused') \
         DO NOTHING RETURNING id",
    )
    .bind(&columns.ids)
    .bind(sequences)
    .bind(contacts)
    .bind(&columns.statuses)
    .bind(&columns.suspensions)
    .bind(&columns.next_steps)
    .bind(&columns.next_due)
    .bind(&columns.last_steps)
    .bind(&columns.last_message)
    .bind(pg_ts(at))
    .bind(&columns.reasons)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let mut started = Vec::with_capacity(new.len());
    let mut events = Vec::new();
    for (id, n) in ids.iter().zip(new) {
        if inserted.contains(id) {
            let s = n.sequence;
            events.push((
                n.contact_id,
                TimelineEvent::sequence_entered(s.id, &s.def.name, n.how),
            ));
            started.push(Some(*id));
        } else {
            started.push(None);
        }
    }
    let entries: Vec<(Uuid, &TimelineEvent)> = events.iter().map(|(c, e)| (*c, e)).collect();
    insert_timelines(conn, at, &entries).await?;
    Ok(started)
}

/// Enrolment states as one array per column, for the `UNNEST` statements.
struct StateColumns {
    ids: Vec<Uuid>,
    statuses: Vec<&'static str>,
    suspensions: Vec<Option<&'static str>>,
    next_steps: Vec<Option<i32>>,
    next_due: Vec<Option<jiff_sqlx::Timestamp>>,
    last_steps: Vec<Option<i32>>,
    last_message: Vec<Option<jiff_sqlx::Timestamp>>,
    reasons: Vec<Option<String>>,
}

impl StateColumns {
    fn new(states: &[(Uuid, EnrolmentState)]) -> Result<Self> {
        let n = states.len();
        let mut c = Self {
            ids: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            suspensions: Vec::with_capacity(n),
            next_steps: Vec::with_capacity(n),
            next_due: Vec::with_capacity(n),
            last_steps: Vec::with_capacity(n),
            last_message: Vec::with_capacity(n),
            reasons: Vec::with_capacity(n),
        };
        for (id, s) in states {
            c.ids.push(*id);
            c.statuses.push(s.status.as_str());
            c.suspensions.push(s.suspension.map(Suspension::as_str));
            c.next_steps.push(step_to_db(s.next_step)?);
            c.next_due.push(s.next_due_at.map(pg_ts));
            c.last_steps.push(step_to_db(s.last_step)?);
            c.last_message.push(s.last_message_at.map(pg_ts));
            c.reasons.push(s.reason.clone());
        }
        Ok(c)
    }
}

/// Writes enrolments' new states with one statement and releases their leases: a change made
/// outside the engine (an action, a trigger, a confirmation) voids a claim taken before it, so
/// the engine never runs a step on a state it did not read.
pub async fn write_states(
    conn: &mut PgConnection,
    states: &[(Uuid, EnrolmentState)],
    at: Timestamp,
) -> Result<()> {
    if states.is_empty() {
        return Ok(());
    }
    let c = StateColumns::new(states)?;
    sqlx::query(
        "UPDATE enrolments e SET status = u.status, suspension = u.suspension, \
         next_step = u.next_step, next_due_at = u.next_due_at, last_step = u.last_step, \
         last_message_at = u.last_message_at, reason = u.reason, lease_owner = NULL, \
         lease_until = NULL, updated_at = $9 \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int4[], $5::timestamptz[], \
         $6::int4[], $7::timestamptz[], $8::text[]) \
         AS u (id, status, suspension, next_step, next_due_at, last_step, last_message_at, \
         reason) WHERE e.id = u.id",
    )
    .bind(c.ids)
    .bind(c.statuses)
    .bind(c.suspensions)
    .bind(c.next_steps)
    .bind(c.next_due)
    .bind(c.last_steps)
    .bind(c.last_message)
    .bind(c.reasons)
    .bind(pg_ts(at))
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub async fn start(
    conn: &mut PgConnection,
    sequence_id: Uuid,
    target: StartTarget,
    at: Timestamp,
) -> Result<StartOutcome> {
    let contact_ids: Vec<Uuid> = match target {
        StartTarget::Contact(id) => {
            contacts::load(conn, id, Lock::NoKeyUpdate).await?;
            vec![id]
        }
        StartTarget::Group(root) => {
            load_group(conn, root, Lock::KeyShare).await?;
            let sql = format!(
                "SELECT c.id FROM contacts c WHERE EXISTS (SELECT 1 FROM contact_groups cg \
                 WHERE cg.contact_id = c.id AND cg.group_id = ANY(ARRAY({SUBTREE}$1{SUBTREE_END}))) \
                 ORDER BY c.id{}",
                Lock::NoKeyUpdate.clause()
            );
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(root)
                .fetch_all(&mut *conn)
                .await
                .map_err(backend)?
        }
    };
    let sequence = get(conn, sequence_id, Lock::KeyShare).await?;
    let new: Vec<NewEnrolment> = contact_ids
        .iter()
        .map(|c| NewEnrolment {
            sequence: &sequence,
            contact_id: *c,
            how: "manual",
        })
        .collect();
    let started = enrol(conn, &new, at).await?;
    let enrolled = started.iter().flatten().count() as u64;
    Ok(StartOutcome {
        enrolled,
        already: started.len() as u64 - enrolled,
    })
}

const OVERVIEW: &str = "SELECT e.id, e.sequence_id, e.contact_id, e.status, e.suspension, \
    e.next_step, e.next_due_at, e.last_step, e.last_message_at, e.reason, e.created_at, \
    e.updated_at, s.name AS sequence_name, c.email, c.first_name, c.last_name \
    FROM enrolments e JOIN sequences s ON s.id = e.sequence_id \
    JOIN contacts c ON c.id = e.contact_id";

fn overview(r: &PgRow) -> Result<Enrolment> {
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
        created_at: rows::ts(r, "created_at")?,
        updated_at: rows::ts(r, "updated_at")?,
    })
}

pub async fn get_enrolment(conn: &mut PgConnection, id: Uuid) -> Result<Enrolment> {
    sqlx::query(sqlx::AssertSqlSafe(format!("{OVERVIEW} WHERE e.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| overview(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub async fn list_enrolments(
    conn: &mut PgConnection,
    filter: &EnrolmentFilter,
    order: EnrolmentOrder,
    page: PageRequest,
) -> Result<Page<Enrolment>> {
    let mut q = QueryBuilder::<Postgres>::new(format!("{OVERVIEW} WHERE 1 = 1"));
    if let Some(sequence) = filter.sequence {
        q.push(" AND e.sequence_id = ").push_bind(sequence);
    }
    if let Some(status) = filter.status {
        q.push(" AND e.status = ").push_bind(status.as_str());
    }
    if let Some(contact) = filter.contact {
        q.push(" AND e.contact_id = ").push_bind(contact);
    }
    let (column, ascending) = match order {
        EnrolmentOrder::Newest => (None, false),
        EnrolmentOrder::LastMessageAsc => (Some("e.last_message_at"), true),
        EnrolmentOrder::LastMessageDesc => (Some("e.last_message_at"), false),
        EnrolmentOrder::NextMessageAsc => (Some("e.next_due_at"), true),
        EnrolmentOrder::NextMessageDesc => (Some("e.next_due_at"), false),
    };
    let (cmp, dir) = if ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    match (column, page.cursor) {
        (None, Some(cursor)) => {
            q.push(format!(" AND e.id {cmp} ")).push_bind(cursor);
        }
        (Some(col), Some(cursor)) => {
            // The page continues after the cursor row's place: its sort key, then its id.
            let key: Option<Option<jiff_sqlx::Timestamp>> = sqlx::query_scalar(
                sqlx::AssertSqlSafe(format!("SELECT {col} FROM enrolments e WHERE e.id = $1")),
            )
            .bind(cursor)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
            let Some(key) = key else {
                return Err(StoreError::invalid(
                    "cursor",
                    "that enrolment no longer exists",
                ));
            };
            match key {
                // Rows without the time come last, in id order.
                Some(t) => {
                    q.push(format!(" AND ({col} {cmp} "))
                        .push_bind(t)
                        .push(format!(" OR ({col} = "))
                        .push_bind(t)
                        .push(format!(" AND e.id {cmp} "))
                        .push_bind(cursor)
                        .push(format!(") OR {col} IS NULL)"));
                }
                None => {
                    q.push(format!(" AND {col} IS NULL AND e.id {cmp} "))
                        .push_bind(cursor);
                }
            }
        }
        _ => {}
    }
    match column {
        Some(col) => q.push(format!(" ORDER BY {col} {dir} NULLS LAST, e.id {dir}")),
        None => q.push(" ORDER BY e.id DESC"),
    };
    q.push(" LIMIT ").push_bind(i64::from(page.limit) + 1);
    let found = q.build().fetch_all(conn).await.map_err(backend)?;
    let items = found.iter().map(overview).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, page.limit, |e| e.id))
}

fn invalid_action(e: nudge_core::sequence::ActionError) -> StoreError {
    StoreError::Conflict {
        code: "invalid_action",
        field: Some("action"),
        message: e.to_string(),
    }
}

pub async fn change(
    conn: &mut PgConnection,
    id: Uuid,
    action: EnrolmentAction,
    at: Timestamp,
) -> Result<Enrolment> {
    // An enrolment never changes contact, so this unlocked read is good for the lock order.
    let contact_id: Uuid = sqlx::query_scalar("SELECT contact_id FROM enrolments WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or(StoreError::NotFound)?;
    let contact = contacts::load(conn, contact_id, Lock::NoKeyUpdate).await?;
    let sql = format!("SELECT {ENROLMENT_COLUMNS} FROM enrolments e WHERE e.id = $1 FOR UPDATE");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .map(|r| enrolment_row(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)?;
    let sequence = get(conn, row.sequence_id, Lock::None).await?;
    let next =
        apply_action(&sequence.def, &row.state, &contact, action, at).map_err(invalid_action)?;
    let event = enrolment_event(sequence.id, &sequence.def.name, &row.state, &next);
    write_states(conn, &[(id, next)], at).await?;
    if let Some(event) = event {
        insert_timelines(conn, at, &[(contact_id, &event)]).await?;
    }
    get_enrolment(conn, id).await
}

/// Makes the contact's enrolments that waited for its confirmation due at `at`, each with its
/// timeline entry. The caller holds the contact.
pub async fn wake(conn: &mut PgConnection, contact_id: Uuid, at: Timestamp) -> Result<()> {
    let sql = format!(
        "SELECT {ENROLMENT_COLUMNS} FROM enrolments e WHERE e.contact_id = $1 \
         AND e.status = 'active' AND e.next_due_at IS NULL ORDER BY e.id FOR UPDATE"
    );
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(contact_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    let waiting = found
        .iter()
        .map(enrolment_row)
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<Uuid> = waiting.iter().map(|e| e.sequence_id).collect();
    let sequences = by_ids(conn, &ids).await?;
    let mut states = Vec::with_capacity(waiting.len());
    let mut events = Vec::new();
    for row in waiting {
        let mut next = row.state.clone();
        next.next_due_at = Some(at);
        next.reason = None;
        if let Some(s) = sequences.get(&row.sequence_id)
            && let Some(event) = enrolment_event(s.id, &s.def.name, &row.state, &next)
        {
            events.push((contact_id, event));
        }
        states.push((row.id, next));
    }
    write_states(conn, &states, at).await?;
    let entries: Vec<(Uuid, &TimelineEvent)> = events.iter().map(|(c, e)| (*c, e)).collect();
    insert_timelines(conn, at, &entries).await
}
