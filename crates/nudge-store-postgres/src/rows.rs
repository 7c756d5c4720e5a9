//! Conversions between PostgreSQL rows and the domain's types.

use jiff::Timestamp;
use nudge_core::{Consent, Contact, Email, FieldDef, Status, TimelineEntry, TimelineKind};
use nudge_store::{Group, Result, StoreError};
use sqlx::Row;
use sqlx::postgres::{PgDatabaseError, PgRow};
use std::collections::BTreeMap;

pub const CONTACT_COLUMNS: &str = "c.id, c.email, c.first_name, c.last_name, c.phone, c.language, \
    c.time_zone, c.owner_id, c.status, c.source, c.consent, c.fields, c.created_at, c.updated_at";

pub fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// An instant as Postgres stores it (`timestamptz`, to the microsecond).
pub fn pg_ts(t: Timestamp) -> jiff_sqlx::Timestamp {
    jiff_sqlx::Timestamp::from(t)
}

/// Reads a `timestamptz` column.
pub fn ts(r: &PgRow, column: &str) -> Result<Timestamp> {
    let t: jiff_sqlx::Timestamp = r.try_get(column).map_err(backend)?;
    Ok(t.to_jiff())
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} is unreadable: {detail}"))
}

/// Whether the error is a unique violation of the named constraint: a concurrent transaction
/// committed the same key between this one's check and its write.
pub fn is_unique_violation(e: &sqlx::Error, constraint: &str) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation() && d.constraint() == Some(constraint))
}

/// The key Postgres names in a unique violation's detail, `Key (column)=(value) already exists.`
pub fn violating_key(e: &sqlx::Error) -> Option<&str> {
    let detail = e
        .as_database_error()?
        .try_downcast_ref::<PgDatabaseError>()?
        .detail()?;
    let value = detail.split_once(")=(")?.1;
    value.strip_suffix(") already exists.")
}

pub fn contact(r: &PgRow) -> Result<Contact> {
    let email: String = r.try_get("email").map_err(backend)?;
    let status: String = r.try_get("status").map_err(backend)?;
    let consent: Option<serde_json::Value> = r.try_get("consent").map_err(backend)?;
    let fields: serde_json::Value = r.try_get("fields").map_err(backend)?;
    Ok(Contact {
        id: r.try_get("id").map_err(backend)?,
        email: Email::parse(&email).map_err(|e| corrupt("email", e))?,
        first_name: r.try_get("first_name").map_err(backend)?,
        last_name: r.try_get("last_name").map_err(backend)?,
        phone: r.try_get("phone").map_err(backend)?,
        language: r.try_get("language").map_err(backend)?,
        time_zone: r.try_get("time_zone").map_err(backend)?,
        owner_id: r.try_get("owner_id").map_err(backend)?,
        status: status.parse::<Status>().map_err(|e| corrupt("status", e))?,
        source: r.try_get("source").map_err(backend)?,
        consent: consent
            .map(serde_json::from_value::<Consent>)
            .transpose()
            .map_err(|e| corrupt("consent", e))?,
        fields: serde_json::from_value::<BTreeMap<String, serde_json::Value>>(fields)
            .map_err(|e| corrupt("fields", e))?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

pub fn field_def(r: &PgRow) -> Result<FieldDef> {
    let key: String = r.try_get("key").map_err(backend)?;
    let label: String = r.try_get("label").map_err(backend)?;
    let kind: String = r.try_get("type").map_err(backend)?;
    let options: serde_json::Value = r.try_get("options").map_err(backend)?;
    let options: Vec<String> =
        serde_json::from_value(options).map_err(|e| corrupt("options", e))?;
    FieldDef::new(&key, Some(&label), &kind, options).map_err(|e| corrupt("field", e))
}

pub fn group(r: &PgRow) -> Result<Group> {
    Ok(Group {
        id: r.try_get("id").map_err(backend)?,
        name: r.try_get("name").map_err(backend)?,
        parent_id: r.try_get("parent_id").map_err(backend)?,
        public: r.try_get("public").map_err(backend)?,
        created_at: ts(r, "created_at")?,
    })
}

pub fn timeline_entry(r: &PgRow) -> Result<TimelineEntry> {
    let kind: String = r.try_get("kind").map_err(backend)?;
    Ok(TimelineEntry {
        id: r.try_get("id").map_err(backend)?,
        contact_id: r.try_get("contact_id").map_err(backend)?,
        at: ts(r, "at")?,
        kind: TimelineKind::parse(&kind).ok_or_else(|| corrupt("timeline kind", &kind))?,
        summary: r.try_get("summary").map_err(backend)?,
        data: r.try_get("data").map_err(backend)?,
    })
}
