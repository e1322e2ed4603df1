//! Effect claims: each integration acts once per delivery.
//!
//! | from | event | to | who |
//! |---|---|---|---|
//! | (none), expired, `failed`, `retrying`, or `in_progress` with its lease over | [`EffectClaims::claim`] | `in_progress` (owner, lease, attempt) | a processor run, before acting |
//! | `in_progress` (live lease) | `claim` | unchanged: [`Claim::Busy`] (try later) | another run of a duplicate message |
//! | `completed` (not expired) | `claim` | unchanged: [`Claim::AlreadyCompleted`] (acknowledge) | a duplicate or redelivered message |
//! | `in_progress` | [`EffectClaims::complete`] | `completed` | the run, after the sink acted |
//! | `in_progress`, same owner | [`EffectClaims::release`] | `retrying` (attempts, next attempt, reason) | the run, after a transient failure |
//! | `in_progress` | [`EffectClaims::fail`] | `failed` (reason) | the run, after dead-lettering |
//! | any | [`EffectClaims::forget`] | (none) | an operator's forced replay |
//! | any | one [`ReplayWindow`] after `claim` | expired: as (none) | the clock |
//!
//! A claim is a conditional write on `integration#delivery_key` ([`ClaimKey`]); whether
//! a record blocks it is decided once (`is_live`): the memory adapter calls it, the
//! DynamoDB adapter states it as the write's condition. Claims live one replay window,
//! the same as the delivery records.

mod dynamo;
mod memory;
#[cfg(test)]
mod tests;

use std::future::Future;

pub use dynamo::DynamoClaims;
pub use memory::{MemoryClaims, StoredRetry};

use crate::delivery::DeliveryKey;
use crate::ledger::UnknownState;
use crate::routing::Integration;
use crate::store_error::StoreError;
use crate::window::ReplayWindow;

/// Where an effect claim stands; both adapters store it as [`ClaimState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    /// A run holds it until its lease ends.
    InProgress,
    /// The effect happened.
    Completed,
    /// It failed permanently (dead-lettered); a redriven message may claim it again.
    Failed,
    /// A run failed transiently and gave it up; its message comes back for the next
    /// attempt, which claims it again.
    Retrying,
}

impl ClaimState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimState::InProgress => "in_progress",
            ClaimState::Completed => "completed",
            ClaimState::Failed => "failed",
            ClaimState::Retrying => "retrying",
        }
    }
}

impl std::str::FromStr for ClaimState {
    type Err = UnknownState;

    fn from_str(text: &str) -> Result<Self, UnknownState> {
        match text {
            "in_progress" => Ok(ClaimState::InProgress),
            "completed" => Ok(ClaimState::Completed),
            "failed" => Ok(ClaimState::Failed),
            "retrying" => Ok(ClaimState::Retrying),
            _ => Err(UnknownState),
        }
    }
}

/// One integration's effect for one delivery: stored as `integration#delivery_key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimKey(String);

impl ClaimKey {
    pub fn new(integration: Integration, delivery_key: &DeliveryKey) -> Self {
        ClaimKey(format!("{integration}#{delivery_key}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClaimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One integration's effect for one delivery, claimed by one processor run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectClaim {
    pub key: ClaimKey,
    /// Identifies the run holding the claim, so it releases only its own.
    pub owner: String,
    /// Which attempt the run is (1 for the first), stored with the claim for operators.
    pub attempt: u32,
}

impl EffectClaim {
    pub fn new(
        integration: Integration,
        delivery_key: &DeliveryKey,
        owner: impl Into<String>,
    ) -> Self {
        EffectClaim {
            key: ClaimKey::new(integration, delivery_key),
            owner: owner.into(),
            attempt: 1,
        }
    }

    /// The same claim, made by attempt `attempt`.
    pub fn at_attempt(self, attempt: u32) -> Self {
        EffectClaim { attempt, ..self }
    }
}

/// What a run that failed transiently records when it gives its claim up: what an
/// operator sees while the message waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingRetry<'a> {
    /// Failed attempts so far.
    pub attempts: u32,
    /// When the message is due again, epoch seconds; `None` when SQS decides (the
    /// message was left on its queue for its visibility timeout).
    pub next_attempt_at: Option<u64>,
    /// The classified failure reason.
    pub reason: &'a str,
}

/// What [`EffectClaims::claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This run owns the effect until its lease ends: act, then `complete`.
    Claimed,
    /// The effect already happened: acknowledge without acting.
    AlreadyCompleted,
    /// Another run holds a live lease on it.
    Busy,
}

impl Claim {
    /// What `claim` answers when a live record in `state` is in the way.
    pub(crate) fn blocked_by(state: Option<ClaimState>) -> Self {
        match state {
            Some(ClaimState::Completed) => Claim::AlreadyCompleted,
            _ => Claim::Busy,
        }
    }
}

/// The states a claim may be taken from whatever its lease: nobody holds them.
pub(crate) const RECLAIMABLE: [ClaimState; 2] = [ClaimState::Failed, ClaimState::Retrying];

/// Whether a record blocks a new claim: not expired, and completed or leased.
pub(crate) fn is_live(state: ClaimState, expires_at: u64, lease_until: u64, now: u64) -> bool {
    expires_at > now
        && match state {
            ClaimState::Completed => true,
            ClaimState::InProgress => lease_until > now,
            ClaimState::Failed | ClaimState::Retrying => false,
        }
}

/// The processors' port: one claim per integration and delivery.
pub trait EffectClaims: Send + Sync {
    /// Claims an effect, kept for `window`: succeeds when it is absent, expired, failed,
    /// retrying, or in progress with a lease that ended before `now` (its run died).
    fn claim(
        &self,
        claim: &EffectClaim,
        lease_until: u64,
        now: u64,
        window: ReplayWindow,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Records that the effect happened.
    fn complete(
        &self,
        claim: &EffectClaim,
        now: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives the claim up after a transient failure, so the next delivery may act, and
    /// records `retry` on it. A claim another run has taken over is left alone.
    fn release(
        &self,
        claim: &EffectClaim,
        retry: &PendingRetry<'_>,
        now: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records a permanent failure (the message went to the DLQ); a redriven message may
    /// claim it again.
    fn fail(
        &self,
        claim: &EffectClaim,
        reason: &str,
        now: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets an effect's claim so it can run again (an operator's forced replay).
    fn forget(&self, key: &ClaimKey) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// One set of claims shared by several processors (the local runner).
impl<T: EffectClaims> EffectClaims for std::sync::Arc<T> {
    fn claim(
        &self,
        claim: &EffectClaim,
        lease_until: u64,
        now: u64,
        window: ReplayWindow,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        (**self).claim(claim, lease_until, now, window)
    }
    fn complete(
        &self,
        claim: &EffectClaim,
        now: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).complete(claim, now)
    }
    fn release(
        &self,
        claim: &EffectClaim,
        retry: &PendingRetry<'_>,
        now: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release(claim, retry, now)
    }
    fn fail(
        &self,
        claim: &EffectClaim,
        reason: &str,
        now: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).fail(claim, reason, now)
    }
    fn forget(&self, key: &ClaimKey) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).forget(key)
    }
}
