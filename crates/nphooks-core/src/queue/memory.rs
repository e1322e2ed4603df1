//! [`MemoryQueue`]: queues in memory with SQS's receive semantics.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{MAX_DELAY, MAX_RECEIVE_COUNT, Queue, lock};
use crate::QueueError;
use crate::envelope::QueueMessage;

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    message: QueueMessage,
    receives: u32,
    receipt: Option<String>,
}

/// One queue: every message by its sequence number (oldest first), those visible now in
/// the order they became visible, and those hidden (delayed or in flight) by the time they
/// reappear. A receive and a delete cost O(log n), whatever the backlog.
#[derive(Debug, Default)]
struct OneQueue {
    messages: BTreeMap<u64, Stored>,
    visible: VecDeque<u64>,
    /// (visible again at, sequence number, receives when hidden): an entry whose message
    /// was deleted or received again since is stale and skipped.
    hidden: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    /// Wakes a receiver waiting on this queue.
    arrived: Arc<Notify>,
}

impl OneQueue {
    fn push(&mut self, seq: u64, stored: Stored, visible_at: Option<Instant>) {
        match visible_at {
            Some(at) => self.hidden.push(Reverse((at, seq, stored.receives))),
            None => self.visible.push_back(seq),
        }
        self.messages.insert(seq, stored);
        self.arrived.notify_one();
    }

    /// Moves every hidden message whose time has come to the visible ones.
    fn reveal(&mut self, now: Instant) {
        while let Some(Reverse((at, seq, receives))) = self.hidden.peek().copied() {
            if at > now {
                break;
            }
            self.hidden.pop();
            if self
                .messages
                .get(&seq)
                .is_some_and(|m| m.receives == receives)
            {
                self.visible.push_back(seq);
            }
        }
    }
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
    queues: Mutex<HashMap<String, OneQueue>>,
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
        lock(&self.queues).values().map(|q| q.messages.len()).sum()
    }

    /// The messages `queue_url` holds, visible or not, oldest first.
    pub fn messages(&self, queue_url: &str) -> Vec<QueueMessage> {
        lock(&self.queues)
            .get(queue_url)
            .map(|q| q.messages.values().map(|m| m.message.clone()).collect())
            .unwrap_or_default()
    }

    /// Receives up to `max` visible messages, hiding them for `visibility`. A visible
    /// message already received `MAX_RECEIVE_COUNT` times moves to its DLQ instead.
    pub fn receive(&self, queue_url: &str, max: usize, visibility: Duration) -> Vec<Received> {
        self.receive_after(queue_url, max, visibility, Duration::ZERO)
    }

    /// [`MemoryQueue::receive`], waiting up to `wait` for a message when none is visible
    /// (SQS's long polling).
    pub async fn receive_wait(
        &self,
        queue_url: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let received = self.receive(queue_url, max, visibility);
            if !received.is_empty() {
                return received;
            }
            let arrived = lock(&self.queues)
                .entry(queue_url.to_owned())
                .or_default()
                .arrived
                .clone();
            // A message sent since the receive above left a permit: this returns at once.
            if tokio::time::timeout_at(deadline, arrived.notified())
                .await
                .is_err()
            {
                return self.receive(queue_url, max, visibility);
            }
        }
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
        let Some(queue) = queues.get_mut(queue_url) else {
            return Vec::new();
        };
        queue.reveal(now);
        let dlq = self.redrive.get(queue_url);
        let mut dead = Vec::new();
        let mut received = Vec::new();
        while received.len() < max
            && let Some(seq) = queue.visible.pop_front()
        {
            let Some(message) = queue.messages.get_mut(&seq) else {
                continue;
            };
            if dlq.is_some() && message.receives >= MAX_RECEIVE_COUNT {
                dead.extend(queue.messages.remove(&seq).map(|m| (seq, m)));
                continue;
            }
            message.receives += 1;
            let receipt = format!("{}#{}", message.id, message.receives);
            message.receipt = Some(receipt.clone());
            queue
                .hidden
                .push(Reverse((now + visibility, seq, message.receives)));
            received.push(Received {
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
            });
        }
        if let Some(dlq) = dlq {
            let dlq = queues.entry(dlq.clone()).or_default();
            for (seq, message) in dead {
                dlq.push(seq, message, None);
            }
        }
        received
    }

    /// Deletes the message last received with `receipt_handle`.
    pub fn delete(&self, queue_url: &str, receipt_handle: &str) {
        let seq = receipt_handle
            .rsplit_once('#')
            .and_then(|(id, _)| id.strip_prefix(ID_PREFIX))
            .and_then(|seq| seq.parse::<u64>().ok());
        if let (Some(queue), Some(seq)) = (lock(&self.queues).get_mut(queue_url), seq)
            && queue.messages.get(&seq).and_then(|m| m.receipt.as_deref()) == Some(receipt_handle)
        {
            queue.messages.remove(&seq);
        }
    }
}

/// Message ids are `memory-<sequence number>`.
const ID_PREFIX: &str = "memory-";

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
        let seq = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let stored = Stored {
            id: format!("{ID_PREFIX}{seq:08}"),
            message: message.clone(),
            receives: 0,
            receipt: None,
        };
        let visible_at = (!delay.is_zero()).then(|| Instant::now() + delay.min(MAX_DELAY));
        lock(&self.queues)
            .entry(queue_url.to_owned())
            .or_default()
            .push(seq, stored, visible_at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::MAX_RECEIVE_COUNT;

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

    #[tokio::test]
    async fn given_an_empty_queue_when_a_message_arrives_then_a_waiting_receive_returns_it() {
        let queue = Arc::new(MemoryQueue::new());
        let message = QueueMessage::resent("{}", Vec::new());
        let waiting = {
            let queue = queue.clone();
            tokio::spawn(async move {
                let wait = Duration::from_secs(10);
                queue
                    .receive_wait("q", 10, Duration::from_secs(60), wait)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        queue.send("q", &message).await.expect("memory");
        let received = waiting.await.expect("the receive task");
        assert_eq!(received.len(), 1);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "woken, not timed out"
        );
        let empty = queue.receive_wait("q", 10, Duration::ZERO, Duration::from_millis(10));
        assert!(empty.await.is_empty(), "hidden while in flight");
    }

    #[tokio::test]
    async fn given_a_large_backlog_then_each_message_is_received_once_and_deleted() {
        let queue = MemoryQueue::new();
        for i in 0..20_000 {
            let message = QueueMessage::resent(&format!("{{\"n\":{i}}}"), Vec::new());
            queue.send("q", &message).await.expect("memory");
        }
        let mut bodies = std::collections::BTreeSet::new();
        loop {
            let batch = queue.receive("q", 10, Duration::from_secs(60));
            if batch.is_empty() {
                break;
            }
            for received in batch {
                assert!(bodies.insert(received.body), "received twice");
                queue.delete("q", &received.receipt_handle);
            }
        }
        assert_eq!((bodies.len(), queue.total()), (20_000, 0));
    }
}
