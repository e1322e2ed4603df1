//! Time as a port: leases, backoff, not-before times and rate-limit slots read one
//! [`Clock`], so tests can run a day of retries in seconds, reproducibly.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The wall clock in production; a clock the test moves by hand otherwise.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    /// Stands still until [`Clock::advance`] or [`Clock::set`] moves it.
    Manual(Arc<Mutex<SystemTime>>),
}

impl Clock {
    pub fn system() -> Self {
        Clock::System
    }

    /// A clock that stays at `at` (a manual clock nobody moves).
    pub fn fixed(at: SystemTime) -> Self {
        Self::manual(at)
    }

    /// A clock that starts at `start` and moves only when told.
    pub fn manual(start: SystemTime) -> Self {
        Clock::Manual(Arc::new(Mutex::new(start)))
    }

    pub fn now(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::Manual(at) => *crate::queue::lock(at),
        }
    }

    /// Seconds since the Unix epoch.
    pub fn epoch_seconds(&self) -> u64 {
        crate::epoch_seconds(self.now())
    }

    /// Milliseconds since the Unix epoch.
    pub fn epoch_millis(&self) -> u64 {
        epoch_millis(self.now())
    }

    /// Moves a manual clock forward; the system clock ignores it.
    pub fn advance(&self, by: Duration) {
        if let Clock::Manual(at) = self {
            let mut at = crate::queue::lock(at);
            *at += by;
        }
    }

    /// Moves a manual clock to `to` if that is later than now; the system clock ignores it.
    pub fn advance_to(&self, to: SystemTime) {
        if let Clock::Manual(at) = self {
            let mut at = crate::queue::lock(at);
            if to > *at {
                *at = to;
            }
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn epoch_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An RFC 3339 timestamp (`2026-11-26T15:30:00Z`, offsets allowed), or `None`.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    aws_smithy_types::DateTime::from_str(text.trim(), aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .and_then(|t| SystemTime::try_from(t).ok())
}

/// The instant `millis` after the Unix epoch.
pub fn from_epoch_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_manual_clock_then_only_advancing_moves_it_and_never_backwards() {
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let clock = Clock::manual(start);
        let shared = clock.clone();
        assert_eq!(clock.now(), start);
        shared.advance(Duration::from_secs(90));
        assert_eq!(clock.epoch_seconds(), 1_800_000_090);
        clock.advance_to(start);
        assert_eq!(clock.epoch_millis(), 1_800_000_090_000);
        assert_eq!(from_epoch_millis(clock.epoch_millis()), clock.now());
        assert_eq!(
            parse_rfc3339("2027-01-15T08:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
