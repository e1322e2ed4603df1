//! Rate limits per destination, held across every concurrent Lambda: each request
//! reserves the next free slot (`interval = per / requests`) in one shared item, so no
//! two requests anywhere start closer together than the destination allows. A message
//! whose slot lies in the future is deferred to that slot, never failed.
//!
//! A limit with a burst (`with_burst`) is a generic cell rate algorithm on the same item:
//! the next slot is the theoretical arrival time `tat`, a request may start
//! `tolerance = (burst - 1) * interval` before it, and the interval is
//! `per / (requests - burst + 1)`, so no window of `per` ever holds more than `requests`
//! and `burst` requests may start at once.

mod dynamo;
mod instance;
mod memory;

use std::future::Future;
use std::time::{Duration, SystemTime};

pub use dynamo::DynamoRateLimiter;
pub use instance::{INSTANCES, InstanceRateLimiter, ProcessRateLimiter};
pub use memory::MemoryRateLimiter;

use crate::ConfigError;
use crate::store_error::StoreError;

/// At most `requests` requests `per` period, evenly spaced, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
    /// How many requests may start together (1: none; at most `requests`).
    pub burst: u32,
}

impl RateLimit {
    pub const fn new(requests: u32, per: Duration) -> Self {
        RateLimit {
            requests,
            per,
            burst: 1,
        }
    }

    /// The same budget, of which `burst` requests may start at once (clamped to
    /// `1..=requests`).
    pub const fn with_burst(self, burst: u32) -> Self {
        let burst = if burst == 0 {
            1
        } else if burst > self.requests {
            self.requests
        } else {
            burst
        };
        RateLimit { burst, ..self }
    }

    /// The spacing between two requests once a burst is spent.
    pub fn interval(&self) -> Duration {
        self.per / (self.requests.saturating_sub(self.burst) + 1).max(1)
    }

    /// Reads `N/Ts` (e.g. `1/1s`, `100/10s`) or `none`, for the variable `name`.
    pub fn parse(name: &'static str, text: &str) -> Result<Option<Self>, ConfigError> {
        let invalid = || {
            ConfigError::new(
                name,
                format!(
                    "must be `none` or requests per period in seconds, like `1/1s` or `100/10s`; got {text:?}"
                ),
            )
        };
        let text = text.trim();
        if text.eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        let (requests, per) = text.split_once('/').ok_or_else(invalid)?;
        let requests: u32 = requests.trim().parse().map_err(|_| invalid())?;
        let seconds: u64 = per
            .trim()
            .strip_suffix('s')
            .ok_or_else(invalid)?
            .parse()
            .map_err(|_| invalid())?;
        if requests == 0 || seconds == 0 || seconds > 3600 {
            return Err(invalid());
        }
        Ok(Some(RateLimit::new(requests, Duration::from_secs(seconds))))
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}s", self.requests, self.per.as_secs())?;
        if self.burst > 1 {
            write!(f, " (bursts of {})", self.burst)?;
        }
        Ok(())
    }
}

/// Hands out start times so a destination's limit holds across all its callers.
pub trait RateLimiter: Send + Sync {
    /// Reserves `cost` consecutive requests to `destination` and says when the first may
    /// start: `now` when the destination is idle, a later slot when it is busy.
    fn reserve(
        &self,
        destination: &str,
        limit: RateLimit,
        cost: u32,
        now: SystemTime,
    ) -> impl Future<Output = Result<SystemTime, StoreError>> + Send;
}

/// The key of a destination's slot item in the idempotency table.
pub fn slot_key(destination: &str) -> String {
    format!("rate#{destination}")
}

/// How long a slot item outlives its last use (its TTL).
pub const SLOT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// One limiter shared by several users (the local runner's processors).
impl<T: RateLimiter> RateLimiter for std::sync::Arc<T> {
    fn reserve(
        &self,
        destination: &str,
        limit: RateLimit,
        cost: u32,
        now: SystemTime,
    ) -> impl Future<Output = Result<SystemTime, StoreError>> + Send {
        (**self).reserve(destination, limit, cost, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_rate_limit_texts_then_they_parse_or_name_the_variable() {
        let one = RateLimit::parse("X", "1/1s").expect("valid").expect("some");
        assert_eq!(one.interval(), Duration::from_secs(1));
        let hubspot = RateLimit::parse("X", " 100/10s ")
            .expect("valid")
            .expect("some");
        assert_eq!(hubspot.interval(), Duration::from_millis(100));
        assert_eq!(hubspot.to_string(), "100/10s");
        assert_eq!(RateLimit::parse("X", "none").expect("valid"), None);
        for bad in ["", "1", "0/1s", "1/0s", "x/1s", "1/1m", "1/7200s"] {
            let message = RateLimit::parse("NPHOOKS_RATE_LIMIT", bad)
                .expect_err(bad)
                .to_string();
            assert!(message.contains("NPHOOKS_RATE_LIMIT"), "{message}");
        }
    }
}
