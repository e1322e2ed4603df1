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
    pub const OWNER: &str = "owner";
    pub const ENVELOPE: &str = "envelope";
    pub const REASON: &str = "reason";
}

const RECEIVED: &str = "received";
const ENQUEUED: &str = "enqueued";
const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";
const FAILED: &str = "failed";

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

    /// Claims an effect: succeeds when it is absent, expired, failed, or in progress
    /// with a lease that ended before `now` (its run died).
    fn claim_effect(
        &self,
        claim: &EffectClaim,
        lease_until: u64,
        now: u64,
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

/// How long an effect record is kept: longer than a message can live in a queue and its
/// DLQ (14 days) so a redriven message still finds it.
pub const EFFECT_RETENTION_SECS: u64 = 15 * 24 * 3600;

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

    /// Writes `item` unless a live record holds its key. A record is not live when it is
    /// absent, expired (`expires_at` checked by the condition itself: TTL deletion lags),
    /// in `leased_state` with its lease over, or in `reclaimable_state`. On a conflict the
    /// record in the way is returned (`ALL_OLD`, no second read).
    async fn put_unless_live(
        &self,
        item: HashMap<String, AttributeValue>,
        leased_state: &str,
        reclaimable_state: Option<&str>,
        now: u64,
    ) -> Result<Option<HashMap<String, AttributeValue>>> {
        let mut condition = String::from(
            "attribute_not_exists(#pk) OR #expires <= :now OR (#state = :leased AND #lease <= :now)",
        );
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .expression_attribute_names("#pk", attr::KEY)
            .expression_attribute_names("#expires", attr::EXPIRES_AT)
            .expression_attribute_names("#state", attr::STATE)
            .expression_attribute_names("#lease", attr::LEASE_UNTIL)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":leased", s(leased_state))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(state) = reclaimable_state {
            condition.push_str(" OR #state = :reclaimable");
            request = request.expression_attribute_values(":reclaimable", s(state));
        }
        match request.condition_expression(condition).send().await {
            Ok(_) => Ok(None),
            Err(err) => match err.into_service_error() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    Ok(Some(failed.item().cloned().unwrap_or_default()))
                }
                other => Err(self.error(aws_sdk_dynamodb::error::DisplayErrorContext(other))),
            },
        }
    }
}

impl DynamoStore {
    /// Deletes the record at `key` if it is still in `state` and still `mine` (an
    /// attribute that identifies this request's record). A record someone else has taken
    /// over or completed since is left alone, and that is not an error.
    async fn delete_if_still(&self, key: &str, state: &str, mine: (&str, &str)) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(attr::KEY, s(key))
            .condition_expression("#state = :state AND #mine = :mine")
            .expression_attribute_names("#state", attr::STATE)
            .expression_attribute_names("#mine", mine.0)
            .expression_attribute_values(":state", s(state))
            .expression_attribute_values(":mine", s(mine.1))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
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

fn text_of<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
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
        let item = HashMap::from([
            (attr::KEY.to_owned(), s(key.as_str())),
            (attr::STATE.to_owned(), s(RECEIVED)),
            (attr::PAYLOAD_HASH.to_owned(), s(payload_hash)),
            (
                attr::EXPIRES_AT.to_owned(),
                n(now + DELIVERY_RETENTION_SECS),
            ),
            (attr::LEASE_UNTIL.to_owned(), n(now + RECEIVE_LEASE_SECS)),
            (attr::UPDATED_AT.to_owned(), n(now)),
        ]);
        let Some(old) = self.put_unless_live(item, RECEIVED, None, now).await? else {
            return Ok(Begin::Started);
        };
        let same_payload = text_of(&old, attr::PAYLOAD_HASH) == Some(payload_hash);
        Ok(if text_of(&old, attr::STATE) == Some(ENQUEUED) {
            Begin::AlreadyEnqueued { same_payload }
        } else {
            Begin::InProgress { same_payload }
        })
    }

    async fn complete_delivery(
        &self,
        key: &DeliveryKey,
        queues: &[&str],
        envelope: Option<&str>,
        now: u64,
    ) -> Result<()> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::KEY, s(key.as_str()))
            .expression_attribute_names("#state", attr::STATE)
            .expression_attribute_names("#queues", attr::QUEUES)
            .expression_attribute_names("#updated", attr::UPDATED_AT)
            .expression_attribute_names("#lease", attr::LEASE_UNTIL)
            .expression_attribute_values(":enqueued", s(ENQUEUED))
            .expression_attribute_values(
                ":queues",
                AttributeValue::L(queues.iter().map(|q| s(q)).collect()),
            )
            .expression_attribute_values(":now", n(now));
        match envelope.filter(|e| e.len() <= MAX_STORED_ENVELOPE_BYTES) {
            Some(envelope) => {
                update = update
                    .update_expression(
                        "SET #state = :enqueued, #queues = :queues, #updated = :now, #envelope = :envelope REMOVE #lease",
                    )
                    .expression_attribute_names("#envelope", attr::ENVELOPE)
                    .expression_attribute_values(":envelope", s(envelope));
            }
            None => {
                update = update.update_expression(
                    "SET #state = :enqueued, #queues = :queues, #updated = :now REMOVE #lease",
                );
            }
        }
        update
            .send()
            .await
            .map_err(|e| self.error(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn delivery(&self, key: &DeliveryKey) -> Result<Option<StoredDelivery>> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::KEY, s(key.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?
            .item;
        Ok(item.map(|item| StoredDelivery {
            enqueued: text_of(&item, attr::STATE) == Some(ENQUEUED),
            queues: item
                .get(attr::QUEUES)
                .and_then(|v| v.as_l().ok())
                .map(|l| l.iter().filter_map(|q| q.as_s().ok().cloned()).collect())
                .unwrap_or_default(),
            envelope: text_of(&item, attr::ENVELOPE).map(str::to_owned),
        }))
    }

    async fn forget_effect(&self, claim_key: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(attr::KEY, s(claim_key))
            .send()
            .await
            .map_err(|e| self.error(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn abandon_delivery(&self, key: &DeliveryKey, payload_hash: &str) -> Result<()> {
        self.delete_if_still(key.as_str(), RECEIVED, (attr::PAYLOAD_HASH, payload_hash))
            .await
    }

    async fn claim_effect(&self, claim: &EffectClaim, lease_until: u64, now: u64) -> Result<Claim> {
        let item = HashMap::from([
            (attr::KEY.to_owned(), s(&claim.key)),
            (attr::STATE.to_owned(), s(IN_PROGRESS)),
            (attr::OWNER.to_owned(), s(&claim.owner)),
            (attr::LEASE_UNTIL.to_owned(), n(lease_until)),
            (attr::EXPIRES_AT.to_owned(), n(now + EFFECT_RETENTION_SECS)),
            (attr::UPDATED_AT.to_owned(), n(now)),
        ]);
        Ok(
            match self
                .put_unless_live(item, IN_PROGRESS, Some(FAILED), now)
                .await?
            {
                None => Claim::Claimed,
                Some(old) if text_of(&old, attr::STATE) == Some(COMPLETED) => {
                    Claim::AlreadyCompleted
                }
                Some(_) => Claim::Busy,
            },
        )
    }

    async fn complete_effect(&self, claim: &EffectClaim, now: u64) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(attr::KEY, s(&claim.key))
            .update_expression("SET #state = :completed, #updated = :now REMOVE #lease")
            .expression_attribute_names("#state", attr::STATE)
            .expression_attribute_names("#updated", attr::UPDATED_AT)
            .expression_attribute_names("#lease", attr::LEASE_UNTIL)
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(|e| self.error(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn release_effect(&self, claim: &EffectClaim) -> Result<()> {
        self.delete_if_still(&claim.key, IN_PROGRESS, (attr::OWNER, &claim.owner))
            .await
    }

    async fn fail_effect(&self, claim: &EffectClaim, reason: &str, now: u64) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(attr::KEY, s(&claim.key))
            .update_expression(
                "SET #state = :failed, #reason = :reason, #updated = :now REMOVE #lease",
            )
            .expression_attribute_names("#state", attr::STATE)
            .expression_attribute_names("#reason", attr::REASON)
            .expression_attribute_names("#updated", attr::UPDATED_AT)
            .expression_attribute_names("#lease", attr::LEASE_UNTIL)
            .expression_attribute_values(":failed", s(FAILED))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(|e| self.error(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}

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

    async fn claim_effect(&self, claim: &EffectClaim, lease_until: u64, now: u64) -> Result<Claim> {
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
                expires_at: now + EFFECT_RETENTION_SECS,
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

/// One store shared by several users (the local runner's receiver and processors).
impl<T: IdempotencyStore> IdempotencyStore for std::sync::Arc<T> {
    fn begin_delivery(
        &self,
        key: &DeliveryKey,
        payload_hash: &str,
        now: u64,
    ) -> impl Future<Output = Result<Begin>> + Send {
        (**self).begin_delivery(key, payload_hash, now)
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
    ) -> impl Future<Output = Result<Claim>> + Send {
        (**self).claim_effect(claim, lease_until, now)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DeliveryKey {
        DeliveryKey::from_stored("call.ended#c1".into())
    }

    #[tokio::test]
    async fn given_the_memory_store_then_effect_claims_follow_their_state_machine() {
        let store = MemoryStore::new();
        let first = EffectClaim::new("crm", &key(), "run-1");
        let second = EffectClaim::new("crm", &key(), "run-2");
        assert_eq!(
            store.claim_effect(&first, 130, 100).await.ok(),
            Some(Claim::Claimed)
        );
        assert_eq!(
            store.claim_effect(&second, 131, 101).await.ok(),
            Some(Claim::Busy)
        );
        // Only the owner releases; a stranger's release leaves the claim alone.
        store.release_effect(&second).await.expect("memory");
        assert_eq!(
            store.claim_effect(&second, 131, 101).await.ok(),
            Some(Claim::Busy)
        );
        // The first run dies: after its lease, the next run claims it.
        assert_eq!(
            store.claim_effect(&second, 200, 130).await.ok(),
            Some(Claim::Claimed)
        );
        store
            .fail_effect(&second, "400", 131)
            .await
            .expect("memory");
        assert_eq!(
            store.claim_effect(&first, 300, 132).await.ok(),
            Some(Claim::Claimed)
        );
        store.complete_effect(&first, 133).await.expect("memory");
        assert_eq!(
            store.claim_effect(&second, 400, 134).await.ok(),
            Some(Claim::AlreadyCompleted)
        );
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
            .complete_delivery(&key(), &["crm"], Some("{}"), stale)
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
