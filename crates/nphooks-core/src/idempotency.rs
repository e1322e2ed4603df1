//! The idempotency port: one DynamoDB table (in memory locally) holding the receiver's
//! delivery records.
//!
//! A delivery record moves `received` → `enqueued`. It is created with a conditional
//! write that succeeds when no live record exists: absent, expired (`expires_at` is
//! checked by the condition itself, since TTL deletion lags by up to 48 h), or a stale
//! `received` record whose lease ran out (a crash between the write and the sends).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use crate::delivery::DeliveryKey;
use crate::queue::lock;
use crate::{Error, Result};

/// How long a delivery record stays authoritative: longer than the sender's 80-minute
/// retry span with a wide margin. Also the table's TTL attribute value.
pub const DELIVERY_RETENTION_SECS: u64 = 48 * 3600;
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
}

const RECEIVED: &str = "received";
const ENQUEUED: &str = "enqueued";

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
    /// Creates a `received` record unless a live one exists.
    fn begin_delivery(
        &self,
        key: &DeliveryKey,
        payload_hash: &str,
        now: u64,
    ) -> impl Future<Output = Result<Begin>> + Send;

    /// Marks the delivery `enqueued` in the named queues.
    fn complete_delivery(
        &self,
        key: &DeliveryKey,
        queues: &[&str],
        now: u64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes this request's `received` record after a failed enqueue, so the sender's
    /// retry starts afresh instead of finding it in progress.
    fn abandon_delivery(
        &self,
        key: &DeliveryKey,
        payload_hash: &str,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// The table in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn connect(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(aws_sdk_dynamodb::Client::new(sdk), table)
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::Store {
            table: self.table.clone(),
            message: e.to_string(),
        }
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl IdempotencyStore for DynamoStore {
    async fn begin_delivery(
        &self,
        key: &DeliveryKey,
        payload_hash: &str,
        now: u64,
    ) -> Result<Begin> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(attr::KEY, s(key.as_str()))
            .item(attr::STATE, s(RECEIVED))
            .item(attr::PAYLOAD_HASH, s(payload_hash))
            .item(attr::EXPIRES_AT, n(now + DELIVERY_RETENTION_SECS))
            .item(attr::LEASE_UNTIL, n(now + RECEIVE_LEASE_SECS))
            .item(attr::UPDATED_AT, n(now))
            .condition_expression(
                "attribute_not_exists(#pk) OR #expires <= :now \
                 OR (#state = :received AND #lease <= :now)",
            )
            .expression_attribute_names("#pk", attr::KEY)
            .expression_attribute_names("#expires", attr::EXPIRES_AT)
            .expression_attribute_names("#state", attr::STATE)
            .expression_attribute_names("#lease", attr::LEASE_UNTIL)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":received", s(RECEIVED))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Begin::Started),
            Err(err) => match err.into_service_error() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    let old = failed.item().cloned().unwrap_or_default();
                    let text = |name: &str| match old.get(name) {
                        Some(AttributeValue::S(v)) => Some(v.as_str()),
                        _ => None,
                    };
                    let same_payload = text(attr::PAYLOAD_HASH) == Some(payload_hash);
                    Ok(if text(attr::STATE) == Some(ENQUEUED) {
                        Begin::AlreadyEnqueued { same_payload }
                    } else {
                        Begin::InProgress { same_payload }
                    })
                }
                other => Err(self.error(aws_sdk_dynamodb::error::DisplayErrorContext(other))),
            },
        }
    }

    async fn complete_delivery(&self, key: &DeliveryKey, queues: &[&str], now: u64) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(attr::KEY, s(key.as_str()))
            .update_expression(
                "SET #state = :enqueued, #queues = :queues, #updated = :now REMOVE #lease",
            )
            .expression_attribute_names("#state", attr::STATE)
            .expression_attribute_names("#queues", attr::QUEUES)
            .expression_attribute_names("#updated", attr::UPDATED_AT)
            .expression_attribute_names("#lease", attr::LEASE_UNTIL)
            .expression_attribute_values(":enqueued", s(ENQUEUED))
            .expression_attribute_values(
                ":queues",
                AttributeValue::L(queues.iter().map(|q| s(q)).collect()),
            )
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(|e| self.error(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn abandon_delivery(&self, key: &DeliveryKey, payload_hash: &str) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(attr::KEY, s(key.as_str()))
            .condition_expression("#state = :received AND #hash = :hash")
            .expression_attribute_names("#state", attr::STATE)
            .expression_attribute_names("#hash", attr::PAYLOAD_HASH)
            .expression_attribute_values(":received", s(RECEIVED))
            .expression_attribute_values(":hash", s(payload_hash))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone else's record now (taken over or completed): leave it alone.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(self.error(aws_sdk_dynamodb::error::DisplayErrorContext(e))),
        }
    }
}

#[derive(Debug, Clone)]
struct MemoryRecord {
    enqueued: bool,
    payload_hash: String,
    expires_at: u64,
    lease_until: u64,
}

/// The same semantics in memory, for local runs and unit tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, MemoryRecord>>,
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
                expires_at: now + DELIVERY_RETENTION_SECS,
                lease_until: now + RECEIVE_LEASE_SECS,
            },
        );
        Ok(Begin::Started)
    }

    async fn complete_delivery(
        &self,
        key: &DeliveryKey,
        _queues: &[&str],
        _now: u64,
    ) -> Result<()> {
        self.count();
        if let Some(record) = lock(&self.records).get_mut(key.as_str()) {
            record.enqueued = true;
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DeliveryKey {
        DeliveryKey::from_stored("call.ended#c1".into())
    }

    #[tokio::test]
    async fn given_the_memory_store_then_it_follows_the_delivery_state_machine() {
        let store = MemoryStore::new();
        assert_eq!(
            store.begin_delivery(&key(), "h", 100).await.ok(),
            Some(Begin::Started)
        );
        assert_eq!(
            store.begin_delivery(&key(), "h", 101).await.ok(),
            Some(Begin::InProgress { same_payload: true })
        );
        // The lease runs out: a retry takes the stale record over.
        let stale = 100 + RECEIVE_LEASE_SECS;
        assert_eq!(
            store.begin_delivery(&key(), "h", stale).await.ok(),
            Some(Begin::Started)
        );
        store
            .complete_delivery(&key(), &["crm"], stale)
            .await
            .expect("memory");
        assert_eq!(
            store.begin_delivery(&key(), "other", stale + 1).await.ok(),
            Some(Begin::AlreadyEnqueued {
                same_payload: false
            })
        );
        let expired = stale + DELIVERY_RETENTION_SECS;
        assert_eq!(
            store.begin_delivery(&key(), "h", expired).await.ok(),
            Some(Begin::Started)
        );
        store.abandon_delivery(&key(), "h").await.expect("memory");
        assert_eq!(
            store.begin_delivery(&key(), "h", expired).await.ok(),
            Some(Begin::Started)
        );
    }
}
