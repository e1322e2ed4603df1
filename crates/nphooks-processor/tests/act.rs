//! The processor's per-record state machine on the in-memory adapters (claims, queue,
//! limiter) and a scripted sink: no moto, no network. Also each batch's health metrics.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use nphooks_core::claims::{Claim, ClaimKey, ClaimState, EffectClaim, EffectClaims, MemoryClaims};
use nphooks_core::clock::Clock;
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::envelope::Envelope;
use nphooks_core::metrics::Capture;
use nphooks_core::queue::MemoryQueue;
use nphooks_core::rate_limit::MemoryRateLimiter;
use nphooks_core::routing::Integration;
use nphooks_core::window::ReplayWindow;
use nphooks_processor::metrics::{COUNTS, EFFECT_LATENCY, INTEGRATION_DIMENSION};
use nphooks_processor::retry::ATTEMPTS_ATTR;
use nphooks_processor::{
    Deferral, Delivered, FailureReason, ProcessorConfig, ProcessorDeps, RecordOutcome, Sink,
    SinkError, process_batch, process_records,
};

const QUEUE: &str = "memory://crm";
const DLQ: &str = "memory://crm-dlq";
const KEY: &str = "call.ended#call_act";

/// A sink that answers from a script and counts its calls.
#[derive(Default)]
struct ScriptedSink {
    answers: Mutex<VecDeque<Result<Delivered, SinkError>>>,
    calls: AtomicUsize,
}

impl Sink for ScriptedSink {
    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }

    async fn deliver(&self, _envelope: &Envelope) -> Result<Delivered, SinkError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let next = self.answers.lock().expect("not poisoned").pop_front();
        next.unwrap_or_else(|| Ok(Delivered::Sent("lead created".into())))
    }
}

type Deps = ProcessorDeps<MemoryClaims, MemoryQueue, ScriptedSink, MemoryRateLimiter>;

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// Crm processor deps whose sink gives `answers`, in order, then succeeds.
fn deps(answers: Vec<Result<Delivered, SinkError>>) -> Deps {
    let sink = ScriptedSink {
        answers: Mutex::new(answers.into()),
        ..ScriptedSink::default()
    };
    ProcessorDeps {
        config: ProcessorConfig::local(Integration::Crm, "memory", QUEUE, DLQ),
        claims: MemoryClaims::new(),
        queue: MemoryQueue::new(),
        sink,
        limiter: MemoryRateLimiter::new(),
        clock: Clock::manual(start()),
    }
}

fn claim_key() -> ClaimKey {
    ClaimKey::new(Integration::Crm, &DeliveryKey::from_stored(KEY.into()))
}

/// Another run's claim on the same effect, taken at `start()`.
async fn claimed_by_another_run(deps: &Deps, lease: Duration) -> EffectClaim {
    let other = EffectClaim::new(
        Integration::Crm,
        &DeliveryKey::from_stored(KEY.into()),
        "other",
    );
    let now = nphooks_core::epoch_seconds(start());
    let lease_until = now + lease.as_secs();
    let claimed = deps
        .claims
        .claim(&other, lease_until, now, ReplayWindow::DEFAULT);
    assert_eq!(claimed.await.expect("memory"), Claim::Claimed);
    other
}

/// An SQS record of the demo envelope, received by the receiver at `received_at`.
fn record(received_at: &str) -> SqsMessage {
    let webhook =
        r#"{"event":"call.ended","data":{"call_id":"call_act","call_type":"demo_request"}}"#;
    let body = format!(
        r#"{{"v":1,"delivery_key":"{KEY}","event":"call.ended","received_at":"{received_at}","webhook":{webhook}}}"#
    );
    serde_json::from_value(serde_json::json!({
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {}
    }))
    .expect("a valid SQS record")
}

/// Runs one record of the demo envelope through the processor.
async fn process(deps: &Deps) -> RecordOutcome {
    let record = record(&nphooks_core::rfc3339(start()));
    let deadline = deps.clock.now() + Duration::from_secs(60);
    let mut outcomes = process_records(deps, &[record], deadline).await;
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0)
}

fn calls(deps: &Deps) -> usize {
    deps.sink.calls.load(Ordering::SeqCst)
}

#[tokio::test]
async fn given_a_new_delivery_when_processed_then_it_is_claimed_sent_and_completed() {
    let deps = deps(vec![]);
    let outcome = process(&deps).await;
    assert_eq!(
        outcome,
        RecordOutcome::Done(Delivered::Sent("lead created".into()))
    );
    assert_eq!(calls(&deps), 1);
    assert_eq!(deps.claims.state(&claim_key()), Some(ClaimState::Completed));
    assert_eq!(deps.queue.total(), 0, "nothing re-sent or dead-lettered");
}

#[tokio::test]
async fn given_a_deadline_lambda_never_sends_then_the_record_is_processed_on_a_default_budget() {
    // GIVEN the deadline `cargo lambda watch` sends (600000: ten minutes after 1970), and
    // one just passed
    let deps = deps(vec![]);
    let emulated = UNIX_EPOCH + Duration::from_millis(600_000);
    // WHEN a record is processed
    let outcome = process_records(&deps, &[record(&nphooks_core::rfc3339(start()))], emulated)
        .await
        .remove(0);
    // THEN it is acted on (a real deadline just passed still stops it)
    assert_eq!(
        outcome,
        RecordOutcome::Done(Delivered::Sent("lead created".into()))
    );
    let passed = deps.clock.now() - Duration::from_secs(1);
    let late = process_records(&deps, &[record(&nphooks_core::rfc3339(start()))], passed)
        .await
        .remove(0);
    assert!(
        matches!(
            late,
            RecordOutcome::Deferred {
                why: Deferral::NotStarted,
                ..
            }
        ),
        "{late:?}"
    );
    assert_eq!(calls(&deps), 1);
}

#[tokio::test]
async fn given_a_completed_effect_when_its_message_comes_again_then_nothing_is_sent() {
    let deps = deps(vec![]);
    let other = claimed_by_another_run(&deps, Duration::from_secs(60)).await;
    deps.claims.complete(&other, 0).await.expect("memory");
    let outcome = process(&deps).await;
    assert_eq!(outcome, RecordOutcome::AlreadyDone);
    assert_eq!((calls(&deps), deps.queue.total()), (0, 0));
}

#[tokio::test]
async fn given_another_run_holds_the_claim_then_the_message_waits_without_acting() {
    let deps = deps(vec![]);
    claimed_by_another_run(&deps, Duration::from_secs(600)).await;
    let outcome = process(&deps).await;
    let RecordOutcome::Deferred { why, until } = outcome else {
        panic!("expected a wait, got {outcome:?}");
    };
    assert_eq!(why, Deferral::ClaimBusy);
    assert!(until > start(), "{until:?}");
    assert_eq!(calls(&deps), 0);
    assert_eq!(
        deps.queue.messages(QUEUE).len(),
        1,
        "re-sent to its own queue"
    );
    assert_eq!(
        deps.claims.state(&claim_key()),
        Some(ClaimState::InProgress)
    );
}

#[tokio::test]
async fn given_a_transient_failure_then_the_claim_is_retrying_and_the_message_backs_off() {
    let deps = deps(vec![Err(SinkError::transient(FailureReason::ServerError))]);
    let outcome = process(&deps).await;
    let RecordOutcome::Deferred { why, until } = outcome else {
        panic!("expected a backoff, got {outcome:?}");
    };
    assert_eq!(why, Deferral::Backoff(1));
    assert!(until > start(), "{until:?}");
    // THEN the claim is given up, saying when and why the message comes back
    assert_eq!(deps.claims.state(&claim_key()), Some(ClaimState::Retrying));
    let retry = deps.claims.pending_retry(&claim_key()).expect("retrying");
    let due = until
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert_eq!((retry.attempts, retry.next_attempt_at), (1, Some(due)));
    assert_eq!(retry.reason, "server_error");
    let resent = deps.queue.messages(QUEUE);
    assert_eq!(resent.len(), 1);
    let attempts = resent[0]
        .attributes()
        .iter()
        .find(|(n, _)| *n == ATTEMPTS_ATTR);
    assert_eq!(attempts.map(|(_, v)| v.as_str()), Some("1"));
    assert!(deps.queue.messages(DLQ).is_empty());
}

#[tokio::test]
async fn given_two_failed_attempts_when_the_third_succeeds_then_its_claim_says_3() {
    let deps = deps(vec![]);
    // GIVEN a message re-sent after two failed attempts
    let mut record = record(&nphooks_core::rfc3339(start()));
    let carried = [(ATTEMPTS_ATTR, "2")].map(|(name, value)| {
        let attribute = serde_json::json!({"stringValue": value, "dataType": "Number"});
        (
            name.to_owned(),
            serde_json::from_value(attribute).expect("an attribute"),
        )
    });
    record.message_attributes = carried.into_iter().collect();
    // WHEN it is processed
    let deadline = deps.clock.now() + Duration::from_secs(60);
    let outcome = process_records(&deps, &[record], deadline).await.remove(0);
    // THEN the claim records the third attempt
    assert!(matches!(outcome, RecordOutcome::Done(_)), "{outcome:?}");
    assert_eq!(deps.claims.attempt(&claim_key()), Some(3));
}

#[tokio::test]
async fn given_a_429_with_retry_after_then_no_attempt_is_spent_and_the_claim_says_when() {
    let wait = Some(Duration::from_secs(7));
    let answer = SinkError::transient(FailureReason::RateLimited).with_retry_after(wait);
    let deps = deps(vec![Err(answer)]);
    // (received just now: a message older than the replay window is dead-lettered instead)
    let record = record(&nphooks_core::rfc3339(start()));
    let deadline = deps.clock.now() + Duration::from_secs(60);
    let outcome = process_records(&deps, &[record], deadline).await.remove(0);
    let RecordOutcome::Deferred { why, until } = outcome else {
        panic!("expected a wait, got {outcome:?}");
    };
    assert_eq!(
        (why, until),
        (Deferral::RateLimited, start() + Duration::from_secs(7))
    );
    // THEN the claim waits for the destination's time, with no failed attempt counted
    let retry = deps.claims.pending_retry(&claim_key()).expect("retrying");
    let due = nphooks_core::epoch_seconds(until);
    assert_eq!((retry.attempts, retry.next_attempt_at), (0, Some(due)));
    assert_eq!(retry.reason, "rate_limited");
}

#[tokio::test]
async fn given_the_retry_budget_spent_when_it_fails_again_then_the_claim_fails() {
    let mut deps = deps(vec![Err(SinkError::transient(FailureReason::ServerError))]);
    deps.config.retry.horizon = Duration::ZERO;
    let outcome = process(&deps).await;
    assert!(
        matches!(outcome, RecordOutcome::DeadLettered(_)),
        "{outcome:?}"
    );
    // THEN the claim says failed (not retrying): nothing will come back on its own
    assert_eq!(deps.claims.state(&claim_key()), Some(ClaimState::Failed));
    assert_eq!(deps.queue.messages(DLQ).len(), 1);
}

#[tokio::test]
async fn given_a_permanent_failure_then_the_claim_fails_and_the_message_is_dead_lettered() {
    let deps = deps(vec![Err(SinkError::permanent(
        FailureReason::InvalidPayload,
    ))]);
    let outcome = process(&deps).await;
    let RecordOutcome::DeadLettered(reason) = outcome else {
        panic!("expected a dead letter, got {outcome:?}");
    };
    assert_eq!(deps.claims.state(&claim_key()), Some(ClaimState::Failed));
    let dead = deps.queue.messages(DLQ);
    assert_eq!(dead.len(), 1);
    let envelope = Envelope::decode(dead[0].body()).expect("body intact");
    assert_eq!(envelope.delivery_key.as_str(), KEY);
    let stored = dead[0]
        .attributes()
        .iter()
        .find(|(n, _)| *n == "failure_reason");
    assert_eq!(stored.map(|(_, v)| v.as_str()), Some(reason.as_str()));
    assert!(deps.queue.messages(QUEUE).is_empty(), "not retried");
}

/// Runs one record received at `start()`, with the clock at `start() + after`, as the
/// Lambda runs a batch; returns the batch's EMF lines.
async fn batch_metrics(deps: &Deps, after: Duration) -> Vec<serde_json::Value> {
    deps.clock.advance(after);
    let mut context = Context::default();
    context.deadline = nphooks_core::clock::epoch_millis(deps.clock.now()) + 60_000;
    let mut event = SqsEvent::default();
    event.records = vec![record(&nphooks_core::rfc3339(start()))];
    let capture = Capture::start();
    process_batch(deps, LambdaEvent::new(event, context))
        .await
        .expect("a batch response");
    capture.lines()
}

/// The counts (Delivered, Retried, DeadLettered, AlreadyDone) of a crm batch's line; a
/// count left out is 0.
fn counts(line: &serde_json::Value) -> [u64; 4] {
    assert_eq!(line[INTEGRATION_DIMENSION], "crm");
    COUNTS.map(|name| line.get(name).map_or(0, |n| n.as_u64().expect("a count")))
}

#[tokio::test]
async fn given_a_delivered_record_then_its_batch_counts_it_with_the_latency_since_receipt() {
    let deps = deps(vec![]);
    let lines = batch_metrics(&deps, Duration::from_millis(2345)).await;
    assert_eq!(lines.len(), 1, "one line per batch");
    assert_eq!(counts(&lines[0]), [1, 0, 0, 0]);
    assert_eq!(lines[0][EFFECT_LATENCY], 2345);
}

#[tokio::test]
async fn given_a_retried_and_a_dead_lettered_record_then_each_batch_counts_it_without_latency() {
    let transient = deps(vec![Err(SinkError::transient(FailureReason::ServerError))]);
    let permanent = deps(vec![Err(SinkError::permanent(
        FailureReason::InvalidPayload,
    ))]);
    let retried = batch_metrics(&transient, Duration::ZERO).await;
    let dead = batch_metrics(&permanent, Duration::ZERO).await;
    assert_eq!(counts(&retried[0]), [0, 1, 0, 0]);
    assert_eq!(counts(&dead[0]), [0, 0, 1, 0]);
    assert!(retried[0].get(EFFECT_LATENCY).is_none() && dead[0].get(EFFECT_LATENCY).is_none());
}
