//! Queues as the Lambda event source sees them: receive a batch (hiding it for the
//! visibility timeout), delete what was handled, and after `maxReceiveCount` receives
//! move a message to its DLQ. In memory for offline runs (the core's `MemoryQueue`), or
//! SQS itself.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsMessage, SqsMessageAttribute};
use nphooks_core::queue::MemoryQueue;

pub use nphooks_core::queue::MAX_RECEIVE_COUNT;

/// What an event source needs from a queue.
pub trait QueueSource: Send + Sync {
    fn receive(
        &self,
        queue_url: &str,
        max: usize,
        visibility: Duration,
    ) -> impl Future<Output = anyhow::Result<Vec<SqsMessage>>> + Send;
    fn delete(
        &self,
        queue_url: &str,
        receipt_handle: &str,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// An SQS record as the Lambda event source hands it over.
pub fn record(
    message_id: &str,
    receipt_handle: &str,
    body: &str,
    receive_count: u32,
    queue_url: &str,
    attributes: &[(String, String)],
) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(message_id.to_owned());
    record.receipt_handle = Some(receipt_handle.to_owned());
    record.body = Some(body.to_owned());
    record.attributes.insert(
        "ApproximateReceiveCount".to_owned(),
        receive_count.to_string(),
    );
    for (name, value) in attributes {
        let mut attribute = SqsMessageAttribute::default();
        attribute.string_value = Some(value.clone());
        attribute.data_type = Some("String".to_owned());
        record.message_attributes.insert(name.clone(), attribute);
    }
    record.event_source = Some("aws:sqs".to_owned());
    record.event_source_arn = Some(queue_url.to_owned());
    record
}

/// How long an offline receive waits for a message, as `SqsSource` long-polls.
const MEMORY_WAIT: Duration = Duration::from_secs(1);

/// Offline: the core's in-memory queues, which already behave like SQS.
impl QueueSource for MemoryQueue {
    async fn receive(
        &self,
        queue_url: &str,
        max: usize,
        visibility: Duration,
    ) -> anyhow::Result<Vec<SqsMessage>> {
        Ok(self
            .receive_wait(queue_url, max, visibility, MEMORY_WAIT)
            .await
            .into_iter()
            .map(|m| {
                record(
                    &m.message_id,
                    &m.receipt_handle,
                    &m.body,
                    m.receive_count,
                    queue_url,
                    &m.attributes,
                )
            })
            .collect())
    }

    async fn delete(&self, queue_url: &str, receipt_handle: &str) -> anyhow::Result<()> {
        MemoryQueue::delete(self, queue_url, receipt_handle);
        Ok(())
    }
}

/// SQS itself (AWS, or a moto server through `AWS_ENDPOINT_URL`).
#[derive(Debug, Clone)]
pub struct SqsSource {
    pub client: aws_sdk_sqs::Client,
}

impl QueueSource for SqsSource {
    async fn receive(
        &self,
        queue_url: &str,
        max: usize,
        visibility: Duration,
    ) -> anyhow::Result<Vec<SqsMessage>> {
        let received = self
            .client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .visibility_timeout(i32::try_from(visibility.as_secs()).unwrap_or(i32::MAX))
            .wait_time_seconds(1)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .message_attribute_names("All")
            .send()
            .await
            .map_err(aws_error)
            .with_context(|| format!("could not receive from {queue_url}"))?;
        Ok(received
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let count = m
                    .attributes()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                let attributes: Vec<(String, String)> = m
                    .message_attributes()
                    .into_iter()
                    .flatten()
                    .filter_map(|(name, a)| Some((name.clone(), a.string_value()?.to_owned())))
                    .collect();
                record(
                    m.message_id().unwrap_or_default(),
                    m.receipt_handle().unwrap_or_default(),
                    m.body().unwrap_or_default(),
                    count,
                    queue_url,
                    &attributes,
                )
            })
            .collect())
    }

    async fn delete(&self, queue_url: &str, receipt_handle: &str) -> anyhow::Result<()> {
        self.client
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(aws_error)
            .with_context(|| format!("could not delete from {queue_url}"))?;
        Ok(())
    }
}

/// An AWS SDK error with its whole chain of causes, as one message.
pub fn aws_error<E: std::error::Error + Send + Sync + 'static>(error: E) -> anyhow::Error {
    anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(error))
}
