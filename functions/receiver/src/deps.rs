//! What the receiver needs: its configuration, one adapter per port, the clock, and the
//! counters it emits as metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use nphooks_core::clock::Clock;
use nphooks_core::config::ReceiverConfig;

/// What the receiver needs: its config and one adapter per port.
#[derive(Debug)]
pub struct Deps<L, Q> {
    pub config: ReceiverConfig,
    pub ledger: L,
    pub queue: Q,
    pub metrics: Metrics,
    /// The current time (the wall clock, unless a test sets it).
    pub clock: Clock,
}

impl<L, Q> Deps<L, Q> {
    pub fn new(config: ReceiverConfig, ledger: L, queue: Q) -> Self {
        Deps {
            config,
            ledger,
            queue,
            metrics: Metrics::default(),
            clock: Clock::system(),
        }
    }

    /// The same deps, reading the time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}

/// Counters for what is logged as a warning. Each increment is also logged as a
/// CloudWatch Embedded Metric (`nphooks` namespace).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Same delivery key, different body: nothing new accepted.
    pub payload_conflicts: AtomicU64,
    /// The idempotency table failed; the webhook was enqueued without deduplication.
    pub dedup_unavailable: AtomicU64,
    /// Optional fields of an unexpected type, read as absent or coerced (one per field).
    pub schema_drift: AtomicU64,
    /// Signed webhooks whose `timestamp` is older than the replay window.
    pub stale_webhooks: AtomicU64,
    /// Requests answered 401.
    pub unauthorized: AtomicU64,
}

impl Metrics {
    pub(crate) fn count(counter: &AtomicU64, name: &str) {
        Self::add(counter, name, 1);
    }

    pub(crate) fn add(counter: &AtomicU64, name: &str, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
        tracing::warn!(metric = name, value, "{name}");
        nphooks_core::metrics::emit_metric("receiver", name, value);
    }
}
