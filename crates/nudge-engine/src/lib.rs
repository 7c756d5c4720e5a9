//! The engine: durable jobs and timers, driven by a [`Clock`].
//!
//! Nothing here reads the wall clock directly. Production wires [`SystemClock`]; tests and
//! `nudge serve --test-clock` wire [`TestClock`], which moves only when told to, so no test
//! waits for a schedule.

pub mod clock;

pub use clock::{Clock, SystemClock, TestClock};
