//! The queue port: SQS in AWS, in memory for local runs and unit tests.

mod memory;

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;

use crate::QueueError;
use crate::envelope::QueueMessage;

pub use memory::{MemoryQueue, Received};

/// Sends messages to queues named by URL.
pub trait Queue: Send + Sync {
    fn send(
        &self,
        queue_url: &str,
        message: &QueueMessage,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Sends a message that becomes visible only after `delay` (at most
    /// [`MAX_DELAY`]; longer delays are cut to it).
    fn send_delayed(
        &self,
        queue_url: &str,
        message: &QueueMessage,
        delay: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// SQS's longest message delay: 15 minutes.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

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
    async fn send(&self, queue_url: &str, message: &QueueMessage) -> Result<(), QueueError> {
        self.send_delayed(queue_url, message, Duration::ZERO).await
    }

    async fn send_delayed(
        &self,
        queue_url: &str,
        message: &QueueMessage,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let delay_seconds = i32::try_from(delay.min(MAX_DELAY).as_secs()).unwrap_or(0);
        let mut request = self
            .client
            .send_message()
            .queue_url(queue_url)
            .message_body(message.body());
        if delay_seconds > 0 {
            request = request.delay_seconds(delay_seconds);
        }
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

fn queue_error(queue_url: &str, e: impl std::fmt::Display) -> QueueError {
    QueueError {
        queue: queue_url.to_owned(),
        message: e.to_string(),
    }
}

/// How many receives a message gets before it moves to its DLQ (as the template's
/// `maxReceiveCount`).
pub const MAX_RECEIVE_COUNT: u32 = 5;

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
    ) -> impl Future<Output = Result<(), QueueError>> + Send {
        (**self).send(queue_url, message)
    }

    fn send_delayed(
        &self,
        queue_url: &str,
        message: &QueueMessage,
        delay: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send {
        (**self).send_delayed(queue_url, message, delay)
    }
}
