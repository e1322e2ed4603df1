//! The idempotency table: its attribute names (the only place they are spelled out, for
//! the adapters, the CLI, the test kit and the tests), and the DynamoDB plumbing both of
//! its ports share.
//!
//! One table holds three kinds of item, told apart by their key:
//! `event#call_id[#hash]` (a delivery record, [`crate::ledger`]),
//! `integration#delivery_key` (an effect claim, [`crate::claims`]) and
//! `rate#destination` (a rate-limit slot, [`crate::rate_limit`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::create_table::{CreateTableError, CreateTableOutput};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::store_error::StoreError;

/// The partition key (a string).
pub const KEY: &str = "pk";
/// The record's state: `received`/`enqueued`, or `in_progress`/`completed`/`failed`/`retrying`.
pub const STATE: &str = "state";
/// SHA-256 of the body that began a delivery.
pub const PAYLOAD_HASH: &str = "payload_hash";
/// When the item stops counting, epoch seconds; also the table's TTL attribute.
pub const EXPIRES_AT: &str = "expires_at";
/// When a `received` record or an `in_progress` claim may be taken over, epoch seconds.
pub const LEASE_UNTIL: &str = "lease_until";
/// The integrations a delivery was enqueued to.
pub const QUEUES: &str = "queues";
/// When the item was last written, epoch seconds.
pub const UPDATED_AT: &str = "updated_at";
/// The processor run holding a claim.
pub const OWNER: &str = "owner";
/// The queue message of a delivery, kept for replay.
pub const ENVELOPE: &str = "envelope";
/// Why a claim failed (its classified DLQ reason).
pub const REASON: &str = "reason";
/// A claim's attempt: the one in progress or completed, or how many a `retrying` one
/// has failed.
pub const ATTEMPTS: &str = "attempts";
/// When a `retrying` claim's message is due again, epoch seconds.
pub const NEXT_ATTEMPT_AT: &str = "next_attempt_at";
/// A rate-limit slot item's next free slot, epoch milliseconds.
pub const NEXT_SLOT: &str = "next_slot_ms";

/// One item as DynamoDB returns it.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// What [`DynamoTable::put_unless_live`] did.
#[derive(Debug)]
pub(crate) enum PutOutcome {
    /// The item was written over the record it replaced, if there was one.
    Written(Option<Item>),
    /// A live record is in the way: this one.
    Blocked(Item),
}

/// The table in DynamoDB: the conditional writes the delivery ledger and the effect
/// claims are made of.
#[derive(Debug, Clone)]
pub(crate) struct DynamoTable {
    pub client: aws_sdk_dynamodb::Client,
    pub name: String,
}

impl DynamoTable {
    pub fn new(client: aws_sdk_dynamodb::Client, name: impl Into<String>) -> Self {
        DynamoTable {
            client,
            name: name.into(),
        }
    }

    /// The call failed: the table is unavailable.
    pub fn unavailable(&self, error: impl std::error::Error) -> StoreError {
        StoreError::unavailable(&self.name, DisplayErrorContext(error))
    }

    /// Writes `item` unless a live record holds its key. A record is not live when it is
    /// absent, expired (`expires_at` checked by the condition itself: TTL deletion lags),
    /// in `leased_state` with its lease over, or in one of `reclaimable`. On a conflict the
    /// record in the way is returned, and on success the record replaced, if any (both
    /// `ALL_OLD`: no second read, and AWS charges no capacity for return values).
    pub async fn put_unless_live(
        &self,
        item: Item,
        leased_state: &str,
        reclaimable: &[&str],
        now: u64,
    ) -> Result<PutOutcome, StoreError> {
        let mut condition = String::from(
            "attribute_not_exists(#pk) OR #expires <= :now OR (#state = :leased AND #lease <= :now)",
        );
        let mut request = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .expression_attribute_names("#pk", KEY)
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_names("#state", STATE)
            .expression_attribute_names("#lease", LEASE_UNTIL)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":leased", s(leased_state))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (i, state) in reclaimable.iter().enumerate() {
            condition.push_str(&format!(" OR #state = :reclaimable{i}"));
            request = request.expression_attribute_values(format!(":reclaimable{i}"), s(state));
        }
        match request.condition_expression(condition).send().await {
            Ok(put) => Ok(PutOutcome::Written(put.attributes)),
            Err(err) => match err.into_service_error() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    Ok(PutOutcome::Blocked(failed.item.unwrap_or_default()))
                }
                other if other.code() == Some("ValidationException") => {
                    Err(StoreError::rejected(&self.name, DisplayErrorContext(other)))
                }
                other => Err(self.unavailable(other)),
            },
        }
    }

    /// Deletes the record at `key` if it is still in `state` and still `mine` (an
    /// attribute that identifies this request's record). A record someone else has taken
    /// over or completed since is left alone, and that is not an error.
    pub async fn delete_if_still(
        &self,
        key: &str,
        state: &str,
        mine: (&str, &str),
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.name)
            .key(KEY, s(key))
            .condition_expression("#state = :state AND #mine = :mine")
            .expression_attribute_names("#state", STATE)
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
            Err(e) => Err(self.unavailable(e)),
        }
    }

    /// Deletes the record at `key`, whatever it holds.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.name)
            .key(KEY, s(key))
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(())
    }

    /// The record at `key`, read consistently.
    pub async fn get(&self, key: &str) -> Result<Option<Item>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.name)
            .key(KEY, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?
            .item)
    }

    /// Sets `state`, `updated_at` = `now` and each of `extra` on the record at `key`,
    /// and removes its lease. A record that is gone (forgotten, or abandoned) stays gone,
    /// as in memory: an update would create one without `expires_at`, live forever.
    pub async fn settle(
        &self,
        key: &str,
        state: &str,
        extra: &[(&str, AttributeValue)],
        now: u64,
    ) -> Result<(), StoreError> {
        self.update(key, state, extra, now, None).await
    }

    /// As [`DynamoTable::settle`], but only while the record is still in `from` and still
    /// `mine` (as [`DynamoTable::delete_if_still`]): one taken over since is left alone.
    pub async fn settle_if_still(
        &self,
        key: &str,
        from: &str,
        mine: (&str, &str),
        to: (&str, &[(&str, AttributeValue)]),
        now: u64,
    ) -> Result<(), StoreError> {
        self.update(key, to.0, to.1, now, Some((from, mine))).await
    }

    async fn update(
        &self,
        key: &str,
        state: &str,
        extra: &[(&str, AttributeValue)],
        now: u64,
        still: Option<(&str, (&str, &str))>,
    ) -> Result<(), StoreError> {
        let mut set = String::from("SET #state = :state, #updated = :now");
        let mut update = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(KEY, s(key))
            .expression_attribute_names("#state", STATE)
            .expression_attribute_names("#updated", UPDATED_AT)
            .expression_attribute_names("#lease", LEASE_UNTIL)
            .expression_attribute_values(":state", s(state))
            .expression_attribute_values(":now", n(now));
        // Placeholders named after their attributes (`:envelope`), so a recorded request
        // says what it wrote (the leak scan exempts the stored envelope by that name).
        for (name, value) in extra {
            set.push_str(&format!(", #{name} = :{name}"));
            update = update
                .expression_attribute_names(format!("#{name}"), *name)
                .expression_attribute_values(format!(":{name}"), value.clone());
        }
        let mut condition = String::from("attribute_exists(#pk)");
        if let Some((from, (attribute, value))) = still {
            condition.push_str(" AND #state = :from AND #mine = :mine");
            update = update
                .expression_attribute_names("#mine", attribute)
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":mine", s(value));
        }
        let result = update
            .update_expression(format!("{set} REMOVE #lease"))
            .condition_expression(condition)
            .expression_attribute_names("#pk", KEY)
            .send()
            .await;
        match result {
            Err(e)
                if !e
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(self.unavailable(e))
            }
            _ => Ok(()),
        }
    }
}

/// Creates the table as template.yaml declares it (on demand, key [`KEY`] a string): for
/// `nphooks init-local` and the tests against moto.
pub async fn create(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<CreateTableOutput, SdkError<CreateTableError>> {
    let definition = AttributeDefinition::builder()
        .attribute_name(KEY)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("name and type are set");
    let key = KeySchemaElement::builder()
        .attribute_name(KEY)
        .key_type(KeyType::Hash)
        .build()
        .expect("name and key type are set");
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(definition)
        .key_schema(key)
        .send()
        .await
}

/// The string attribute `name` of `item`, if it is one.
pub(crate) fn text_of<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(crate) fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

pub(crate) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
