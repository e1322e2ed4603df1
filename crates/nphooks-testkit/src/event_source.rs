//! The Lambda event source over a moto queue, on virtual time: batches are received,
//! each due record goes to the processor, acknowledged records are deleted, and a record
//! left for SQS reappears after the queue's visibility timeout. A message re-sent with a
//! not-before time is held until the clock reaches it — SQS's delay, in virtual time — and
//! when nothing is due the clock jumps to the next due time, so a day of retries passes
//! in seconds. Processors run with `max_queue_delay = 0`, so nothing waits in real time.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use nphooks_core::claims::EffectClaims;
use nphooks_core::clock::{Clock, epoch_millis, from_epoch_millis};
use nphooks_core::queue::Queue;
use nphooks_core::rate_limit::RateLimiter;
use nphooks_processor::retry::NOT_BEFORE_ATTR;
use nphooks_processor::{ProcessorDeps, RecordOutcome, Sink, process_records};

use crate::Moto;

/// The visibility timeout a record left on the queue waits out (the template's, 120 s+).
const VISIBILITY: Duration = Duration::from_secs(180);

/// What a run of the event source saw.
#[derive(Debug, Default)]
pub struct Drained {
    /// Every record's outcome, in processing order.
    pub outcomes: Vec<RecordOutcome>,
    /// Invocations made.
    pub batches: usize,
    /// Virtual time that passed.
    pub elapsed: Duration,
}

impl Drained {
    pub fn count(&self, matches: impl Fn(&RecordOutcome) -> bool) -> usize {
        self.outcomes.iter().filter(|o| matches(o)).count()
    }
}

/// An SQS record as the event source hands it over, from a received SDK message.
pub fn record_from(message: &aws_sdk_sqs::types::Message) -> SqsMessage {
    let mut record = crate::sqs_message(
        message.message_id().unwrap_or_default(),
        message.body().unwrap_or_default(),
    );
    record.receipt_handle = message.receipt_handle.clone();
    for (name, value) in message.message_attributes().into_iter().flatten() {
        let mut attribute = aws_lambda_events::event::sqs::SqsMessageAttribute::default();
        attribute.string_value = value.string_value.clone();
        attribute.data_type = Some(value.data_type.clone());
        record.message_attributes.insert(name.clone(), attribute);
    }
    record
}

/// Feeds `deps`' queue to it in batches of `batch_size` until the queue is empty,
/// moving `clock` forward as needed. Panics after `max_batches` invocations.
pub async fn drain_on_virtual_time<C, Q, K, L>(
    moto: &Moto,
    deps: &ProcessorDeps<C, Q, K, L>,
    clock: &Clock,
    batch_size: usize,
    max_batches: usize,
) -> Drained
where
    C: EffectClaims,
    Q: Queue,
    K: Sink,
    L: RateLimiter,
{
    assert_eq!(
        deps.config.retry.max_queue_delay,
        Duration::ZERO,
        "virtual time needs re-sends visible at once"
    );
    let queue_url = deps.config.source_queue_url.clone();
    let started = clock.now();
    let mut held: BTreeMap<(u64, usize), SqsMessage> = BTreeMap::new();
    let mut sequence = 0;
    let mut drained = Drained::default();
    loop {
        for message in moto.receive_all(&queue_url, 3600).await {
            let record = record_from(&message);
            let due = record
                .message_attributes
                .get(NOT_BEFORE_ATTR)
                .and_then(|a| a.string_value.as_deref())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| clock.epoch_millis());
            sequence += 1;
            held.insert((due, sequence), record);
        }
        let Some((&(next_due, _), _)) = held.first_key_value() else {
            break;
        };
        clock.advance_to(from_epoch_millis(next_due));
        let now = clock.epoch_millis();
        let due_keys: Vec<(u64, usize)> = held
            .range(..(now + 1, 0))
            .map(|(k, _)| *k)
            .take(batch_size)
            .collect();
        let batch: Vec<SqsMessage> = due_keys.iter().filter_map(|k| held.remove(k)).collect();
        let outcomes =
            process_records(deps, &batch, deps.clock.now() + Duration::from_secs(60)).await;
        for (record, outcome) in batch.into_iter().zip(&outcomes) {
            if outcome.is_final() {
                delete(moto, &queue_url, &record).await;
            } else {
                sequence += 1;
                held.insert((epoch_millis(clock.now() + VISIBILITY), sequence), record);
            }
        }
        drained.outcomes.extend(outcomes);
        drained.batches += 1;
        assert!(
            drained.batches <= max_batches,
            "the queue did not settle within {max_batches} invocations: {:?}",
            drained.outcomes.last()
        );
    }
    drained.elapsed = clock.now().duration_since(started).unwrap_or_default();
    drained
}

async fn delete(moto: &Moto, queue_url: &str, record: &SqsMessage) {
    moto.sqs
        .delete_message()
        .queue_url(queue_url)
        .set_receipt_handle(record.receipt_handle.clone())
        .send()
        .await
        .expect("delete from moto");
}
