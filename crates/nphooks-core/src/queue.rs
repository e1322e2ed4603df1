//! The queue port: SQS in AWS, in memory for local runs and unit tests.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::MessageAttributeValue;

use crate::QueueError;
use crate::envelope::QueueMessage;

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

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    message: QueueMessage,
    receives: u32,
    visible_at: Instant,
    receipt: Option<String>,
}

/// A message handed out by [`MemoryQueue::receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// The message's string attributes.
    pub attributes: Vec<(String, String)>,
    pub receive_count: u32,
}

/// Queues in memory, with SQS's receive semantics (visibility timeout, delete by receipt
/// handle, redrive to a DLQ after [`MAX_RECEIVE_COUNT`] receives): the local runner's
/// queues, and the unit tests'.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    queues: Mutex<HashMap<String, Vec<Stored>>>,
    /// Queue URL → its DLQ URL.
    redrive: HashMap<String, String>,
    next_id: AtomicU64,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues whose messages move to a DLQ: (queue URL, DLQ URL) pairs.
    pub fn with_redrive(redrive: impl IntoIterator<Item = (String, String)>) -> Self {
        MemoryQueue {
            redrive: redrive.into_iter().collect(),
            ..Self::default()
        }
    }

    /// How many messages all queues hold.
    pub fn total(&self) -> usize {
        lock(&self.queues).values().map(Vec::len).sum()
    }

    /// The messages `queue_url` holds, visible or not, oldest first.
    pub fn messages(&self, queue_url: &str) -> Vec<QueueMessage> {
        lock(&self.queues)
            .get(queue_url)
            .map(|q| q.iter().map(|m| m.message.clone()).collect())
            .unwrap_or_default()
    }

    /// Receives up to `max` visible messages, hiding them for `visibility`. A visible
    /// message already received `MAX_RECEIVE_COUNT` times moves to its DLQ instead.
    pub fn receive(&self, queue_url: &str, max: usize, visibility: Duration) -> Vec<Received> {
        self.receive_after(queue_url, max, visibility, Duration::ZERO)
    }

    /// [`MemoryQueue::receive`] as it would be `later` from now (for tests of delays).
    pub fn receive_after(
        &self,
        queue_url: &str,
        max: usize,
        visibility: Duration,
        later: Duration,
    ) -> Vec<Received> {
        let now = Instant::now() + later;
        let mut queues = lock(&self.queues);
        if let Some(dlq) = self.redrive.get(queue_url) {
            let queue = queues.entry(queue_url.to_owned()).or_default();
            let (dead, live): (Vec<Stored>, Vec<Stored>) = std::mem::take(queue)
                .into_iter()
                .partition(|m| m.visible_at <= now && m.receives >= MAX_RECEIVE_COUNT);
            *queue = live;
            queues.entry(dlq.clone()).or_default().extend(dead);
        }
        let Some(queue) = queues.get_mut(queue_url) else {
            return Vec::new();
        };
        queue
            .iter_mut()
            .filter(|m| m.visible_at <= now)
            .take(max)
            .map(|message| {
                message.receives += 1;
                message.visible_at = now + visibility;
                let receipt = format!("{}#{}", message.id, message.receives);
                message.receipt = Some(receipt.clone());
                Received {
                    message_id: message.id.clone(),
                    receipt_handle: receipt,
                    body: message.message.body().to_owned(),
                    attributes: message
                        .message
                        .attributes()
                        .iter()
                        .map(|(name, value)| ((*name).to_owned(), value.clone()))
                        .collect(),
                    receive_count: message.receives,
                }
            })
            .collect()
    }

    /// Deletes the message last received with `receipt_handle`.
    pub fn delete(&self, queue_url: &str, receipt_handle: &str) {
        if let Some(queue) = lock(&self.queues).get_mut(queue_url) {
            queue.retain(|m| m.receipt.as_deref() != Some(receipt_handle));
        }
    }
}

impl Queue for MemoryQueue {
    async fn send(&self, queue_url: &str, message: &QueueMessage) -> Result<(), QueueError> {
        self.send_delayed(queue_url, message, Duration::ZERO).await
    }

    async fn send_delayed(
        &self,
        queue_url: &str,
        message: &QueueMessage,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let id = format!(
            "memory-{:08}",
            self.next_id.fetch_add(1, Ordering::Relaxed) + 1
        );
        lock(&self.queues)
            .entry(queue_url.to_owned())
            .or_default()
            .push(Stored {
                id,
                message: message.clone(),
                receives: 0,
                visible_at: Instant::now() + delay.min(MAX_DELAY),
                receipt: None,
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn given_the_memory_queue_then_it_hides_deletes_defers_and_redrives_like_sqs() {
        let queue = MemoryQueue::with_redrive([("q".to_owned(), "dlq".to_owned())]);
        let message = QueueMessage::resent(r#"{"event":"call.ended"}"#, Vec::new());
        queue.send("q", &message).await.expect("memory");

        // Received once, it is hidden for the visibility timeout.
        let first = queue.receive("q", 10, Duration::from_secs(60));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].receive_count, 1);
        assert!(queue.receive("q", 10, Duration::from_secs(60)).is_empty());

        // Visible again after its visibility timeout, then deleted.
        let second = queue.receive_after("q", 10, Duration::ZERO, Duration::from_secs(61));
        assert_eq!(second[0].receive_count, 2);
        queue.delete("q", &second[0].receipt_handle);
        assert!(queue.messages("q").is_empty());

        // Sent with a delay, it is hidden until the delay has passed.
        queue
            .send_delayed("q", &message, Duration::from_secs(30))
            .await
            .expect("memory");
        assert!(queue.receive("q", 10, Duration::ZERO).is_empty());
        let delayed = queue.receive_after("q", 10, Duration::ZERO, Duration::from_secs(31));
        assert_eq!(delayed.len(), 1);
        queue.delete("q", &delayed[0].receipt_handle);

        // Never deleted: after MAX_RECEIVE_COUNT receives it moves to the DLQ, body intact.
        queue.send("q", &message).await.expect("memory");
        for _ in 0..MAX_RECEIVE_COUNT {
            assert_eq!(queue.receive("q", 10, Duration::ZERO).len(), 1);
        }
        assert!(queue.receive("q", 10, Duration::ZERO).is_empty());
        assert_eq!(queue.messages("dlq"), vec![message]);
    }
}
