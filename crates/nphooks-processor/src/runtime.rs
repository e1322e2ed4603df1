//! The per-record state machine shared by every processor.

use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use lambda_runtime::{LambdaEvent, service_fn};
use nphooks_core::envelope::{Envelope, QueueMessage};
use nphooks_core::epoch_seconds;
use nphooks_core::idempotency::{Claim, DynamoStore, EffectClaim, IdempotencyStore};
use nphooks_core::queue::{Queue, SqsQueue};
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::ProcessorConfig;

/// Work stops this long before the Lambda's deadline, leaving time to release claims
/// and answer with what was not finished.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);
/// A record is not started with less time than this left.
pub const MIN_WORK_TIME: Duration = Duration::from_millis(500);
/// A claim's lease outlives the Lambda's deadline by this much.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// What a sink did, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The effect happened.
    Sent(String),
    /// Nothing to do for this message (e.g. no email address); the delivery is complete.
    Skipped(String),
}

/// Why a sink failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkError {
    /// Worth retrying: timeouts, connection errors, 408, 429, 5xx.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help: other 4xx, data the integration cannot use.
    Permanent { reason: String },
}

impl SinkError {
    pub fn transient(reason: impl Into<String>) -> Self {
        SinkError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        SinkError::Permanent {
            reason: reason.into(),
        }
    }
}

/// One integration's effect: a CRM lead, an email, a Slack post, a notification.
pub trait Sink: Send + Sync {
    /// The longest one delivery may take.
    fn timeout(&self) -> Duration;

    /// Acts on one validated message.
    fn deliver(
        &self,
        envelope: &Envelope,
    ) -> impl Future<Output = Result<Delivered, SinkError>> + Send;
}

/// What a processor needs: config and one adapter per port.
#[derive(Debug)]
pub struct ProcessorDeps<S, Q, K> {
    pub config: ProcessorConfig,
    pub store: S,
    pub queue: Q,
    pub sink: K,
}

/// How one record ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The sink acted (or had nothing to do).
    Done(Delivered),
    /// An earlier delivery already completed the effect.
    AlreadyDone,
    /// Permanent failure: sent to the DLQ and acknowledged.
    DeadLettered(String),
    /// To be retried by SQS (reported as a batch item failure).
    Retry(String),
}

impl RecordOutcome {
    /// Whether the record is finished with (acknowledged): anything but a retry.
    pub fn is_final(&self) -> bool {
        !matches!(self, RecordOutcome::Retry(_))
    }
}

/// Processes each record on its own, concurrently, within the invocation's deadline, and
/// says how each ended (in the records' order).
pub async fn process_records<S: IdempotencyStore, Q: Queue, K: Sink>(
    deps: &ProcessorDeps<S, Q, K>,
    records: &[SqsMessage],
    lambda_deadline: SystemTime,
) -> Vec<RecordOutcome> {
    let deadline = work_deadline(lambda_deadline);
    let lease_until = epoch_seconds(lambda_deadline + LEASE_MARGIN);
    join_all(
        records
            .iter()
            .map(|record| process_record(deps, record, deadline, lease_until)),
    )
    .await
}

/// Processes a batch; each record on its own. Records to retry are reported as batch
/// item failures; if one of them has no message id (which SQS always sets) the whole
/// batch is failed instead, since an empty identifier would fail it anyway.
pub async fn process_batch<S: IdempotencyStore, Q: Queue, K: Sink>(
    deps: &ProcessorDeps<S, Q, K>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let records = &event.payload.records;
    let outcomes = process_records(deps, records, event.context.deadline()).await;

    let mut response = SqsBatchResponse::default();
    for (record, outcome) in records.iter().zip(outcomes) {
        if let RecordOutcome::Retry(_) = outcome {
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

/// The instant work must stop: the Lambda's deadline less the margin.
fn work_deadline(lambda_deadline: SystemTime) -> Instant {
    let left = lambda_deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    Instant::now() + left.saturating_sub(DEADLINE_MARGIN)
}

async fn process_record<S: IdempotencyStore, Q: Queue, K: Sink>(
    deps: &ProcessorDeps<S, Q, K>,
    record: &SqsMessage,
    deadline: Instant,
    lease_until: u64,
) -> RecordOutcome {
    let integration = deps.config.integration.as_str();
    let message_id = record.message_id.as_deref().unwrap_or_default();
    let envelope = match Envelope::decode(record.body.as_deref().unwrap_or_default()) {
        Ok(envelope) => envelope,
        Err(error) => {
            // Reported failed: SQS redrives it to the DLQ, body intact, after maxReceiveCount.
            tracing::error!(integration, message_id, %error, "unreadable message");
            return RecordOutcome::Retry(error.to_string());
        }
    };
    let span = tracing::info_span!(
        "message",
        integration,
        message_id,
        call_id = %envelope.webhook.data.call_id,
        delivery_key = %envelope.delivery_key,
    );
    let started = Instant::now();
    let outcome = act(deps, record, &envelope, deadline, lease_until)
        .instrument(span.clone())
        .await;
    span.in_scope(|| {
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        match &outcome {
            RecordOutcome::Done(Delivered::Sent(what)) => {
                tracing::info!(outcome = "sent", elapsed_ms, "{what}")
            }
            RecordOutcome::Done(Delivered::Skipped(why)) => {
                tracing::info!(outcome = "skipped", elapsed_ms, "{why}")
            }
            RecordOutcome::AlreadyDone => {
                tracing::info!(outcome = "duplicate", elapsed_ms, "already completed")
            }
            RecordOutcome::DeadLettered(reason) => {
                tracing::error!(outcome = "dead_lettered", elapsed_ms, "{reason}")
            }
            RecordOutcome::Retry(reason) => {
                tracing::warn!(outcome = "retry", elapsed_ms, "{reason}")
            }
        }
    });
    outcome
}

async fn act<S: IdempotencyStore, Q: Queue, K: Sink>(
    deps: &ProcessorDeps<S, Q, K>,
    record: &SqsMessage,
    envelope: &Envelope,
    deadline: Instant,
    lease_until: u64,
) -> RecordOutcome {
    let integration = deps.config.integration.as_str();
    let message_id = record.message_id.as_deref().unwrap_or_default();
    let left = deadline.saturating_duration_since(Instant::now());
    if left < MIN_WORK_TIME {
        return RecordOutcome::Retry(format!(
            "not started: only {}ms left before the Lambda deadline",
            left.as_millis()
        ));
    }

    let owner = format!(
        "{message_id}@{}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let claim = EffectClaim::new(integration, &envelope.delivery_key, owner);
    match deps
        .store
        .claim_effect(&claim, lease_until, now(), deps.config.replay_window)
        .await
    {
        Ok(Claim::Claimed) => {}
        Ok(Claim::AlreadyCompleted) => return RecordOutcome::AlreadyDone,
        Ok(Claim::Busy) => {
            return RecordOutcome::Retry("another run holds this delivery's claim".into());
        }
        Err(error) => return RecordOutcome::Retry(format!("could not claim: {error}")),
    }

    let budget = deps
        .sink
        .timeout()
        .min(deadline.saturating_duration_since(Instant::now()));
    let result = match tokio::time::timeout(budget, deps.sink.deliver(envelope)).await {
        Ok(result) => result,
        Err(_) => Err(SinkError::transient(format!(
            "{integration} did not finish within {}ms",
            budget.as_millis()
        ))),
    };

    match result {
        Ok(delivered) => {
            if let Err(error) = deps.store.complete_effect(&claim, now()).await {
                // The effect happened; a redelivery may repeat it only if this record is lost.
                tracing::error!(%error, "delivered, but could not mark the claim completed");
            }
            RecordOutcome::Done(delivered)
        }
        Err(SinkError::Transient {
            reason,
            retry_after,
        }) => {
            release(deps, &claim).await;
            if let (Some(delay), Some(receipt)) = (retry_after, record.receipt_handle.as_deref()) {
                let seconds = u32::try_from(delay.as_secs()).unwrap_or(u32::MAX).max(1);
                if let Err(error) = deps
                    .queue
                    .change_visibility(&deps.config.source_queue_url, receipt, seconds)
                    .await
                {
                    tracing::warn!(%error, "could not defer the message by Retry-After");
                }
            }
            RecordOutcome::Retry(reason)
        }
        Err(SinkError::Permanent { reason }) => {
            let body = record.body.as_deref().unwrap_or_default();
            let dead_letter = QueueMessage::dead_letter(body, integration, &reason, message_id);
            if let Err(error) = deps.queue.send(&deps.config.dlq_url, &dead_letter).await {
                release(deps, &claim).await;
                return RecordOutcome::Retry(format!("{reason}; and the DLQ send failed: {error}"));
            }
            if let Err(error) = deps.store.fail_effect(&claim, &reason, now()).await {
                tracing::error!(%error, "dead-lettered, but could not mark the claim failed");
            }
            RecordOutcome::DeadLettered(reason)
        }
    }
}

async fn release<S: IdempotencyStore, Q, K>(deps: &ProcessorDeps<S, Q, K>, claim: &EffectClaim) {
    if let Err(error) = deps.store.release_effect(claim).await {
        // The lease runs out on its own; the retry waits for it.
        tracing::warn!(%error, "could not release the claim");
    }
}

fn now() -> u64 {
    epoch_seconds(SystemTime::now())
}

/// Timeouts for the SDK calls a processor makes (claims, DLQ sends, visibility).
pub const AWS_TIMEOUTS: nphooks_core::aws::Timeouts = nphooks_core::aws::Timeouts {
    connect: Duration::from_secs(1),
    attempt: Duration::from_secs(2),
    operation: Duration::from_secs(5),
};

/// What a processor reads once at cold start: its settings (environment plus the
/// Secrets Manager secret in AWS), the shared AWS config, and its processor config.
#[derive(Debug)]
pub struct Startup {
    pub settings: nphooks_core::config::Settings,
    pub aws: aws_config::SdkConfig,
    pub config: ProcessorConfig,
}

impl Startup {
    pub async fn load(integration: nphooks_core::routing::Integration) -> crate::Result<Self> {
        let aws = nphooks_core::aws::sdk_config(AWS_TIMEOUTS).await;
        let settings = nphooks_core::aws::load_settings(&aws).await?;
        let config = ProcessorConfig::from_settings(&settings, integration)?;
        Ok(Startup {
            settings,
            aws,
            config,
        })
    }
}

/// Runs a processor Lambda with the real adapters.
pub async fn run_lambda<K: Sink>(startup: Startup, sink: K) -> Result<(), lambda_runtime::Error> {
    let Startup { aws, config, .. } = startup;
    let deps = &ProcessorDeps {
        store: DynamoStore::connect(&aws, &config.idempotency_table),
        queue: SqsQueue::connect(&aws),
        config,
        sink,
    };
    lambda_runtime::run(service_fn(move |event| process_batch(deps, event))).await
}
