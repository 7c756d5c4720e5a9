//! Admin users and their sign-in sessions on SQLite.

use crate::rows::{backend, micros, ts};
use jiff::Timestamp;
use nudge_core::{Email, Role};
use nudge_store::{LockOut, Result, Session, StoreError, User, UserCredentials};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

const USER_COLUMNS: &str = "u.id, u.email, u.role, u.language, u.created_at";
/// The same columns where no other table is in the statement (an UPDATE's RETURNING).
const USER_RETURNING: &str = "id, email, role, language, created_at";

fn user(r: &SqliteRow) -> Result<User> {
    let role: String = r.try_get("role").map_err(backend)?;
    Ok(User {
        id: r.try_get("id").map_err(backend)?,
        email: r.try_get("email").map_err(backend)?,
        role: role
            .parse::<Role>()
            .map_err(|e| StoreError::Backend(format!("stored role is unreadable: {e}")))?,
        language: r.try_get("language").map_err(backend)?,
        created_at: ts(r.try_get("created_at").map_err(backend)?)?,
    })
}

pub async fn list_users(conn: &mut SqliteConnection) -> Result<Vec<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.created_at, u.id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    rows.iter().map(user).collect()
}

pub async fn set_language(
    conn: &mut SqliteConnection,
    user_id: Uuid,
    language: Option<&str>,
) -> Result<User> {
    let sql = format!("UPDATE users SET language = ? WHERE id = ? RETURNING {USER_RETURNING}");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(language)
        .bind(user_id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        .map(|r| user(&r))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub async fn credentials(
    conn: &mut SqliteConnection,
    email: &Email,
) -> Result<Option<UserCredentials>> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, u.password_hash, u.failed_sign_ins, u.locked_until \
         FROM users u WHERE u.email_key = ?"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(email.key())
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    row.map(|r| {
        let failed: i64 = r.try_get("failed_sign_ins").map_err(backend)?;
        let locked: Option<i64> = r.try_get("locked_until").map_err(backend)?;
        Ok(UserCredentials {
            user: user(&r)?,
            password_hash: r.try_get("password_hash").map_err(backend)?,
            failed_sign_ins: u32::try_from(failed).unwrap_or(u32::MAX),
            locked_until: locked.map(ts).transpose()?,
        })
    })
    .transpose()
}

pub async fn record_failed_sign_in(
    conn: &mut SqliteConnection,
    user_id: Uuid,
    policy: LockOut,
    at: Timestamp,
) -> Result<Option<Timestamp>> {
    let until = at
        .checked_add(policy.duration)
        .map_err(|e| StoreError::Backend(format!("lock-out ends out of range: {e}")))?;
    // The right-hand sides read the row as it was, so both columns see the same count.
    let row = sqlx::query(
        "UPDATE users SET \
           failed_sign_ins = CASE WHEN failed_sign_ins + 1 >= ? THEN 0 \
                                  ELSE failed_sign_ins + 1 END, \
           locked_until = CASE WHEN failed_sign_ins + 1 >= ? THEN ? ELSE locked_until END \
         WHERE id = ? RETURNING failed_sign_ins",
    )
    .bind(i64::from(policy.after_failures))
    .bind(i64::from(policy.after_failures))
    .bind(micros(until))
    .bind(user_id)
    .fetch_optional(conn)
    .await
    .map_err(backend)?
    .ok_or(StoreError::NotFound)?;
    // Only the locking branch starts the count again at zero.
    let failed: i64 = row.try_get("failed_sign_ins").map_err(backend)?;
    Ok((failed == 0).then_some(until))
}

pub async fn clear_failed_sign_ins(conn: &mut SqliteConnection, user_id: Uuid) -> Result<()> {
    sqlx::query("UPDATE users SET failed_sign_ins = 0, locked_until = NULL WHERE id = ?")
        .bind(user_id)
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

pub async fn create_session(
    conn: &mut SqliteConnection,
    id_hash: &str,
    user_id: Uuid,
    at: Timestamp,
) -> Result<Session> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)",
    )
    .bind(id_hash)
    .bind(user_id)
    .bind(micros(at))
    .bind(micros(at))
    .execute(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::NotFound,
        _ => backend(e),
    })?;
    session(conn, id_hash).await?.ok_or(StoreError::NotFound)
}

pub async fn session(conn: &mut SqliteConnection, id_hash: &str) -> Result<Option<Session>> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, s.id_hash, s.created_at AS s_created, s.last_seen_at \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id_hash)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    row.map(|r| {
        Ok(Session {
            id_hash: r.try_get("id_hash").map_err(backend)?,
            user: user(&r)?,
            created_at: ts(r.try_get("s_created").map_err(backend)?)?,
            last_seen_at: ts(r.try_get("last_seen_at").map_err(backend)?)?,
        })
    })
    .transpose()
}

pub async fn touch_session(
    conn: &mut SqliteConnection,
    id_hash: &str,
    at: Timestamp,
) -> Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?")
        .bind(micros(at))
        .bind(id_hash)
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

pub async fn delete_session(conn: &mut SqliteConnection, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
        .bind(id_hash)
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

pub async fn delete_expired_sessions(
    conn: &mut SqliteConnection,
    idle_before: Timestamp,
    created_before: Timestamp,
) -> Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?")
        .bind(micros(idle_before))
        .bind(micros(created_before))
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(done.rows_affected())
}
