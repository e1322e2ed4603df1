//! The rate limiter one instance holds in memory at its share of the limit, for a
//! function whose instances are bounded: with at most `instances` running at once, each
//! spacing its own requests `instances` times the interval, together they never start
//! more requests than the destination allows, and no request writes to DynamoDB.

use std::time::SystemTime;

use super::{MemoryRateLimiter, RateLimit, RateLimiter};
use crate::store_error::StoreError;

/// Fewest and most instances the share is computed for (`NPHOOKS_MAX_CONCURRENCY`).
pub const INSTANCES: std::ops::RangeInclusive<u32> = 2..=1000;

/// One instance's share of every destination's limit, held in memory (reserved through
/// [`ProcessRateLimiter::Instance`]).
#[derive(Debug)]
pub struct InstanceRateLimiter {
    instances: u32,
    slots: MemoryRateLimiter,
}

impl InstanceRateLimiter {
    /// The limiter of one of at most `instances` concurrent instances.
    pub fn new(instances: u32) -> Self {
        InstanceRateLimiter {
            instances: instances.max(1),
            slots: MemoryRateLimiter::new(),
        }
    }

    /// `limit` divided among the instances: the same requests over `instances` periods.
    pub fn share(&self, limit: RateLimit) -> RateLimit {
        RateLimit::new(limit.requests, limit.per * self.instances)
    }
}

/// The limiter a processor runs with: its instance's share in memory when its concurrency
/// is bounded, else the one item in the idempotency table every instance shares.
#[derive(Debug)]
pub enum ProcessRateLimiter {
    Instance(InstanceRateLimiter),
    Shared(super::DynamoRateLimiter),
}

impl RateLimiter for ProcessRateLimiter {
    async fn reserve(
        &self,
        destination: &str,
        limit: RateLimit,
        cost: u32,
        now: SystemTime,
    ) -> Result<SystemTime, StoreError> {
        match self {
            ProcessRateLimiter::Instance(l) => {
                let share = l.share(limit);
                l.slots.reserve(destination, share, cost, now).await
            }
            ProcessRateLimiter::Shared(l) => l.reserve(destination, limit, cost, now).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::clock::{Clock, epoch_millis};

    /// Two instances, each with its own limiter, asking for a slot every 100 ms for
    /// `seconds` and sending when it is due: every send's start, in milliseconds.
    async fn two_instances(limit: RateLimit, seconds: u64) -> Vec<u64> {
        let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_000));
        let instance = || ProcessRateLimiter::Instance(InstanceRateLimiter::new(2));
        let instances = [instance(), instance()];
        let mut waiting: [Option<SystemTime>; 2] = [None, None];
        let mut sent = Vec::new();
        for _ in 0..seconds * 10 {
            let now = clock.now();
            for (limiter, slot) in instances.iter().zip(waiting.iter_mut()) {
                let at = match slot.take() {
                    Some(at) => at,
                    None => limiter.reserve("d", limit, 1, now).await.expect("memory"),
                };
                if at <= now {
                    sent.push(epoch_millis(now));
                } else {
                    *slot = Some(at);
                }
            }
            clock.advance(Duration::from_millis(100));
        }
        sent.sort_unstable();
        sent
    }

    /// The most sends any half-open window of `window_ms` holds.
    fn busiest(sent: &[u64], window_ms: u64) -> usize {
        let mut most = 0;
        for (i, start) in sent.iter().enumerate() {
            let inside = sent[i..]
                .iter()
                .take_while(|t| **t < start + window_ms)
                .count();
            most = most.max(inside);
        }
        most
    }

    #[tokio::test]
    async fn given_two_instances_then_together_they_keep_hubspots_rate() {
        // GIVEN HubSpot's 100 requests / 10 s and two instances with their own limiters
        let limit = RateLimit::new(100, Duration::from_secs(10));
        // WHEN both send as fast as their limiters let them for a minute
        let sent = two_instances(limit, 60).await;
        // THEN no 10 s window holds more than 100 starts, and the rate is used
        assert!(busiest(&sent, 10_000) <= 100, "{}", busiest(&sent, 10_000));
        assert!(sent.len() >= 590, "{} sends in 60 s", sent.len());
    }

    #[tokio::test]
    async fn given_two_instances_then_slacks_rate_holds_over_their_period() {
        // GIVEN Slack's 1 post / s, shared by two instances: each posts every 2 s
        let limit = RateLimit::new(1, Duration::from_secs(1));
        // WHEN both post as fast as their limiters let them for a minute
        let sent = two_instances(limit, 60).await;
        // THEN every 2 s holds at most 2 posts (a pair may start together), 1/s on average
        assert!(busiest(&sent, 2_000) <= 2, "{sent:?}");
        assert!(busiest(&sent, 10_000) <= 10, "{sent:?}");
        assert!(sent.len() >= 59, "{} posts in 60 s", sent.len());
    }

    #[test]
    fn given_a_limit_then_the_share_spaces_requests_by_the_instances() {
        let share = InstanceRateLimiter::new(2).share(RateLimit::new(100, Duration::from_secs(10)));
        assert_eq!(share.interval(), Duration::from_millis(200));
    }
}
