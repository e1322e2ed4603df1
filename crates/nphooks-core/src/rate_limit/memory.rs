//! The rate limiter in memory: the same slot arithmetic as the DynamoDB item.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use super::{RateLimit, RateLimiter};
use crate::clock::{epoch_millis, from_epoch_millis};
use crate::queue::lock;
use crate::store_error::StoreError;

/// Next free slot (epoch milliseconds) per destination.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    next_slot: Mutex<HashMap<String, u64>>,
}

impl MemoryRateLimiter {
    pub fn new() -> Self {
        Self::default()
    }
}

impl RateLimiter for MemoryRateLimiter {
    async fn reserve(
        &self,
        destination: &str,
        limit: RateLimit,
        cost: u32,
        now: SystemTime,
    ) -> Result<SystemTime, StoreError> {
        let span = super::dynamo::span_millis(limit, cost);
        let now = epoch_millis(now);
        let mut slots = lock(&self.next_slot);
        let next = slots.entry(destination.to_owned()).or_insert(0);
        let tolerance = super::dynamo::tolerance_millis(limit);
        let start = next.saturating_sub(tolerance).max(now);
        *next = (*next).max(now) + span;
        Ok(from_epoch_millis(start))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[tokio::test]
    async fn given_a_busy_destination_then_slots_are_spaced_by_the_interval() {
        let limiter = MemoryRateLimiter::new();
        let limit = RateLimit::new(1, Duration::from_secs(1));
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let mut slots = Vec::new();
        for _ in 0..3 {
            slots.push(
                limiter
                    .reserve("slack", limit, 1, now)
                    .await
                    .expect("memory"),
            );
        }
        let secs: Vec<u64> = slots.iter().map(|s| crate::epoch_seconds(*s)).collect();
        assert_eq!(secs, [1000, 1001, 1002]);
        // Another destination is not held up; an idle one starts now.
        assert_eq!(limiter.reserve("crm", limit, 3, now).await.ok(), Some(now));
        let later = now + Duration::from_secs(60);
        assert_eq!(
            limiter.reserve("slack", limit, 1, later).await.ok(),
            Some(later)
        );
    }

    #[tokio::test]
    async fn given_a_burst_then_it_starts_at_once_and_no_window_exceeds_the_budget() {
        // GIVEN 10 per 60 s with bursts of 4: 4 at once, then one every 60/7 s
        let limiter = MemoryRateLimiter::new();
        let limit = RateLimit::new(10, Duration::from_secs(60)).with_burst(4);
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        // WHEN 30 requests reserve at the same instant
        let mut slots = Vec::new();
        for _ in 0..30 {
            let slot = limiter.reserve("nextphone", limit, 1, now).await;
            slots.push(epoch_millis(slot.expect("memory")));
        }
        // THEN the first 4 start now, and any 60 s and any 1 s hold at most 10 and 4
        assert_eq!(slots[..4], [epoch_millis(now); 4]);
        assert!(slots[4] > epoch_millis(now), "{slots:?}");
        let most_within = |window: u64| {
            slots
                .iter()
                .map(|start| {
                    slots
                        .iter()
                        .filter(|s| (*start..start + window).contains(s))
                        .count()
                })
                .max()
        };
        assert_eq!(most_within(60_000), Some(10));
        assert_eq!(most_within(1_000), Some(4));
    }
}
