//! The idempotency port in memory, for local runs and unit tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    Begin, Claim, EffectClaim, IdempotencyStore, MAX_STORED_ENVELOPE_BYTES, RECEIVE_LEASE_SECS,
    StoredDelivery,
};
use crate::Result;
use crate::delivery::DeliveryKey;
use crate::queue::lock;
use crate::window::ReplayWindow;

#[derive(Debug, Clone)]
struct MemoryRecord {
    enqueued: bool,
    payload_hash: String,
    expires_at: u64,
    lease_until: u64,
    queues: Vec<String>,
    envelope: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EffectState {
    InProgress { owner: String, lease_until: u64 },
    Completed,
    Failed,
}

#[derive(Debug, Clone)]
struct MemoryEffect {
    state: EffectState,
    expires_at: u64,
}

/// The same semantics in memory, for local runs and unit tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, MemoryRecord>>,
    effects: Mutex<HashMap<String, MemoryEffect>>,
    operations: AtomicUsize,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many reads and writes the store has served.
    pub fn operations(&self) -> usize {
        self.operations.load(Ordering::SeqCst)
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        lock(&self.records).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn count(&self) {
        self.operations.fetch_add(1, Ordering::SeqCst);
    }
}

impl IdempotencyStore for MemoryStore {
    async fn begin_delivery(
        &self,
        key: &DeliveryKey,
        payload_hash: &str,
        now: u64,
        window: ReplayWindow,
    ) -> Result<Begin> {
        self.count();
        let mut records = lock(&self.records);
        if let Some(old) = records.get(key.as_str()) {
            let live = old.expires_at > now && (old.enqueued || old.lease_until > now);
            if live {
                let same_payload = old.payload_hash == payload_hash;
                return Ok(if old.enqueued {
                    Begin::AlreadyEnqueued { same_payload }
                } else {
                    Begin::InProgress { same_payload }
                });
            }
        }
        records.insert(
            key.as_str().to_owned(),
            MemoryRecord {
                enqueued: false,
                payload_hash: payload_hash.to_owned(),
                expires_at: window.expires_at(now),
                lease_until: now + RECEIVE_LEASE_SECS,
                queues: Vec::new(),
                envelope: None,
            },
        );
        Ok(Begin::Started)
    }

    async fn complete_delivery(
        &self,
        key: &DeliveryKey,
        queues: &[&str],
        envelope: Option<&str>,
        _now: u64,
    ) -> Result<()> {
        self.count();
        if let Some(record) = lock(&self.records).get_mut(key.as_str()) {
            record.enqueued = true;
            record.queues = queues.iter().map(|q| (*q).to_owned()).collect();
            record.envelope = envelope
                .filter(|e| e.len() <= MAX_STORED_ENVELOPE_BYTES)
                .map(str::to_owned);
        }
        Ok(())
    }

    async fn delivery(&self, key: &DeliveryKey) -> Result<Option<StoredDelivery>> {
        self.count();
        Ok(lock(&self.records)
            .get(key.as_str())
            .map(|r| StoredDelivery {
                enqueued: r.enqueued,
                queues: r.queues.clone(),
                envelope: r.envelope.clone(),
            }))
    }

    async fn forget_effect(&self, claim_key: &str) -> Result<()> {
        self.count();
        lock(&self.effects).remove(claim_key);
        Ok(())
    }

    async fn abandon_delivery(&self, key: &DeliveryKey, payload_hash: &str) -> Result<()> {
        self.count();
        let mut records = lock(&self.records);
        if records
            .get(key.as_str())
            .is_some_and(|r| !r.enqueued && r.payload_hash == payload_hash)
        {
            records.remove(key.as_str());
        }
        Ok(())
    }

    async fn claim_effect(
        &self,
        claim: &EffectClaim,
        lease_until: u64,
        now: u64,
        window: ReplayWindow,
    ) -> Result<Claim> {
        self.count();
        let mut effects = lock(&self.effects);
        if let Some(old) = effects.get(&claim.key).filter(|e| e.expires_at > now) {
            match &old.state {
                EffectState::Completed => return Ok(Claim::AlreadyCompleted),
                EffectState::InProgress { lease_until, .. } if *lease_until > now => {
                    return Ok(Claim::Busy);
                }
                _ => {}
            }
        }
        effects.insert(
            claim.key.clone(),
            MemoryEffect {
                state: EffectState::InProgress {
                    owner: claim.owner.clone(),
                    lease_until,
                },
                expires_at: window.expires_at(now),
            },
        );
        Ok(Claim::Claimed)
    }

    async fn complete_effect(&self, claim: &EffectClaim, _now: u64) -> Result<()> {
        self.set_effect(claim, EffectState::Completed);
        Ok(())
    }

    async fn release_effect(&self, claim: &EffectClaim) -> Result<()> {
        self.count();
        let mut effects = lock(&self.effects);
        let ours = effects.get(&claim.key).is_some_and(
            |e| matches!(&e.state, EffectState::InProgress { owner, .. } if *owner == claim.owner),
        );
        if ours {
            effects.remove(&claim.key);
        }
        Ok(())
    }

    async fn fail_effect(&self, claim: &EffectClaim, _reason: &str, _now: u64) -> Result<()> {
        self.set_effect(claim, EffectState::Failed);
        Ok(())
    }
}

impl MemoryStore {
    fn set_effect(&self, claim: &EffectClaim, state: EffectState) {
        self.count();
        if let Some(effect) = lock(&self.effects).get_mut(&claim.key) {
            effect.state = state;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: ReplayWindow = ReplayWindow::DEFAULT;

    fn key() -> DeliveryKey {
        DeliveryKey::from_stored("call.ended#c1".into())
    }

    #[tokio::test]
    async fn given_the_memory_store_then_effect_claims_follow_their_state_machine() {
        let store = MemoryStore::new();
        let first = EffectClaim::new("crm", &key(), "run-1");
        let second = EffectClaim::new("crm", &key(), "run-2");
        assert_eq!(
            store.claim_effect(&first, 130, 100, W).await.ok(),
            Some(Claim::Claimed)
        );
        assert_eq!(
            store.claim_effect(&second, 131, 101, W).await.ok(),
            Some(Claim::Busy)
        );
        // Only the owner releases; a stranger's release leaves the claim alone.
        store.release_effect(&second).await.expect("memory");
        assert_eq!(
            store.claim_effect(&second, 131, 101, W).await.ok(),
            Some(Claim::Busy)
        );
        // The first run dies: after its lease, the next run claims it.
        assert_eq!(
            store.claim_effect(&second, 200, 130, W).await.ok(),
            Some(Claim::Claimed)
        );
        store
            .fail_effect(&second, "400", 131)
            .await
            .expect("memory");
        assert_eq!(
            store.claim_effect(&first, 300, 132, W).await.ok(),
            Some(Claim::Claimed)
        );
        store.complete_effect(&first, 133).await.expect("memory");
        assert_eq!(
            store.claim_effect(&second, 400, 134, W).await.ok(),
            Some(Claim::AlreadyCompleted)
        );
    }

    #[tokio::test]
    async fn given_the_memory_store_then_it_follows_the_delivery_state_machine() {
        let store = MemoryStore::new();
        assert_eq!(
            store.begin_delivery(&key(), "h", 100, W).await.ok(),
            Some(Begin::Started)
        );
        assert_eq!(
            store.begin_delivery(&key(), "h", 101, W).await.ok(),
            Some(Begin::InProgress { same_payload: true })
        );
        // The lease runs out: a retry takes the stale record over.
        let stale = 100 + RECEIVE_LEASE_SECS;
        assert_eq!(
            store.begin_delivery(&key(), "h", stale, W).await.ok(),
            Some(Begin::Started)
        );
        store
            .complete_delivery(&key(), &["crm"], Some("{}"), stale)
            .await
            .expect("memory");
        assert_eq!(
            store
                .begin_delivery(&key(), "other", stale + 1, W)
                .await
                .ok(),
            Some(Begin::AlreadyEnqueued {
                same_payload: false
            })
        );
        let expired = stale + W.as_secs();
        assert_eq!(
            store.begin_delivery(&key(), "h", expired, W).await.ok(),
            Some(Begin::Started)
        );
        store.abandon_delivery(&key(), "h").await.expect("memory");
        assert_eq!(
            store.begin_delivery(&key(), "h", expired, W).await.ok(),
            Some(Begin::Started)
        );
    }
}
