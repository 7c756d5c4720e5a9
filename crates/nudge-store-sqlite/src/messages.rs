//! The send ledger on SQLite.

use crate::contacts::{self, insert_timeline, insert_timelines};
use crate::rows::{backend, micros, ts};
use jiff::{SignedDuration, Timestamp};
use nudge_core::status::plan_transition;
use nudge_core::timeline::TimelineEvent;
use nudge_core::{
    ChangeSource, Contact, MessageClass, MessageStatus, SendDecision, SkipRule, Status,
};
use nudge_store::plan::{
    BatchEntry, FinishColumns, finish_event, first_outcomes, lease_lost, recorded_batch,
};
use nudge_store::{
    Delivery, Engagement, Message, MessageContent, MessageFilter, NewMessage, Page, PageRequest,
    Result, StoreError,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

const COLUMNS: &str = "id, contact_id, class, status, skip_rule, to_email, subject, html, text, \
    from_email, from_name, idempotency_key, message_id, attempts, due_at, last_error, created_at, \
    sent_at, smtp_account_id";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Backend(format!("stored {what} is unreadable: {value}"))
}

fn class_of(s: &str) -> Result<MessageClass> {
    MessageClass::parse(s).ok_or_else(|| corrupt("class", s))
}

fn rule_of(s: &str) -> Result<SkipRule> {
    SkipRule::parse(s).ok_or_else(|| corrupt("skip rule", s))
}

fn message(r: &SqliteRow) -> Result<Message> {
    let class: String = r.try_get("class").map_err(backend)?;
    let status: String = r.try_get("status").map_err(backend)?;
    let rule: Option<String> = r.try_get("skip_rule").map_err(backend)?;
    let attempts: i64 = r.try_get("attempts").map_err(backend)?;
    let sent_at: Option<i64> = r.try_get("sent_at").map_err(backend)?;
    Ok(Message {
        id: r.try_get("id").map_err(backend)?,
        contact_id: r.try_get("contact_id").map_err(backend)?,
        class: class_of(&class)?,
        status: status.parse().map_err(|_| corrupt("status", &status))?,
        skip_rule: rule.as_deref().map(rule_of).transpose()?,
        to_email: r.try_get("to_email").map_err(backend)?,
        content: MessageContent {
            subject: r.try_get("subject").map_err(backend)?,
            html: r.try_get("html").map_err(backend)?,
            text: r.try_get("text").map_err(backend)?,
            from_email: r.try_get("from_email").map_err(backend)?,
            from_name: r.try_get("from_name").map_err(backend)?,
        },
        idempotency_key: r.try_get("idempotency_key").map_err(backend)?,
        message_id: r.try_get("message_id").map_err(backend)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        due_at: ts(r.try_get("due_at").map_err(backend)?)?,
        last_error: r.try_get("last_error").map_err(backend)?,
        created_at: ts(r.try_get("created_at").map_err(backend)?)?,
        sent_at: sent_at.map(ts).transpose()?,
        smtp_account_id: r.try_get("smtp_account_id").map_err(backend)?,
    })
}

async fn by_key(conn: &mut SqliteConnection, key: &str) -> Result<Option<Message>> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE idempotency_key = ?");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| message(&r))
        .transpose()
}

pub async fn get(conn: &mut SqliteConnection, id: Uuid) -> Result<Message> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE id = ?");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| message(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

/// A message about to be written: its recipient, and the send gate's answer for its contact as
/// read in the caller's transaction (a refused message is stored skipped, with its rule).
pub struct Outgoing {
    pub id: Uuid,
    pub new: NewMessage,
    pub to_email: String,
    pub rule: Option<SkipRule>,
}

impl Outgoing {
    /// `to` addresses it elsewhere than to the contact (a form's notification to its owner,
    /// about this contact).
    pub fn new(new: NewMessage, contact: &Contact, to: Option<&str>) -> Self {
        let rule = match nudge_core::send_gate(contact.status, new.class) {
            SendDecision::Allowed => None,
            SendDecision::Skipped(rule) => Some(rule),
        };
        Self {
            id: Uuid::now_v7(),
            to_email: to.map_or_else(|| contact.email.to_string(), str::to_owned),
            new,
            rule,
        }
    }
}

/// The ids of the messages already queued under any of `keys`.
pub async fn ids_by_key(
    conn: &mut SqliteConnection,
    keys: &[String],
) -> Result<HashMap<String, Uuid>> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(1000) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT idempotency_key, id FROM messages WHERE idempotency_key IN (",
        );
        let mut list = q.separated(", ");
        for key in chunk {
            list.push_bind(key.clone());
        }
        q.push(")");
        let rows: Vec<(String, Uuid)> = q
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        found.extend(rows);
    }
    Ok(found)
}

/// Writes messages whose keys are new, and their timeline entries (queued, and skipped with
/// the rule), with multi-row statements: the engine queues a whole batch of steps at once.
pub async fn insert(
    conn: &mut SqliteConnection,
    messages: &[Outgoing],
    at: Timestamp,
) -> Result<()> {
    // 14 values a row: 1,000 rows stay under SQLite's 32,766 bound values.
    for chunk in messages.chunks(1000) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO messages (id, contact_id, class, status, skip_rule, to_email, subject, \
             html, text, from_email, from_name, idempotency_key, due_at, created_at) ",
        );
        q.push_values(chunk, |mut row, m| {
            let status = match m.rule {
                None => MessageStatus::Queued,
                Some(_) => MessageStatus::Skipped,
            };
            row.push_bind(m.id)
                .push_bind(m.new.contact_id)
                .push_bind(m.new.class.as_str())
                .push_bind(status.as_str())
                .push_bind(m.rule.map(SkipRule::as_str))
                .push_bind(m.to_email.clone())
                .push_bind(m.new.content.subject.clone())
                .push_bind(m.new.content.html.clone())
                .push_bind(m.new.content.text.clone())
                .push_bind(m.new.content.from_email.clone())
                .push_bind(m.new.content.from_name.clone())
                .push_bind(m.new.idempotency_key.clone())
                .push_bind(micros(m.new.due_at))
                .push_bind(micros(at));
        });
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    let events: Vec<(Uuid, TimelineEvent)> = messages
        .iter()
        .flat_map(|m| {
            let subject = &m.new.content.subject;
            let queued = TimelineEvent::email_queued(m.id, m.new.class, subject);
            let skipped = m
                .rule
                .map(|r| TimelineEvent::email_skipped(m.id, subject, r));
            std::iter::once(queued)
                .chain(skipped)
                .map(move |e| (m.new.contact_id, e))
        })
        .collect();
    insert_timelines(conn, at, &events).await
}

pub async fn queue(
    conn: &mut SqliteConnection,
    new: NewMessage,
    at: Timestamp,
) -> Result<(Message, bool)> {
    queue_to(conn, new, None, at).await
}

/// Queues a message like [`queue`], to `to` instead of the contact's own address when given.
pub async fn queue_to(
    conn: &mut SqliteConnection,
    new: NewMessage,
    to: Option<&str>,
    at: Timestamp,
) -> Result<(Message, bool)> {
    if let Some(existing) = by_key(conn, &new.idempotency_key).await? {
        return Ok((existing, false));
    }
    let contact = contacts::load(conn, new.contact_id).await?;
    let message = Outgoing::new(new, &contact, to);
    insert(conn, std::slice::from_ref(&message), at).await?;
    Ok((get(conn, message.id).await?, true))
}

pub async fn claim(
    conn: &mut SqliteConnection,
    now: Timestamp,
    limit: u32,
    owner: &str,
    lease: SignedDuration,
) -> Result<Vec<Message>> {
    let until = now.checked_add(lease).map_err(backend)?;
    // A `sending` row whose lease ran out belongs to a dispatcher that died mid-attempt: it is
    // claimed again, so a message is never lost (and, in that one window, may go out twice).
    let sql = format!(
        "UPDATE messages SET status = 'sending', lease_owner = ?, lease_until = ?, \
         attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM messages \
             WHERE status IN ('queued', 'retrying', 'sending') AND due_at <= ? \
             AND (lease_until IS NULL OR lease_until <= ?) \
             ORDER BY due_at, id LIMIT ?) \
         RETURNING {COLUMNS}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .bind(micros(until))
        .bind(micros(now))
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    let mut claimed = rows.iter().map(message).collect::<Result<Vec<_>>>()?;
    claimed.sort_by_key(|m| (m.due_at, m.id));
    Ok(claimed)
}

pub async fn finish(
    conn: &mut SqliteConnection,
    id: Uuid,
    owner: &str,
    delivery: Delivery,
    at: Timestamp,
) -> Result<Message> {
    let Some(finished) = update_finished(conn, id, owner, &delivery, at).await? else {
        let present = existing(conn, &[id]).await?;
        return Err(if present.contains(&id) {
            lease_lost(id, owner)
        } else {
            StoreError::NotFound
        });
    };
    let mut events = vec![finish_event(id, &finished.content.subject, &delivery)];
    if let Delivery::Failed { bounce: true, .. } = delivery {
        events.extend(bounce_contact(conn, finished.contact_id, at).await?);
    }
    insert_timeline(conn, finished.contact_id, at, &events).await?;
    Ok(finished)
}

/// Writes an outcome on its row if `owner` still holds the lease, and returns the row; `None`
/// when no leased row matched. The lease check is the update's own condition, and a NULL
/// leaves a column as it is: one statement whatever the outcome.
///
/// One row a statement, also for a batch: an `UPDATE … FROM (VALUES …)` over a batch was
/// planned as a walk of the whole table once the batch had two rows (tens of milliseconds at
/// 100,000 messages), while this lookup by id costs the same at any size.
async fn update_finished(
    conn: &mut SqliteConnection,
    id: Uuid,
    owner: &str,
    delivery: &Delivery,
    at: Timestamp,
) -> Result<Option<Message>> {
    let columns = FinishColumns::of(delivery, at);
    let sql = format!(
        "UPDATE messages SET status = ?, lease_owner = NULL, lease_until = NULL, \
         message_id = coalesce(?, message_id), sent_at = coalesce(?, sent_at), \
         due_at = coalesce(?, due_at), last_error = coalesce(?, last_error), \
         skip_rule = coalesce(?, skip_rule), smtp_account_id = coalesce(?, smtp_account_id) \
         WHERE id = ? AND status = 'sending' AND lease_owner = ? RETURNING {COLUMNS}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(columns.status.as_str())
        .bind(columns.message_id)
        .bind(columns.sent_at.map(micros))
        .bind(columns.due_at.map(micros))
        .bind(columns.last_error)
        .bind(columns.skip_rule.map(SkipRule::as_str))
        .bind(columns.smtp_account_id)
        .bind(id)
        .bind(owner)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .map(|row| message(&row))
        .transpose()
}

/// [`finish`] for each outcome, in the caller's transaction, with one insert for all the
/// timeline entries. A message that is gone or whose lease was lost gets its error in its
/// place; any other error ends the batch, and the caller's rollback then records none of it.
pub async fn finish_many(
    conn: &mut SqliteConnection,
    owner: &str,
    outcomes: Vec<(Uuid, Delivery)>,
    at: Timestamp,
) -> Result<Vec<Result<Message>>> {
    let (first, _) = first_outcomes(&outcomes);
    let mut finished = HashMap::with_capacity(first.len());
    let mut missing = Vec::new();
    for (_, id, delivery) in &first {
        match update_finished(conn, *id, owner, delivery, at).await? {
            Some(m) => {
                finished.insert(m.id, m);
            }
            None => missing.push(*id),
        }
    }
    let present = existing(conn, &missing).await?;
    let batch = recorded_batch(&outcomes, finished, &present, owner);
    let mut events = Vec::with_capacity(batch.timeline.len());
    for entry in batch.timeline {
        match entry {
            BatchEntry::Event(contact, event) => events.push((contact, event)),
            BatchEntry::Bounce(contact) => events.extend(
                bounce_contact(conn, contact, at)
                    .await?
                    .map(|e| (contact, e)),
            ),
        }
    }
    let entries: Vec<_> = events.iter().map(|(contact, e)| (*contact, e)).collect();
    contacts::write_timeline(conn, at, &entries).await?;
    Ok(batch.results)
}

/// Which of `ids` name a stored message.
async fn existing(conn: &mut SqliteConnection, ids: &[Uuid]) -> Result<HashSet<Uuid>> {
    const CHUNK: usize = 500;
    let mut found = HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT id FROM messages WHERE id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *conn).await.map_err(backend)? {
            found.insert(row.try_get::<Uuid, _>("id").map_err(backend)?);
        }
    }
    Ok(found)
}

/// A hard bounce makes the contact bounced, unless the rules keep it (a complaint outranks it).
async fn bounce_contact(
    conn: &mut SqliteConnection,
    contact_id: Uuid,
    at: Timestamp,
) -> Result<Option<TimelineEvent>> {
    let mut contact = contacts::load(conn, contact_id).await?;
    let Ok(Some(t)) = plan_transition(contact.status, Status::Bounced, ChangeSource::Bounce, None)
    else {
        return Ok(None);
    };
    contact.status = t.to;
    contact.updated_at = at;
    contacts::save_contact(conn, &contact).await?;
    Ok(Some(TimelineEvent::status_changed(&t)))
}

pub async fn list(
    conn: &mut SqliteConnection,
    filter: &MessageFilter,
    page: PageRequest,
) -> Result<Page<Message>> {
    let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM messages WHERE 1 = 1"));
    if let Some(contact) = filter.contact {
        q.push(" AND contact_id = ").push_bind(contact);
    }
    if let Some(status) = filter.status {
        q.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(class) = filter.class {
        q.push(" AND class = ").push_bind(class.as_str());
    }
    if let Some(cursor) = page.cursor {
        q.push(" AND id < ").push_bind(cursor);
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(page.limit) + 1);
    let rows = q.build().fetch_all(conn).await.map_err(backend)?;
    let items = rows.iter().map(message).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, page.limit, |m| m.id))
}

pub async fn next_due(conn: &mut SqliteConnection) -> Result<Option<Timestamp>> {
    let due: Option<i64> = sqlx::query_scalar(
        "SELECT min(CASE WHEN status = 'sending' THEN lease_until ELSE due_at END) \
         FROM messages WHERE status IN ('queued', 'retrying', 'sending')",
    )
    .fetch_one(conn)
    .await
    .map_err(backend)?;
    due.map(ts).transpose()
}

pub async fn record_engagement(
    conn: &mut SqliteConnection,
    id: Uuid,
    engagement: Engagement,
    at: Timestamp,
) -> Result<()> {
    let message = get(conn, id).await?;
    let subject = message.content.subject.as_str();
    let event = match &engagement {
        Engagement::Opened => {
            let first =
                sqlx::query("UPDATE messages SET opened_at = ? WHERE id = ? AND opened_at IS NULL")
                    .bind(micros(at))
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map_err(backend)?
                    .rows_affected();
            if first == 0 {
                return Ok(());
            }
            TimelineEvent::email_opened(id, subject)
        }
        Engagement::Clicked { url } => {
            sqlx::query("UPDATE messages SET clicked_at = coalesce(clicked_at, ?) WHERE id = ?")
                .bind(micros(at))
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            TimelineEvent::email_clicked(id, subject, url)
        }
    };
    insert_timeline(conn, message.contact_id, at, &[event]).await
}
