//! Stored email templates on SQLite.

use crate::rows::{backend, micros, ts};
use jiff::Timestamp;
use nudge_store::{
    NewTemplate, Page, PageRequest, Result, StoreError, TemplatePatch, TemplateRecord,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

const COLUMNS: &str = "id, name, subject, html, text, created_at, updated_at";

fn record(r: &SqliteRow) -> Result<TemplateRecord> {
    Ok(TemplateRecord {
        id: r.try_get("id").map_err(backend)?,
        template: NewTemplate {
            name: r.try_get("name").map_err(backend)?,
            subject: r.try_get("subject").map_err(backend)?,
            html: r.try_get("html").map_err(backend)?,
            text: r.try_get("text").map_err(backend)?,
        },
        created_at: ts(r.try_get("created_at").map_err(backend)?)?,
        updated_at: ts(r.try_get("updated_at").map_err(backend)?)?,
    })
}

fn checked(template: NewTemplate) -> Result<NewTemplate> {
    let name = NewTemplate::checked_name(&template.name)
        .map_err(|reason| StoreError::invalid("name", reason))?;
    Ok(NewTemplate { name, ..template })
}

pub async fn create(
    conn: &mut SqliteConnection,
    template: NewTemplate,
    at: Timestamp,
) -> Result<TemplateRecord> {
    let created = TemplateRecord {
        id: Uuid::now_v7(),
        template: checked(template)?,
        created_at: at,
        updated_at: at,
    };
    let t = &created.template;
    sqlx::query(
        "INSERT INTO templates (id, name, subject, html, text, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(created.id)
    .bind(&t.name)
    .bind(&t.subject)
    .bind(&t.html)
    .bind(&t.text)
    .bind(micros(at))
    .bind(micros(at))
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(created)
}

pub async fn list(conn: &mut SqliteConnection, page: PageRequest) -> Result<Page<TemplateRecord>> {
    // Ids are UUIDv7, so their order is the order of creation.
    let rows = match page.cursor {
        None => {
            let sql = format!("SELECT {COLUMNS} FROM templates ORDER BY id DESC LIMIT ?");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(i64::from(page.limit) + 1)
                .fetch_all(conn)
                .await
        }
        Some(cursor) => {
            let sql =
                format!("SELECT {COLUMNS} FROM templates WHERE id < ? ORDER BY id DESC LIMIT ?");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(cursor)
                .bind(i64::from(page.limit) + 1)
                .fetch_all(conn)
                .await
        }
    }
    .map_err(backend)?;
    let items = rows.iter().map(record).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, page.limit, |t| t.id))
}

pub async fn get(conn: &mut SqliteConnection, id: Uuid) -> Result<TemplateRecord> {
    let sql = format!("SELECT {COLUMNS} FROM templates WHERE id = ?");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| record(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub async fn update(
    conn: &mut SqliteConnection,
    id: Uuid,
    patch: TemplatePatch,
    at: Timestamp,
) -> Result<TemplateRecord> {
    // The caller holds the single writer, so nothing changes the row between read and write.
    let current = get(conn, id).await?;
    let template = checked(patch.apply(&current.template))?;
    sqlx::query(
        "UPDATE templates SET name = ?, subject = ?, html = ?, text = ?, updated_at = ? \
         WHERE id = ?",
    )
    .bind(&template.name)
    .bind(&template.subject)
    .bind(&template.html)
    .bind(&template.text)
    .bind(micros(at))
    .bind(id)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(TemplateRecord {
        id,
        template,
        created_at: current.created_at,
        updated_at: at,
    })
}

pub async fn delete(conn: &mut SqliteConnection, id: Uuid) -> Result<()> {
    let gone = sqlx::query("DELETE FROM templates WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await
        .map_err(backend)?;
    if gone.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
