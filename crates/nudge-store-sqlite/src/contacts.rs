//! Contact rows, their memberships and timelines.

use crate::rows::{self, CONTACT_COLUMNS, backend, micros};
use crate::{load_defs, load_group};
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
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use std::collections::HashMap;
use uuid::Uuid;

pub async fn load(conn: &mut SqliteConnection, id: Uuid) -> Result<Contact> {
    let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id = ?");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| rows::contact(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub async fn record(conn: &mut SqliteConnection, id: Uuid) -> Result<ContactRecord> {
    let contact = load(conn, id).await?;
    let mut records = with_memberships(conn, vec![contact]).await?;
    records.pop().ok_or(StoreError::NotFound)
}

/// The contacts of `ids` that exist, with their groups and tags.
pub async fn records(conn: &mut SqliteConnection, ids: &[Uuid]) -> Result<Vec<ContactRecord>> {
    // Well below SQLite's limit on the variables of one statement (999 in old builds).
    const CHUNK: usize = 500;
    let mut records = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id IN ("
        ));
        push_ids(&mut q, chunk);
        q.push(")");
        let found = q.build().fetch_all(&mut *conn).await.map_err(backend)?;
        let contacts = found
            .iter()
            .map(rows::contact)
            .collect::<Result<Vec<_>>>()?;
        records.extend(with_memberships(conn, contacts).await?);
    }
    Ok(records)
}

/// Adds the groups and tags of each contact, read for all of them at once.
async fn with_memberships(
    conn: &mut SqliteConnection,
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
pub async fn memberships(conn: &mut SqliteConnection, ids: &[Uuid]) -> Result<MembershipMap> {
    let mut out: MembershipMap = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT cg.contact_id, cg.group_id FROM contact_groups cg \
         JOIN groups g ON g.id = cg.group_id WHERE cg.contact_id IN (",
    );
    push_ids(&mut q, ids);
    q.push(") ORDER BY g.name, g.id");
    for r in q.build().fetch_all(&mut *conn).await.map_err(backend)? {
        let contact: Uuid = r.try_get("contact_id").map_err(backend)?;
        let group: Uuid = r.try_get("group_id").map_err(backend)?;
        out.entry(contact).or_default().0.push(group);
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT ct.contact_id, t.name FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id \
         WHERE ct.contact_id IN (",
    );
    push_ids(&mut q, ids);
    q.push(") ORDER BY t.name");
    for r in q.build().fetch_all(&mut *conn).await.map_err(backend)? {
        let contact: Uuid = r.try_get("contact_id").map_err(backend)?;
        let tag: String = r.try_get("name").map_err(backend)?;
        out.entry(contact).or_default().1.push(tag);
    }
    Ok(out)
}

pub fn push_ids(q: &mut QueryBuilder<Sqlite>, ids: &[Uuid]) {
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
}

pub async fn insert_timeline(
    conn: &mut SqliteConnection,
    contact: Uuid,
    at: Timestamp,
    events: &[TimelineEvent],
) -> Result<()> {
    let entries: Vec<(Uuid, &TimelineEvent)> = events.iter().map(|e| (contact, e)).collect();
    write_timeline(conn, at, &entries).await
}

/// Timeline entries of any number of contacts, all at `at`, in the order given.
pub async fn insert_timelines(
    conn: &mut SqliteConnection,
    at: Timestamp,
    entries: &[(Uuid, TimelineEvent)],
) -> Result<()> {
    let entries: Vec<(Uuid, &TimelineEvent)> = entries.iter().map(|(c, e)| (*c, e)).collect();
    write_timeline(conn, at, &entries).await
}

pub async fn write_timeline(
    conn: &mut SqliteConnection,
    at: Timestamp,
    entries: &[(Uuid, &TimelineEvent)],
) -> Result<()> {
    // Six values a row: 2,000 rows stay under SQLite's 32,766 bound values.
    for chunk in entries.chunks(2000) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO timeline (id, contact_id, at, kind, summary, data) ",
        );
        q.push_values(chunk, |mut row, (contact, e)| {
            row.push_bind(Uuid::now_v7())
                .push_bind(*contact)
                .push_bind(micros(at))
                .push_bind(e.kind.as_str())
                .push_bind(e.summary.clone())
                .push_bind(e.data.to_string());
        });
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

/// The contacts with these ids that exist, by id.
pub async fn load_many(
    conn: &mut SqliteConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Contact>> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id IN ("
        ));
        push_ids(&mut q, chunk);
        q.push(")");
        for r in q.build().fetch_all(&mut *conn).await.map_err(backend)? {
            let c = rows::contact(&r)?;
            found.insert(c.id, c);
        }
    }
    Ok(found)
}

/// The id of a tag, created on first use when `create` is set.
pub async fn tag_id(
    conn: &mut SqliteConnection,
    tag: &TagName,
    create: bool,
) -> Result<Option<i64>> {
    if create {
        sqlx::query(
            "INSERT INTO tags (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(tag.as_str())
        .bind(micros(nudge_store::stored_now()))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    sqlx::query_scalar("SELECT id FROM tags WHERE name = ?")
        .bind(tag.as_str())
        .fetch_optional(conn)
        .await
        .map_err(backend)
}

pub async fn suppressions(
    conn: &mut SqliteConnection,
    hashes: &[String],
) -> Result<Vec<Suppression>> {
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT email_hash, status, erased_at FROM suppressions WHERE email_hash IN (",
    );
    let mut list = q.separated(", ");
    for h in hashes {
        list.push_bind(h.clone());
    }
    q.push(")");
    let found = q.build().fetch_all(conn).await.map_err(backend)?;
    found
        .iter()
        .map(|r| {
            let status: String = r.try_get("status").map_err(backend)?;
            Ok(Suppression {
                email_hash: r.try_get("email_hash").map_err(backend)?,
                status: status
                    .parse()
                    .map_err(|_| StoreError::Backend(format!("unknown status {status}")))?,
                erased_at: rows::ts(r.try_get("erased_at").map_err(backend)?)?,
            })
        })
        .collect()
}

async fn email_taken(conn: &mut SqliteConnection, key: &str, except: Option<Uuid>) -> Result<bool> {
    let id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM contacts WHERE email_key = ?")
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    Ok(id.is_some_and(|id| Some(id) != except))
}

async fn existing_groups(conn: &mut SqliteConnection, ids: &[Uuid]) -> Result<Vec<Group>> {
    let mut groups = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        match load_group(conn, *id).await {
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
    conn: &mut SqliteConnection,
    input: ContactInput,
    ctx: ChangeContext,
) -> Result<ContactRecord> {
    let defs = load_defs(conn).await?;
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
    insert_contacts(conn, std::slice::from_ref(&contact)).await?;
    insert_timeline(conn, contact.id, ctx.at, &events).await?;
    set_groups(conn, contact.id, &groups, true, ctx).await?;
    set_tags(conn, contact.id, &tags, true, ctx).await?;
    record(conn, contact.id).await
}

/// Inserts whole contacts with one statement (at most 2,000 rows: 30,000 bound values).
pub async fn insert_contacts(conn: &mut SqliteConnection, contacts: &[Contact]) -> Result<()> {
    for mut q in contact_inserts(contacts.iter())? {
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

/// Multi-row INSERT statements for the contacts, 1,000 rows each (15,000 bound values, under
/// SQLite's limit of 32,766).
pub fn contact_inserts<'a>(
    contacts: impl Iterator<Item = &'a Contact>,
) -> Result<Vec<QueryBuilder<Sqlite>>> {
    let mut statements = Vec::new();
    let mut encoded = Vec::with_capacity(1000);
    let mut flush = |encoded: &mut Vec<(&'a Contact, Option<String>, String)>| {
        if encoded.is_empty() {
            return;
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO contacts (id, email, email_key, first_name, last_name, phone, language, \
             time_zone, owner_id, status, source, consent, fields, created_at, updated_at) ",
        );
        q.push_values(encoded.drain(..), |mut row, (c, consent, fields)| {
            row.push_bind(c.id)
                .push_bind(c.email.to_string())
                .push_bind(c.email.key())
                .push_bind(c.first_name.clone())
                .push_bind(c.last_name.clone())
                .push_bind(c.phone.clone())
                .push_bind(c.language.clone())
                .push_bind(c.time_zone.clone())
                .push_bind(c.owner_id)
                .push_bind(c.status.as_str())
                .push_bind(c.source.clone())
                .push_bind(consent)
                .push_bind(fields)
                .push_bind(micros(c.created_at))
                .push_bind(micros(c.updated_at));
        });
        statements.push(q);
    };
    for c in contacts {
        let consent = c
            .consent
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(backend)?;
        let fields = serde_json::to_string(&c.fields).map_err(backend)?;
        encoded.push((c, consent, fields));
        if encoded.len() == 1000 {
            flush(&mut encoded);
        }
    }
    flush(&mut encoded);
    Ok(statements)
}

pub async fn save_contact(conn: &mut SqliteConnection, c: &Contact) -> Result<()> {
    let consent = c
        .consent
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(backend)?;
    sqlx::query(
        "UPDATE contacts SET email = ?, email_key = ?, first_name = ?, last_name = ?, phone = ?, \
         language = ?, time_zone = ?, owner_id = ?, status = ?, source = ?, consent = ?, \
         fields = ?, updated_at = ? WHERE id = ?",
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
    .bind(serde_json::to_string(&c.fields).map_err(backend)?)
    .bind(micros(c.updated_at))
    .bind(c.id)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub async fn update(
    conn: &mut SqliteConnection,
    id: Uuid,
    patch: &ContactPatch,
    memberships: Memberships,
    ctx: ChangeContext,
) -> Result<()> {
    let current = record(conn, id).await?;
    let defs = load_defs(conn).await?;
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
    conn: &mut SqliteConnection,
    id: Uuid,
    to: Status,
    reason: Option<&str>,
    ctx: ChangeContext,
) -> Result<()> {
    let mut contact = load(conn, id).await?;
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
    conn: &mut SqliteConnection,
    id: Uuid,
    groups: &[Group],
    member: bool,
    ctx: ChangeContext,
) -> Result<()> {
    let source = ctx.source.as_str();
    for g in groups {
        let changed = if member {
            sqlx::query("INSERT INTO contact_groups (group_id, contact_id) VALUES (?, ?) ON CONFLICT DO NOTHING")
        } else {
            sqlx::query("DELETE FROM contact_groups WHERE group_id = ? AND contact_id = ?")
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
    conn: &mut SqliteConnection,
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
            sqlx::query("INSERT INTO contact_tags (tag_id, contact_id) VALUES (?, ?) ON CONFLICT DO NOTHING")
        } else {
            sqlx::query("DELETE FROM contact_tags WHERE tag_id = ? AND contact_id = ?")
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

/// How a filter's membership conditions are written: as correlated `EXISTS` probes, which stop
/// as soon as a page is full, or as `IN` lists, which SQLite builds once for a whole count.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Membership {
    Exists,
    InList,
}

const SUBTREE: &str = "WITH RECURSIVE sel(id) AS (SELECT ";
const SUBTREE_END: &str =
    " UNION SELECT g.id FROM groups g JOIN sel ON g.parent_id = sel.id) SELECT id FROM sel";

/// Adds the filter's conditions; the caller has written `... WHERE 1 = 1`. `skip_tag` leaves
/// the tag out for a query that is already driven by the tag's rows.
fn push_filter(
    q: &mut QueryBuilder<Sqlite>,
    filter: &ContactFilter,
    how: Membership,
    skip_tag: bool,
) {
    if let Some(status) = filter.status {
        q.push(" AND c.status = ").push_bind(status.as_str());
    }
    if let Some(group) = filter.group {
        match how {
            Membership::Exists => q.push(
                " AND EXISTS (SELECT 1 FROM contact_groups cg WHERE cg.contact_id = c.id \
                 AND cg.group_id IN (",
            ),
            Membership::InList => q.push(
                " AND c.id IN (SELECT cg.contact_id FROM contact_groups cg WHERE cg.group_id IN (",
            ),
        };
        q.push(SUBTREE)
            .push_bind(group)
            .push(SUBTREE_END)
            .push("))");
    }
    if let (Some(tag), false) = (&filter.tag, skip_tag) {
        match how {
            Membership::Exists => q.push(
                " AND EXISTS (SELECT 1 FROM contact_tags ct WHERE ct.contact_id = c.id \
                 AND ct.tag_id = (SELECT id FROM tags WHERE name = ",
            ),
            Membership::InList => q.push(
                " AND c.id IN (SELECT ct.contact_id FROM contact_tags ct \
                 WHERE ct.tag_id = (SELECT id FROM tags WHERE name = ",
            ),
        };
        q.push_bind(tag.clone()).push("))");
    }
    if let Some((lo, hi)) = filter.q.as_deref().and_then(prefix_range) {
        // Three index range scans (email_key, lower(first_name), lower(last_name)) joined by OR.
        q.push(" AND (");
        for (i, column) in ["c.email_key", "lower(c.first_name)", "lower(c.last_name)"]
            .iter()
            .enumerate()
        {
            if i > 0 {
                q.push(" OR ");
            }
            q.push(format!("({column} >= "))
                .push_bind(lo.clone())
                .push(format!(" AND {column} < "))
                .push_bind(hi.clone())
                .push(")");
        }
        q.push(")");
    }
}

/// The range of texts that start with `q`, lower-cased the way SQLite's `lower()` does (ASCII).
fn prefix_range(q: &str) -> Option<(String, String)> {
    let lo = q.trim().to_ascii_lowercase();
    if lo.is_empty() {
        return None;
    }
    let hi = format!("{lo}{}", char::MAX);
    Some((lo, hi))
}

pub async fn list(
    conn: &mut SqliteConnection,
    filter: &ContactFilter,
    page: PageRequest,
) -> Result<Page<ContactRecord>> {
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE 1 = 1"
    ));
    push_filter(&mut q, filter, Membership::Exists, false);
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

pub async fn count(conn: &mut SqliteConnection, filter: &ContactFilter) -> Result<u64> {
    // A tag is usually the smallest set, and its rows are stored together: walking them and
    // probing each contact beats building a list of every member of a large group.
    let mut q = match &filter.tag {
        Some(tag) => {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT count(*) FROM contact_tags ct CROSS JOIN contacts c ON c.id = ct.contact_id \
                 WHERE ct.tag_id = (SELECT id FROM tags WHERE name = ",
            );
            q.push_bind(tag.clone()).push(")");
            q
        }
        None => QueryBuilder::<Sqlite>::new("SELECT count(*) FROM contacts c WHERE 1 = 1"),
    };
    let how = if filter.tag.is_some() {
        Membership::Exists
    } else {
        Membership::InList
    };
    push_filter(&mut q, filter, how, true);
    let n: i64 = q
        .build_query_scalar()
        .fetch_one(conn)
        .await
        .map_err(backend)?;
    Ok(n.unsigned_abs())
}

pub async fn timeline(
    conn: &mut SqliteConnection,
    id: Uuid,
    page: PageRequest,
) -> Result<Page<TimelineEntry>> {
    load(conn, id).await?;
    let found = sqlx::query(
        "SELECT id, contact_id, at, kind, summary, data FROM timeline \
         WHERE contact_id = ? AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
    )
    .bind(id)
    .bind(page.cursor)
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
