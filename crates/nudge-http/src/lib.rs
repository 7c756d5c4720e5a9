//! nudge-http
