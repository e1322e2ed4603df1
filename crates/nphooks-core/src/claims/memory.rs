//! Effect claims in memory, for local runs and unit tests: the same transitions,
//! decided by the module's `is_live`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Claim, ClaimKey, ClaimState, EffectClaim, EffectClaims, PendingRetry, is_live};
use crate::queue::lock;
use crate::store_error::StoreError;
use crate::window::ReplayWindow;

#[derive(Debug, Clone)]
struct Record {
    state: ClaimState,
    owner: String,
    lease_until: u64,
    expires_at: u64,
    attempt: u32,
    retry: Option<StoredRetry>,
}

/// A `retrying` claim's [`PendingRetry`], as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRetry {
    pub attempts: u32,
    pub next_attempt_at: Option<u64>,
    pub reason: String,
}

/// Effect claims in memory.
#[derive(Debug, Default)]
pub struct MemoryClaims {
    records: Mutex<HashMap<ClaimKey, Record>>,
    operations: AtomicUsize,
}

impl MemoryClaims {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many reads and writes it has served.
    pub fn operations(&self) -> usize {
        self.operations.load(Ordering::SeqCst)
    }

    /// The state of the claim at `key`, if there is one.
    pub fn state(&self, key: &ClaimKey) -> Option<ClaimState> {
        lock(&self.records).get(key).map(|r| r.state)
    }

    /// The attempt that last claimed `key`.
    pub fn attempt(&self, key: &ClaimKey) -> Option<u32> {
        lock(&self.records).get(key).map(|r| r.attempt)
    }

    /// What the run that released the claim at `key` recorded, while it is `retrying`.
    pub fn pending_retry(&self, key: &ClaimKey) -> Option<StoredRetry> {
        let records = lock(&self.records);
        let record = records.get(key)?;
        (record.state == ClaimState::Retrying)
            .then(|| record.retry.clone())
            .flatten()
    }

    fn count(&self) {
        self.operations.fetch_add(1, Ordering::SeqCst);
    }

    fn set_state(&self, claim: &EffectClaim, state: ClaimState) {
        self.count();
        if let Some(record) = lock(&self.records).get_mut(&claim.key) {
            record.state = state;
        }
    }
}

impl EffectClaims for MemoryClaims {
    async fn claim(
        &self,
        claim: &EffectClaim,
        lease_until: u64,
        now: u64,
        window: ReplayWindow,
    ) -> Result<Claim, StoreError> {
        self.count();
        let mut records = lock(&self.records);
        if let Some(old) = records.get(&claim.key)
            && is_live(old.state, old.expires_at, old.lease_until, now)
        {
            return Ok(Claim::blocked_by(Some(old.state)));
        }
        let record = Record {
            state: ClaimState::InProgress,
            owner: claim.owner.clone(),
            lease_until,
            expires_at: window.expires_at(now),
            attempt: claim.attempt,
            retry: None,
        };
        records.insert(claim.key.clone(), record);
        Ok(Claim::Claimed)
    }

    async fn complete(&self, claim: &EffectClaim, _now: u64) -> Result<(), StoreError> {
        self.set_state(claim, ClaimState::Completed);
        Ok(())
    }

    async fn release(
        &self,
        claim: &EffectClaim,
        retry: &PendingRetry<'_>,
        _now: u64,
    ) -> Result<(), StoreError> {
        self.count();
        let mut records = lock(&self.records);
        if let Some(record) = records.get_mut(&claim.key)
            && record.state == ClaimState::InProgress
            && record.owner == claim.owner
        {
            record.state = ClaimState::Retrying;
            record.retry = Some(StoredRetry {
                attempts: retry.attempts,
                next_attempt_at: retry.next_attempt_at,
                reason: retry.reason.to_owned(),
            });
        }
        Ok(())
    }

    async fn fail(&self, claim: &EffectClaim, _reason: &str, _now: u64) -> Result<(), StoreError> {
        self.set_state(claim, ClaimState::Failed);
        Ok(())
    }

    async fn forget(&self, key: &ClaimKey) -> Result<(), StoreError> {
        self.count();
        lock(&self.records).remove(key);
        Ok(())
    }
}
