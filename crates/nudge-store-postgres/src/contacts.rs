//! Contact rows, their memberships and timelines.

use crate::rows::{self, CONTACT_COLUMNS, backend, pg_ts};
use crate::{Lock, load_defs, load_group};
use jiff::Timestamp;
use nudge_core::contact::{plan_create, plan_update};
use nudge_core::status::plan_transition;
use nudge_core::timeline::TimelineEvent;
use nudge_core::{Contact, ContactInput, ContactPatch, Status, TagName, TimelineEntry};
use nudge_store::plan::{apply_suppression, diff, transition_error};
use nudge_store::{
    ChangeContext, ContactFilter, ContactRecord, Group, Memberships, Page, PageRequest, Result,
    StoreError, Suppression,
};
use sqlx::types::Json;
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder, Row};
use std::collections::HashMap;
use uuid::Uuid;

/// The unique index on `contacts.email_key`, which reports a lost race for an address.
const EMAIL_KEY_CONSTRAINT: &str = "contacts_email_key_key";

pub async fn load(conn: &mut PgConnection, id: Uuid, lock: Lock) -> Result<Contact> {
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id = $1{}",
        lock.clause()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| rows::contact(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub async fn record(conn: &mut PgConnection, id: Uuid, lock: Lock) -> Result<ContactRecord> {
    let contact = load(conn, id, lock).await?;
    let mut records = with_memberships(conn, vec![contact]).await?;
    records.pop().ok_or(StoreError::NotFound)
}

/// The contacts of `ids` that exist, with their groups and tags, unlocked.
pub async fn records(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<ContactRecord>> {
    let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id = ANY($1)");
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    let contacts = found
        .iter()
        .map(rows::contact)
        .collect::<Result<Vec<_>>>()?;
    with_memberships(conn, contacts).await
}

/// Adds the groups and tags of each contact, read for all of them at once.
async fn with_memberships(
    conn: &mut PgConnection,
    contacts: Vec<Contact>,
) -> Result<Vec<ContactRecord>> {
    let ids: Vec<Uuid> = contacts.iter().map(|c| c.id).collect();
    let mut members = memberships(conn, &ids).await?;
    Ok(contacts
        .into_iter()
        .map(|contact| {
            let (groups, tags) = members.remove(&contact.id).unwrap_or_default();
            ContactRecord {
                contact,
                groups,
                tags,
            }
        })
        .collect())
}

type MembershipMap = HashMap<Uuid, (Vec<Uuid>, Vec<String>)>;

/// Groups and tags of several contacts, with two queries.
pub async fn memberships(conn: &mut PgConnection, ids: &[Uuid]) -> Result<MembershipMap> {
    let mut out: MembershipMap = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let groups = sqlx::query(
        "SELECT cg.contact_id, cg.group_id FROM contact_groups cg \
         JOIN groups g ON g.id = cg.group_id WHERE cg.contact_id = ANY($1) ORDER BY g.name, g.id",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    for r in groups {
        let contact: Uuid = r.try_get("contact_id").map_err(backend)?;
        let group: Uuid = r.try_get("group_id").map_err(backend)?;
        out.entry(contact).or_default().0.push(group);
    }
    let tags = sqlx::query(
        "SELECT ct.contact_id, t.name FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id \
         WHERE ct.contact_id = ANY($1) ORDER BY t.name",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    for r in tags {
        let contact: Uuid = r.try_get("contact_id").map_err(backend)?;
        let tag: String = r.try_get("name").map_err(backend)?;
        out.entry(contact).or_default().1.push(tag);
    }
    Ok(out)
}

pub async fn insert_timeline(
    conn: &mut PgConnection,
    contact: Uuid,
    at: Timestamp,
    events: &[TimelineEvent],
) -> Result<()> {
    let entries: Vec<_> = events.iter().map(|e| (contact, e)).collect();
    insert_timelines(conn, at, &entries).await
}

/// Timeline entries of any number of contacts, all at `at`, with one statement.
///
/// Bulk inserts here and below bind one array per column and `UNNEST` them: a handful of
/// parameters instead of one per value, which Postgres parses and plans much faster than a
/// multi-row VALUES list with thousands of placeholders, and with no limit on the row count.
pub async fn insert_timelines(
    conn: &mut PgConnection,
    at: Timestamp,
    entries: &[(Uuid, &TimelineEvent)],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = entries.iter().map(|_| Uuid::now_v7()).collect();
    let contacts: Vec<Uuid> = entries.iter().map(|(c, _)| *c).collect();
    let kinds: Vec<&str> = entries.iter().map(|(_, e)| e.kind.as_str()).collect();
    let summaries: Vec<&str> = entries.iter().map(|(_, e)| e.summary.as_str()).collect();
    let data: Vec<Json<&serde_json::Value>> = entries.iter().map(|(_, e)| Json(&e.data)).collect();
    sqlx::query(
        "INSERT INTO timeline (id, contact_id, at, kind, summary, data) \
         SELECT t.id, t.contact_id, $3, t.kind, t.summary, t.data \
         FROM UNNEST($1::uuid[], $2::uuid[], $4::text[], $5::text[], $6::jsonb[]) \
         AS t (id, contact_id, kind, summary, data)",
    )
    .bind(ids)
    .bind(contacts)
    .bind(pg_ts(at))
    .bind(kinds)
    .bind(summaries)
    .bind(data)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// The id of a tag, created on first use when `create` is set. The tag stays locked against
/// deletion until the commit.
pub async fn tag_id(conn: &mut PgConnection, tag: &TagName, create: bool) -> Result<Option<i64>> {
    // A concurrent `delete_tag` can remove the tag between the insert and the select, which
    // then finds nothing; the next round creates it again.
    for _ in 0..3 {
        if create {
            sqlx::query(
                "INSERT INTO tags (name, created_at) VALUES ($1, $2) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(tag.as_str())
            .bind(pg_ts(nudge_store::stored_now()))
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        }
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM tags WHERE name = $1 FOR KEY SHARE")
                .bind(tag.as_str())
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?;
        if id.is_some() || !create {
            return Ok(id);
        }
    }
    Err(StoreError::Backend(format!(
        "the tag {tag} was deleted each time it was created"
    )))
}

pub async fn suppressions(conn: &mut PgConnection, hashes: &[String]) -> Result<Vec<Suppression>> {
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let found = sqlx::query(
        "SELECT email_hash, status, erased_at FROM suppressions WHERE email_hash = ANY($1)",
    )
    .bind(hashes)
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    found
        .iter()
        .map(|r| {
            let status: String = r.try_get("status").map_err(backend)?;
            Ok(Suppression {
                email_hash: r.try_get("email_hash").map_err(backend)?,
                status: status
                    .parse()
                    .map_err(|_| StoreError::Backend(format!("unknown status {status}")))?,
                erased_at: rows::ts(r, "erased_at")?,
            })
        })
        .collect()
}

async fn email_taken(conn: &mut PgConnection, key: &str, except: Option<Uuid>) -> Result<bool> {
    let id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM contacts WHERE email_key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    Ok(id.is_some_and(|id| Some(id) != except))
}

/// Maps a write that lost the race for an address to the conflict the check before it reports.
fn email_conflict(e: sqlx::Error, contacts: &[&Contact]) -> StoreError {
    if !rows::is_unique_violation(&e, EMAIL_KEY_CONSTRAINT) {
        return backend(e);
    }
    let key = rows::violating_key(&e);
    let culprit = contacts
        .iter()
        .find(|c| key == Some(c.email.key().as_str()))
        .or(contacts.first());
    match culprit {
        Some(c) => StoreError::duplicate_email(c.email.as_str()),
        None => backend(e),
    }
}

/// The groups, locked against deletion until the commit.
async fn existing_groups(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Group>> {
    let mut groups = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        match load_group(conn, *id, Lock::KeyShare).await {
            Ok(g) => groups.push(g),
            Err(StoreError::NotFound) => {
                return Err(StoreError::invalid(format!("groups[{i}]"), "no such group"));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(groups)
}

pub async fn create(
    conn: &mut PgConnection,
    input: ContactInput,
    ctx: ChangeContext,
) -> Result<ContactRecord> {
    let defs = load_defs(conn, Lock::KeyShare).await?;
    let mut new = plan_create(&input, &defs).map_err(StoreError::Invalid)?;
    let groups = existing_groups(conn, &new.groups).await?;
    if email_taken(conn, &new.email.key(), None).await? {
        return Err(StoreError::duplicate_email(new.email.as_str()));
    }
    let hash = new.email.suppression_hash();
    let suppression = suppressions(conn, &[hash]).await?.pop();
    let mut events = vec![TimelineEvent::contact_created(ctx.source.as_str())];
    events.extend(apply_suppression(&mut new, suppression.as_ref()));
    let tags = new.tags.clone();
    let (contact, _, _) = new.into_contact(Uuid::now_v7(), ctx.at);
    insert_contacts(conn, &[&contact]).await?;
    insert_timeline(conn, contact.id, ctx.at, &events).await?;
    set_groups(conn, contact.id, &groups, true, ctx).await?;
    set_tags(conn, contact.id, &tags, true, ctx).await?;
    record(conn, contact.id, Lock::None).await
}

/// Inserts whole contacts, with one statement.
pub async fn insert_contacts(conn: &mut PgConnection, contacts: &[&Contact]) -> Result<()> {
    if contacts.is_empty() {
        return Ok(());
    }
    let n = contacts.len();
    let mut ids = Vec::with_capacity(n);
    let mut emails = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut first_names = Vec::with_capacity(n);
    let mut last_names = Vec::with_capacity(n);
    let mut phones = Vec::with_capacity(n);
    let mut languages = Vec::with_capacity(n);
    let mut time_zones = Vec::with_capacity(n);
    let mut owners = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let mut consents = Vec::with_capacity(n);
    let mut fields = Vec::with_capacity(n);
    let mut created = Vec::with_capacity(n);
    let mut updated = Vec::with_capacity(n);
    for c in contacts {
        ids.push(c.id);
        emails.push(c.email.as_str());
        keys.push(c.email.key());
        first_names.push(c.first_name.as_deref());
        last_names.push(c.last_name.as_deref());
        phones.push(c.phone.as_deref());
        languages.push(c.language.as_deref());
        time_zones.push(c.time_zone.as_deref());
        owners.push(c.owner_id);
        statuses.push(c.status.as_str());
        sources.push(c.source.as_deref());
        consents.push(c.consent.as_ref().map(Json));
        fields.push(Json(&c.fields));
        created.push(pg_ts(c.created_at));
        updated.push(pg_ts(c.updated_at));
    }
    sqlx::query(
        "INSERT INTO contacts (id, email, email_key, first_name, last_name, phone, language, \
         time_zone, owner_id, status, source, consent, fields, created_at, updated_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
         $6::text[], $7::text[], $8::text[], $9::uuid[], $10::text[], $11::text[], \
         $12::jsonb[], $13::jsonb[], $14::timestamptz[], $15::timestamptz[])",
    )
    .bind(ids)
    .bind(emails)
    .bind(keys)
    .bind(first_names)
    .bind(last_names)
    .bind(phones)
    .bind(languages)
    .bind(time_zones)
    .bind(owners)
    .bind(statuses)
    .bind(sources)
    .bind(consents)
    .bind(fields)
    .bind(created)
    .bind(updated)
    .execute(conn)
    .await
    .map_err(|e| email_conflict(e, contacts))?;
    Ok(())
}

pub async fn save_contact(conn: &mut PgConnection, c: &Contact) -> Result<()> {
    let consent = c
        .consent
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(backend)?;
    sqlx::query(
        "UPDATE contacts SET email = $1, email_key = $2, first_name = $3, last_name = $4, \
         phone = $5, language = $6, time_zone = $7, owner_id = $8, status = $9, source = $10, \
         consent = $11, fields = $12, updated_at = $13 WHERE id = $14",
    )
    .bind(c.email.as_str())
    .bind(c.email.key())
    .bind(&c.first_name)
    .bind(&c.last_name)
    .bind(&c.phone)
    .bind(&c.language)
    .bind(&c.time_zone)
    .bind(c.owner_id)
    .bind(c.status.as_str())
    .bind(&c.source)
    .bind(consent)
    .bind(serde_json::to_value(&c.fields).map_err(backend)?)
    .bind(pg_ts(c.updated_at))
    .bind(c.id)
    .execute(conn)
    .await
    .map_err(|e| email_conflict(e, &[c]))?;
    Ok(())
}

pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    patch: &ContactPatch,
    memberships: Memberships,
    ctx: ChangeContext,
) -> Result<()> {
    let current = record(conn, id, Lock::NoKeyUpdate).await?;
    let defs = load_defs(conn, Lock::KeyShare).await?;
    let (next, events) =
        plan_update(&current.contact, patch, &defs, ctx.at).map_err(StoreError::Invalid)?;
    if next.email != current.contact.email && email_taken(conn, &next.email.key(), Some(id)).await?
    {
        return Err(StoreError::duplicate_email(next.email.as_str()));
    }
    let wanted_groups = match &memberships.groups {
        Some(ids) => Some(existing_groups(conn, ids).await?),
        None => None,
    };
    let wanted_tags = match &memberships.tags {
        Some(names) => Some(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    TagName::parse(n).map_err(|r| StoreError::invalid(format!("tags[{i}]"), r))
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    if !events.is_empty() {
        save_contact(conn, &next).await?;
        insert_timeline(conn, id, ctx.at, &events).await?;
    }
    if let Some(wanted) = wanted_groups {
        let current_groups = existing_groups(conn, &current.groups).await?;
        let (added, removed) = diff(&current_groups, &wanted);
        set_groups(conn, id, &added, true, ctx).await?;
        set_groups(conn, id, &removed, false, ctx).await?;
    }
    if let Some(wanted) = wanted_tags {
        let current_tags: Vec<TagName> = current
            .tags
            .iter()
            .filter_map(|t| TagName::parse(t).ok())
            .collect();
        let (added, removed) = diff(&current_tags, &wanted);
        set_tags(conn, id, &added, true, ctx).await?;
        set_tags(conn, id, &removed, false, ctx).await?;
    }
    Ok(())
}

pub async fn change_status(
    conn: &mut PgConnection,
    id: Uuid,
    to: Status,
    reason: Option<&str>,
    ctx: ChangeContext,
) -> Result<()> {
    let mut contact = load(conn, id, Lock::NoKeyUpdate).await?;
    let Some(t) =
        plan_transition(contact.status, to, ctx.source, reason).map_err(transition_error)?
    else {
        return Ok(());
    };
    contact.status = t.to;
    contact.updated_at = ctx.at;
    save_contact(conn, &contact).await?;
    insert_timeline(conn, id, ctx.at, &[TimelineEvent::status_changed(&t)]).await
}

/// Joins or leaves the groups, writing a timeline entry only for what actually changed.
pub async fn set_groups(
    conn: &mut PgConnection,
    id: Uuid,
    groups: &[Group],
    member: bool,
    ctx: ChangeContext,
) -> Result<()> {
    let source = ctx.source.as_str();
    for g in groups {
        let changed = if member {
            sqlx::query(
                "INSERT INTO contact_groups (group_id, contact_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
        } else {
            sqlx::query("DELETE FROM contact_groups WHERE group_id = $1 AND contact_id = $2")
        }
        .bind(g.id)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?
        .rows_affected();
        if changed > 0 {
            let event = if member {
                TimelineEvent::group_joined(g.id, &g.name, source)
            } else {
                TimelineEvent::group_left(g.id, &g.name, source)
            };
            insert_timeline(conn, id, ctx.at, &[event]).await?;
        }
    }
    Ok(())
}

pub async fn set_tags(
    conn: &mut PgConnection,
    id: Uuid,
    tags: &[TagName],
    tagged: bool,
    ctx: ChangeContext,
) -> Result<()> {
    let source = ctx.source.as_str();
    for tag in tags {
        let Some(tag_id) = tag_id(conn, tag, tagged).await? else {
            continue;
        };
        let changed = if tagged {
            sqlx::query(
                "INSERT INTO contact_tags (tag_id, contact_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
        } else {
            sqlx::query("DELETE FROM contact_tags WHERE tag_id = $1 AND contact_id = $2")
        }
        .bind(tag_id)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?
        .rows_affected();
        if changed > 0 {
            let event = if tagged {
                TimelineEvent::tag_added(tag.as_str(), source)
            } else {
                TimelineEvent::tag_removed(tag.as_str(), source)
            };
            insert_timeline(conn, id, ctx.at, &[event]).await?;
        }
    }
    Ok(())
}

/// The ids of a group and all groups below it.
pub const SUBTREE: &str = "WITH RECURSIVE sel(id) AS (SELECT ";
pub const SUBTREE_END: &str = "::uuid UNION SELECT g.id FROM groups g JOIN sel ON g.parent_id = sel.id) \
     SELECT id FROM sel";

/// How a filter's group and tag conditions find their ids.
enum Members {
    /// Inside the query: the tag by its name, the group's subtree from its root.
    Lookup,
    /// Looked up beforehand: the group's subtree (`None` without a group filter). The caller
    /// starts from the tag's rows itself.
    Known(Option<Vec<Uuid>>),
}

/// The text a filter searches for, if any.
fn search_text(filter: &ContactFilter) -> Option<&str> {
    filter.q.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// Adds the filter's conditions on the contact whose id is `id`; the caller has written
/// `... WHERE <cond>`, and joined the contact as `c` if the filter has a status or a text.
/// Memberships are EXISTS conditions, answered from the (contact_id, ...) indexes alone, which
/// Postgres runs as semi-joins: a page of the newest contacts stops after a few probes, and a
/// count can walk the sets side by side in contact order.
fn push_filter(q: &mut QueryBuilder<Postgres>, filter: &ContactFilter, id: &str, members: Members) {
    if let Some(status) = filter.status {
        q.push(" AND c.status = ").push_bind(status.as_str());
    }
    // `= ANY` of a whole array is a filter on each index entry: one index descent per contact
    // however many groups the subtree has.
    let lookup = matches!(members, Members::Lookup);
    match (filter.group, members) {
        (Some(root), Members::Lookup) => {
            q.push(format!(
                " AND EXISTS (SELECT 1 FROM contact_groups cg WHERE cg.contact_id = {id} \
                 AND cg.group_id = ANY(ARRAY({SUBTREE}"
            ))
            .push_bind(root)
            .push(SUBTREE_END)
            .push(")))");
        }
        (_, Members::Known(Some(groups))) => {
            q.push(format!(
                " AND EXISTS (SELECT 1 FROM contact_groups cg WHERE cg.contact_id = {id} \
                 AND cg.group_id = ANY("
            ))
            .push_bind(groups)
            .push("))");
        }
        _ => {}
    }
    if let (Some(tag), true) = (&filter.tag, lookup) {
        q.push(format!(
            " AND EXISTS (SELECT 1 FROM contact_tags ct WHERE ct.contact_id = {id} \
             AND ct.tag_id = (SELECT id FROM tags WHERE name = "
        ))
        .push_bind(tag.clone())
        .push("))");
    }
    if let Some(text) = search_text(filter) {
        // A prefix, so that the text_pattern_ops indexes answer it at any size.
        let pattern = format!("{}%", escape_like(&text.to_lowercase()));
        q.push(" AND (c.email_key LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR lower(c.first_name) LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR lower(c.last_name) LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub async fn list(
    conn: &mut PgConnection,
    filter: &ContactFilter,
    page: PageRequest,
) -> Result<Page<ContactRecord>> {
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE 1 = 1"
    ));
    push_filter(&mut q, filter, "c.id", Members::Lookup);
    if let Some(cursor) = page.cursor {
        q.push(" AND c.id < ").push_bind(cursor);
    }
    q.push(" ORDER BY c.id DESC LIMIT ")
        .push_bind(i64::from(page.limit) + 1);
    let found = q.build().fetch_all(&mut *conn).await.map_err(backend)?;
    let contacts = found
        .iter()
        .map(rows::contact)
        .collect::<Result<Vec<_>>>()?;
    let records = with_memberships(conn, contacts).await?;
    Ok(Page::from_rows(records, page.limit, |r| r.contact.id))
}

pub async fn count(conn: &mut PgConnection, filter: &ContactFilter) -> Result<u64> {
    if filter.tag.is_none() && filter.group.is_none() {
        let mut q = QueryBuilder::<Postgres>::new("SELECT count(*) FROM contacts c WHERE 1 = 1");
        push_filter(&mut q, filter, "c.id", Members::Lookup);
        let n: i64 = q
            .build_query_scalar()
            .fetch_one(conn)
            .await
            .map_err(backend)?;
        return Ok(n.unsigned_abs());
    }
    // The tag and the groups are looked up first and bound as values, in a statement planned
    // with them (not a cached generic plan), so that the planner sees from the statistics how
    // many contacts carry the tag: a few are probed one by one, many are walked in contact order
    // together with the status and membership indexes.
    let tag = match &filter.tag {
        Some(name) => {
            let id: Option<i64> = sqlx::query_scalar("SELECT id FROM tags WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?;
            match id {
                Some(id) => Some(id),
                None => return Ok(0),
            }
        }
        None => None,
    };
    let groups = match filter.group {
        Some(root) => Some(
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("{SUBTREE}$1{SUBTREE_END}")))
                .bind(root)
                .fetch_all(&mut *conn)
                .await
                .map_err(backend)?,
        ),
        None => None,
    };
    // A tag is usually the smallest set, and its rows are stored in contact order. The contact
    // row itself is only needed for its status or its names.
    let contact = filter.status.is_some() || search_text(filter).is_some();
    let (mut q, id) = match (tag, contact) {
        (Some(tag), true) => {
            let mut q = QueryBuilder::<Postgres>::new(
                "SELECT count(*) FROM contact_tags ct JOIN contacts c ON c.id = ct.contact_id \
                 WHERE ct.tag_id = ",
            );
            q.push_bind(tag);
            (q, "c.id")
        }
        (Some(tag), false) => {
            let mut q = QueryBuilder::<Postgres>::new(
                "SELECT count(*) FROM contact_tags ct WHERE ct.tag_id = ",
            );
            q.push_bind(tag);
            (q, "ct.contact_id")
        }
        (None, _) => (
            QueryBuilder::<Postgres>::new("SELECT count(*) FROM contacts c WHERE 1 = 1"),
            "c.id",
        ),
    };
    push_filter(&mut q, filter, id, Members::Known(groups));
    let mut tx = conn.begin().await.map_err(backend)?;
    // Measured at a million contacts on two cores: merge joins of index-only scans take half
    // the time of the hash joins the planner prefers, and parallel workers only add overhead to
    // them; JIT compilation would cost more than it saves.
    sqlx::query(
        "SELECT set_config('enable_hashjoin', 'off', true), \
         set_config('max_parallel_workers_per_gather', '0', true), set_config('jit', 'off', true)",
    )
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    let n: i64 = q
        .build_query_scalar()
        .persistent(false)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(n.unsigned_abs())
}

pub async fn timeline(
    conn: &mut PgConnection,
    id: Uuid,
    page: PageRequest,
) -> Result<Page<TimelineEntry>> {
    load(conn, id, Lock::None).await?;
    let found = sqlx::query(
        "SELECT id, contact_id, at, kind, summary, data FROM timeline \
         WHERE contact_id = $1 AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(id)
    .bind(page.cursor)
    .bind(i64::from(page.limit) + 1)
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    let entries = found
        .iter()
        .map(rows::timeline_entry)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(entries, page.limit, |e| e.id))
}
