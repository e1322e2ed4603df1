//! The per-record state machine shared by every processor:
//!
//! decode → (not yet due? defer) → rate-limit slot (later? defer) → claim (busy? defer)
//! → deliver → complete | release and retry later | dead-letter.
//!
//! Every outcome but a failed re-send acknowledges the record: retries are new messages
//! on the processor's own queue (see [`crate::retry`]), so SQS receive counts measure only
//! crashes and the retry budget is measured in time.

use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use lambda_runtime::LambdaEvent;
use nphooks_core::claims::{Claim, EffectClaim, EffectClaims};
use nphooks_core::clock::{Clock, parse_rfc3339};
use nphooks_core::envelope::Envelope;
use nphooks_core::epoch_seconds;
use nphooks_core::queue::Queue;
use nphooks_core::rate_limit::{RateLimit, RateLimiter};
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::ProcessorConfig;
use crate::failure::{FailureReason, SinkError};
use crate::metrics::{Tally, Trace, emit_batch};
use crate::retry::RetryState;
use crate::settle::{Deferral, Settle, settle_claim};

/// Work stops this long before the Lambda's deadline, leaving time to release claims
/// and answer with what was not finished.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);
/// A record is not started with less time than this left.
pub const MIN_WORK_TIME: Duration = Duration::from_millis(500);
/// A claim's lease outlives the Lambda's deadline by this much.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// How long a message waits when another run holds its claim.
pub const CLAIM_BUSY_DELAY: Duration = Duration::from_secs(30);
/// The longest a Lambda invocation runs; a deadline further ahead is read as this.
pub const MAX_INVOCATION: Duration = Duration::from_secs(900);
/// The time an invocation gets when its runtime gave no usable deadline: one more than a
/// day in the past, which Lambda never sends (`cargo lambda watch` sends `600000`, ten
/// minutes after 1970).
pub const UNKNOWN_DEADLINE_BUDGET: Duration = Duration::from_secs(30);

/// What a sink did, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The effect happened.
    Sent(String),
    /// Nothing to do for this message (e.g. no email address); the delivery is complete.
    Skipped(String),
}

/// One integration's effect: a CRM lead, an email, a Slack post, a notification.
pub trait Sink: Send + Sync {
    /// The longest one delivery may take.
    fn timeout(&self) -> Duration;

    /// The destination's published rate limit, held across every concurrent Lambda
    /// (`NPHOOKS_RATE_LIMIT` overrides it). `None`: no limit of ours.
    fn rate_limit(&self) -> Option<RateLimit> {
        None
    }

    /// How many requests one delivery makes against that limit, at most.
    fn requests_per_delivery(&self) -> u32 {
        1
    }

    /// `Some(at)` when the sink may not act before `at` (outside its hours): the message
    /// waits until then, deferred, spending no attempt and no rate-limit slot.
    fn closed_until(&self, _now: SystemTime) -> Option<SystemTime> {
        None
    }

    /// Acts on one validated message.
    fn deliver(
        &self,
        envelope: &Envelope,
    ) -> impl Future<Output = Result<Delivered, SinkError>> + Send;
}

/// What a processor needs: config, the clock, and one adapter per port.
#[derive(Debug)]
pub struct ProcessorDeps<C, Q, K, L> {
    pub config: ProcessorConfig,
    pub claims: C,
    pub queue: Q,
    pub sink: K,
    pub limiter: L,
    pub clock: Clock,
}

/// How one record ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The sink acted (or had nothing to do).
    Done(Delivered),
    /// An earlier delivery already completed the effect.
    AlreadyDone,
    /// Re-sent to its own queue, to be tried again from `until`; acknowledged.
    Deferred { why: Deferral, until: SystemTime },
    /// Permanent failure or spent budget: sent to the DLQ and acknowledged.
    DeadLettered(String),
    /// Left on the queue (a batch item failure): the re-send itself failed.
    Retry(String),
}

impl RecordOutcome {
    /// Whether the record is acknowledged (deleted from its queue): all but `Retry`.
    pub fn is_final(&self) -> bool {
        !matches!(self, RecordOutcome::Retry(_))
    }

    /// Whether the integration's work on this delivery is over (done or dead-lettered).
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            RecordOutcome::Done(_) | RecordOutcome::AlreadyDone | RecordOutcome::DeadLettered(_)
        )
    }
}

/// Processes each record on its own, concurrently, within the invocation's deadline, and
/// says how each ended (in the records' order).
pub async fn process_records<C, Q, K, L>(
    deps: &ProcessorDeps<C, Q, K, L>,
    records: &[SqsMessage],
    lambda_deadline: SystemTime,
) -> Vec<RecordOutcome>
where
    C: EffectClaims,
    Q: Queue,
    K: Sink,
    L: RateLimiter,
{
    let settled = settle_records(deps, records, lambda_deadline).await;
    settled.into_iter().map(|(outcome, _)| outcome).collect()
}

/// [`process_records`], with how each record counts in the batch's metrics.
async fn settle_records<C: EffectClaims, Q: Queue, K: Sink, L: RateLimiter>(
    deps: &ProcessorDeps<C, Q, K, L>,
    records: &[SqsMessage],
    lambda_deadline: SystemTime,
) -> Vec<(RecordOutcome, Tally)> {
    // The deadline is a time of the clock the Lambda runs on (the event's context); how
    // much is left is read on the same clock, then kept by the monotonic timer.
    let now = deps.clock.now();
    let left = time_left(lambda_deadline, now);
    let deadline = Instant::now() + left.saturating_sub(DEADLINE_MARGIN);
    let lease_until = epoch_seconds(now + left + LEASE_MARGIN);
    join_all(
        records
            .iter()
            .map(|record| process_record(deps, record, deadline, lease_until)),
    )
    .await
}

/// How much of the invocation is left at `now`: none once its deadline has passed, at most
/// [`MAX_INVOCATION`], and [`UNKNOWN_DEADLINE_BUDGET`] when the deadline cannot be one.
pub fn time_left(lambda_deadline: SystemTime, now: SystemTime) -> Duration {
    match lambda_deadline.duration_since(now) {
        Ok(left) => left.min(MAX_INVOCATION),
        Err(past) if past.duration() > Duration::from_secs(24 * 3600) => {
            tracing::warn!("the runtime gave no usable deadline; working to a default budget");
            UNKNOWN_DEADLINE_BUDGET
        }
        Err(_) => Duration::ZERO,
    }
}

/// Processes a batch; each record on its own. Records left on the queue are reported as
/// batch item failures; if one of them has no message id (which SQS always sets) the
/// whole batch is failed instead, since an empty identifier would fail it anyway. The
/// batch's health metrics are emitted as one line (see [`crate::metrics`]).
pub async fn process_batch<C, Q, K, L>(
    deps: &ProcessorDeps<C, Q, K, L>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error>
where
    C: EffectClaims,
    Q: Queue,
    K: Sink,
    L: RateLimiter,
{
    let records = &event.payload.records;
    let settled = settle_records(deps, records, event.context.deadline()).await;
    let tallies: Vec<Tally> = settled.iter().map(|(_, tally)| *tally).collect();
    emit_batch(deps.config.integration.as_str(), &tallies, deps.clock.now());

    let mut response = SqsBatchResponse::default();
    for (record, (outcome, _)) in records.iter().zip(settled) {
        if !outcome.is_final() {
            match record.message_id.as_deref().filter(|id| !id.is_empty()) {
                Some(id) => response.add_failure(id),
                None => {
                    return Err(
                        "a record to retry has no message id; failing the whole batch".into(),
                    );
                }
            }
        }
    }
    Ok(response)
}

async fn process_record<C, Q, K, L>(
    deps: &ProcessorDeps<C, Q, K, L>,
    record: &SqsMessage,
    deadline: Instant,
    lease_until: u64,
) -> (RecordOutcome, Tally)
where
    C: EffectClaims,
    Q: Queue,
    K: Sink,
    L: RateLimiter,
{
    let integration = deps.config.integration.as_str();
    let message_id = record.message_id.as_deref().unwrap_or_default();
    let settle = Settle::new(deps, record, RetryState::from_record(record));
    let Ok(envelope) = Envelope::decode(record.body.as_deref().unwrap_or_default()) else {
        // The parse error may quote the body: only the class is logged and kept.
        tracing::error!(integration, message_id, "unreadable message");
        let outcome = settle.dead_letter("unreadable_message").await;
        let tally = Tally::of(&outcome, Trace::default(), None);
        return (outcome, tally);
    };
    let span = tracing::info_span!(
        "message",
        integration,
        message_id,
        call_id = %envelope.webhook.data.call_id,
        delivery_key = %envelope.delivery_key,
    );
    let started = Instant::now();
    let mut trace = Trace::default();
    let outcome = act(deps, settle, &envelope, deadline, lease_until, &mut trace)
        .instrument(span.clone())
        .await;
    span.in_scope(|| log_outcome(&outcome, started.elapsed()));
    let tally = Tally::of(&outcome, trace, parse_rfc3339(&envelope.received_at));
    (outcome, tally)
}

fn log_outcome(outcome: &RecordOutcome, elapsed: Duration) {
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    match outcome {
        RecordOutcome::Done(Delivered::Sent(what)) => {
            tracing::info!(outcome = "sent", elapsed_ms, "{what}")
        }
        RecordOutcome::Done(Delivered::Skipped(why)) => {
            tracing::info!(outcome = "skipped", elapsed_ms, "{why}")
        }
        RecordOutcome::AlreadyDone => {
            tracing::info!(outcome = "duplicate", elapsed_ms, "already completed")
        }
        RecordOutcome::Deferred { why, until } => tracing::info!(
            outcome = "deferred",
            why = why.as_str(),
            attempt = why.attempt(),
            until = epoch_seconds(*until),
            elapsed_ms,
            "deferred"
        ),
        RecordOutcome::DeadLettered(reason) => {
            tracing::error!(outcome = "dead_lettered", elapsed_ms, "{reason}")
        }
        RecordOutcome::Retry(reason) => {
            tracing::warn!(outcome = "retry", elapsed_ms, "{reason}")
        }
    }
}

async fn act<C, Q, K, L>(
    deps: &ProcessorDeps<C, Q, K, L>,
    mut settle: Settle<'_, C, Q, K, L>,
    envelope: &Envelope,
    deadline: Instant,
    lease_until: u64,
    trace: &mut Trace,
) -> RecordOutcome
where
    C: EffectClaims,
    Q: Queue,
    K: Sink,
    L: RateLimiter,
{
    let now = deps.clock.now();
    if let Some(at) = settle.state.not_before.filter(|at| *at > now) {
        return settle.defer(Deferral::NotDue, at).await;
    }
    settle.state.not_before = None;
    if let Some(at) = deps.sink.closed_until(now).filter(|at| *at > now) {
        return settle.defer(Deferral::NotDue, at).await;
    }
    if deadline.saturating_duration_since(Instant::now()) < MIN_WORK_TIME {
        return settle.defer(Deferral::NotStarted, now).await;
    }
    if let Some(slot) = reserve_slot(deps, &mut settle.state, now).await {
        settle.state.rate_slot = Some(slot);
        return settle.defer(Deferral::RateLimited, slot).await;
    }

    let integration = deps.config.integration;
    let message_id = settle.message_id();
    let owner = format!("{message_id}@{}", nphooks_core::clock::epoch_millis(now));
    let claim = EffectClaim::new(integration, &envelope.delivery_key, owner)
        .at_attempt(settle.state.attempts + 1);
    match deps
        .claims
        .claim(
            &claim,
            lease_until,
            epoch_seconds(now),
            deps.config.replay_window,
        )
        .await
    {
        Ok(Claim::Claimed) => {}
        Ok(Claim::AlreadyCompleted) => return RecordOutcome::AlreadyDone,
        Ok(Claim::Busy) => {
            return settle
                .defer(Deferral::ClaimBusy, now + CLAIM_BUSY_DELAY)
                .await;
        }
        Err(error) => {
            tracing::warn!(%error, "could not claim");
            return settle.backoff("claim_failed", envelope).await;
        }
    }

    let budget = deps
        .sink
        .timeout()
        .min(deadline.saturating_duration_since(Instant::now()));
    let result = match tokio::time::timeout(budget, deps.sink.deliver(envelope)).await {
        Ok(result) => result,
        Err(_) => Err(SinkError::transient(FailureReason::Timeout)),
    };
    let now = deps.clock.now();
    match result {
        Ok(delivered) => {
            trace.effect_at = Some(now);
            if let Err(error) = deps.claims.complete(&claim, epoch_seconds(now)).await {
                // The effect happened; a redelivery may repeat it only if this record is lost.
                tracing::error!(%error, "delivered, but could not mark the claim completed");
            }
            RecordOutcome::Done(delivered)
        }
        Err(error) => {
            trace.sink_failed = true;
            let reason = error.to_string();
            // A transient 429 (or Retry-After) waits without spending an attempt; every
            // other failure spends one.
            let rate_limited = error.retryable && error.is_rate_limited();
            let attempts = settle.state.attempts + u32::from(!rate_limited);
            let outcome = if !error.retryable {
                settle.state.attempts = attempts;
                settle.dead_letter(&reason).await
            } else if rate_limited {
                let wait = error.retry_wait(now).unwrap_or(deps.config.retry.base);
                settle
                    .wait_for_rate_limit(now + wait, &error, envelope)
                    .await
            } else {
                settle.backoff(&reason, envelope).await
            };
            settle_claim(deps, &claim, &outcome, attempts, &reason, now).await;
            outcome
        }
    }
}

/// Takes a rate-limit slot for this delivery unless it already holds one that is due.
/// `Some(slot)`: the slot lies in the future; wait for it. A limiter that cannot be
/// reached does not stop the delivery: the destination's 429 still holds us back.
async fn reserve_slot<C, Q, K, L>(
    deps: &ProcessorDeps<C, Q, K, L>,
    state: &mut RetryState,
    now: SystemTime,
) -> Option<SystemTime>
where
    K: Sink,
    L: RateLimiter,
{
    if state.rate_slot.take().is_some_and(|slot| slot <= now) {
        return None;
    }
    let limit = deps
        .config
        .rate_limit
        .unwrap_or_else(|| deps.sink.rate_limit())?;
    let cost = deps.sink.requests_per_delivery();
    let destination = deps.config.integration.as_str();
    match deps.limiter.reserve(destination, limit, cost, now).await {
        Ok(slot) if slot > now => Some(slot),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(%error, "rate limiter unavailable; sending unpaced");
            None
        }
    }
}
