//! The delivery ledger: which deliveries the receiver has made durable, written once per
//! delivery on the happy path.
//!
//! | from | event | to | who |
//! |---|---|---|---|
//! | (none) or expired | [`DeliveryLedger::begin`] | `received` (lease [`RECEIVE_LEASE_SECS`], queues, envelope): [`Begin::Started`] | the receiver, before enqueueing |
//! | `received` with its lease over | `begin` | `received`, new lease: [`Begin::TookOver`] (and whether the payload was the same) | a retry past the lease |
//! | `received` (live) | `begin` | unchanged: [`Begin::InProgress`] (409) | a concurrent request, or a retry within the lease |
//! | `enqueued` (not expired; written by the previous two-write version) | `begin` | unchanged: [`Begin::AlreadyEnqueued`] (duplicate) | the sender's retry |
//! | `received`, same payload | [`DeliveryLedger::abandon`] | (none) | the receiver, after a send failed |
//! | any | one [`ReplayWindow`] after `begin` | expired: as (none) | the clock |
//!
//! There is no "completed" write: a `received` record whose lease is over cannot tell a
//! finished delivery from a crashed one, so a `begin` takes it over and the request
//! enqueues again (invariant 2: a retry after a failed or crashed send re-enqueues); the
//! processors' effect claims keep each effect once (invariant 4).
//!
//! A record is created with a conditional write that succeeds when no live record exists
//! (`is_live`): expiry is checked by the condition itself, since TTL deletion lags by
//! up to 48 h. Records live exactly one [`ReplayWindow`] (`NPHOOKS_REPLAY_WINDOW_HOURS`,
//! default 7 days), the same as the effect claims, passed by the caller of each write.
//! The envelope is stored deflated ([`stored`]); [`DeliveryLedger::look_up`] reads a
//! record back for an operator's replay, an older record's plain-text envelope too.

mod dynamo;
mod memory;
pub mod stored;
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

/// Envelopes whose deflated bytes are larger than this are not stored with the record
/// (DynamoDB items hold 400 KB).
pub const MAX_STORED_ENVELOPE_BYTES: usize = 350 * 1024;

/// Where a delivery record stands; both adapters store it as [`DeliveryState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// A request began the delivery: it is enqueueing it, has done so (no later write
    /// says which), or failed without abandoning it.
    Received,
    /// Every routed queue holds it: written only by the previous (two-write) version,
    /// still read as a duplicate until it expires.
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
    /// This request owns the delivery: enqueue it (and `abandon` it if a send fails).
    Started,
    /// As [`Begin::Started`], over a `received` record whose lease was over (learnt from
    /// the same write's old item: no extra write unit); `same_payload` says whether that
    /// record held the same body.
    TookOver { same_payload: bool },
    /// Already enqueued by an earlier request.
    AlreadyEnqueued { same_payload: bool },
    /// Another request is enqueueing it right now.
    InProgress { same_payload: bool },
}

impl Begin {
    /// What `begin` answers when its write replaced `old` (`None`: nothing live was there):
    /// a `received` record not yet expired was taken over.
    pub(crate) fn replacing(old: Option<(DeliveryState, u64, bool)>, now: u64) -> Self {
        match old {
            Some((DeliveryState::Received, expires_at, same_payload)) if expires_at > now => {
                Begin::TookOver { same_payload }
            }
            _ => Begin::Started,
        }
    }

    /// Whether this request owns the delivery (it enqueues it).
    pub fn owns(self) -> bool {
        matches!(self, Begin::Started | Begin::TookOver { .. })
    }

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

/// A delivery as the receiver recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    pub state: DeliveryState,
    /// The integrations it was enqueued to, by name.
    pub queues: Vec<String>,
    /// The queue message body, when it fitted the item.
    pub envelope: Option<String>,
}

/// What a request records of its delivery, in `begin`'s one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewDelivery<'a> {
    /// SHA-256 of the body ([`crate::delivery::payload_hash`]).
    pub payload_hash: &'a str,
    /// The integrations it is routed to.
    pub queues: &'a [Integration],
    /// The queue message body, kept for replay when its deflated bytes fit the item.
    pub envelope: Option<&'a str>,
}

/// The receiver's port: one record per delivery key.
pub trait DeliveryLedger: Send + Sync {
    /// Creates a `received` record of `delivery` (its queues and envelope), kept for
    /// `window`, unless a live one exists. The only write of a delivery that enqueues.
    fn begin(
        &self,
        key: &DeliveryKey,
        delivery: NewDelivery<'_>,
        now: u64,
        window: ReplayWindow,
    ) -> impl Future<Output = Result<Begin, StoreError>> + Send;

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
