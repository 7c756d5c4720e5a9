//! The source of "now" for everything that schedules or stamps.

use jiff::{SignedDuration, Timestamp};
use std::sync::Mutex;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The real time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until it is advanced.
#[derive(Debug)]
pub struct TestClock {
    now: Mutex<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdvanceError {
    #[error("the test clock only moves forward")]
    Backwards,
    #[error("the time is out of range")]
    OutOfRange,
}

impl TestClock {
    pub fn starting_at(now: Timestamp) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    pub fn advance_by(&self, by: SignedDuration) -> Result<Timestamp, AdvanceError> {
        if by.is_negative() {
            return Err(AdvanceError::Backwards);
        }
        let mut now = self.lock();
        *now = now.checked_add(by).map_err(|_| AdvanceError::OutOfRange)?;
        Ok(*now)
    }

    pub fn advance_to(&self, to: Timestamp) -> Result<Timestamp, AdvanceError> {
        let mut now = self.lock();
        if to < *now {
            return Err(AdvanceError::Backwards);
        }
        *now = to;
        Ok(to)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        // A panic while holding this lock cannot leave a half-written Timestamp behind, so a
        // poisoned lock still holds a valid time.
        self.now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_clock_moves_only_forward_and_only_when_told() {
        let start = Timestamp::from_second(1_800_000_000).expect("valid");
        let clock = TestClock::starting_at(start);
        assert_eq!(clock.now(), start);
        let later = clock
            .advance_by(SignedDuration::from_hours(72))
            .expect("forward");
        assert_eq!(later, clock.now());
        assert_eq!(clock.advance_to(start), Err(AdvanceError::Backwards));
        assert_eq!(
            clock.advance_by(SignedDuration::from_secs(-1)),
            Err(AdvanceError::Backwards)
        );
        assert_eq!(clock.now(), later);
    }
}
