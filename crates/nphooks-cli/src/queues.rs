//! Queues as the Lambda event source sees them: receive a batch (hiding it for the
//! visibility timeout), delete what was handled, and after `maxReceiveCount` receives
//! move a message to its DLQ. In memory for offline runs (`LocalQueues`), or SQS itself.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_lambda_events::event::sqs::SqsMessage;
use nphooks_core::envelope::QueueMessage;
use nphooks_core::queue::Queue;

/// The same `maxReceiveCount` as template.yaml.
pub const MAX_RECEIVE_COUNT: u32 = 5;

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
) -> SqsMessage {
    serde_json::from_value(serde_json::json!({
        "messageId": message_id,
        "receiptHandle": receipt_handle,
        "body": body,
        "attributes": {"ApproximateReceiveCount": receive_count.to_string()},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_url,
    }))
    .expect("a valid SQS record")
}

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    message: QueueMessage,
    receives: u32,
    visible_at: Instant,
    receipt: Option<String>,
}

/// In-memory queues with SQS's receive semantics, for offline runs.
#[derive(Debug, Default)]
pub struct LocalQueues {
    queues: Mutex<HashMap<String, Vec<Stored>>>,
    /// queue URL → its DLQ URL.
    redrive: HashMap<String, String>,
    next: AtomicU64,
}

impl LocalQueues {
    /// `redrive`: (queue URL, DLQ URL) pairs.
    pub fn new(redrive: impl IntoIterator<Item = (String, String)>) -> Self {
        LocalQueues {
            redrive: redrive.into_iter().collect(),
            ..Self::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Stored>>> {
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// How many messages a queue holds, visible or not.
    pub fn len(&self, queue_url: &str) -> usize {
        self.lock().get(queue_url).map_or(0, Vec::len)
    }

    pub fn is_empty(&self, queue_url: &str) -> bool {
        self.len(queue_url) == 0
    }

    /// The bodies and attributes of a queue's messages (for `dlq list`).
    pub fn peek(&self, queue_url: &str) -> Vec<(String, QueueMessage)> {
        self.lock()
            .get(queue_url)
            .map(|q| {
                q.iter()
                    .map(|m| (m.id.clone(), m.message.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Moves every message of `from` to `to` (a DLQ redrive), returning how many moved.
    pub fn move_all(&self, from: &str, to: &str) -> usize {
        let mut queues = self.lock();
        let moved: Vec<Stored> = queues.remove(from).unwrap_or_default();
        let count = moved.len();
        let target = queues.entry(to.to_owned()).or_default();
        for mut message in moved {
            message.receives = 0;
            message.receipt = None;
            message.visible_at = Instant::now();
            target.push(message);
        }
        count
    }
}

impl Queue for LocalQueues {
    async fn send(&self, queue_url: &str, message: &QueueMessage) -> nphooks_core::Result<()> {
        let id = format!("local-{:08}", self.id());
        self.lock()
            .entry(queue_url.to_owned())
            .or_default()
            .push(Stored {
                id,
                message: message.clone(),
                receives: 0,
                visible_at: Instant::now(),
                receipt: None,
            });
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue_url: &str,
        receipt_handle: &str,
        seconds: u32,
    ) -> nphooks_core::Result<()> {
        if let Some(message) = self.lock().get_mut(queue_url).and_then(|q| {
            q.iter_mut()
                .find(|m| m.receipt.as_deref() == Some(receipt_handle))
        }) {
            message.visible_at = Instant::now() + Duration::from_secs(seconds.into());
        }
        Ok(())
    }
}

impl QueueSource for LocalQueues {
    async fn receive(
        &self,
        queue_url: &str,
        max: usize,
        visibility: Duration,
    ) -> anyhow::Result<Vec<SqsMessage>> {
        let now = Instant::now();
        let mut queues = self.lock();
        // Redrive first, as SQS does: a visible message received maxReceiveCount times goes to the DLQ.
        if let Some(dlq) = self.redrive.get(queue_url) {
            let queue = queues.entry(queue_url.to_owned()).or_default();
            let (dead, live): (Vec<Stored>, Vec<Stored>) = std::mem::take(queue)
                .into_iter()
                .partition(|m| m.visible_at <= now && m.receives >= MAX_RECEIVE_COUNT);
            *queue = live;
            queues
                .entry(dlq.clone())
                .or_default()
                .extend(dead.into_iter().map(|mut m| {
                    m.receipt = None;
                    m
                }));
        }
        let Some(queue) = queues.get_mut(queue_url) else {
            return Ok(Vec::new());
        };
        let mut batch = Vec::new();
        for message in queue.iter_mut().filter(|m| m.visible_at <= now).take(max) {
            message.receives += 1;
            message.visible_at = now + visibility;
            let receipt = format!("{}#{}", message.id, message.receives);
            message.receipt = Some(receipt.clone());
            batch.push(record(
                &message.id,
                &receipt,
                message.message.body(),
                message.receives,
                queue_url,
            ));
        }
        Ok(batch)
    }

    async fn delete(&self, queue_url: &str, receipt_handle: &str) -> anyhow::Result<()> {
        if let Some(queue) = self.lock().get_mut(queue_url) {
            queue.retain(|m| m.receipt.as_deref() != Some(receipt_handle));
        }
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
                record(
                    m.message_id().unwrap_or_default(),
                    m.receipt_handle().unwrap_or_default(),
                    m.body().unwrap_or_default(),
                    count,
                    queue_url,
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
