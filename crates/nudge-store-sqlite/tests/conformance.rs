//! The storage contract's stories on SQLite, each on a fresh database file.

use nudge_store_sqlite::SqliteStore;

async fn fresh_store() -> SqliteStore {
    let dir = tempfile::tempdir().expect("temp dir");
    // The directory must outlive the test; leaking it keeps the file until the process exits.
    let path = dir.keep().join("nudge.db");
    SqliteStore::open(&path).await.expect("open sqlite store")
}

nudge_store::conformance_suite!(fresh_store());
