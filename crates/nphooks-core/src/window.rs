//! The replay window: how long the receiver remembers a delivery and a processor an
//! effect, and how old a signed webhook may be before it is treated as a replay. One
//! value, `NPHOOKS_REPLAY_WINDOW_HOURS`, read by the receiver and every processor.

use std::time::Duration;

use crate::ConfigError;
use crate::config::Settings;

pub const REPLAY_WINDOW_VAR: &str = "NPHOOKS_REPLAY_WINDOW_HOURS";
/// The sender retries a failed delivery after 5 min, 15 min and 1 h.
pub const SENDER_RETRY_SPAN: Duration = Duration::from_secs(80 * 60);
/// The shortest window accepted: the sender's retry span plus a day, in whole hours.
pub const MIN_REPLAY_WINDOW_HOURS: u64 = 26;
/// The default window: 7 days.
pub const DEFAULT_REPLAY_WINDOW_HOURS: u64 = 7 * 24;
/// The longest window accepted: a year.
pub const MAX_REPLAY_WINDOW_HOURS: u64 = 365 * 24;

/// How long delivery records and effect claims live, and the oldest `timestamp` a
/// signed webhook may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayWindow {
    secs: u64,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl ReplayWindow {
    /// 7 days.
    pub const DEFAULT: ReplayWindow = ReplayWindow {
        secs: DEFAULT_REPLAY_WINDOW_HOURS * 3600,
    };

    /// A window of `hours`, refused below the sender's retry span plus a day.
    pub fn from_hours(hours: u64) -> Result<Self, ConfigError> {
        if !(MIN_REPLAY_WINDOW_HOURS..=MAX_REPLAY_WINDOW_HOURS).contains(&hours) {
            return Err(ConfigError::new(
                REPLAY_WINDOW_VAR,
                format!(
                    "must be from {MIN_REPLAY_WINDOW_HOURS} hours (the sender's 80-minute retry span plus a day) to {MAX_REPLAY_WINDOW_HOURS}, got {hours}"
                ),
            ));
        }
        Ok(ReplayWindow { secs: hours * 3600 })
    }

    /// `NPHOOKS_REPLAY_WINDOW_HOURS`, or the default (7 days) when unset.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        match settings.optional(REPLAY_WINDOW_VAR) {
            None => Ok(Self::default()),
            Some(text) => match text.parse::<u64>() {
                Ok(hours) => Self::from_hours(hours),
                Err(_) => Err(ConfigError::new(
                    REPLAY_WINDOW_VAR,
                    format!("must be a whole number of hours, got {text:?}"),
                )),
            },
        }
    }

    pub fn as_secs(self) -> u64 {
        self.secs
    }

    /// When a record written at `now` (epoch seconds) expires.
    pub fn expires_at(self, now: u64) -> u64 {
        now.saturating_add(self.secs)
    }

    /// Whether a webhook sent at `sent_at` is older than the window at `now`.
    pub fn is_stale(self, sent_at: u64, now: u64) -> bool {
        now.saturating_sub(sent_at) > self.secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(value: Option<&str>) -> Result<ReplayWindow, ConfigError> {
        ReplayWindow::from_settings(&Settings::from_pairs(value.map(|v| (REPLAY_WINDOW_VAR, v))))
    }

    #[test]
    fn given_no_value_then_the_window_is_seven_days() {
        assert_eq!(load(None).expect("default").as_secs(), 7 * 24 * 3600);
        assert_eq!(load(Some("26")).expect("minimum").as_secs(), 26 * 3600);
    }

    #[test]
    fn given_a_window_shorter_than_the_retry_span_plus_a_day_then_start_up_names_the_variable() {
        let min = SENDER_RETRY_SPAN.as_secs() + 24 * 3600;
        assert!(MIN_REPLAY_WINDOW_HOURS * 3600 >= min);
        assert!((MIN_REPLAY_WINDOW_HOURS - 1) * 3600 < min);
        for bad in ["25", "0", "2d", "-1", "9000"] {
            let message = load(Some(bad)).expect_err(bad).to_string();
            assert!(message.contains(REPLAY_WINDOW_VAR), "{message}");
        }
    }

    #[test]
    fn given_a_sent_time_then_it_is_stale_only_past_the_window() {
        let window = ReplayWindow::default();
        let now = 1_000_000_000;
        assert!(!window.is_stale(now - 2 * 3600, now));
        assert!(
            !window.is_stale(now + 60, now),
            "a clock ahead of ours is not a replay"
        );
        assert!(window.is_stale(now - 40 * 24 * 3600, now));
        assert_eq!(window.expires_at(now), now + window.as_secs());
    }
}
