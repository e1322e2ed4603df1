//! `CALLBACK_HOURS` (`09:00-18:00`) in `CALLBACK_TIME_ZONE` (an IANA name, from the
//! database compiled into the binary): when a call back may be placed. Outside the
//! window the message waits until it next opens, read from the clock port.

use std::time::SystemTime;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use nphooks_core::ConfigError;
use nphooks_core::config::Settings;

pub const CALLBACK_HOURS_VAR: &str = "CALLBACK_HOURS";
pub const CALLBACK_TIME_ZONE_VAR: &str = "CALLBACK_TIME_ZONE";

/// A daily window `[start, end)` in a time zone; `end` before `start` spans midnight.
#[derive(Debug, Clone)]
pub struct CallbackHours {
    start: Time,
    end: Time,
    zone: TimeZone,
}

impl CallbackHours {
    /// `09:00-18:00` in `America/New_York`; errors name the variable.
    pub fn parse(hours: &str, zone: &str) -> Result<Self, ConfigError> {
        let bad_hours = || {
            ConfigError::new(
                CALLBACK_HOURS_VAR,
                format!("must be HH:MM-HH:MM, like 09:00-18:00; got {hours:?}"),
            )
        };
        let (start, end) = hours.trim().split_once('-').ok_or_else(bad_hours)?;
        let time = |text: &str| Time::strptime("%H:%M", text.trim()).map_err(|_| bad_hours());
        let (start, end) = (time(start)?, time(end)?);
        if start == end {
            return Err(bad_hours());
        }
        let zone = TimeZone::get(zone.trim()).map_err(|_| {
            ConfigError::new(
                CALLBACK_TIME_ZONE_VAR,
                format!("must be an IANA time zone name, like America/New_York; got {zone:?}"),
            )
        })?;
        Ok(CallbackHours { start, end, zone })
    }

    /// Both variables; unset, any time of day in UTC.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        let Some(hours) = settings.optional(CALLBACK_HOURS_VAR) else {
            return Ok(None);
        };
        let zone = settings.required(CALLBACK_TIME_ZONE_VAR)?;
        Self::parse(hours, zone).map(Some)
    }

    /// `None` while the window is open at `now`; else when it next opens.
    pub fn closed_until(&self, now: SystemTime) -> Option<SystemTime> {
        let now = Timestamp::try_from(now).ok()?;
        let local = now.to_zoned_datetime(self.zone.clone());
        let time = local.time();
        let open = if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        };
        if open {
            return None;
        }
        let today = local.date().to_datetime(self.start);
        let day = if time < self.start {
            today
        } else {
            today.checked_add(1.day()).ok()?
        };
        // A start that falls in a DST gap resolves to the instant after it.
        let opens = day.to_zoned_datetime(self.zone.clone()).ok()?;
        SystemTime::try_from(opens.timestamp()).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        nphooks_core::clock::parse_rfc3339(rfc3339).expect("valid")
    }

    #[test]
    fn given_business_hours_in_new_york_then_each_instant_opens_or_waits_for_the_next_window() {
        let hours = CallbackHours::parse("09:00-18:00", "America/New_York").expect("valid");
        // 10:00 EST is open; 18:30 waits for 09:00 tomorrow; 07:00 for 09:00 today.
        assert_eq!(hours.closed_until(at("2026-01-15T15:00:00Z")), None);
        assert_eq!(
            hours.closed_until(at("2026-01-15T23:30:00Z")),
            Some(at("2026-01-16T14:00:00Z"))
        );
        assert_eq!(
            hours.closed_until(at("2026-01-15T12:00:00Z")),
            Some(at("2026-01-15T14:00:00Z"))
        );
        // 18:00 itself is closed; in summer (EDT) 09:00 is 13:00Z.
        assert!(hours.closed_until(at("2026-07-15T22:00:00Z")).is_some());
        assert_eq!(
            hours.closed_until(at("2026-07-15T12:59:59Z")),
            Some(at("2026-07-15T13:00:00Z"))
        );
    }

    #[test]
    fn given_a_window_across_midnight_then_the_night_is_open() {
        let hours = CallbackHours::parse("22:00-02:00", "UTC").expect("valid");
        assert_eq!(hours.closed_until(at("2026-01-15T23:00:00Z")), None);
        assert_eq!(hours.closed_until(at("2026-01-16T01:59:00Z")), None);
        let noon = at("2026-01-16T12:00:00Z");
        assert_eq!(
            hours.closed_until(noon),
            Some(noon + Duration::from_secs(10 * 3600))
        );
    }

    #[test]
    fn given_bad_settings_then_the_error_names_the_variable() {
        for (hours, zone, name) in [
            ("9-18", "UTC", CALLBACK_HOURS_VAR),
            ("09:00-09:00", "UTC", CALLBACK_HOURS_VAR),
            ("09:00-25:00", "UTC", CALLBACK_HOURS_VAR),
            ("09:00-18:00", "Mars/Olympus", CALLBACK_TIME_ZONE_VAR),
        ] {
            let message = CallbackHours::parse(hours, zone)
                .expect_err(hours)
                .to_string();
            assert!(message.contains(name), "{message}");
        }
        let missing_zone = Settings::from_pairs([(CALLBACK_HOURS_VAR, "09:00-18:00")]);
        let message = CallbackHours::from_settings(&missing_zone)
            .expect_err("zone")
            .to_string();
        assert!(message.contains(CALLBACK_TIME_ZONE_VAR), "{message}");
    }
}
