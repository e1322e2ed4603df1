//! Operator commands against SQS and DynamoDB (AWS, or moto through `AWS_ENDPOINT_URL`):
//! `init-local`, `dlq list|redrive`, `replay`.

mod dlq;

pub use dlq::{
    DeadLetter, Letters, QueuePair, dlq_list, dlq_redrive, list, redrive, redrive_at, redrive_with,
    resolve,
};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_dynamodb::types::TimeToLiveSpecification;
use aws_sdk_sqs::types::QueueAttributeName;
use nphooks_core::claims::{ClaimKey, DynamoClaims, EffectClaims};
use nphooks_core::clock::Clock;
use nphooks_core::config::Settings;
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::ledger::{DeliveryLedger, DynamoLedger, StoredDelivery};
use nphooks_core::queue::{Queue, SqsQueue};
use nphooks_core::rate_limit::MemoryRateLimiter;
use nphooks_core::routing::Integration;
use nphooks_core::table;
use nphooks_processor::{
    Delivered, ProcessorConfig, ProcessorDeps, RecordOutcome, process_records,
};

use crate::queues::{MAX_RECEIVE_COUNT, aws_error, record};
use crate::serve::{default_table, dlq_name, queue_name};
use crate::sinks::{AnySink, Outbox};

/// The visibility `init-local` gives queues: short, so local retries are seen quickly.
const LOCAL_VISIBILITY_SECS: u32 = 10;

fn table(settings: &Settings) -> String {
    settings
        .optional("IDEMPOTENCY_TABLE")
        .map_or_else(default_table, str::to_owned)
}

/// Creates the table and every queue with its DLQ and redrive policy; safe to run twice.
pub async fn init_local(aws: &aws_config::SdkConfig, settings: &Settings) -> anyhow::Result<()> {
    let dynamodb = aws_sdk_dynamodb::Client::new(aws);
    let table = table(settings);
    let created = table::create(&dynamodb, &table).await;
    match created {
        Ok(_) => {
            dynamodb
                .update_time_to_live()
                .table_name(&table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(table::EXPIRES_AT)
                        .enabled(true)
                        .build()?,
                )
                .send()
                .await
                .map_err(aws_error)?;
            println!("table  {table}");
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            println!("table  {table} (exists)")
        }
        Err(e) => bail!(
            "could not create table {table}: {} — is AWS_ENDPOINT_URL pointing at a running moto server?",
            aws_sdk_dynamodb::error::DisplayErrorContext(e)
        ),
    }
    let sqs = aws_sdk_sqs::Client::new(aws);
    for integration in Integration::ALL {
        let dlq = create_queue(&sqs, &dlq_name(integration), None).await?;
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(aws_error)?
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .context("the DLQ has no ARN")?;
        let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}).to_string();
        let queue = create_queue(&sqs, &queue_name(integration), Some(redrive)).await?;
        println!("queue  {queue}  (DLQ {dlq})");
    }
    Ok(())
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    redrive: Option<String>,
) -> anyhow::Result<String> {
    let mut request = sqs.create_queue().queue_name(name).attributes(
        QueueAttributeName::VisibilityTimeout,
        LOCAL_VISIBILITY_SECS.to_string(),
    );
    if let Some(redrive) = redrive {
        request = request.attributes(QueueAttributeName::RedrivePolicy, redrive);
    }
    let created = request.send().await.map_err(|e| {
        anyhow::anyhow!(
            "could not create queue {name}: {} — is AWS_ENDPOINT_URL pointing at a running moto server?",
            aws_sdk_sqs::error::DisplayErrorContext(e)
        )
    })?;
    created.queue_url.context("the queue has no URL")
}

/// Re-runs a delivery's integrations from its stored envelope. A completed effect is
/// skipped unless `force`, which forgets its claim first.
pub async fn replay(
    aws: &aws_config::SdkConfig,
    settings: &Settings,
    key: &str,
    only: Option<Integration>,
    force: bool,
) -> anyhow::Result<Vec<(Integration, RecordOutcome)>> {
    let table = table(settings);
    let ledger = DynamoLedger::connect(aws, &table);
    let key = DeliveryKey::from_stored(key.to_owned());
    let stored = ledger
        .look_up(&key)
        .await?
        .with_context(|| format!("no delivery {key} in table {table}: check the key (the receiver's answer and log show it)"))?;
    let sqs = aws_sdk_sqs::Client::new(aws);
    let mut urls = BTreeMap::new();
    for integration in Integration::ALL {
        // A stack's generated names, as `serve` and `dlq` find them.
        let pair = resolve(&sqs, settings, integration).await?;
        urls.insert(integration, (pair.queue, pair.dlq));
    }
    let target = Target {
        table: &table,
        urls: &urls,
        claims: DynamoClaims::connect(aws, &table),
        queue: SqsQueue::connect(aws),
        outbox: &Outbox::start("outbox".into()).await?,
    };
    replay_stored(&target, aws, settings, &key, &stored, only, force).await
}

/// Where a replay runs: the claims and queues (and their URLs) of a pipeline.
#[derive(Debug)]
pub struct Target<'a, C, Q> {
    pub table: &'a str,
    /// Each integration's queue and DLQ URLs.
    pub urls: &'a BTreeMap<Integration, (String, String)>,
    pub claims: C,
    pub queue: Q,
    pub outbox: &'a Arc<Outbox>,
}

/// Re-runs a stored delivery's integrations (or `only` one) through the processor: the
/// one code path of `nphooks replay` and the dashboard's replay, on AWS or in memory.
pub async fn replay_stored<C: EffectClaims + Clone, Q: Queue + Clone>(
    target: &Target<'_, C, Q>,
    aws: &aws_config::SdkConfig,
    settings: &Settings,
    key: &DeliveryKey,
    stored: &StoredDelivery,
    only: Option<Integration>,
    force: bool,
) -> anyhow::Result<Vec<(Integration, RecordOutcome)>> {
    let envelope = stored
        .envelope
        .as_deref()
        .with_context(|| format!("delivery {key} has no stored envelope (it was larger than the item limit, or recorded by an older version)"))?;
    let integrations: Vec<Integration> = match only {
        Some(integration) => vec![integration],
        None => stored
            .queues
            .iter()
            .filter_map(|q| q.parse().ok())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let allow_http = nphooks_processor::config::allow_http(settings)?;
    let mut outcomes = Vec::new();
    for integration in integrations {
        if force {
            target
                .claims
                .forget(&ClaimKey::new(integration, key))
                .await?;
        }
        let (queue, dlq) = target
            .urls
            .get(&integration)
            .with_context(|| format!("no queue URL for {integration}"))?;
        let deps = ProcessorDeps {
            config: ProcessorConfig {
                allow_http,
                replay_window: nphooks_core::window::ReplayWindow::from_settings(settings)?,
                ..ProcessorConfig::local(integration, target.table, queue, dlq)
            },
            claims: target.claims.clone(),
            queue: target.queue.clone(),
            sink: AnySink::for_integration(integration, settings, allow_http, aws, target.outbox)?,
            limiter: MemoryRateLimiter::new(),
            clock: Clock::system(),
        };
        let message = record(
            &format!("replay-{integration}"),
            "",
            envelope,
            1,
            "replay",
            &[],
        );
        let outcome = process_records(
            &deps,
            &[message],
            deps.clock.now() + Duration::from_secs(30),
        )
        .await
        .into_iter()
        .next()
        .context("no outcome")?;
        outcomes.push((integration, outcome));
    }
    Ok(outcomes)
}

/// What a replayed integration did, in a line, and whether it succeeded.
pub fn outcome_text(outcome: &RecordOutcome) -> (bool, String) {
    match outcome {
        RecordOutcome::Done(Delivered::Sent(what)) => (true, format!("✓ {what}")),
        RecordOutcome::Done(Delivered::Skipped(why)) => (true, format!("✓ skipped: {why}")),
        RecordOutcome::AlreadyDone => (
            true,
            "already completed (pass --force to run it again)".to_owned(),
        ),
        RecordOutcome::DeadLettered(reason) => (false, format!("✗ dead-lettered: {reason}")),
        RecordOutcome::Deferred { why, until } => (
            false,
            format!(
                "… {} — re-queued, due {}",
                why.as_str(),
                nphooks_core::rfc3339(*until)
            ),
        ),
        RecordOutcome::Retry(reason) => (false, format!("✗ failed: {reason}")),
    }
}
