//! Forms, and what a submission writes (product.md §4).

use crate::contacts::{self, insert_timeline};
use crate::rows::{backend, micros, ts};
use crate::sequences::{self, Entry};
use crate::{load_defs, load_group, messages};
use jiff::Timestamp;
use nudge_core::form::{FormDef, consent, submission_input, submission_patch, submission_status};
use nudge_core::timeline::TimelineEvent;
use nudge_core::{ChangeSource, MessageClass};
use nudge_store::sequences::{form_from_json, form_to_json};
use nudge_store::{
    ChangeContext, FormRecord, FormSubmission, Memberships, NewMessage, Result, StoreError,
    SubmissionOutcome,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

const COLUMNS: &str = "id, slug, name, definition, created_at, updated_at";

fn form(r: &SqliteRow) -> Result<FormRecord> {
    let definition: String = r.try_get("definition").map_err(backend)?;
    let definition: serde_json::Value = serde_json::from_str(&definition)
        .map_err(|e| StoreError::Backend(format!("stored form is unreadable: {e}")))?;
    Ok(FormRecord {
        id: r.try_get("id").map_err(backend)?,
        def: form_from_json(
            r.try_get("slug").map_err(backend)?,
            r.try_get("name").map_err(backend)?,
            &definition,
        )?,
        created_at: ts(r.try_get("created_at").map_err(backend)?)?,
        updated_at: ts(r.try_get("updated_at").map_err(backend)?)?,
    })
}

pub async fn get(conn: &mut SqliteConnection, id: Uuid) -> Result<FormRecord> {
    let sql = format!("SELECT {COLUMNS} FROM forms WHERE id = ?");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| form(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub async fn by_slug(conn: &mut SqliteConnection, slug: &str) -> Result<FormRecord> {
    let sql = format!("SELECT {COLUMNS} FROM forms WHERE slug = ?");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(slug)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| form(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub async fn list(conn: &mut SqliteConnection) -> Result<Vec<FormRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM forms ORDER BY created_at, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    rows.iter().map(form).collect()
}

/// The definition's rules against the stored fields, groups and sequences, then the slug
/// (taken by a form other than `except`).
async fn check(conn: &mut SqliteConnection, def: &FormDef, except: Option<Uuid>) -> Result<()> {
    let defs = load_defs(conn).await?;
    let groups: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM groups")
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    let mut errors = def.check(&defs, &groups).err().unwrap_or_default();
    if let Some(id) = def.sequence_id {
        match sequences::load(conn, id).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => errors.add("sequence_id", "no such sequence"),
            Err(e) => return Err(e),
        }
    }
    errors.into_result(()).map_err(StoreError::Invalid)?;
    let holder: Option<Uuid> = sqlx::query_scalar("SELECT id FROM forms WHERE slug = ?")
        .bind(&def.slug)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    match holder {
        Some(holder) if Some(holder) != except => Err(StoreError::Conflict {
            code: "duplicate_slug",
            field: Some("slug"),
            message: format!("another form already uses the slug {}", def.slug),
        }),
        _ => Ok(()),
    }
}

pub async fn create(
    conn: &mut SqliteConnection,
    def: FormDef,
    at: Timestamp,
) -> Result<FormRecord> {
    check(conn, &def, None).await?;
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO forms (id, slug, name, definition, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(&def.slug)
    .bind(&def.name)
    .bind(form_to_json(&def).to_string())
    .bind(micros(at))
    .bind(micros(at))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    get(conn, id).await
}

pub async fn update(
    conn: &mut SqliteConnection,
    id: Uuid,
    def: FormDef,
    at: Timestamp,
) -> Result<FormRecord> {
    get(conn, id).await?;
    check(conn, &def, Some(id)).await?;
    sqlx::query("UPDATE forms SET slug = ?, name = ?, definition = ?, updated_at = ? WHERE id = ?")
        .bind(&def.slug)
        .bind(&def.name)
        .bind(form_to_json(&def).to_string())
        .bind(micros(at))
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    get(conn, id).await
}

pub async fn delete(conn: &mut SqliteConnection, id: Uuid) -> Result<()> {
    let gone = sqlx::query("DELETE FROM forms WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await
        .map_err(backend)?;
    if gone.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn submit(
    conn: &mut SqliteConnection,
    submission: FormSubmission,
    at: Timestamp,
) -> Result<SubmissionOutcome> {
    let form = get(conn, submission.form_id).await?;
    let sub = &submission.submission;
    let ctx = ChangeContext::new(ChangeSource::Form, at);
    let ip = submission.ip.as_deref();
    // A form can outlive a group it offers or adds: such a group is passed over.
    let mut groups = Vec::with_capacity(sub.groups.len());
    for id in &sub.groups {
        match load_group(conn, *id).await {
            Ok(g) => groups.push(g),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    let consent = consent(sub, form.id, ip, at);
    let existing: Option<Uuid> = sqlx::query_scalar("SELECT id FROM contacts WHERE email_key = ?")
        .bind(sub.email.key())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    let submitted = |created| TimelineEvent::form_submitted(form.id, &form.def.name, ip, created);
    let (id, created) = match existing {
        None => {
            let mut input = submission_input(sub, &form.def, consent);
            input.groups = groups.iter().map(|g| g.id).collect();
            let id = contacts::create(conn, input, ctx).await?.contact.id;
            insert_timeline(conn, id, at, &[submitted(true)]).await?;
            (id, true)
        }
        Some(id) => {
            insert_timeline(conn, id, at, &[submitted(false)]).await?;
            let current = contacts::load(conn, id).await?;
            let patch = submission_patch(&current, sub);
            contacts::update(conn, id, &patch, Memberships::default(), ctx).await?;
            contacts::set_groups(conn, id, &groups, true, ctx).await?;
            let mut contact = contacts::load(conn, id).await?;
            contact.consent = Some(consent);
            contact.updated_at = at;
            contacts::save_contact(conn, &contact).await?;
            (id, false)
        }
    };

    let status = contacts::load(conn, id).await?.status;
    let (to, confirm) = submission_status(status, form.def.double_opt_in);
    if let Some(to) = to {
        contacts::change_status(conn, id, to, None, ctx).await?;
    }
    let transactional = |content, idempotency_key| NewMessage {
        contact_id: id,
        class: MessageClass::Transactional,
        content,
        idempotency_key,
        due_at: at,
    };
    if confirm {
        let key = format!("confirm:{id}:{}", micros(at));
        let message = transactional(submission.confirmation.clone(), key);
        messages::queue_to(conn, message, None, at).await?;
    }
    for (i, address) in form.def.notify.iter().enumerate() {
        let key = format!("notify:{}:{id}:{}:{i}", form.id, micros(at));
        let message = transactional(submission.notification.clone(), key);
        messages::queue_to(conn, message, Some(address), at).await?;
    }

    let enrolment = match form.def.sequence_id {
        Some(sequence_id) => match sequences::load(conn, sequence_id).await {
            Ok(sequence) => {
                let entry = Entry {
                    sequence: &sequence,
                    contact: id,
                    how: "form",
                };
                sequences::enrol(conn, &[entry], at).await?.first().copied()
            }
            // The sequence was deleted after the form was saved: the form still works.
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    Ok(SubmissionOutcome {
        contact_id: id,
        created,
        confirmation: confirm,
        enrolment,
    })
}
