//! The idempotency table in DynamoDB.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::{
    Begin, COMPLETED, Claim, ENQUEUED, EffectClaim, FAILED, IN_PROGRESS, IdempotencyStore,
    MAX_STORED_ENVELOPE_BYTES, RECEIVE_LEASE_SECS, RECEIVED, StoredDelivery, attr,
};
use crate::delivery::DeliveryKey;
use crate::window::ReplayWindow;
use crate::{Error, Result};

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
                other if other.code() == Some("ValidationException") => Err(Error::StoreRejected {
                    table: self.table.clone(),
                    message: aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string(),
                }),
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
        window: ReplayWindow,
    ) -> Result<Begin> {
        let item = HashMap::from([
            (attr::KEY.to_owned(), s(key.as_str())),
            (attr::STATE.to_owned(), s(RECEIVED)),
            (attr::PAYLOAD_HASH.to_owned(), s(payload_hash)),
            (attr::EXPIRES_AT.to_owned(), n(window.expires_at(now))),
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

    async fn claim_effect(
        &self,
        claim: &EffectClaim,
        lease_until: u64,
        now: u64,
        window: ReplayWindow,
    ) -> Result<Claim> {
        let item = HashMap::from([
            (attr::KEY.to_owned(), s(&claim.key)),
            (attr::STATE.to_owned(), s(IN_PROGRESS)),
            (attr::OWNER.to_owned(), s(&claim.owner)),
            (attr::LEASE_UNTIL.to_owned(), n(lease_until)),
            (attr::EXPIRES_AT.to_owned(), n(window.expires_at(now))),
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
