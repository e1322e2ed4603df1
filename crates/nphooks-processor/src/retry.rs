//! The retry budget, measured in time: a transient failure is retried with exponential
//! backoff (with jitter) until `horizon` after its first failure, then dead-lettered. A
//! message waiting for a rate-limit slot, a `Retry-After`, or a busy claim spends none of
//! it. Where a message stands travels with it as message attributes, because each retry
//! is a new SQS message sent to the processor's own queue with a delay.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::SqsMessage;
use nphooks_core::clock::{epoch_millis, from_epoch_millis};
use nphooks_core::queue::MAX_DELAY;

/// Failed attempts so far.
pub const ATTEMPTS_ATTR: &str = "retry_attempts";
/// When the first attempt failed, epoch milliseconds: the budget's start.
pub const FIRST_FAILURE_ATTR: &str = "retry_first_failed_at_ms";
/// Not to be tried before this, epoch milliseconds.
pub const NOT_BEFORE_ATTR: &str = "retry_not_before_ms";
/// A rate-limit slot already reserved for this message, epoch milliseconds.
pub const RATE_SLOT_ATTR: &str = "rate_slot_ms";

/// The receiver's attributes, carried over unchanged on every re-send.
const CARRIED_ATTRS: [&str; 2] = ["event", "call_type"];

/// How long and how often a transient failure is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Give up this long after the first failure (default 24 h).
    pub horizon: Duration,
    /// The first backoff (default 30 s); each further failure doubles it.
    pub base: Duration,
    /// The longest single backoff (default 1 h).
    pub max_backoff: Duration,
    /// The longest delay one re-send asks SQS for (its limit, 15 min); a longer wait
    /// takes several hops, each re-sent unchanged until the not-before time.
    pub max_queue_delay: Duration,
    /// A message received longer ago than this is dead-lettered (`expired`) instead of
    /// waiting for yet another rate-limit slot: the replay window.
    pub max_message_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            horizon: Duration::from_secs(24 * 3600),
            base: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            max_queue_delay: MAX_DELAY,
            max_message_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): `base · 2^(attempt-1)`, capped,
    /// with "equal jitter" (between half and all of it) drawn from `seed`, so a run is
    /// reproducible and many messages failing at once do not return at once.
    pub fn backoff(&self, attempt: u32, seed: &str) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let full = self
            .base
            .saturating_mul(1 << exponent)
            .min(self.max_backoff)
            .max(Duration::from_secs(1));
        let mut hasher = DefaultHasher::new();
        (seed, attempt).hash(&mut hasher);
        let fraction = (hasher.finish() % 1000) as f64 / 1000.0;
        full / 2 + full.mul_f64(fraction / 2.0)
    }

    /// Whether the budget is spent at `now` for a message that first failed at `first`.
    pub fn exhausted(&self, first: SystemTime, now: SystemTime) -> bool {
        now.duration_since(first).unwrap_or_default() >= self.horizon
    }
}

/// Where a message stands in its retries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryState {
    pub attempts: u32,
    pub first_failed_at: Option<SystemTime>,
    pub not_before: Option<SystemTime>,
    pub rate_slot: Option<SystemTime>,
}

impl RetryState {
    /// Reads the state from a record's attributes; a missing or unreadable value counts
    /// as absent (a message from the receiver has none).
    pub fn from_record(record: &SqsMessage) -> Self {
        let number = |name: &str| -> Option<u64> {
            record
                .message_attributes
                .get(name)
                .and_then(|a| a.string_value.as_deref())
                .and_then(|v| v.trim().parse().ok())
        };
        RetryState {
            attempts: number(ATTEMPTS_ATTR)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            first_failed_at: number(FIRST_FAILURE_ATTR).map(from_epoch_millis),
            not_before: number(NOT_BEFORE_ATTR).map(from_epoch_millis),
            rate_slot: number(RATE_SLOT_ATTR).map(from_epoch_millis),
        }
    }

    /// The receiver's attributes (`event`, `call_type`) of a record, to carry over.
    pub fn carried(record: &SqsMessage) -> Vec<(&'static str, String)> {
        CARRIED_ATTRS
            .into_iter()
            .filter_map(|name| {
                let value = record.message_attributes.get(name)?.string_value.clone()?;
                Some((name, value))
            })
            .collect()
    }

    /// The state as message attributes.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.attempts > 0 {
            out.push((ATTEMPTS_ATTR, self.attempts.to_string()));
        }
        let times = [
            (FIRST_FAILURE_ATTR, self.first_failed_at),
            (NOT_BEFORE_ATTR, self.not_before),
            (RATE_SLOT_ATTR, self.rate_slot),
        ];
        for (name, at) in times {
            if let Some(at) = at {
                out.push((name, epoch_millis(at).to_string()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_lambda_events::event::sqs::SqsMessageAttribute;

    use super::*;

    #[test]
    fn given_failed_attempts_then_the_backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy::default();
        let waits: Vec<Duration> = (1..=10).map(|a| policy.backoff(a, "crm#k")).collect();
        for (attempt, wait) in (1u32..).zip(&waits) {
            let full = (policy.base * 2u32.pow(attempt - 1)).min(policy.max_backoff);
            assert!(*wait >= full / 2 && *wait <= full, "{attempt}: {wait:?}");
        }
        assert_eq!(policy.backoff(3, "crm#k"), waits[2], "reproducible");
        assert_ne!(
            (1..=10)
                .map(|a| policy.backoff(a, "slack#k"))
                .collect::<Vec<_>>(),
            waits,
            "other messages draw other jitter"
        );
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(!policy.exhausted(start, start + Duration::from_secs(24 * 3600 - 1)));
        assert!(policy.exhausted(start, start + Duration::from_secs(24 * 3600)));
    }

    #[test]
    fn given_a_state_then_it_round_trips_through_message_attributes() {
        let at = |ms| Some(from_epoch_millis(ms));
        let state = RetryState {
            attempts: 3,
            first_failed_at: at(1_000),
            not_before: at(5_000),
            rate_slot: None,
        };
        let mut record = SqsMessage::default();
        let mut attributes: HashMap<String, SqsMessageAttribute> = HashMap::new();
        for (name, value) in state.attributes().into_iter().chain([
            ("event", "call.ended".to_owned()),
            ("other", "x".to_owned()),
        ]) {
            let mut attribute = SqsMessageAttribute::default();
            attribute.string_value = Some(value);
            attributes.insert(name.to_owned(), attribute);
        }
        record.message_attributes = attributes;
        assert_eq!(RetryState::from_record(&record), state);
        assert_eq!(
            RetryState::carried(&record),
            [("event", "call.ended".to_owned())]
        );
        assert_eq!(
            RetryState::from_record(&SqsMessage::default()),
            RetryState::default()
        );
    }
}
