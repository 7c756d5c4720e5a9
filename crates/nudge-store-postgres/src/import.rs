//! One import batch: the lookups for the whole batch first, then one INSERT per table.

use crate::contacts::{self, insert_contacts, insert_timeline, save_contact, suppressions};
use crate::rows::{self, CONTACT_COLUMNS, backend};
use crate::{Lock, load_defs, load_group};
use jiff::Timestamp;
use nudge_core::timeline::TimelineEvent;
use nudge_core::{ChangeSource, Contact};
use nudge_store::plan::{BatchKeys, PlannedRow, plan_batch};
use nudge_store::{
    ChangeContext, ImportOptions, ImportRow, Result, RowOutcome, StoreError, Suppression,
};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// Runs the batch in the caller's transaction. `rows` is borrowed so that the caller can run it
/// again after losing a race for an address.
pub async fn batch(
    conn: &mut PgConnection,
    rows: &[ImportRow],
    options: &ImportOptions,
    at: Timestamp,
) -> Result<Vec<RowOutcome>> {
    let defs = load_defs(conn, Lock::KeyShare).await?;
    let group = match options.group {
        Some(id) => Some(
            load_group(conn, id, Lock::KeyShare)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => StoreError::invalid("group", "no such group"),
                    other => other,
                })?,
        ),
        None => None,
    };
    let keys = BatchKeys::new(rows);
    let existing = existing_by_key(conn, &keys.keys()).await?;
    let suppressed: HashMap<String, Suppression> = suppressions(conn, &keys.hashes())
        .await?
        .into_iter()
        .map(|s| (s.email_hash.clone(), s))
        .collect();
    let plan = plan_batch(
        rows,
        &keys,
        group.as_ref().map(|g| (g.id, g.name.as_str())),
        existing,
        &suppressed,
        &defs,
        options.existing,
        at,
    );

    let ctx = ChangeContext::new(ChangeSource::Import, at);
    for row in &plan.updated {
        save_contact(conn, &row.contact).await?;
        insert_timeline(conn, row.contact.id, at, &row.events).await?;
        contacts::set_tags(conn, row.contact.id, &row.tags, true, ctx).await?;
        if let Some(g) = &group {
            contacts::set_groups(conn, row.contact.id, std::slice::from_ref(g), true, ctx).await?;
        }
    }
    let created: Vec<&Contact> = plan.created.iter().map(|r| &r.contact).collect();
    insert_contacts(conn, &created).await?;
    insert_created_timelines(conn, &plan.created, at).await?;
    insert_created_tags(conn, &plan.created).await?;
    if let (Some(g), false) = (&group, created.is_empty()) {
        // The contacts are new, so none of them can be a member yet: a plain INSERT, cheaper
        // than ON CONFLICT's speculative insertion.
        let ids: Vec<Uuid> = created.iter().map(|c| c.id).collect();
        sqlx::query(
            "INSERT INTO contact_groups (group_id, contact_id) SELECT $1, UNNEST($2::uuid[])",
        )
        .bind(g.id)
        .bind(ids)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    Ok(plan.outcomes)
}

/// The timelines of all new contacts.
async fn insert_created_timelines(
    conn: &mut PgConnection,
    created: &[PlannedRow],
    at: Timestamp,
) -> Result<()> {
    let all: Vec<(Uuid, &TimelineEvent)> = created
        .iter()
        .flat_map(|r| r.events.iter().map(move |e| (r.contact.id, e)))
        .collect();
    contacts::insert_timelines(conn, at, &all).await
}

/// Tags of the new contacts: each distinct tag is looked up (or made) once per batch.
async fn insert_created_tags(conn: &mut PgConnection, created: &[PlannedRow]) -> Result<()> {
    let mut ids: HashMap<&str, i64> = HashMap::new();
    let mut pairs: Vec<(i64, Uuid)> = Vec::new();
    for row in created {
        let mut tags = Vec::with_capacity(row.tags.len());
        for tag in &row.tags {
            let id = match ids.get(tag.as_str()) {
                Some(id) => *id,
                None => {
                    let id = contacts::tag_id(conn, tag, true)
                        .await?
                        .ok_or_else(|| StoreError::Backend(format!("tag {tag} vanished")))?;
                    ids.insert(tag.as_str(), id);
                    id
                }
            };
            tags.push(id);
        }
        // New contacts have no tags yet, so only a tag named twice in one row could collide;
        // dropping that here lets the INSERT below do without ON CONFLICT.
        tags.sort_unstable();
        tags.dedup();
        pairs.extend(tags.into_iter().map(|t| (t, row.contact.id)));
    }
    if pairs.is_empty() {
        return Ok(());
    }
    let (tags, contacts): (Vec<i64>, Vec<Uuid>) = pairs.into_iter().unzip();
    sqlx::query(
        "INSERT INTO contact_tags (tag_id, contact_id) SELECT * FROM UNNEST($1::int8[], $2::uuid[])",
    )
    .bind(tags)
    .bind(contacts)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// The stored contacts with these addresses, locked until the commit because the batch may
/// rewrite them. Locking in id order keeps two overlapping batches from deadlocking.
async fn existing_by_key(
    conn: &mut PgConnection,
    keys: &[String],
) -> Result<HashMap<String, Contact>> {
    let mut out = HashMap::new();
    if keys.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.email_key = ANY($1) \
         ORDER BY c.id{}",
        Lock::NoKeyUpdate.clause()
    );
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(keys)
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    for r in &found {
        let c = rows::contact(r)?;
        out.insert(c.email.key(), c);
    }
    Ok(out)
}
