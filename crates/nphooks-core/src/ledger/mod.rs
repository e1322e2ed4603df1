//! The delivery ledger: which deliveries the receiver has made durable.
//!
//! | from | event | to | who |
//! |---|---|---|---|
//! | (none), expired, or `received` with its lease over | [`DeliveryLedger::begin`] | `received` (lease [`RECEIVE_LEASE_SECS`]) | the receiver, before enqueueing |
//! | `received` (live) | `begin` | unchanged: [`Begin::InProgress`] (409) | a concurrent request |
//! | `enqueued` (not expired) | `begin` | unchanged: [`Begin::AlreadyEnqueued`] (duplicate) | the sender's retry |
//! | `received` | [`DeliveryLedger::complete`] | `enqueued` (queues, envelope kept) | the receiver, after every send succeeded |
//! | `received`, same payload | [`DeliveryLedger::abandon`] | (none) | the receiver, after a send failed |
//! | any | one [`ReplayWindow`] after `begin` | expired: as (none) | the clock |
//!
//! A record is created with a conditional write that succeeds when no live record exists
//! (`is_live`): expiry is checked by the condition itself, since TTL deletion lags by
//! up to 48 h. Records live exactly one [`ReplayWindow`] (`NPHOOKS_REPLAY_WINDOW_HOURS`,
//! default 7 days), the same as the effect claims, passed by the caller of each write.
//! [`DeliveryLedger::look_up`] reads a record back for an operator's replay.

mod dynamo;
mod memory;
#[cfg(test)]
mod tests;

use std::future::Future;

pub use dynamo::DynamoLedger;
pub use memory::MemoryLedger;

use crate::delivery::DeliveryKey;
use crate::routing::Integration;
use crate::store_error::StoreError;
use crate::window::ReplayWindow;

/// How long a `received` record blocks others before a retry may take it over. Longer
/// than the receiver's whole time budget.
pub const RECEIVE_LEASE_SECS: u64 = 30;

/// Envelopes larger than this are not stored with the record (DynamoDB items hold 400 KB).
pub const MAX_STORED_ENVELOPE_BYTES: usize = 350 * 1024;

/// Where a delivery record stands; both adapters store it as [`DeliveryState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// A request owns the delivery and is enqueueing it.
    Received,
    /// Every routed queue holds it.
    Enqueued,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Received => "received",
            DeliveryState::Enqueued => "enqueued",
        }
    }
}

impl std::str::FromStr for DeliveryState {
    type Err = UnknownState;

    fn from_str(text: &str) -> Result<Self, UnknownState> {
        match text {
            "received" => Ok(DeliveryState::Received),
            "enqueued" => Ok(DeliveryState::Enqueued),
            _ => Err(UnknownState),
        }
    }
}

/// A stored state that is not one of the machine's (another kind of item, or a typo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a state of this record")]
pub struct UnknownState;

/// What [`DeliveryLedger::begin`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// This request owns the delivery: enqueue it, then `complete`.
    Started,
    /// Already enqueued by an earlier request.
    AlreadyEnqueued { same_payload: bool },
    /// Another request is enqueueing it right now.
    InProgress { same_payload: bool },
}

impl Begin {
    /// What `begin` answers when a live record in `state` is in the way.
    pub(crate) fn blocked_by(state: Option<DeliveryState>, same_payload: bool) -> Self {
        match state {
            Some(DeliveryState::Enqueued) => Begin::AlreadyEnqueued { same_payload },
            _ => Begin::InProgress { same_payload },
        }
    }
}

/// Whether a record blocks a new `begin`: not expired, and enqueued or still leased.
pub(crate) fn is_live(state: DeliveryState, expires_at: u64, lease_until: u64, now: u64) -> bool {
    expires_at > now && (state == DeliveryState::Enqueued || lease_until > now)
}

/// The envelope as it is kept with the record: only when it fits the item.
pub(crate) fn storable(envelope: Option<&str>) -> Option<&str> {
    envelope.filter(|e| e.len() <= MAX_STORED_ENVELOPE_BYTES)
}

/// A delivery as the receiver recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    pub enqueued: bool,
    /// The integrations it was enqueued to, by name.
    pub queues: Vec<String>,
    /// The queue message body, when it fitted the item.
    pub envelope: Option<String>,
}

/// The receiver's port: one record per delivery key.
pub trait DeliveryLedger: Send + Sync {
    /// Creates a `received` record, kept for `window`, unless a live one exists.
    fn begin(
        &self,
        key: &DeliveryKey,
        payload_hash: &str,
        now: u64,
        window: ReplayWindow,
    ) -> impl Future<Output = Result<Begin, StoreError>> + Send;

    /// Marks the delivery `enqueued` to `queues`, keeping the envelope (when it fits the
    /// item size limit) so the delivery can be replayed.
    fn complete(
        &self,
        key: &DeliveryKey,
        queues: &[Integration],
        envelope: Option<&str>,
        now: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes this request's `received` record after a failed enqueue, so the sender's
    /// retry starts afresh instead of finding it in progress.
    fn abandon(
        &self,
        key: &DeliveryKey,
        payload_hash: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The stored record of a delivery: its queues and envelope, for replay.
    fn look_up(
        &self,
        key: &DeliveryKey,
    ) -> impl Future<Output = Result<Option<StoredDelivery>, StoreError>> + Send;
}
