//! The send ledger on PostgreSQL.
//!
//! Several dispatcher processes may claim from one database, and queues, finishes and erasures
//! run side by side, so every step that decides from a row it read holds that row locked:
//!
//! - a claim takes its rows with `FOR UPDATE SKIP LOCKED`: two claims never wait for each other
//!   and never take the same message;
//! - a queue holds the contact `FOR SHARE` while it applies the send gate, so a concurrent
//!   status change either lands before the gate reads the status or waits for the queue;
//! - a finish locks the contact before the message, in the order an erasure takes them (the
//!   contact, then its messages by cascade), so the two cannot deadlock.

use crate::Lock;
use crate::contacts::{self, insert_timeline, insert_timelines};
use crate::rows::{self, CONTACT_COLUMNS, backend, pg_ts};
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
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use std::collections::{BTreeSet, HashMap, HashSet};
use uuid::Uuid;

const COLUMNS: &str = "id, contact_id, class, status, skip_rule, to_email, subject, html, text, \
    from_email, from_name, idempotency_key, message_id, attempts, due_at, last_error, created_at, \
    sent_at, smtp_account_id";

/// How often a queue tries again when the message holding its idempotency key disappears
/// between the insert that ran into it and the read that should return it.
const QUEUE_ATTEMPTS: u32 = 3;

fn corrupt(what: &str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} is unreadable: {value}"))
}

fn class_of(s: &str) -> Result<MessageClass> {
    MessageClass::parse(s).ok_or_else(|| corrupt("class", s))
}

fn rule_of(s: &str) -> Result<SkipRule> {
    SkipRule::parse(s).ok_or_else(|| corrupt("skip rule", s))
}

fn message(r: &PgRow) -> Result<Message> {
    let class: String = r.try_get("class").map_err(backend)?;
    let status: String = r.try_get("status").map_err(backend)?;
    let rule: Option<String> = r.try_get("skip_rule").map_err(backend)?;
    let attempts: i32 = r.try_get("attempts").map_err(backend)?;
    let sent_at: Option<jiff_sqlx::Timestamp> = r.try_get("sent_at").map_err(backend)?;
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
        attempts: u32::try_from(attempts).map_err(|_| corrupt("attempts", attempts))?,
        due_at: rows::ts(r, "due_at")?,
        last_error: r.try_get("last_error").map_err(backend)?,
        created_at: rows::ts(r, "created_at")?,
        sent_at: sent_at.map(|t| t.to_jiff()),
        smtp_account_id: r.try_get("smtp_account_id").map_err(backend)?,
    })
}

/// The stored messages holding these idempotency keys, by key.
async fn by_keys(conn: &mut PgConnection, keys: &[&str]) -> Result<HashMap<String, Message>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE idempotency_key = ANY($1)");
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(keys)
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    found
        .iter()
        .map(|r| message(r).map(|m| (m.idempotency_key.clone(), m)))
        .collect()
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Message> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| message(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

/// The contacts messages are queued for, held until the commit. `FOR SHARE` and not the
/// `FOR KEY SHARE` a mere reference needs: the send gate decides from the status, which must not
/// change under it; queues for one contact still run side by side. Locked in id order, so two
/// batches over the same contacts cannot deadlock. A contact that does not exist is `NotFound`.
async fn gate_contacts(conn: &mut PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, Contact>> {
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id = ANY($1) ORDER BY c.id FOR SHARE"
    );
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    let contacts: HashMap<Uuid, Contact> = found
        .iter()
        .map(|r| rows::contact(r).map(|c| (c.id, c)))
        .collect::<Result<_>>()?;
    if ids.iter().any(|id| !contacts.contains_key(id)) {
        return Err(StoreError::NotFound);
    }
    Ok(contacts)
}

/// A message to queue, and the address it goes to when that is not its contact's: a form's
/// notification is about the submitter (whose status gates it, and on whose timeline it is
/// written) but goes to the form's owner.
pub struct Outgoing {
    pub message: NewMessage,
    pub to: Option<String>,
}

pub async fn queue(
    conn: &mut PgConnection,
    new: NewMessage,
    at: Timestamp,
) -> Result<(Message, bool)> {
    let outgoing = Outgoing {
        message: new,
        to: None,
    };
    queue_all(conn, vec![outgoing], None, at)
        .await?
        .pop()
        .ok_or_else(|| StoreError::Backend("a queued message went missing".into()))
}

/// Queues messages with a handful of statements however many there are (the engine queues a
/// batch of steps at a time). For each, in order: the message and whether it is new; a key
/// already stored (or earlier in the batch) returns the first message instead. `held` are
/// contacts the caller has read and holds locked (at least `FOR SHARE`), which need not be
/// read again for the send gate.
pub async fn queue_all(
    conn: &mut PgConnection,
    items: Vec<Outgoing>,
    held: Option<&HashMap<Uuid, Contact>>,
    at: Timestamp,
) -> Result<Vec<(Message, bool)>> {
    let keys: Vec<&str> = items
        .iter()
        .map(|o| o.message.idempotency_key.as_str())
        .collect();
    let mut stored = by_keys(conn, &keys).await?;
    let mut seen = HashSet::new();
    let mut todo: Vec<&Outgoing> = items
        .iter()
        .filter(|o| {
            let key = o.message.idempotency_key.as_str();
            !stored.contains_key(key) && seen.insert(key)
        })
        .collect();
    let mut fresh: HashSet<String> = HashSet::new();
    if !todo.is_empty() {
        let read;
        let contacts = match held {
            Some(held) => held,
            None => {
                let mut ids: Vec<Uuid> = todo.iter().map(|o| o.message.contact_id).collect();
                ids.sort_unstable();
                ids.dedup();
                read = gate_contacts(conn, &ids).await?;
                &read
            }
        };
        for _ in 0..QUEUE_ATTEMPTS {
            let inserted = insert(conn, &todo, contacts, at).await?;
            fresh.extend(inserted.keys().cloned());
            stored.extend(inserted);
            // A concurrent queue with the same key may have inserted since the lookup above;
            // its message is returned. The winner's message may belong to another contact,
            // whose erasure can delete it before this read; the key is then free and the next
            // round inserts.
            let lost: Vec<&str> = todo
                .iter()
                .map(|o| o.message.idempotency_key.as_str())
                .filter(|k| !stored.contains_key(*k))
                .collect();
            stored.extend(by_keys(conn, &lost).await?);
            todo.retain(|o| !stored.contains_key(&o.message.idempotency_key));
            if todo.is_empty() {
                break;
            }
        }
        if let Some(left) = todo.first() {
            return Err(StoreError::Backend(format!(
                "the message holding the idempotency key {} was deleted each time it was read",
                left.message.idempotency_key
            )));
        }
    }
    let mut events = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let key = &item.message.idempotency_key;
        let message = stored
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::Backend(format!("no message holds the key {key}")))?;
        // A key named twice in the batch is new only the first time.
        let new = fresh.remove(key);
        if new {
            let subject = &message.content.subject;
            events.push((
                message.contact_id,
                TimelineEvent::email_queued(message.id, message.class, subject),
            ));
            if let Some(rule) = message.skip_rule {
                events.push((
                    message.contact_id,
                    TimelineEvent::email_skipped(message.id, subject, rule),
                ));
            }
        }
        out.push((message, new));
    }
    let entries: Vec<(Uuid, &TimelineEvent)> = events.iter().map(|(c, e)| (*c, e)).collect();
    insert_timelines(conn, at, &entries).await?;
    Ok(out)
}

/// Inserts the messages, with one statement; returns those it inserted, by key.
///
/// A concurrent queue with the same key may have inserted since the lookup. The UNIQUE
/// constraint settles it: this insert waits for that transaction and, if it commits, inserts
/// nothing for the key (without aborting this transaction, as a plain unique violation would).
async fn insert(
    conn: &mut PgConnection,
    todo: &[&Outgoing],
    contacts: &HashMap<Uuid, Contact>,
    at: Timestamp,
) -> Result<HashMap<String, Message>> {
    let n = todo.len();
    let mut ids = Vec::with_capacity(n);
    let mut contact_ids = Vec::with_capacity(n);
    let mut classes = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut rules = Vec::with_capacity(n);
    let mut to_emails = Vec::with_capacity(n);
    let mut subjects = Vec::with_capacity(n);
    let mut htmls = Vec::with_capacity(n);
    let mut texts = Vec::with_capacity(n);
    let mut from_emails = Vec::with_capacity(n);
    let mut from_names = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut due = Vec::with_capacity(n);
    for o in todo {
        let m = &o.message;
        let contact = contacts.get(&m.contact_id).ok_or(StoreError::NotFound)?;
        let (status, rule) = match nudge_core::send_gate(contact.status, m.class) {
            SendDecision::Allowed => (MessageStatus::Queued, None),
            SendDecision::Skipped(rule) => (MessageStatus::Skipped, Some(rule)),
        };
        ids.push(Uuid::now_v7());
        contact_ids.push(m.contact_id);
        classes.push(m.class.as_str());
        statuses.push(status.as_str());
        rules.push(rule.map(SkipRule::as_str));
        to_emails.push(o.to.as_deref().unwrap_or(contact.email.as_str()));
        subjects.push(m.content.subject.as_str());
        htmls.push(m.content.html.as_str());
        texts.push(m.content.text.as_deref());
        from_emails.push(m.content.from_email.as_deref());
        from_names.push(m.content.from_name.as_deref());
        keys.push(m.idempotency_key.as_str());
        due.push(pg_ts(m.due_at));
    }
    let sql = format!(
        "INSERT INTO messages (id, contact_id, class, status, skip_rule, to_email, subject, \
         html, text, from_email, from_name, idempotency_key, due_at, created_at) \
         SELECT m.*, $14 FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], \
         $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
         $12::text[], $13::timestamptz[]) AS m \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING {COLUMNS}"
    );
    let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .bind(contact_ids)
        .bind(classes)
        .bind(statuses)
        .bind(rules)
        .bind(to_emails)
        .bind(subjects)
        .bind(htmls)
        .bind(texts)
        .bind(from_emails)
        .bind(from_names)
        .bind(keys)
        .bind(due)
        .bind(pg_ts(at))
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    inserted
        .iter()
        .map(|r| message(r).map(|m| (m.idempotency_key.clone(), m)))
        .collect()
}

pub async fn claim(
    conn: &mut PgConnection,
    now: Timestamp,
    limit: u32,
    owner: &str,
    lease: SignedDuration,
) -> Result<Vec<Message>> {
    let until = now.checked_add(lease).map_err(backend)?;
    // A `sending` row whose lease ran out belongs to a dispatcher that died mid-attempt: it is
    // claimed again, so a message is never lost (and, in that one window, may go out twice).
    //
    // SKIP LOCKED passes over rows another claim (or a finish, or an erasure) holds, instead of
    // waiting for it and then finding them taken. A row another claim updated and committed
    // after this statement's snapshot is locked in its new version and its conditions checked
    // again, so a live lease drops it out.
    let sql = format!(
        "UPDATE messages SET status = 'sending', lease_owner = $1, lease_until = $2, \
         attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM messages \
             WHERE status IN ('queued', 'retrying', 'sending') AND due_at <= $3 \
             AND (lease_until IS NULL OR lease_until <= $3) \
             ORDER BY due_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
         RETURNING {COLUMNS}"
    );
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .bind(pg_ts(until))
        .bind(pg_ts(now))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    let mut claimed = found.iter().map(message).collect::<Result<Vec<_>>>()?;
    // RETURNING follows no order; the dispatcher gets the most overdue first.
    claimed.sort_by_key(|m| (m.due_at, m.id));
    Ok(claimed)
}

pub async fn finish(
    conn: &mut PgConnection,
    id: Uuid,
    owner: &str,
    delivery: Delivery,
    at: Timestamp,
) -> Result<Message> {
    // A message never changes contact, so this unlocked read is good for the lock order below.
    let contact_id: Option<Uuid> =
        sqlx::query_scalar("SELECT contact_id FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let Some(contact_id) = contact_id else {
        return Err(StoreError::NotFound);
    };
    finish_of(conn, contact_id, id, owner, delivery, at).await
}

/// [`finish`] for each outcome, in the caller's transaction, with a few statements for the
/// whole batch rather than a few per message. A message that is gone or whose lease was lost
/// gets its error in its place; any other error ends the batch, and the caller's rollback then
/// records none of it.
///
/// The contacts are locked first, as in [`finish`] and as an erasure takes them (see the module
/// comment), and in the order of their ids, so that two batches sharing contacts cannot
/// deadlock. Contacts of bounces are locked to be written back (and come first); the others
/// only so that they stay while their timeline entries are written.
pub async fn finish_many(
    conn: &mut PgConnection,
    owner: &str,
    outcomes: Vec<(Uuid, Delivery)>,
    at: Timestamp,
) -> Result<Vec<Result<Message>>> {
    let (first, _) = first_outcomes(&outcomes);
    let ids: Vec<Uuid> = first.iter().map(|(_, id, _)| *id).collect();
    let rows: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT id, contact_id FROM messages WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
    let contact_of: HashMap<Uuid, Uuid> = rows.into_iter().collect();
    let (bounced, referred): (BTreeSet<Uuid>, BTreeSet<Uuid>) = {
        let mut bounced = BTreeSet::new();
        let mut referred = BTreeSet::new();
        for (_, id, delivery) in &first {
            if let Some(contact) = contact_of.get(id) {
                if matches!(delivery, Delivery::Failed { bounce: true, .. }) {
                    bounced.insert(*contact);
                } else {
                    referred.insert(*contact);
                }
            }
        }
        (bounced, referred)
    };
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id = ANY($1) ORDER BY c.id{}",
        Lock::NoKeyUpdate.clause()
    );
    let bounced: Vec<Uuid> = bounced.into_iter().collect();
    let mut to_bounce = HashMap::new();
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&bounced)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?
    {
        let contact = rows::contact(&row)?;
        to_bounce.insert(contact.id, contact);
    }
    let referred: Vec<Uuid> = referred
        .into_iter()
        .filter(|c| !to_bounce.contains_key(c))
        .collect();
    let sql = format!(
        "SELECT c.id FROM contacts c WHERE c.id = ANY($1) ORDER BY c.id{}",
        Lock::KeyShare.clause()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&referred)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;

    // One update for every row whose lease holds (re-checked on the locked row if another
    // transaction changed it first); a NULL leaves a column as it is.
    let columns: Vec<FinishColumns> = first
        .iter()
        .map(|(_, _, delivery)| FinishColumns::of(delivery, at))
        .collect();
    let returning = COLUMNS
        .split(',')
        .map(|c| format!("m.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE messages m SET status = v.status, lease_owner = NULL, lease_until = NULL, \
         message_id = COALESCE(v.message_id, m.message_id), \
         sent_at = COALESCE(v.sent_at, m.sent_at), due_at = COALESCE(v.due_at, m.due_at), \
         last_error = COALESCE(v.last_error, m.last_error), \
         skip_rule = COALESCE(v.skip_rule, m.skip_rule), \
         smtp_account_id = COALESCE(v.smtp_account_id, m.smtp_account_id) \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], \
             $6::text[], $7::text[], $8::uuid[]) \
         AS v (id, status, message_id, sent_at, due_at, last_error, skip_rule, smtp_account_id) \
         WHERE m.id = v.id AND m.status = 'sending' AND m.lease_owner = $9 \
         RETURNING {returning}"
    );
    let updated = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&ids)
        .bind(
            columns
                .iter()
                .map(|c| c.status.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(columns.iter().map(|c| c.message_id).collect::<Vec<_>>())
        .bind(
            columns
                .iter()
                .map(|c| c.sent_at.map(pg_ts))
                .collect::<Vec<_>>(),
        )
        .bind(
            columns
                .iter()
                .map(|c| c.due_at.map(pg_ts))
                .collect::<Vec<_>>(),
        )
        .bind(columns.iter().map(|c| c.last_error).collect::<Vec<_>>())
        .bind(
            columns
                .iter()
                .map(|c| c.skip_rule.map(SkipRule::as_str))
                .collect::<Vec<_>>(),
        )
        .bind(
            columns
                .iter()
                .map(|c| c.smtp_account_id)
                .collect::<Vec<_>>(),
        )
        .bind(owner)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    let mut finished = HashMap::with_capacity(updated.len());
    for row in updated {
        let m = message(&row)?;
        finished.insert(m.id, m);
    }
    let missing: Vec<Uuid> = ids
        .iter()
        .copied()
        .filter(|id| !finished.contains_key(id))
        .collect();
    let present: HashSet<Uuid> = sqlx::query_scalar("SELECT id FROM messages WHERE id = ANY($1)")
        .bind(&missing)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?
        .into_iter()
        .collect();
    let batch = recorded_batch(&outcomes, finished, &present, owner);
    let mut events = Vec::with_capacity(batch.timeline.len());
    for entry in batch.timeline {
        match entry {
            BatchEntry::Event(contact, event) => events.push((contact, event)),
            BatchEntry::Bounce(contact) => {
                // Two bounces of one contact in a batch: the first made it bounced.
                if let Some(locked) = to_bounce.remove(&contact) {
                    events.extend(
                        bounce_contact(conn, locked, at)
                            .await?
                            .map(|e| (contact, e)),
                    );
                }
            }
        }
    }
    let entries: Vec<_> = events.iter().map(|(contact, e)| (*contact, e)).collect();
    insert_timelines(conn, at, &entries).await?;
    Ok(batch.results)
}

/// Records one outcome of a message of `contact_id`.
async fn finish_of(
    conn: &mut PgConnection,
    contact_id: Uuid,
    id: Uuid,
    owner: &str,
    delivery: Delivery,
    at: Timestamp,
) -> Result<Message> {
    // The contact first, as an erasure takes it (see the module comment). A bounce writes the
    // contact back from what it read, as `change_status` does; otherwise the timeline entry only
    // refers to it. An erasure that got there first took the message with it: not found.
    let bounce = matches!(delivery, Delivery::Failed { bounce: true, .. });
    let lock = if bounce {
        Lock::NoKeyUpdate
    } else {
        Lock::KeyShare
    };
    let contact = contacts::load(conn, contact_id, lock).await?;

    // The lease check is the update's own condition (re-checked on the locked row if another
    // transaction changed it first): one statement whatever the outcome, as a NULL leaves a
    // column as it is, and a second only to say why no row matched.
    let columns = FinishColumns::of(&delivery, at);
    let sql = format!(
        "UPDATE messages SET status = $2, lease_owner = NULL, lease_until = NULL, \
         message_id = COALESCE($3, message_id), sent_at = COALESCE($4, sent_at), \
         due_at = COALESCE($5, due_at), last_error = COALESCE($6, last_error), \
         skip_rule = COALESCE($7, skip_rule), \
         smtp_account_id = COALESCE($8, smtp_account_id) \
         WHERE id = $1 AND status = 'sending' AND lease_owner = $9 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(columns.status.as_str())
        .bind(columns.message_id)
        .bind(columns.sent_at.map(pg_ts))
        .bind(columns.due_at.map(pg_ts))
        .bind(columns.last_error)
        .bind(columns.skip_rule.map(SkipRule::as_str))
        .bind(columns.smtp_account_id)
        .bind(owner)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    let Some(row) = row else {
        let exists = sqlx::query("SELECT 1 FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        return Err(match exists {
            Some(_) => lease_lost(id, owner),
            None => StoreError::NotFound,
        });
    };
    let finished = message(&row)?;
    let mut events = vec![finish_event(id, &finished.content.subject, &delivery)];
    if bounce {
        events.extend(bounce_contact(conn, contact, at).await?);
    }
    insert_timeline(conn, contact_id, at, &events).await?;
    Ok(finished)
}

async fn bounce_contact(
    conn: &mut PgConnection,
    mut contact: Contact,
    at: Timestamp,
) -> Result<Option<TimelineEvent>> {
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
    conn: &mut PgConnection,
    filter: &MessageFilter,
    page: PageRequest,
) -> Result<Page<Message>> {
    let mut q =
        QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM messages WHERE 1 = 1"));
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
    let found = q.build().fetch_all(conn).await.map_err(backend)?;
    let items = found.iter().map(message).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, page.limit, |m| m.id))
}

pub async fn next_due(conn: &mut PgConnection) -> Result<Option<Timestamp>> {
    // A message being sent is due again when its lease runs out (its dispatcher may have died).
    let due: Option<jiff_sqlx::Timestamp> = sqlx::query_scalar(
        "SELECT min(CASE WHEN status = 'sending' THEN lease_until ELSE due_at END) \
         FROM messages WHERE status IN ('queued', 'retrying', 'sending')",
    )
    .fetch_one(conn)
    .await
    .map_err(backend)?;
    Ok(due.map(|t| t.to_jiff()))
}

pub async fn record_engagement(
    conn: &mut PgConnection,
    id: Uuid,
    engagement: Engagement,
    at: Timestamp,
) -> Result<()> {
    let message = get(conn, id).await?;
    let subject = message.content.subject.as_str();
    let event = match &engagement {
        Engagement::Opened => {
            let first = sqlx::query(
                "UPDATE messages SET opened_at = $1 WHERE id = $2 AND opened_at IS NULL",
            )
            .bind(pg_ts(at))
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
            sqlx::query("UPDATE messages SET clicked_at = coalesce(clicked_at, $1) WHERE id = $2")
                .bind(pg_ts(at))
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            TimelineEvent::email_clicked(id, subject, url)
        }
    };
    insert_timeline(conn, message.contact_id, at, &[event]).await
}
