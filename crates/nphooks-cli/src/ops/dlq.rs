//! Dead letters on SQS (or moto): list them, find an integration's queue and DLQ, and
//! move letters back (`nphooks dlq list|redrive` and the dashboard).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use nphooks_core::config::Settings;
use nphooks_core::envelope::QueueMessage;
use nphooks_core::queue::{Queue, SqsQueue};
use nphooks_core::routing::Integration;

use crate::queues::{QueueSource, SqsSource, aws_error};
use crate::serve::{dlq_name, queue_name, queue_url};

/// An integration's queue and its DLQ, by URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePair {
    pub queue: String,
    pub dlq: String,
}

/// An integration's queue (`<X>_QUEUE_URL`, as `serve` reads it, else the queue
/// `init-local` names) and its DLQ (the target of the queue's redrive policy, else the
/// DLQ `init-local` names): a deployed stack's generated names are found this way.
pub async fn resolve(
    sqs: &aws_sdk_sqs::Client,
    settings: &Settings,
    integration: Integration,
) -> anyhow::Result<QueuePair> {
    let queue = match settings.optional(integration.queue_url_var()) {
        Some(url) => url.to_owned(),
        None => queue_url(sqs, &queue_name(integration)).await?,
    };
    let policy = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(aws_error)
        .with_context(|| format!("could not read the redrive policy of {queue}"))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy).cloned());
    let target = policy
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_owned))
        .and_then(|arn| arn.rsplit(':').next().map(str::to_owned));
    let dlq = queue_url(sqs, &target.unwrap_or_else(|| dlq_name(integration))).await?;
    Ok(QueuePair { queue, dlq })
}

/// A dead letter: its id, why it failed, which delivery it was, and when it was sent to
/// the DLQ (epoch milliseconds, when SQS says).
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub message_id: String,
    pub reason: String,
    pub delivery_key: String,
    pub sent_at_ms: Option<u64>,
}

/// Lists an integration's DLQ without consuming it.
pub async fn dlq_list(
    aws: &aws_config::SdkConfig,
    integration: Integration,
) -> anyhow::Result<Vec<DeadLetter>> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let dlq = queue_url(&sqs, &dlq_name(integration)).await?;
    list(&sqs, &dlq).await
}

/// The letters of the DLQ at `dlq`, left where they are.
pub async fn list(sqs: &aws_sdk_sqs::Client, dlq: &str) -> anyhow::Result<Vec<DeadLetter>> {
    let mut letters = Vec::new();
    // A zero visibility timeout leaves every message where it is; moto and SQS return
    // up to 10 per call, so ask until a call adds nothing new.
    loop {
        let batch = sqs
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(aws_error)?
            .messages
            .unwrap_or_default();
        let before = letters.len();
        for message in batch {
            let id = message.message_id().unwrap_or_default().to_owned();
            if letters.iter().any(|l: &DeadLetter| l.message_id == id) {
                continue;
            }
            let reason = message
                .message_attributes()
                .and_then(|a| a.get("failure_reason"))
                .and_then(|v| v.string_value())
                .unwrap_or("(redriven by SQS after too many receives)")
                .to_owned();
            let delivery_key = message
                .body()
                .and_then(|b| nphooks_core::envelope::Envelope::decode(b).ok())
                .map_or_else(
                    || "(unreadable body)".to_owned(),
                    |e| e.delivery_key.to_string(),
                );
            let sent_at_ms = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                .and_then(|t| t.parse().ok());
            letters.push(DeadLetter {
                message_id: id,
                reason,
                delivery_key,
                sent_at_ms,
            });
        }
        if letters.len() == before {
            return Ok(letters);
        }
    }
}

/// Which letters a redrive moves.
#[derive(Debug, Clone, Copy)]
pub enum Letters<'a> {
    All,
    /// These message ids; the others stay in the DLQ, visible.
    Only(&'a [String]),
}

/// Moves every message of an integration's DLQ back to its queue (body intact).
pub async fn dlq_redrive(
    aws: &aws_config::SdkConfig,
    integration: Integration,
) -> anyhow::Result<usize> {
    redrive(aws, integration, Letters::All).await
}

/// Moves the `letters` of an integration's DLQ back to its queue on SQS (or moto).
pub async fn redrive(
    aws: &aws_config::SdkConfig,
    integration: Integration,
    letters: Letters<'_>,
) -> anyhow::Result<usize> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let pair = QueuePair {
        queue: queue_url(&sqs, &queue_name(integration)).await?,
        dlq: queue_url(&sqs, &dlq_name(integration)).await?,
    };
    redrive_at(aws, &pair, letters).await
}

/// Moves `letters` of `pair`'s DLQ back to its queue on SQS (or moto).
pub async fn redrive_at(
    aws: &aws_config::SdkConfig,
    pair: &QueuePair,
    letters: Letters<'_>,
) -> anyhow::Result<usize> {
    let source = SqsSource {
        client: aws_sdk_sqs::Client::new(aws),
    };
    let sender = SqsQueue::connect(aws);
    redrive_with(&source, &sender, &pair.dlq, &pair.queue, letters).await
}

/// Moves `letters` of the DLQ `dlq` back to `queue` (body intact): the one code path of
/// `nphooks dlq redrive` and the dashboard's redrive, on SQS or in memory.
pub async fn redrive_with<S: QueueSource, Q: Queue>(
    source: &S,
    sender: &Q,
    dlq: &str,
    queue: &str,
    letters: Letters<'_>,
) -> anyhow::Result<usize> {
    // All: each letter hidden while it moves (a concurrent redrive does not move it
    // twice); a selection: none hidden, so the letters not chosen stay visible.
    let hidden = match letters {
        Letters::All => Duration::from_secs(30),
        Letters::Only(_) => Duration::ZERO,
    };
    let mut moved = 0;
    let mut seen = BTreeSet::new();
    loop {
        let batch = source.receive(dlq, 10, hidden).await?;
        let mut new = 0;
        for message in batch {
            let id = message.message_id.clone().unwrap_or_default();
            new += usize::from(seen.insert(id.clone()));
            if let Letters::Only(chosen) = letters
                && !chosen.contains(&id)
            {
                continue;
            }
            let body = message.body.as_deref().unwrap_or_default();
            sender
                .send(queue, &QueueMessage::resent(body, Vec::new()))
                .await
                .with_context(|| format!("could not send a letter back to {queue}"))?;
            source
                .delete(dlq, message.receipt_handle.as_deref().unwrap_or_default())
                .await?;
            moved += 1;
        }
        let done = match letters {
            Letters::All => new == 0,
            Letters::Only(chosen) => new == 0 || moved == chosen.len(),
        };
        if done {
            return Ok(moved);
        }
    }
}
