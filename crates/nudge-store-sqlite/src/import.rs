//! One import batch: the lookups for the whole batch first, then multi-row inserts.

use crate::contacts::{self, insert_contacts, insert_timeline, save_contact, suppressions};
use crate::rows::{self, CONTACT_COLUMNS, backend, micros};
use crate::{load_defs, load_group};
use jiff::Timestamp;
use nudge_core::timeline::TimelineEvent;
use nudge_core::{ChangeSource, Contact};
use nudge_store::plan::{BatchKeys, PlannedRow, plan_batch};
use nudge_store::{
    ChangeContext, ImportOptions, ImportRow, Result, RowOutcome, StoreError, Suppression,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::HashMap;
use uuid::Uuid;

/// Rows per multi-row INSERT: 15 columns each stays under SQLite's 32,766 bound values.
const INSERT_CHUNK: usize = 1000;

pub async fn batch(
    conn: &mut SqliteConnection,
    rows: Vec<ImportRow>,
    options: &ImportOptions,
    at: Timestamp,
) -> Result<Vec<RowOutcome>> {
    let defs = load_defs(conn).await?;
    let group = match options.group {
        Some(id) => Some(load_group(conn, id).await.map_err(|e| match e {
            StoreError::NotFound => StoreError::invalid("group", "no such group"),
            other => other,
        })?),
        None => None,
    };
    let keys = BatchKeys::new(&rows);
    let existing = existing_by_key(conn, &keys.keys()).await?;
    let suppressed: HashMap<String, Suppression> = suppressions(conn, &keys.hashes())
        .await?
        .into_iter()
        .map(|s| (s.email_hash.clone(), s))
        .collect();
    let plan = plan_batch(
        &rows,
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
    let created: Vec<Contact> = plan.created.iter().map(|r| r.contact.clone()).collect();
    for chunk in created.chunks(INSERT_CHUNK) {
        insert_contacts(conn, chunk).await?;
    }
    insert_created_timelines(conn, &plan.created, at).await?;
    insert_created_tags(conn, &plan.created).await?;
    if let Some(g) = &group {
        for chunk in created.chunks(INSERT_CHUNK * 10) {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT INTO contact_groups (group_id, contact_id) ");
            q.push_values(chunk, |mut row, c| {
                row.push_bind(g.id).push_bind(c.id);
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut *conn).await.map_err(backend)?;
        }
    }
    Ok(plan.outcomes)
}

/// The timelines of all new contacts.
async fn insert_created_timelines(
    conn: &mut SqliteConnection,
    created: &[PlannedRow],
    at: Timestamp,
) -> Result<()> {
    let all: Vec<(Uuid, &TimelineEvent)> = created
        .iter()
        .flat_map(|r| r.events.iter().map(move |e| (r.contact.id, e)))
        .collect();
    for chunk in all.chunks(INSERT_CHUNK * 2) {
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

/// Tags of the new contacts: each distinct tag is looked up (or made) once per batch.
async fn insert_created_tags(conn: &mut SqliteConnection, created: &[PlannedRow]) -> Result<()> {
    let mut ids: HashMap<&str, i64> = HashMap::new();
    let mut pairs: Vec<(i64, Uuid)> = Vec::new();
    for row in created {
        let contact = &row.contact.id;
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
            pairs.push((id, *contact));
        }
    }
    for chunk in pairs.chunks(INSERT_CHUNK * 10) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO contact_tags (tag_id, contact_id) ");
        q.push_values(chunk, |mut row, (tag, contact)| {
            row.push_bind(*tag).push_bind(*contact);
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

async fn existing_by_key(
    conn: &mut SqliteConnection,
    keys: &[String],
) -> Result<HashMap<String, Contact>> {
    let mut out = HashMap::new();
    for chunk in keys.chunks(INSERT_CHUNK * 10) {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.email_key IN ("
        ));
        let mut list = q.separated(", ");
        for k in chunk {
            list.push_bind(k.clone());
        }
        q.push(")");
        for r in q.build().fetch_all(&mut *conn).await.map_err(backend)? {
            let c = rows::contact(&r)?;
            out.insert(c.email.key(), c);
        }
    }
    Ok(out)
}
