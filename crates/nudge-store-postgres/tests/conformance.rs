//! The storage contract's stories on PostgreSQL. Without `NUDGE_TEST_POSTGRES_URL` every story
//! passes without running, and says so on stderr, so that `cargo test` works on machines without
//! a PostgreSQL server.

mod common;

use common::{URL_VAR, fresh_store};

// The block returns from the generated test before the story runs when there is no database.
nudge_store::conformance_suite!({
    let Some(store) = fresh_store().await else {
        eprintln!("{URL_VAR} is unset: skipped the PostgreSQL conformance story");
        return;
    };
    std::future::ready(store)
});
