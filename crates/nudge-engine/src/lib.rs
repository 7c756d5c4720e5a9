//! nudge-engine
