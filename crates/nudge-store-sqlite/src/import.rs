//! One import batch: the lookups for the whole batch first, then multi-row inserts.

use crate::contacts::{self, insert_contacts, insert_timeline, save_contact, suppressions};
use crate::rows::{self, CONTACT_COLUMNS, backend, micros};
use crate::{load_defs, load_group};
use jiff::Timestamp;
use nudge_core::timeline::TimelineEvent;
use nudge_core::{ChangeSource, Contact, Email};
use nudge_store::plan::{ImportDecision, plan_import_row};
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
    let emails: Vec<Email> = rows
        .iter()
        .filter_map(|r| r.input.email.as_deref())
        .filter_map(|e| Email::parse(e).ok())
        .collect();
    let keys: Vec<String> = emails.iter().map(Email::key).collect();
    let mut existing = existing_by_key(conn, &keys).await?;
    let hashes: Vec<String> = emails.iter().map(Email::suppression_hash).collect();
    let suppressed: HashMap<String, Suppression> = suppressions(conn, &hashes)
        .await?
        .into_iter()
        .map(|s| (s.email_hash.clone(), s))
        .collect();

    let mut outcomes = Vec::with_capacity(rows.len());
    let mut created: Vec<Contact> = Vec::new();
    let mut created_events: Vec<(Uuid, Vec<TimelineEvent>)> = Vec::new();
    for row in &rows {
        let email = row
            .input
            .email
            .as_deref()
            .and_then(|e| Email::parse(e).ok());
        let key = email.as_ref().map(Email::key);
        let current = key.as_ref().and_then(|k| existing.get(k));
        let suppression = email
            .as_ref()
            .and_then(|e| suppressed.get(&e.suppression_hash()));
        match plan_import_row(
            row.line,
            &row.input,
            current,
            suppression,
            &defs,
            options.existing,
            at,
        ) {
            ImportDecision::Nothing(outcome) => outcomes.push(outcome),
            ImportDecision::Create {
                mut contact,
                events,
                outcome,
            } => {
                contact.source.get_or_insert_with(|| "import".to_owned());
                let (contact, _, _) = contact.into_contact(Uuid::now_v7(), at);
                if let Some(k) = key {
                    // A later row with the same address in this batch updates this one.
                    existing.insert(k, contact.clone());
                }
                created_events.push((contact.id, events));
                created.push(contact);
                outcomes.push(outcome);
            }
            ImportDecision::Update { contact, events } => {
                if let Some(pending) = created.iter_mut().find(|c| c.id == contact.id) {
                    *pending = contact.clone();
                    if let Some((_, list)) =
                        created_events.iter_mut().find(|(id, _)| *id == contact.id)
                    {
                        list.extend(events.into_iter().skip(1));
                    }
                } else {
                    save_contact(conn, &contact).await?;
                    insert_timeline(conn, contact.id, at, &events).await?;
                    if let Some(g) = &group {
                        let ctx = ChangeContext::new(ChangeSource::Import, at);
                        contacts::set_groups(conn, contact.id, std::slice::from_ref(g), true, ctx)
                            .await?;
                    }
                }
                if let Some(k) = key {
                    existing.insert(k, contact);
                }
                outcomes.push(RowOutcome::Updated);
            }
        }
    }

    for chunk in created.chunks(INSERT_CHUNK) {
        insert_contacts(conn, chunk).await?;
    }
    insert_created_timelines(conn, &created_events, at, group.as_ref()).await?;
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
    Ok(outcomes)
}

/// The timelines of all new contacts, with a group-joined entry each when a group is given.
async fn insert_created_timelines(
    conn: &mut SqliteConnection,
    created: &[(Uuid, Vec<TimelineEvent>)],
    at: Timestamp,
    group: Option<&nudge_store::Group>,
) -> Result<()> {
    let joined = group.map(|g| TimelineEvent::group_joined(g.id, &g.name, "import"));
    let all: Vec<(Uuid, &TimelineEvent)> = created
        .iter()
        .flat_map(|(id, events)| events.iter().chain(joined.as_ref()).map(move |e| (*id, e)))
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
