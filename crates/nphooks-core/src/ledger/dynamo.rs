//! The delivery ledger in DynamoDB: "is this record live?" is the write's condition.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Begin, DeliveryLedger, DeliveryState, RECEIVE_LEASE_SECS, StoredDelivery, storable};
use crate::delivery::DeliveryKey;
use crate::routing::Integration;
use crate::store_error::StoreError;
use crate::table::{self, DynamoTable, n, s, text_of};
use crate::window::ReplayWindow;

/// Delivery records in the DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoLedger {
    table: DynamoTable,
}

impl DynamoLedger {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoLedger {
            table: DynamoTable::new(client, table),
        }
    }

    pub fn connect(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(aws_sdk_dynamodb::Client::new(sdk), table)
    }
}

impl DeliveryLedger for DynamoLedger {
    async fn begin(
        &self,
        key: &DeliveryKey,
        payload_hash: &str,
        now: u64,
        window: ReplayWindow,
    ) -> Result<Begin, StoreError> {
        let received = DeliveryState::Received.as_str();
        let item = HashMap::from([
            (table::KEY.to_owned(), s(key.as_str())),
            (table::STATE.to_owned(), s(received)),
            (table::PAYLOAD_HASH.to_owned(), s(payload_hash)),
            (table::EXPIRES_AT.to_owned(), n(window.expires_at(now))),
            (table::LEASE_UNTIL.to_owned(), n(now + RECEIVE_LEASE_SECS)),
            (table::UPDATED_AT.to_owned(), n(now)),
        ]);
        let Some(old) = self
            .table
            .put_unless_live(item, received, None, now)
            .await?
        else {
            return Ok(Begin::Started);
        };
        let state = text_of(&old, table::STATE).and_then(|t| t.parse().ok());
        let same_payload = text_of(&old, table::PAYLOAD_HASH) == Some(payload_hash);
        Ok(Begin::blocked_by(state, same_payload))
    }

    async fn complete(
        &self,
        key: &DeliveryKey,
        queues: &[Integration],
        envelope: Option<&str>,
        now: u64,
    ) -> Result<(), StoreError> {
        let queues = AttributeValue::L(queues.iter().map(|q| s(q.as_str())).collect());
        let mut extra = vec![(table::QUEUES, queues)];
        if let Some(envelope) = storable(envelope) {
            extra.push((table::ENVELOPE, s(envelope)));
        }
        let enqueued = DeliveryState::Enqueued.as_str();
        self.table.settle(key.as_str(), enqueued, &extra, now).await
    }

    async fn abandon(&self, key: &DeliveryKey, payload_hash: &str) -> Result<(), StoreError> {
        let received = DeliveryState::Received.as_str();
        let mine = (table::PAYLOAD_HASH, payload_hash);
        self.table
            .delete_if_still(key.as_str(), received, mine)
            .await
    }

    async fn look_up(&self, key: &DeliveryKey) -> Result<Option<StoredDelivery>, StoreError> {
        let item = self.table.get(key.as_str()).await?;
        Ok(item.map(|item| StoredDelivery {
            enqueued: text_of(&item, table::STATE) == Some(DeliveryState::Enqueued.as_str()),
            queues: item
                .get(table::QUEUES)
                .and_then(|v| v.as_l().ok())
                .map(|l| l.iter().filter_map(|q| q.as_s().ok().cloned()).collect())
                .unwrap_or_default(),
            envelope: text_of(&item, table::ENVELOPE).map(str::to_owned),
        }))
    }
}
