//! The rate limiter as one DynamoDB item per destination (`rate#<destination>` in the
//! idempotency table): an idle destination is claimed with a conditional write, a busy
//! one is advanced atomically, so concurrent Lambdas never get the same slot.

use std::time::SystemTime;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{RateLimit, RateLimiter, SLOT_RETENTION, slot_key};
use crate::clock::{epoch_millis, from_epoch_millis};
use crate::store_error::StoreError;
use crate::table::{self, NEXT_SLOT};

/// The rate limiter in the idempotency table.
#[derive(Debug, Clone)]
pub struct DynamoRateLimiter {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// One reservation at a time per process: DynamoDB serialises writes to an item, but
    /// the moto server the tests use does not, and a batch's records reserve together.
    one_at_a_time: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl DynamoRateLimiter {
    pub fn connect(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        DynamoRateLimiter {
            client: aws_sdk_dynamodb::Client::new(sdk),
            table: table.into(),
            one_at_a_time: std::sync::Arc::default(),
        }
    }

    fn error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::unavailable(&self.table, e)
    }
}

/// The interval in whole milliseconds: with a burst rounded up, so no window holds one
/// request more than its budget; without one truncated, as it always was (a limit above
/// 1,000/s is not paced).
fn interval_millis(limit: RateLimit) -> u64 {
    let nanos = limit.interval().as_nanos();
    let millis = if limit.burst > 1 {
        nanos.div_ceil(1_000_000)
    } else {
        nanos / 1_000_000
    };
    u64::try_from(millis).unwrap_or(u64::MAX)
}

/// Milliseconds `cost` requests occupy under `limit`.
pub(super) fn span_millis(limit: RateLimit, cost: u32) -> u64 {
    interval_millis(limit).saturating_mul(u64::from(cost.max(1)))
}

/// Milliseconds a request may start before its slot (`burst - 1` intervals).
pub(super) fn tolerance_millis(limit: RateLimit) -> u64 {
    interval_millis(limit).saturating_mul(u64::from(limit.burst.saturating_sub(1)))
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl RateLimiter for DynamoRateLimiter {
    async fn reserve(
        &self,
        destination: &str,
        limit: RateLimit,
        cost: u32,
        now: SystemTime,
    ) -> Result<SystemTime, StoreError> {
        let _turn = self.one_at_a_time.lock().await;
        let span = span_millis(limit, cost);
        let now_ms = epoch_millis(now);
        let expires = crate::epoch_seconds(now + SLOT_RETENTION);
        let key = AttributeValue::S(slot_key(destination));
        // Idle (no slot, or the next slot already passed): start now.
        let idle = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(table::KEY, key.clone())
            .update_expression("SET #next = :after, #expires = :expires")
            .condition_expression("attribute_not_exists(#next) OR #next <= :now")
            .expression_attribute_names("#next", NEXT_SLOT)
            .expression_attribute_names("#expires", table::EXPIRES_AT)
            .expression_attribute_values(":after", n(now_ms.saturating_add(span)))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":expires", n(expires))
            .send()
            .await;
        match idle {
            Ok(_) => return Ok(now),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(e) => return Err(self.error(aws_sdk_dynamodb::error::DisplayErrorContext(e))),
        }
        // Busy: take the next slot atomically; with a burst, start up to its tolerance early.
        let advanced = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(table::KEY, key)
            .update_expression("SET #next = #next + :span, #expires = :expires")
            .expression_attribute_names("#next", NEXT_SLOT)
            .expression_attribute_names("#expires", table::EXPIRES_AT)
            .expression_attribute_values(":span", n(span))
            .expression_attribute_values(":expires", n(expires))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| self.error(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        let next: u64 = advanced
            .attributes()
            .and_then(|a| a.get(NEXT_SLOT))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| self.error(format!("{NEXT_SLOT} is not a number")))?;
        let tolerance = tolerance_millis(limit);
        Ok(from_epoch_millis(next.saturating_sub(span).saturating_sub(tolerance)).max(now))
    }
}
