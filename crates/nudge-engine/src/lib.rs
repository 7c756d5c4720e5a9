//! The engine: durable jobs and timers, driven by a [`Clock`].
//!
//! Nothing here reads the wall clock directly. Production wires [`SystemClock`]; tests and
//! `nudge serve --test-clock` wire [`TestClock`], which moves only when told to, so no test
//! waits for a schedule. [`Engine`] runs the sequences' due steps and trigger jobs.

pub mod clock;
pub mod engine;

pub use clock::{Clock, SystemClock, TestClock};
pub use engine::{Engine, PassStats};
