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
}

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
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
