//! One import batch: the lookups for the whole batch first, then multi-row inserts.

use crate::contacts::{self, contact_inserts, insert_timeline, save_contact, suppressions};
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
    // Each statement is built while SQLite runs the one before it: building (binding tens of
    // thousands of values) and executing happen on different threads, so they overlap.
    let tag_ids = created_tag_ids(conn, &plan.created).await?;
    let contacts = contact_inserts(plan.created.iter().map(|r| &r.contact))?;
    let (ran, timeline) = tokio::join!(biased; execute_all(conn, contacts), async {
        timeline_inserts(&plan.created, at)
    });
    ran?;
    let (ran, memberships) = tokio::join!(biased; execute_all(conn, timeline), async {
        membership_inserts(&plan.created, &tag_ids, group.as_ref())
    });
    ran?;
    execute_all(conn, memberships).await?;
    Ok(plan.outcomes)
}

async fn execute_all(
    conn: &mut SqliteConnection,
    statements: Vec<QueryBuilder<Sqlite>>,
) -> Result<()> {
    for mut q in statements {
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

/// The timelines of all new contacts, 2,000 entries a statement.
fn timeline_inserts(created: &[PlannedRow], at: Timestamp) -> Vec<QueryBuilder<Sqlite>> {
    let all: Vec<(Uuid, &TimelineEvent)> = created
        .iter()
        .flat_map(|r| r.events.iter().map(move |e| (r.contact.id, e)))
        .collect();
    all.chunks(INSERT_CHUNK * 2)
        .map(|chunk| {
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
            q
        })
        .collect()
}

/// The ids of the tags the new contacts carry, each looked up (or made) once per batch.
async fn created_tag_ids(
    conn: &mut SqliteConnection,
    created: &[PlannedRow],
) -> Result<HashMap<String, i64>> {
    let mut ids: HashMap<String, i64> = HashMap::new();
    for tag in created.iter().flat_map(|r| &r.tags) {
        if ids.contains_key(tag.as_str()) {
            continue;
        }
        let id = contacts::tag_id(conn, tag, true)
            .await?
            .ok_or_else(|| StoreError::Backend(format!("tag {tag} vanished")))?;
        ids.insert(tag.as_str().to_owned(), id);
    }
    Ok(ids)
}

/// The group and tag memberships of the new contacts.
fn membership_inserts(
    created: &[PlannedRow],
    tag_ids: &HashMap<String, i64>,
    group: Option<&nudge_store::Group>,
) -> Vec<QueryBuilder<Sqlite>> {
    let mut statements = Vec::new();
    if let Some(g) = group {
        for chunk in created.chunks(INSERT_CHUNK * 10) {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT INTO contact_groups (group_id, contact_id) ");
            q.push_values(chunk, |mut row, r| {
                row.push_bind(g.id).push_bind(r.contact.id);
            });
            q.push(" ON CONFLICT DO NOTHING");
            statements.push(q);
        }
    }
    let pairs: Vec<(i64, Uuid)> = created
        .iter()
        .flat_map(|r| {
            r.tags
                .iter()
                .filter_map(|t| tag_ids.get(t.as_str()).map(|id| (*id, r.contact.id)))
        })
        .collect();
    for chunk in pairs.chunks(INSERT_CHUNK * 10) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO contact_tags (tag_id, contact_id) ");
        q.push_values(chunk, |mut row, (tag, contact)| {
            row.push_bind(*tag).push_bind(*contact);
        });
        q.push(" ON CONFLICT DO NOTHING");
        statements.push(q);
    }
    statements
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
