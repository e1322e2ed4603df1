//! Each processor of the local runner fed from its queue, as the Lambda event source
//! feeds it: batches received, handled, deleted when final, progress reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsMessage;
use std::collections::BTreeMap;

use nphooks_core::claims::EffectClaims;
use nphooks_core::clock::Clock;
use nphooks_core::config::ReceiverConfig;
use nphooks_core::envelope::Envelope;
use nphooks_core::queue::Queue;
use nphooks_core::rate_limit::MemoryRateLimiter;
use nphooks_core::routing::Integration;
use nphooks_processor::retry::RetryPolicy;
use nphooks_processor::{
    Delivered, ProcessorConfig, ProcessorDeps, RecordOutcome, Sink, process_records,
};

use crate::progress::{Tracker, line};
use crate::queues::QueueSource;
use crate::serve::ServeOptions;

/// A processor of the local runner: shared claims and queues, one limiter per process.
pub(crate) type LocalProcessor<C, Q, K> = ProcessorDeps<Arc<C>, Arc<Q>, K, Arc<MemoryRateLimiter>>;

/// What an event source tells about its work: `serve` prints it and tracks each
/// delivery, `bench` only counts.
pub(crate) trait Report: Send + Sync + 'static {
    /// A receive or delete failed.
    fn error(&self, integration: Integration, error: &anyhow::Error);
    /// One record was handled.
    fn outcome(
        &self,
        integration: Integration,
        record: &SqsMessage,
        outcome: &RecordOutcome,
        elapsed: Duration,
    );
}

/// `serve`: one line per record, and each finished integration noted on its delivery.
impl Report for Tracker {
    fn error(&self, integration: Integration, error: &anyhow::Error) {
        line(format!("  {integration}: {error:#}"));
    }

    fn outcome(
        &self,
        integration: Integration,
        record: &SqsMessage,
        outcome: &RecordOutcome,
        elapsed: Duration,
    ) {
        let key = record
            .body
            .as_deref()
            .and_then(|b| Envelope::decode(b).ok())
            .map(|e| e.delivery_key.to_string())
            .unwrap_or_else(|| "(unreadable message)".into());
        let (ok, detail) = match outcome {
            RecordOutcome::Done(Delivered::Sent(what)) => (true, what.clone()),
            RecordOutcome::Done(Delivered::Skipped(why)) => (true, format!("skipped: {why}")),
            RecordOutcome::AlreadyDone => (true, "already done".to_owned()),
            RecordOutcome::DeadLettered(reason) => (false, format!("dead-lettered: {reason}")),
            RecordOutcome::Deferred { why, until } => (
                false,
                format!("{} until {}", why.as_str(), nphooks_core::rfc3339(*until)),
            ),
            RecordOutcome::Retry(reason) => (false, format!("will retry: {reason}")),
        };
        line(format!(
            "  {integration} {} {detail} ({} ms)",
            if ok { "✓" } else { "✗" },
            elapsed.as_millis()
        ));
        if outcome.is_finished() {
            self.finish(&key, integration, ok, detail);
        }
    }
}

/// Feeds one processor from its queue, as the Lambda event source does.
pub(crate) async fn event_source<C, Q, K, Src, R>(
    deps: Arc<LocalProcessor<C, Q, K>>,
    source: Arc<Src>,
    report: Arc<R>,
    options: ServeOptions,
) where
    C: EffectClaims,
    Q: Queue,
    K: Sink,
    Src: QueueSource,
    R: Report,
{
    let integration = deps.config.integration;
    let url = deps.config.source_queue_url.clone();
    let mut reported_error = false;
    loop {
        let records = match source
            .receive(&url, options.batch_size, options.visibility)
            .await
        {
            Ok(records) => {
                reported_error = false;
                records
            }
            Err(error) => {
                if !reported_error {
                    report.error(integration, &error);
                    reported_error = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if records.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let started = Instant::now();
        let outcomes = process_records(
            &deps,
            &records,
            deps.clock.now() + options.invocation_timeout,
        )
        .await;
        let elapsed = started.elapsed();
        for (record, outcome) in records.iter().zip(outcomes) {
            report.outcome(integration, record, &outcome, elapsed);
            if outcome.is_final()
                && let Some(receipt) = record.receipt_handle.as_deref()
                && let Err(error) = source.delete(&url, receipt).await
            {
                report.error(integration, &error);
            }
        }
    }
}

/// What every processor of a local pipeline shares.
pub(crate) struct Pipeline<'a, C, Q, Src> {
    pub receiver_config: &'a ReceiverConfig,
    pub claims: Arc<C>,
    pub queue: Arc<Q>,
    pub source: Arc<Src>,
    pub dlqs: &'a BTreeMap<Integration, String>,
    pub allow_http: bool,
    pub retry: RetryPolicy,
    pub options: &'a ServeOptions,
}

impl<C, Q, Src> Pipeline<'_, C, Q, Src>
where
    C: EffectClaims + 'static,
    Q: Queue + 'static,
    Src: QueueSource + 'static,
{
    /// One event source per (integration, sink), [`ServeOptions::pollers`] of them each,
    /// all on one rate limiter (one process holds every destination's limit).
    pub(crate) fn spawn_processors<K: Sink + 'static, R: Report>(
        &self,
        sinks: Vec<(Integration, K)>,
        report: Arc<R>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let limiter = Arc::new(MemoryRateLimiter::new());
        let mut tasks = Vec::new();
        for (integration, sink) in sinks {
            let Some(source_queue_url) = self.receiver_config.queue_urls.get(&integration) else {
                continue;
            };
            let deps = Arc::new(ProcessorDeps {
                config: ProcessorConfig {
                    allow_http: self.allow_http,
                    retry: self.retry,
                    replay_window: self.receiver_config.replay_window,
                    ..ProcessorConfig::local(
                        integration,
                        &self.receiver_config.idempotency_table,
                        source_queue_url,
                        &self.dlqs[&integration],
                    )
                },
                claims: self.claims.clone(),
                queue: self.queue.clone(),
                sink,
                limiter: limiter.clone(),
                clock: Clock::system(),
            });
            for _ in 0..self.options.pollers.max(1) {
                tasks.push(tokio::spawn(event_source(
                    deps.clone(),
                    self.source.clone(),
                    report.clone(),
                    self.options.clone(),
                )));
            }
        }
        tasks
    }
}
