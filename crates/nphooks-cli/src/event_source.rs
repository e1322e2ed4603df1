//! Each processor of the local runner fed from its queue, as the Lambda event source
//! feeds it: batches received, handled, deleted when final, progress reported.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nphooks_core::claims::EffectClaims;
use nphooks_core::envelope::Envelope;
use nphooks_core::queue::Queue;
use nphooks_core::rate_limit::MemoryRateLimiter;
use nphooks_processor::{Delivered, ProcessorDeps, RecordOutcome, process_records};

use crate::progress::{Tracker, line};
use crate::queues::QueueSource;
use crate::serve::ServeOptions;
use crate::sinks::AnySink;

/// A processor of the local runner: shared claims and queues, one limiter per process.
pub(crate) type LocalProcessor<C, Q> =
    ProcessorDeps<Arc<C>, Arc<Q>, AnySink, Arc<MemoryRateLimiter>>;

/// Feeds one processor from its queue, as the Lambda event source does.
pub(crate) async fn event_source<C, Q, Src>(
    deps: Arc<LocalProcessor<C, Q>>,
    source: Arc<Src>,
    tracker: Arc<Tracker>,
    options: ServeOptions,
) where
    C: EffectClaims,
    Q: Queue,
    Src: QueueSource,
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
                    line(format!("  {integration}: {error:#}"));
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
            SystemTime::now() + options.invocation_timeout,
        )
        .await;
        let elapsed = started.elapsed().as_millis();
        for (record, outcome) in records.iter().zip(outcomes) {
            let key = record
                .body
                .as_deref()
                .and_then(|b| Envelope::decode(b).ok())
                .map(|e| e.delivery_key.to_string())
                .unwrap_or_else(|| "(unreadable message)".into());
            let (ok, detail) = match &outcome {
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
                "  {integration} {} {detail} ({elapsed} ms)",
                if ok { "✓" } else { "✗" }
            ));
            if outcome.is_final()
                && let Some(receipt) = record.receipt_handle.as_deref()
                && let Err(error) = source.delete(&url, receipt).await
            {
                line(format!("  {integration}: {error:#}"));
            }
            if outcome.is_finished() {
                tracker.finish(&key, integration, ok, detail);
            }
        }
    }
}
