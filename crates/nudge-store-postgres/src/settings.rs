//! Sending settings on PostgreSQL: DKIM keys and SMTP accounts. An update locks the account row
//! it changes, so two concurrent changes apply one after the other.

use crate::Lock;
use crate::rows::{backend, pg_ts, ts};
use jiff::Timestamp;
use nudge_core::{Email, SmtpAccountInput, SmtpAccountSettings};
use nudge_store::{DkimKeyRecord, NewDkimKey, Result, SmtpAccount, StoreError};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} is unreadable: {detail}"))
}

pub async fn save_dkim_key(
    conn: &mut PgConnection,
    key: NewDkimKey,
    at: Timestamp,
) -> Result<DkimKeyRecord> {
    let domain = key.domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return Err(StoreError::invalid("domain", "is empty"));
    }
    sqlx::query(
        "INSERT INTO dkim_keys (domain, selector, algorithm, private_key_pem, created_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (domain) DO UPDATE SET selector = excluded.selector, \
         algorithm = excluded.algorithm, private_key_pem = excluded.private_key_pem, \
         created_at = excluded.created_at",
    )
    .bind(&domain)
    .bind(&key.selector)
    .bind(key.algorithm.as_str())
    .bind(&key.private_key_pem)
    .bind(pg_ts(at))
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(DkimKeyRecord {
        domain,
        selector: key.selector,
        algorithm: key.algorithm,
        private_key_pem: key.private_key_pem,
        created_at: at,
    })
}

pub async fn dkim_keys(conn: &mut PgConnection) -> Result<Vec<DkimKeyRecord>> {
    let rows = sqlx::query(
        "SELECT domain, selector, algorithm, private_key_pem, created_at FROM dkim_keys \
         ORDER BY domain",
    )
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|r| {
            let algorithm: String = r.try_get("algorithm").map_err(backend)?;
            Ok(DkimKeyRecord {
                domain: r.try_get("domain").map_err(backend)?,
                selector: r.try_get("selector").map_err(backend)?,
                algorithm: algorithm
                    .parse()
                    .map_err(|e| corrupt("DKIM algorithm", e))?,
                private_key_pem: r.try_get("private_key_pem").map_err(backend)?,
                created_at: ts(r, "created_at")?,
            })
        })
        .collect()
}

const ACCOUNT_COLUMNS: &str = "id, name, host, port, tls, username, password, from_email, \
    from_name, rate_per_second, daily_limit, weight, tracking, created_at, updated_at";

fn account(r: &PgRow) -> Result<SmtpAccount> {
    let port: i32 = r.try_get("port").map_err(backend)?;
    let tls: String = r.try_get("tls").map_err(backend)?;
    let from_email: String = r.try_get("from_email").map_err(backend)?;
    let daily_limit: i64 = r.try_get("daily_limit").map_err(backend)?;
    let weight: i32 = r.try_get("weight").map_err(backend)?;
    Ok(SmtpAccount {
        id: r.try_get("id").map_err(backend)?,
        settings: SmtpAccountSettings {
            name: r.try_get("name").map_err(backend)?,
            host: r.try_get("host").map_err(backend)?,
            port: u16::try_from(port).map_err(|e| corrupt("port", e))?,
            tls: tls.parse().map_err(|e| corrupt("tls", e))?,
            username: r.try_get("username").map_err(backend)?,
            password: r.try_get("password").map_err(backend)?,
            from_email: Email::parse(&from_email).map_err(|e| corrupt("from_email", e))?,
            from_name: r.try_get("from_name").map_err(backend)?,
            rate_per_second: r.try_get("rate_per_second").map_err(backend)?,
            daily_limit: u64::try_from(daily_limit).map_err(|e| corrupt("daily_limit", e))?,
            weight: u32::try_from(weight).map_err(|e| corrupt("weight", e))?,
            tracking: r.try_get("tracking").map_err(backend)?,
        },
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

pub async fn create_account(
    conn: &mut PgConnection,
    settings: SmtpAccountSettings,
    at: Timestamp,
) -> Result<SmtpAccount> {
    let account = SmtpAccount {
        id: Uuid::now_v7(),
        settings,
        created_at: at,
        updated_at: at,
    };
    let s = &account.settings;
    sqlx::query(
        "INSERT INTO smtp_accounts (id, name, host, port, tls, username, password, from_email, \
         from_name, rate_per_second, daily_limit, weight, tracking, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(account.id)
    .bind(&s.name)
    .bind(&s.host)
    .bind(i32::from(s.port))
    .bind(s.tls.as_str())
    .bind(&s.username)
    .bind(&s.password)
    .bind(s.from_email.as_str())
    .bind(&s.from_name)
    .bind(s.rate_per_second)
    .bind(i64::try_from(s.daily_limit).unwrap_or(i64::MAX))
    .bind(i32::try_from(s.weight).unwrap_or(i32::MAX))
    .bind(s.tracking)
    .bind(pg_ts(at))
    .bind(pg_ts(at))
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(account)
}

pub async fn list_accounts(conn: &mut PgConnection) -> Result<Vec<SmtpAccount>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM smtp_accounts ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    rows.iter().map(account).collect()
}

pub async fn get_account(conn: &mut PgConnection, id: Uuid, lock: Lock) -> Result<SmtpAccount> {
    let lock = lock.clause();
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM smtp_accounts WHERE id = $1{lock}");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| account(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub async fn update_account(
    conn: &mut PgConnection,
    id: Uuid,
    change: SmtpAccountInput,
    at: Timestamp,
) -> Result<SmtpAccount> {
    let current = get_account(conn, id, Lock::NoKeyUpdate).await?;
    let settings = current
        .settings
        .apply(change)
        .map_err(StoreError::Invalid)?;
    let s = &settings;
    sqlx::query(
        "UPDATE smtp_accounts SET name = $1, host = $2, port = $3, tls = $4, username = $5, \
         password = $6, from_email = $7, from_name = $8, rate_per_second = $9, \
         daily_limit = $10, weight = $11, tracking = $12, updated_at = $13 WHERE id = $14",
    )
    .bind(&s.name)
    .bind(&s.host)
    .bind(i32::from(s.port))
    .bind(s.tls.as_str())
    .bind(&s.username)
    .bind(&s.password)
    .bind(s.from_email.as_str())
    .bind(&s.from_name)
    .bind(s.rate_per_second)
    .bind(i64::try_from(s.daily_limit).unwrap_or(i64::MAX))
    .bind(i32::try_from(s.weight).unwrap_or(i32::MAX))
    .bind(s.tracking)
    .bind(pg_ts(at))
    .bind(id)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(SmtpAccount {
        id,
        settings,
        created_at: current.created_at,
        updated_at: at,
    })
}

pub async fn delete_account(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    let gone = sqlx::query("DELETE FROM smtp_accounts WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map_err(backend)?;
    if gone.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn sent_per_account(
    conn: &mut PgConnection,
    since: Timestamp,
) -> Result<Vec<(Uuid, u64)>> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT smtp_account_id, count(*) FROM messages \
         WHERE sent_at >= $1 AND smtp_account_id IS NOT NULL GROUP BY smtp_account_id",
    )
    .bind(pg_ts(since))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|(id, n)| (id, n.unsigned_abs()))
        .collect())
}
