//! A fresh store per test, each in a schema of its own in the database named by
//! `NUDGE_TEST_POSTGRES_URL`.

#![allow(dead_code)] // Each test binary compiles this module and uses only part of it.

use nudge_store_postgres::PgStore;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::str::FromStr;

pub const URL_VAR: &str = "NUDGE_TEST_POSTGRES_URL";

/// A store whose tables live in a schema of their own, so that tests can run side by side in
/// one database; `None` when no database is configured. The schemas are left behind for
/// inspection; all their names start with `t_`.
pub async fn fresh_store() -> Option<PgStore> {
    let options = fresh_schema().await?;
    Some(
        PgStore::connect_with(options)
            .await
            .expect("connect postgres store"),
    )
}

/// Options that put a store in a new, empty schema; each store connected with them (as several
/// dispatcher processes would be) has a pool of its own over the same tables.
pub async fn fresh_schema() -> Option<PgConnectOptions> {
    let url = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty())?;
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let mut conn = PgConnection::connect(&url)
        .await
        .expect("connect to NUDGE_TEST_POSTGRES_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("create test schema");
    conn.close().await.expect("close setup connection");
    let options = PgConnectOptions::from_str(&url)
        .expect("parse NUDGE_TEST_POSTGRES_URL")
        .options([("search_path", schema.as_str())]);
    Some(options)
}
