//! The moto soak's SQS side, in real time: each queue redrives to its DLQ after
//! [`MAX_RECEIVE_COUNT`] receives (moto's own redrive), the event source receives batches
//! with a short visibility timeout and deletes what the processor settled, and a
//! processor's delayed re-send asks SQS for its delay scaled to wall time.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use nphooks_core::QueueError;
use nphooks_core::envelope::QueueMessage;
use nphooks_core::queue::{MAX_RECEIVE_COUNT, Queue};

use super::sqs::DeadLetter;
use crate::Moto;
use crate::event_source::record_from;

/// Makes `queue_url` redrive to `dlq_url` after [`MAX_RECEIVE_COUNT`] receives, as the
/// template's queues do.
pub async fn redrive(moto: &Moto, queue_url: &str, dlq_url: &str) {
    let arn = moto
        .sqs
        .get_queue_attributes()
        .queue_url(dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("the DLQ's attributes from moto")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("the DLQ's ARN");
    let policy = serde_json::json!({
        "deadLetterTargetArn": arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT.to_string(),
    });
    moto.sqs
        .set_queue_attributes()
        .queue_url(queue_url)
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .send()
        .await
        .expect("set the redrive policy in moto");
}

/// One batch as the event source hands it to the processor: up to `max` messages,
/// hidden for `visibility_secs` real seconds, with their receive counts. A failed
/// receive (moto overloaded) is an empty poll: the event source polls again.
pub async fn receive(
    moto: &Moto,
    queue_url: &str,
    max: i32,
    visibility_secs: i32,
) -> Vec<SqsMessage> {
    let received = moto
        .sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max)
        .visibility_timeout(visibility_secs)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await;
    let Ok(received) = received else {
        return Vec::new();
    };
    received
        .messages
        .unwrap_or_default()
        .iter()
        .map(|message| {
            let mut record = record_from(message);
            for (name, value) in message.attributes().into_iter().flatten() {
                record
                    .attributes
                    .insert(name.as_str().to_owned(), value.clone());
            }
            record
        })
        .collect()
}

/// Deletes the settled records of a batch in one call, as the event source does; one
/// whose delete fails comes back after its visibility timeout, as in SQS.
pub async fn delete(moto: &Moto, queue_url: &str, records: &[&SqsMessage]) {
    let entries = records.iter().enumerate().filter_map(|(i, record)| {
        DeleteMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .set_receipt_handle(record.receipt_handle.clone())
            .build()
            .ok()
    });
    let entries: Vec<_> = entries.collect();
    if entries.is_empty() {
        return;
    }
    let _ = moto
        .sqs
        .delete_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await;
}

/// Whether `queue_url` holds nothing: not visible, not in flight, not delayed (an
/// unanswered question counts as no).
pub async fn is_empty(moto: &Moto, queue_url: &str) -> bool {
    let counts = [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        QueueAttributeName::ApproximateNumberOfMessagesDelayed,
    ];
    let attributes = moto
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .set_attribute_names(Some(counts.to_vec()))
        .send()
        .await;
    let Some(attributes) = attributes.ok().and_then(|a| a.attributes) else {
        return false;
    };
    counts
        .iter()
        .all(|name| attributes.get(name).is_none_or(|n| n == "0"))
}

/// What a DLQ holds; a message without a `failure_reason` was moved by the redrive.
pub async fn dead_letters(moto: &Moto, dlq_url: &str) -> Vec<DeadLetter> {
    let messages = moto.receive_all(dlq_url, 600).await;
    messages
        .iter()
        .map(|message| {
            let attributes: Vec<(String, String)> = message
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| {
                    let value = value.string_value.clone().unwrap_or_default();
                    (name.clone(), value)
                })
                .collect();
            DeadLetter {
                body: message.body().unwrap_or_default().to_owned(),
                redriven: !attributes.iter().any(|(name, _)| name == "failure_reason"),
                attributes,
            }
        })
        .collect()
}

/// A processor's queue whose delays are `scale` times shorter, rounded up to SQS's whole
/// seconds: a re-send due in 30 virtual seconds comes back after 1 real second.
#[derive(Debug, Clone)]
pub struct ScaledDelays<Q> {
    pub inner: Q,
    pub scale: u32,
}

impl<Q: Queue> Queue for ScaledDelays<Q> {
    async fn send(&self, queue_url: &str, message: &QueueMessage) -> Result<(), QueueError> {
        self.inner.send(queue_url, message).await
    }

    async fn send_delayed(
        &self,
        queue_url: &str,
        message: &QueueMessage,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let real = (delay / self.scale.max(1)).as_secs_f64().ceil();
        let delay = Duration::from_secs_f64(real);
        self.inner.send_delayed(queue_url, message, delay).await
    }
}
