//! Conversions between SQLite rows and the domain's types.

use jiff::Timestamp;
use nudge_core::{Consent, Contact, Email, FieldDef, Status, TimelineEntry, TimelineKind};
use nudge_store::{Group, Result, StoreError};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use std::collections::BTreeMap;

pub const CONTACT_COLUMNS: &str = "c.id, c.email, c.first_name, c.last_name, c.phone, c.language, \
    c.time_zone, c.owner_id, c.status, c.source, c.consent, c.fields, c.created_at, c.updated_at";

pub fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub fn ts(micros: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(micros).map_err(backend)
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} is unreadable: {detail}"))
}

pub fn contact(r: &SqliteRow) -> Result<Contact> {
    let email: String = r.try_get("email").map_err(backend)?;
    let status: String = r.try_get("status").map_err(backend)?;
    let consent: Option<String> = r.try_get("consent").map_err(backend)?;
    let fields: String = r.try_get("fields").map_err(backend)?;
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
            .map(|c| serde_json::from_str::<Consent>(&c))
            .transpose()
            .map_err(|e| corrupt("consent", e))?,
        fields: serde_json::from_str::<BTreeMap<String, serde_json::Value>>(&fields)
            .map_err(|e| corrupt("fields", e))?,
        created_at: ts(r.try_get("created_at").map_err(backend)?)?,
        updated_at: ts(r.try_get("updated_at").map_err(backend)?)?,
    })
}

pub fn field_def(r: &SqliteRow) -> Result<FieldDef> {
    let key: String = r.try_get("key").map_err(backend)?;
    let label: String = r.try_get("label").map_err(backend)?;
    let kind: String = r.try_get("type").map_err(backend)?;
    let options: String = r.try_get("options").map_err(backend)?;
    let options: Vec<String> = serde_json::from_str(&options).map_err(|e| corrupt("options", e))?;
    FieldDef::new(&key, Some(&label), &kind, options).map_err(|e| corrupt("field", e))
}

pub fn group(r: &SqliteRow) -> Result<Group> {
    Ok(Group {
        id: r.try_get("id").map_err(backend)?,
        name: r.try_get("name").map_err(backend)?,
        parent_id: r.try_get("parent_id").map_err(backend)?,
        public: r.try_get("public").map_err(backend)?,
        created_at: ts(r.try_get("created_at").map_err(backend)?)?,
    })
}

pub fn timeline_entry(r: &SqliteRow) -> Result<TimelineEntry> {
    let kind: String = r.try_get("kind").map_err(backend)?;
    let data: String = r.try_get("data").map_err(backend)?;
    Ok(TimelineEntry {
        id: r.try_get("id").map_err(backend)?,
        contact_id: r.try_get("contact_id").map_err(backend)?,
        at: ts(r.try_get("at").map_err(backend)?)?,
        kind: TimelineKind::parse(&kind).ok_or_else(|| corrupt("timeline kind", &kind))?,
        summary: r.try_get("summary").map_err(backend)?,
        data: serde_json::from_str(&data).map_err(|e| corrupt("timeline data", e))?,
    })
}
