//! SQS on the soak's virtual clock: delays, visibility timeouts, receive counts, delete
//! by receipt handle, and redrive to the DLQ after `maxReceiveCount` receives.
//! `nphooks_core::queue::MemoryQueue` keeps its times on the wall clock (`Instant`),
//! so a message delayed 15 minutes would wait 15 real minutes: this twin keeps them on
//! the [`Clock`] instead, ordered by due time so the driver can jump to the next one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsMessage, SqsMessageAttribute};
use nphooks_core::QueueError;
use nphooks_core::clock::Clock;
use nphooks_core::envelope::QueueMessage;
use nphooks_core::queue::{MAX_DELAY, MAX_RECEIVE_COUNT, Queue};

use super::lock;

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    body: String,
    attributes: Vec<(String, String)>,
    receives: u32,
    receipt: Option<String>,
}

/// A message moved to a DLQ (sent there, or redriven after too many receives).
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub body: String,
    pub attributes: Vec<(String, String)>,
    /// Moved by the redrive policy, not sent by a processor.
    pub redriven: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Queue URL → (visible at ms, sequence) → message.
    queues: HashMap<String, BTreeMap<(u64, u64), Stored>>,
    /// Receipt handle → where its message sits.
    receipts: HashMap<String, (String, (u64, u64))>,
    dead: HashMap<String, Vec<DeadLetter>>,
    next: u64,
}

/// Standard queues with their DLQs, on virtual time.
#[derive(Debug)]
pub struct SimQueue {
    clock: Clock,
    /// Queue URL → its DLQ URL.
    redrive: HashMap<String, String>,
    state: Mutex<State>,
}

impl SimQueue {
    pub fn new(clock: Clock, redrive: impl IntoIterator<Item = (String, String)>) -> Self {
        SimQueue {
            clock,
            redrive: redrive.into_iter().collect(),
            state: Mutex::default(),
        }
    }

    /// When the next message of `queue_url` becomes visible (epoch ms).
    pub fn next_visible(&self, queue_url: &str) -> Option<u64> {
        let state = lock(&self.state);
        let queue = state.queues.get(queue_url)?;
        queue.first_key_value().map(|((at, _), _)| *at)
    }

    /// How many messages `queue_url` holds, visible or not.
    pub fn depth(&self, queue_url: &str) -> usize {
        lock(&self.state)
            .queues
            .get(queue_url)
            .map_or(0, BTreeMap::len)
    }

    /// What a DLQ holds.
    pub fn dead_letters(&self, dlq_url: &str) -> Vec<DeadLetter> {
        lock(&self.state)
            .dead
            .get(dlq_url)
            .cloned()
            .unwrap_or_default()
    }

    /// Receives up to `max` visible messages, hiding them for `visibility`; a visible
    /// message already received [`MAX_RECEIVE_COUNT`] times moves to the DLQ instead.
    pub fn receive(&self, queue_url: &str, max: usize, visibility: Duration) -> Vec<SqsMessage> {
        let now = self.clock.epoch_millis();
        let hidden_until = now + u64::try_from(visibility.as_millis()).unwrap_or(u64::MAX);
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let Some(queue) = state.queues.get_mut(queue_url) else {
            return Vec::new();
        };
        let mut records = Vec::new();
        while records.len() < max {
            let Some(entry) = queue.first_entry() else {
                break;
            };
            if entry.key().0 > now {
                break;
            }
            let mut message = entry.remove();
            if let Some(receipt) = message.receipt.take() {
                state.receipts.remove(&receipt);
            }
            if message.receives >= MAX_RECEIVE_COUNT
                && let Some(dlq) = self.redrive.get(queue_url)
            {
                state.dead.entry(dlq.clone()).or_default().push(DeadLetter {
                    body: message.body,
                    attributes: message.attributes,
                    redriven: true,
                });
                continue;
            }
            message.receives += 1;
            state.next += 1;
            let key = (hidden_until, state.next);
            let receipt = format!("{}#{}", message.id, message.receives);
            message.receipt = Some(receipt.clone());
            state
                .receipts
                .insert(receipt.clone(), (queue_url.to_owned(), key));
            records.push(record(&message, receipt));
            queue.insert(key, message);
        }
        records
    }

    /// Deletes the message last received with `receipt_handle` (a stale handle does
    /// nothing, as in SQS once the message was received again).
    pub fn delete(&self, receipt_handle: &str) {
        let mut state = lock(&self.state);
        if let Some((url, key)) = state.receipts.remove(receipt_handle)
            && let Some(queue) = state.queues.get_mut(&url)
        {
            queue.remove(&key);
        }
    }
}

fn record(message: &Stored, receipt: String) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(message.id.clone());
    record.receipt_handle = Some(receipt);
    record.body = Some(message.body.clone());
    record.attributes.insert(
        "ApproximateReceiveCount".to_owned(),
        message.receives.to_string(),
    );
    for (name, value) in &message.attributes {
        let mut attribute = SqsMessageAttribute::default();
        attribute.string_value = Some(value.clone());
        attribute.data_type = Some("String".to_owned());
        record.message_attributes.insert(name.clone(), attribute);
    }
    record
}

impl Queue for SimQueue {
    async fn send(&self, queue_url: &str, message: &QueueMessage) -> Result<(), QueueError> {
        self.send_delayed(queue_url, message, Duration::ZERO).await
    }

    async fn send_delayed(
        &self,
        queue_url: &str,
        message: &QueueMessage,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let delay = u64::try_from(delay.min(MAX_DELAY).as_millis()).unwrap_or(0);
        let visible_at = self.clock.epoch_millis() + delay;
        let attributes = message
            .attributes()
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        let mut state = lock(&self.state);
        state.next += 1;
        let stored = Stored {
            id: format!("sim-{:010}", state.next),
            body: message.body().to_owned(),
            attributes,
            receives: 0,
            receipt: None,
        };
        let key = (visible_at, state.next);
        if self.redrive.values().any(|dlq| dlq == queue_url) {
            state
                .dead
                .entry(queue_url.to_owned())
                .or_default()
                .push(DeadLetter {
                    body: stored.body,
                    attributes: stored.attributes,
                    redriven: false,
                });
        } else {
            state
                .queues
                .entry(queue_url.to_owned())
                .or_default()
                .insert(key, stored);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn given_the_virtual_queue_then_it_delays_hides_deletes_and_redrives() {
        let clock = Clock::manual(std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let sqs = SimQueue::new(clock.clone(), [("q".to_owned(), "dlq".to_owned())]);
        let message = QueueMessage::resent(r#"{"v":1}"#, vec![("event", "call.ended".into())]);
        sqs.send_delayed("q", &message, Duration::from_secs(3600))
            .await
            .expect("sim");
        // A delay is cut to SQS's 15 minutes, on the virtual clock.
        assert!(sqs.receive("q", 10, Duration::from_secs(60)).is_empty());
        clock.advance(Duration::from_secs(900));
        let first = sqs.receive("q", 10, Duration::from_secs(60));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].attributes["ApproximateReceiveCount"], "1");
        assert!(sqs.receive("q", 10, Duration::from_secs(60)).is_empty());
        for _ in 1..MAX_RECEIVE_COUNT {
            clock.advance(Duration::from_secs(61));
            assert_eq!(sqs.receive("q", 10, Duration::from_secs(60)).len(), 1);
        }
        clock.advance(Duration::from_secs(61));
        assert!(sqs.receive("q", 10, Duration::from_secs(60)).is_empty());
        let dead = sqs.dead_letters("dlq");
        assert_eq!((dead.len(), dead[0].redriven), (1, true));
        assert_eq!(dead[0].body, message.body());
        sqs.send("q", &message).await.expect("sim");
        let again = sqs.receive("q", 10, Duration::from_secs(60));
        sqs.delete(again[0].receipt_handle.as_deref().expect("receipt"));
        assert_eq!(sqs.depth("q"), 0);
    }
}
