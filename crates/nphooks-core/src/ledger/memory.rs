//! The delivery ledger in memory, for local runs and unit tests: the same transitions,
//! decided by the module's `is_live`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    Begin, DeliveryLedger, DeliveryState, NewDelivery, RECEIVE_LEASE_SECS, StoredDelivery, is_live,
    stored,
};
use crate::delivery::DeliveryKey;
use crate::queue::lock;
use crate::store_error::StoreError;
use crate::window::ReplayWindow;

#[derive(Debug, Clone)]
struct Record {
    state: DeliveryState,
    payload_hash: String,
    expires_at: u64,
    lease_until: u64,
    queues: Vec<String>,
    /// Deflated, as in DynamoDB.
    envelope: Option<Vec<u8>>,
}

/// Delivery records in memory.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    records: Mutex<HashMap<String, Record>>,
    operations: AtomicUsize,
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many reads and writes the ledger has served.
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

impl DeliveryLedger for MemoryLedger {
    async fn begin(
        &self,
        key: &DeliveryKey,
        delivery: NewDelivery<'_>,
        now: u64,
        window: ReplayWindow,
    ) -> Result<Begin, StoreError> {
        self.count();
        let mut records = lock(&self.records);
        if let Some(old) = records.get(key.as_str())
            && is_live(old.state, old.expires_at, old.lease_until, now)
        {
            let same_payload = old.payload_hash == delivery.payload_hash;
            return Ok(Begin::blocked_by(Some(old.state), same_payload));
        }
        let replaced = records.get(key.as_str()).map(|old| {
            let same_payload = old.payload_hash == delivery.payload_hash;
            (old.state, old.expires_at, same_payload)
        });
        let record = Record {
            state: DeliveryState::Received,
            payload_hash: delivery.payload_hash.to_owned(),
            expires_at: window.expires_at(now),
            lease_until: now + RECEIVE_LEASE_SECS,
            queues: delivery
                .queues
                .iter()
                .map(|q| q.as_str().to_owned())
                .collect(),
            // Kept as DynamoDB keeps it: deflated, when that fits the item.
            envelope: delivery.envelope.and_then(stored::pack),
        };
        records.insert(key.as_str().to_owned(), record);
        Ok(Begin::replacing(replaced, now))
    }

    async fn abandon(&self, key: &DeliveryKey, payload_hash: &str) -> Result<(), StoreError> {
        self.count();
        let mut records = lock(&self.records);
        let mine = records
            .get(key.as_str())
            .is_some_and(|r| r.state == DeliveryState::Received && r.payload_hash == payload_hash);
        if mine {
            records.remove(key.as_str());
        }
        Ok(())
    }

    async fn look_up(&self, key: &DeliveryKey) -> Result<Option<StoredDelivery>, StoreError> {
        self.count();
        Ok(lock(&self.records)
            .get(key.as_str())
            .map(|r| StoredDelivery {
                state: r.state,
                queues: r.queues.clone(),
                envelope: r.envelope.as_deref().and_then(stored::unpack),
            }))
    }
}

#[cfg(test)]
impl MemoryLedger {
    /// A record as the previous (two-write) version left it: `enqueued`, envelope in full.
    pub(super) fn insert_enqueued(&self, key: &DeliveryKey, payload_hash: &str, now: u64) {
        let record = Record {
            state: DeliveryState::Enqueued,
            payload_hash: payload_hash.to_owned(),
            expires_at: ReplayWindow::DEFAULT.expires_at(now),
            lease_until: 0,
            queues: vec!["crm".to_owned()],
            envelope: stored::pack("{}"),
        };
        lock(&self.records).insert(key.as_str().to_owned(), record);
    }
}
