//! The idempotency port: one DynamoDB table (in memory locally) holding the receiver's
//! delivery records.
//!
//! A delivery record moves `received` → `enqueued`. It is created with a conditional
//! write that succeeds when no live record exists: absent, expired (`expires_at` is
//! checked by the condition itself, since TTL deletion lags by up to 48 h), or a stale
//! `received` record whose lease ran out (a crash between the write and the sends).
//!
//! Delivery records and effect claims both live exactly one [`ReplayWindow`]
//! (`NPHOOKS_REPLAY_WINDOW_HOURS`, default 7 days), passed by the caller of each write.

mod dynamo;
mod memory;

use std::future::Future;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

use crate::Result;
use crate::delivery::DeliveryKey;
use crate::window::ReplayWindow;

/// How long a `received` record blocks others before a retry may take it over. Longer
/// than the receiver's whole time budget.
pub const RECEIVE_LEASE_SECS: u64 = 30;

/// Attribute names in the table.
pub mod attr {
    pub const KEY: &str = "pk";
    pub const STATE: &str = "state";
    pub const PAYLOAD_HASH: &str = "payload_hash";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const LEASE_UNTIL: &str = "lease_until";
    pub const QUEUES: &str = "queues";
    pub const UPDATED_AT: &str = "updated_at";
    pub const OWNER: &str = "owner";
    pub const ENVELOPE: &str = "envelope";
    pub const REASON: &str = "reason";
}

pub(crate) const RECEIVED: &str = "received";
pub(crate) const ENQUEUED: &str = "enqueued";
pub(crate) const IN_PROGRESS: &str = "in_progress";
pub(crate) const COMPLETED: &str = "completed";
pub(crate) const FAILED: &str = "failed";

/// What `begin_delivery` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// This request owns the delivery: enqueue it, then `complete_delivery`.
    Started,
    /// Already enqueued by an earlier request.
    AlreadyEnqueued { same_payload: bool },
    /// Another request is enqueueing it right now.
    InProgress { same_payload: bool },
}

/// Records which deliveries the receiver has made durable.
pub trait IdempotencyStore: Send + Sync {
    /// Creates a `received` record, kept for `window`, unless a live one exists.
    fn begin_delivery(
        &self,
        key: &DeliveryKey,
        payload_hash: &str,
        now: u64,
        window: ReplayWindow,
    ) -> impl Future<Output = Result<Begin>> + Send;

    /// Marks the delivery `enqueued` in the named queues, keeping the envelope (when it
    /// fits the item size limit) so the delivery can be replayed.
    fn complete_delivery(
        &self,
        key: &DeliveryKey,
        queues: &[&str],
        envelope: Option<&str>,
        now: u64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The stored record of a delivery: its queues and envelope, for replay.
    fn delivery(
        &self,
        key: &DeliveryKey,
    ) -> impl Future<Output = Result<Option<StoredDelivery>>> + Send;

    /// Forgets an effect's claim so it can run again (an operator's forced replay).
    fn forget_effect(&self, claim_key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Removes this request's `received` record after a failed enqueue, so the sender's
    /// retry starts afresh instead of finding it in progress.
    fn abandon_delivery(
        &self,
        key: &DeliveryKey,
        payload_hash: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Claims an effect, kept for `window`: succeeds when it is absent, expired, failed,
    /// or in progress with a lease that ended before `now` (its run died).
    fn claim_effect(
        &self,
        claim: &EffectClaim,
        lease_until: u64,
        now: u64,
        window: ReplayWindow,
    ) -> impl Future<Output = Result<Claim>> + Send;

    /// Records that the effect happened.
    fn complete_effect(
        &self,
        claim: &EffectClaim,
        now: u64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Gives the claim up after a transient failure, so the next delivery may act.
    fn release_effect(&self, claim: &EffectClaim) -> impl Future<Output = Result<()>> + Send;

    /// Records a permanent failure (the message went to the DLQ); a redriven message may
    /// claim it again.
    fn fail_effect(
        &self,
        claim: &EffectClaim,
        reason: &str,
        now: u64,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// A delivery as the receiver recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    pub enqueued: bool,
    pub queues: Vec<String>,
    /// The queue message body, when it fitted the item.
    pub envelope: Option<String>,
}

/// Envelopes larger than this are not stored with the record (DynamoDB items hold 400 KB).
pub const MAX_STORED_ENVELOPE_BYTES: usize = 350 * 1024;

/// What `claim_effect` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This run owns the effect until its lease ends: act, then `complete_effect`.
    Claimed,
    /// The effect already happened: acknowledge without acting.
    AlreadyCompleted,
    /// Another run holds a live lease on it.
    Busy,
}

/// One integration's effect for one delivery, claimed by one processor run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectClaim {
    /// `integration#delivery_key`.
    pub key: String,
    /// Identifies the run holding the claim, so it releases only its own.
    pub owner: String,
}

impl EffectClaim {
    pub fn new(integration: &str, delivery_key: &DeliveryKey, owner: impl Into<String>) -> Self {
        EffectClaim {
            key: format!("{integration}#{delivery_key}"),
            owner: owner.into(),
        }
    }
}

/// One store shared by several users (the local runner's receiver and processors).
impl<T: IdempotencyStore> IdempotencyStore for std::sync::Arc<T> {
    fn begin_delivery(
        &self,
        key: &DeliveryKey,
        payload_hash: &str,
        now: u64,
        window: ReplayWindow,
    ) -> impl Future<Output = Result<Begin>> + Send {
        (**self).begin_delivery(key, payload_hash, now, window)
    }
    fn complete_delivery(
        &self,
        key: &DeliveryKey,
        queues: &[&str],
        envelope: Option<&str>,
        now: u64,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).complete_delivery(key, queues, envelope, now)
    }
    fn delivery(
        &self,
        key: &DeliveryKey,
    ) -> impl Future<Output = Result<Option<StoredDelivery>>> + Send {
        (**self).delivery(key)
    }
    fn forget_effect(&self, claim_key: &str) -> impl Future<Output = Result<()>> + Send {
        (**self).forget_effect(claim_key)
    }
    fn abandon_delivery(
        &self,
        key: &DeliveryKey,
        payload_hash: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).abandon_delivery(key, payload_hash)
    }
    fn claim_effect(
        &self,
        claim: &EffectClaim,
        lease_until: u64,
        now: u64,
        window: ReplayWindow,
    ) -> impl Future<Output = Result<Claim>> + Send {
        (**self).claim_effect(claim, lease_until, now, window)
    }
    fn complete_effect(
        &self,
        claim: &EffectClaim,
        now: u64,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).complete_effect(claim, now)
    }
    fn release_effect(&self, claim: &EffectClaim) -> impl Future<Output = Result<()>> + Send {
        (**self).release_effect(claim)
    }
    fn fail_effect(
        &self,
        claim: &EffectClaim,
        reason: &str,
        now: u64,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).fail_effect(claim, reason, now)
    }
}
