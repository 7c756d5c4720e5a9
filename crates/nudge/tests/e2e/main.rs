//! End-to-end tests: the real application on a real socket and a fresh database per test, in the
//! spirit of zero-to-production's `spawn_app()`; the CLI tests run the built binary.

mod accounts;
mod admin;
mod admin_automation;
mod admin_pages;
mod cli;
mod contacts;
mod delivery;
mod dkim;
mod errors;
mod forms;
mod helpers;
mod lists;
mod sequences;
mod templates;
