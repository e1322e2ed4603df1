//! The delivery ledger in DynamoDB: "is this record live?" is the write's condition.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::Blob;

use super::{
    Begin, DeliveryLedger, DeliveryState, NewDelivery, RECEIVE_LEASE_SECS, StoredDelivery, stored,
};
use crate::delivery::DeliveryKey;
use crate::store_error::StoreError;
use crate::table::{self, DynamoTable, PutOutcome, n, s, text_of};
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
        delivery: NewDelivery<'_>,
        now: u64,
        window: ReplayWindow,
    ) -> Result<Begin, StoreError> {
        let received = DeliveryState::Received.as_str();
        let queues = delivery.queues.iter().map(|q| s(q.as_str())).collect();
        let mut item = HashMap::from([
            (table::KEY.to_owned(), s(key.as_str())),
            (table::STATE.to_owned(), s(received)),
            (table::PAYLOAD_HASH.to_owned(), s(delivery.payload_hash)),
            (table::EXPIRES_AT.to_owned(), n(window.expires_at(now))),
            (table::LEASE_UNTIL.to_owned(), n(now + RECEIVE_LEASE_SECS)),
            (table::UPDATED_AT.to_owned(), n(now)),
            (table::QUEUES.to_owned(), AttributeValue::L(queues)),
        ]);
        if let Some(packed) = delivery.envelope.and_then(stored::pack) {
            let bytes = AttributeValue::B(Blob::new(packed));
            item.insert(table::ENVELOPE.to_owned(), bytes);
        }
        let same_payload =
            |old: &table::Item| text_of(old, table::PAYLOAD_HASH) == Some(delivery.payload_hash);
        match self.table.put_unless_live(item, received, &[], now).await? {
            PutOutcome::Written(replaced) => {
                let replaced = replaced.and_then(|old| {
                    let state = text_of(&old, table::STATE)?.parse().ok()?;
                    let expires_at = old.get(table::EXPIRES_AT)?.as_n().ok()?.parse().ok()?;
                    Some((state, expires_at, same_payload(&old)))
                });
                Ok(Begin::replacing(replaced, now))
            }
            PutOutcome::Blocked(old) => {
                let state = text_of(&old, table::STATE).and_then(|t| t.parse().ok());
                Ok(Begin::blocked_by(state, same_payload(&old)))
            }
        }
    }

    async fn abandon(&self, key: &DeliveryKey, payload_hash: &str) -> Result<(), StoreError> {
        let received = DeliveryState::Received.as_str();
        let mine = (table::PAYLOAD_HASH, payload_hash);
        self.table
            .delete_if_still(key.as_str(), received, mine)
            .await
    }

    async fn look_up(&self, key: &DeliveryKey) -> Result<Option<StoredDelivery>, StoreError> {
        let Some(item) = self.table.get(key.as_str()).await? else {
            return Ok(None);
        };
        let Some(state) = text_of(&item, table::STATE).and_then(|t| t.parse().ok()) else {
            return Ok(None);
        };
        // Deflated bytes; a record of the previous version holds the plain text.
        let envelope = match item.get(table::ENVELOPE) {
            Some(AttributeValue::B(bytes)) => stored::unpack(bytes.as_ref()),
            Some(AttributeValue::S(text)) => Some(text.clone()),
            _ => None,
        };
        Ok(Some(StoredDelivery {
            state,
            queues: item
                .get(table::QUEUES)
                .and_then(|v| v.as_l().ok())
                .map(|l| l.iter().filter_map(|q| q.as_s().ok().cloned()).collect())
                .unwrap_or_default(),
            envelope,
        }))
    }
}
