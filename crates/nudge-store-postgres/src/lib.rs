//! nudge-store-postgres
