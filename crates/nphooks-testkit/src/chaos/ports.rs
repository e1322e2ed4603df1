//! Fault-injecting wrappers around the ports (ledger, claims, queue, rate limiter, and
//! the secret read at a cold start, [`Instance`]): each call goes through the [`FaultPlan`],
//! and each injected error is the one the real adapter returns for that class
//! (`StoreError::Unavailable` for throttling, 5xx, timeouts and resets,
//! `StoreError::Rejected` for a `ValidationException`, `QueueError` for SQS).
//!
//! Each can also run deliberately broken (test-only), to show the soak catches a removed
//! guard: claims that let a completed effect be claimed again, and a receiver queue that
//! hides a failed send (so the receiver answers 2xx before every send succeeded).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nphooks_core::QueueError;
use nphooks_core::claims::{Claim, ClaimKey, EffectClaim, EffectClaims, PendingRetry};
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::envelope::QueueMessage;
use nphooks_core::ledger::{Begin, DeliveryLedger, NewDelivery, StoredDelivery};
use nphooks_core::queue::Queue;
use nphooks_core::rate_limit::{RateLimit, RateLimiter};
use nphooks_core::store_error::StoreError;
use nphooks_core::window::ReplayWindow;

use super::plan::{ErrorKind, Fault, FaultPlan, Port, around};
use super::sink::EffectLog;

const TABLE: &str = "soak-idempotency";

fn store_error(kind: ErrorKind) -> StoreError {
    match kind {
        ErrorKind::Validation => StoreError::rejected(TABLE, kind.message()),
        _ => StoreError::unavailable(TABLE, kind.message()),
    }
}

/// The delivery ledger under the fault plan.
#[derive(Debug)]
pub struct ChaosLedger<L> {
    pub inner: L,
    pub plan: Arc<FaultPlan>,
}

impl<L: DeliveryLedger> DeliveryLedger for ChaosLedger<L> {
    async fn begin(
        &self,
        key: &DeliveryKey,
        delivery: NewDelivery<'_>,
        now: u64,
        window: ReplayWindow,
    ) -> Result<Begin, StoreError> {
        let call = self.inner.begin(key, delivery, now, window);
        around(&self.plan, Port::Store, call, store_error).await
    }

    async fn abandon(&self, key: &DeliveryKey, payload_hash: &str) -> Result<(), StoreError> {
        let call = self.inner.abandon(key, payload_hash);
        around(&self.plan, Port::Store, call, store_error).await
    }

    async fn look_up(&self, key: &DeliveryKey) -> Result<Option<StoredDelivery>, StoreError> {
        let call = self.inner.look_up(key);
        around(&self.plan, Port::Store, call, store_error).await
    }
}

/// The effect claims under the fault plan. A `complete` that reached the table is
/// reported to the [`EffectLog`], which so tells an unavoidable re-send (the effect's
/// completion was never recorded) from a doubled effect (it was).
#[derive(Debug)]
pub struct ChaosClaims<C> {
    pub inner: C,
    pub plan: Arc<FaultPlan>,
    pub log: Arc<EffectLog>,
    /// Broken on purpose: a claim on a `completed` effect succeeds.
    pub reclaim_completed: bool,
}

impl<C: EffectClaims> EffectClaims for ChaosClaims<C> {
    async fn claim(
        &self,
        claim: &EffectClaim,
        lease_until: u64,
        now: u64,
        window: ReplayWindow,
    ) -> Result<Claim, StoreError> {
        let call = async {
            let found = self.inner.claim(claim, lease_until, now, window).await?;
            if self.reclaim_completed && found == Claim::AlreadyCompleted {
                self.inner.forget(&claim.key).await?;
                return self.inner.claim(claim, lease_until, now, window).await;
            }
            Ok(found)
        };
        around(&self.plan, Port::Store, call, store_error).await
    }

    async fn complete(&self, claim: &EffectClaim, now: u64) -> Result<(), StoreError> {
        let call = async {
            let done = self.inner.complete(claim, now).await;
            if done.is_ok() {
                self.log.confirm(&claim.key);
            }
            done
        };
        around(&self.plan, Port::Store, call, store_error).await
    }

    async fn release(
        &self,
        claim: &EffectClaim,
        retry: &PendingRetry<'_>,
        now: u64,
    ) -> Result<(), StoreError> {
        let call = self.inner.release(claim, retry, now);
        around(&self.plan, Port::Store, call, store_error).await
    }

    async fn fail(&self, claim: &EffectClaim, reason: &str, now: u64) -> Result<(), StoreError> {
        let call = self.inner.fail(claim, reason, now);
        around(&self.plan, Port::Store, call, store_error).await
    }

    async fn forget(&self, key: &ClaimKey) -> Result<(), StoreError> {
        let call = self.inner.forget(key);
        around(&self.plan, Port::Store, call, store_error).await
    }
}

/// A queue under the fault plan.
#[derive(Debug, Clone)]
pub struct ChaosQueue<Q> {
    pub inner: Q,
    pub plan: Arc<FaultPlan>,
    /// Broken on purpose: a failed send is reported as sent.
    pub hide_failures: bool,
}

impl<Q: Queue> Queue for ChaosQueue<Q> {
    async fn send(&self, queue_url: &str, message: &QueueMessage) -> Result<(), QueueError> {
        self.send_delayed(queue_url, message, Duration::ZERO).await
    }

    async fn send_delayed(
        &self,
        queue_url: &str,
        message: &QueueMessage,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let call = self.inner.send_delayed(queue_url, message, delay);
        let error = |kind: ErrorKind| QueueError {
            queue: queue_url.to_owned(),
            message: kind.message().to_owned(),
        };
        let sent = around(&self.plan, Port::Queue, call, error).await;
        if self.hide_failures { Ok(()) } else { sent }
    }
}

/// The rate limiter under the fault plan (its errors are the store's: the processor
/// then sends unpaced, as it does when DynamoDB fails it).
#[derive(Debug)]
pub struct ChaosLimiter<L> {
    pub inner: L,
    pub plan: Arc<FaultPlan>,
}

impl<L: RateLimiter> RateLimiter for ChaosLimiter<L> {
    async fn reserve(
        &self,
        destination: &str,
        limit: RateLimit,
        cost: u32,
        now: SystemTime,
    ) -> Result<SystemTime, StoreError> {
        let call = self.inner.reserve(destination, limit, cost, now);
        around(&self.plan, Port::Limiter, call, store_error).await
    }
}

/// A function's instance and its cold start: the first invocation of a new instance (one
/// in [`RECYCLE`], and every one after a crash) reads the app secret first; when that read
/// fails, the invocation fails before the handler runs (API Gateway answers 502, a
/// batch goes back to its queue) and the next one starts cold again.
#[derive(Debug, Default)]
pub struct Instance {
    warm: bool,
}

/// One invocation in this many lands on a new instance.
pub const RECYCLE: u64 = 50;

impl Instance {
    /// Whether the instance is up for the next invocation (reading the secret if cold).
    pub async fn start(&mut self, plan: &FaultPlan) -> bool {
        if plan.below(RECYCLE) == 0 {
            self.warm = false;
        }
        if !self.warm {
            self.warm = match plan.draw(Port::Secret) {
                Fault::None => true,
                Fault::Latency(by) => {
                    plan.sleep(by).await;
                    true
                }
                _ => false,
            };
        }
        self.warm
    }

    /// The instance died with its invocation.
    pub fn crashed(&mut self) {
        self.warm = false;
    }
}
