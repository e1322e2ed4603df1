//! The queue port: SQS in AWS, in memory for local runs and unit tests.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_sqs::types::MessageAttributeValue;

use crate::envelope::QueueMessage;
use crate::{Error, Result};

/// Sends messages to queues named by URL.
pub trait Queue: Send + Sync {
    fn send(
        &self,
        queue_url: &str,
        message: &QueueMessage,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Makes a received message visible again after `seconds` (SQS's own backoff).
    fn change_visibility(
        &self,
        queue_url: &str,
        receipt_handle: &str,
        seconds: u32,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Amazon SQS through the official SDK.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client) -> Self {
        SqsQueue { client }
    }

    pub fn connect(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(aws_sdk_sqs::Client::new(sdk))
    }
}

impl Queue for SqsQueue {
    async fn send(&self, queue_url: &str, message: &QueueMessage) -> Result<()> {
        let mut request = self
            .client
            .send_message()
            .queue_url(queue_url)
            .message_body(message.body());
        for (name, value) in message.attributes() {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| queue_error(queue_url, e))?;
            request = request.message_attributes(*name, attribute);
        }
        request
            .send()
            .await
            .map_err(|e| queue_error(queue_url, aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue_url: &str,
        receipt_handle: &str,
        seconds: u32,
    ) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(
                i32::try_from(seconds)
                    .unwrap_or(i32::MAX)
                    .min(MAX_VISIBILITY_SECS),
            )
            .send()
            .await
            .map_err(|e| queue_error(queue_url, aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}

/// SQS's longest visibility timeout: 12 hours.
const MAX_VISIBILITY_SECS: i32 = 12 * 3600;

fn queue_error(queue_url: &str, e: impl std::fmt::Display) -> Error {
    Error::Queue {
        queue: queue_url.to_owned(),
        message: e.to_string(),
    }
}

/// Queues in memory; queues can be made to fail on cue.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    messages: Mutex<HashMap<String, Vec<QueueMessage>>>,
    failing: Mutex<HashSet<String>>,
    visibility_changes: Mutex<Vec<(String, String, u32)>>,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many messages were sent, to any queue.
    pub fn total(&self) -> usize {
        lock(&self.messages).values().map(Vec::len).sum()
    }

    /// Every message sent to `queue_url`, oldest first.
    pub fn messages(&self, queue_url: &str) -> Vec<QueueMessage> {
        lock(&self.messages)
            .get(queue_url)
            .cloned()
            .unwrap_or_default()
    }

    /// Every visibility change asked for: (queue URL, receipt handle, seconds).
    pub fn visibility_changes(&self) -> Vec<(String, String, u32)> {
        lock(&self.visibility_changes).clone()
    }

    /// Makes sends to `queue_url` fail (`true`) or succeed again (`false`).
    pub fn set_failing(&self, queue_url: &str, failing: bool) {
        let mut set = lock(&self.failing);
        if failing {
            set.insert(queue_url.to_owned());
        } else {
            set.remove(queue_url);
        }
    }
}

impl Queue for MemoryQueue {
    async fn send(&self, queue_url: &str, message: &QueueMessage) -> Result<()> {
        if lock(&self.failing).contains(queue_url) {
            return Err(queue_error(queue_url, "unavailable (failing on cue)"));
        }
        lock(&self.messages)
            .entry(queue_url.to_owned())
            .or_default()
            .push(message.clone());
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue_url: &str,
        receipt_handle: &str,
        seconds: u32,
    ) -> Result<()> {
        lock(&self.visibility_changes).push((
            queue_url.to_owned(),
            receipt_handle.to_owned(),
            seconds,
        ));
        Ok(())
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One queue shared by several users (the local runner's receiver and processors).
impl<T: Queue> Queue for std::sync::Arc<T> {
    fn send(
        &self,
        queue_url: &str,
        message: &QueueMessage,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).send(queue_url, message)
    }

    fn change_visibility(
        &self,
        queue_url: &str,
        receipt_handle: &str,
        seconds: u32,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).change_visibility(queue_url, receipt_handle, seconds)
    }
}
