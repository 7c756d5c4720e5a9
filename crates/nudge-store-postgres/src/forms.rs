//! Forms, their submissions and double opt-in confirmations on PostgreSQL.

use crate::contacts::{self, insert_timeline};
use crate::messages::{self, Outgoing};
use crate::rows::{self, backend, pg_ts};
use crate::sequences::{self, NewEnrolment};
use crate::{Lock, load_defs};
use jiff::Timestamp;
use nudge_core::form::{FormDef, consent, submission_input, submission_patch, submission_status};
use nudge_core::timeline::TimelineEvent;
use nudge_core::{ChangeSource, Consent, MessageClass, Status};
use nudge_store::sequences::{form_from_json, form_to_json};
use nudge_store::{
    ChangeContext, ContactRecord, FormRecord, FormSubmission, Group, Memberships, NewMessage,
    Result, StoreError, SubmissionOutcome,
};
use sqlx::PgConnection;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

const COLUMNS: &str = "id, slug, name, definition, created_at, updated_at";

/// The unique index on `forms.slug`, which reports a lost race for a slug.
const SLUG_CONSTRAINT: &str = "forms_slug_key";

fn form(r: &PgRow) -> Result<FormRecord> {
    let definition: serde_json::Value = r.try_get("definition").map_err(backend)?;
    Ok(FormRecord {
        id: r.try_get("id").map_err(backend)?,
        def: form_from_json(
            r.try_get("slug").map_err(backend)?,
            r.try_get("name").map_err(backend)?,
            &definition,
        )?,
        created_at: rows::ts(r, "created_at")?,
        updated_at: rows::ts(r, "updated_at")?,
    })
}

fn duplicate_slug(slug: &str) -> StoreError {
    StoreError::Conflict {
        code: "duplicate_slug",
        field: Some("slug"),
        message: format!("another form already uses the slug {slug}"),
    }
}

fn slug_conflict(e: sqlx::Error, slug: &str) -> StoreError {
    if rows::is_unique_violation(&e, SLUG_CONSTRAINT) {
        duplicate_slug(slug)
    } else {
        backend(e)
    }
}

/// `FormDef::check` against the stored fields and groups, and that the sequence exists, all
/// reasons at once; then that no other form has the slug.
async fn check(conn: &mut PgConnection, def: &FormDef, id: Option<Uuid>) -> Result<()> {
    let defs = load_defs(conn, Lock::None).await?;
    let groups: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM groups")
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    let mut errors = def.check(&defs, &groups).err().unwrap_or_default();
    if let Some(sequence) = def.sequence_id {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM sequences WHERE id = $1")
            .bind(sequence)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        if found.is_none() {
            errors.add("sequence_id", "no such sequence");
        }
    }
    errors.into_result(()).map_err(StoreError::Invalid)?;
    let taken: Option<Uuid> = sqlx::query_scalar("SELECT id FROM forms WHERE slug = $1")
        .bind(&def.slug)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    match taken {
        Some(other) if Some(other) != id => Err(duplicate_slug(&def.slug)),
        _ => Ok(()),
    }
}

pub async fn create(conn: &mut PgConnection, def: FormDef, at: Timestamp) -> Result<FormRecord> {
    check(conn, &def, None).await?;
    let sql = format!(
        "INSERT INTO forms (id, slug, name, definition, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(Uuid::now_v7())
        .bind(&def.slug)
        .bind(&def.name)
        .bind(form_to_json(&def))
        .bind(pg_ts(at))
        .fetch_one(conn)
        .await
        .map_err(|e| slug_conflict(e, &def.slug))?;
    form(&row)
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<FormRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM forms ORDER BY created_at, id");
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    found.iter().map(form).collect()
}

/// The form whose `column` (`id` or `slug`) is `value`.
async fn one<T>(conn: &mut PgConnection, column: &str, value: T) -> Result<FormRecord>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
{
    let sql = format!("SELECT {COLUMNS} FROM forms WHERE {column} = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| form(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<FormRecord> {
    one(conn, "id", id).await
}

pub async fn by_slug(conn: &mut PgConnection, slug: &str) -> Result<FormRecord> {
    one(conn, "slug", slug.to_owned()).await
}

pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    def: FormDef,
    at: Timestamp,
) -> Result<FormRecord> {
    check(conn, &def, Some(id)).await?;
    let sql = format!(
        "UPDATE forms SET slug = $2, name = $3, definition = $4, updated_at = $5 \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&def.slug)
        .bind(&def.name)
        .bind(form_to_json(&def))
        .bind(pg_ts(at))
        .fetch_optional(conn)
        .await
        .map_err(|e| slug_conflict(e, &def.slug))?
        .ok_or(StoreError::NotFound)?;
    form(&row)
}

pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    let gone = sqlx::query("DELETE FROM forms WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map_err(backend)?;
    if gone.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The groups with these ids that still exist, in the order given, held against deletion
/// until the commit: a form can outlive a group it offers.
async fn existing_groups(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Group>> {
    let found = sqlx::query(
        "SELECT id, name, parent_id, public, created_at FROM groups WHERE id = ANY($1) \
         ORDER BY id FOR KEY SHARE",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    let mut groups = found.iter().map(rows::group).collect::<Result<Vec<_>>>()?;
    groups.sort_by_key(|g| ids.iter().position(|id| *id == g.id));
    Ok(groups)
}

async fn set_consent(
    conn: &mut PgConnection,
    id: Uuid,
    consent: &Consent,
    at: Timestamp,
) -> Result<()> {
    let consent = serde_json::to_value(consent).map_err(backend)?;
    sqlx::query("UPDATE contacts SET consent = $1, updated_at = $2 WHERE id = $3")
        .bind(consent)
        .bind(pg_ts(at))
        .bind(id)
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Applies a submission in the caller's transaction. A lost race for a new address is the
/// `duplicate_email` conflict; the caller runs it again, and it then finds the contact.
pub async fn submit(
    conn: &mut PgConnection,
    submission: &FormSubmission,
    at: Timestamp,
) -> Result<SubmissionOutcome> {
    let form = get(conn, submission.form_id).await?;
    let def = &form.def;
    let checked = &submission.submission;
    let ctx = ChangeContext::new(ChangeSource::Form, at);
    let consent = consent(checked, form.id, submission.ip.as_deref(), at);
    let groups = existing_groups(conn, &checked.groups).await?;
    let found: Option<Uuid> = sqlx::query_scalar("SELECT id FROM contacts WHERE email_key = $1")
        .bind(checked.email.key())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    let submitted = |created| {
        TimelineEvent::form_submitted(form.id, &def.name, submission.ip.as_deref(), created)
    };
    // The submission comes first on the timeline, then what it changed; a new contact's
    // timeline starts with its creation.
    let (contact_id, created) = match found {
        Some(id) => {
            let current = contacts::load(conn, id, Lock::NoKeyUpdate).await?;
            insert_timeline(conn, id, at, &[submitted(false)]).await?;
            let patch = submission_patch(&current, checked);
            contacts::update(conn, id, &patch, Memberships::default(), ctx).await?;
            set_consent(conn, id, &consent, at).await?;
            contacts::set_groups(conn, id, &groups, true, ctx).await?;
            (id, false)
        }
        None => {
            let mut input = submission_input(checked, def, consent);
            input.groups = groups.iter().map(|g| g.id).collect();
            let id = contacts::create(conn, input, ctx).await?.contact.id;
            insert_timeline(conn, id, at, &[submitted(true)]).await?;
            (id, true)
        }
    };

    // A new contact is judged like a known one: one re-created from an erased unsubscribed
    // address keeps that status, and a double opt-in asks it to confirm again.
    let status = contacts::load(conn, contact_id, Lock::None).await?.status;
    let (to, confirmation) = submission_status(status, def.double_opt_in);
    if let Some(to) = to {
        contacts::change_status(conn, contact_id, to, None, ctx).await?;
    }
    let micros = at.as_microsecond();
    let message = |content, idempotency_key| NewMessage {
        contact_id,
        class: MessageClass::Transactional,
        content,
        idempotency_key,
        due_at: at,
    };
    let mut outgoing = Vec::new();
    if confirmation {
        outgoing.push(Outgoing {
            message: message(
                submission.confirmation.clone(),
                format!("confirm:{contact_id}:{micros}"),
            ),
            to: None,
        });
    }
    for (i, address) in def.notify.iter().enumerate() {
        outgoing.push(Outgoing {
            message: message(
                submission.notification.clone(),
                format!("notify:{}:{contact_id}:{micros}:{i}", form.id),
            ),
            to: Some(address.clone()),
        });
    }
    messages::queue_all(conn, outgoing, None, at).await?;

    let enrolment = match def.sequence_id {
        Some(id) => match sequences::get(conn, id, Lock::KeyShare).await {
            Ok(sequence) => {
                let new = NewEnrolment {
                    sequence: &sequence,
                    contact_id,
                    how: "form",
                };
                sequences::enrol(conn, &[new], at).await?.pop().flatten()
            }
            // The form outlived its sequence.
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    Ok(SubmissionOutcome {
        contact_id,
        created,
        confirmation,
        enrolment,
    })
}

pub async fn confirm(conn: &mut PgConnection, id: Uuid, at: Timestamp) -> Result<ContactRecord> {
    let contact = contacts::load(conn, id, Lock::NoKeyUpdate).await?;
    if contact.status == Status::Pending {
        let ctx = ChangeContext::new(ChangeSource::Confirmation, at);
        contacts::change_status(conn, id, Status::Subscribed, None, ctx).await?;
        sequences::wake(conn, id, at).await?;
    }
    contacts::record(conn, id, Lock::None).await
}
