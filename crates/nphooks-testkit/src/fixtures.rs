//! Fixtures the tests share: a demo request, its envelope, SQS records and Lambda
//! invocations as the event source delivers them, and item attributes read back.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Context, LambdaEvent};
use nphooks_core::clock::{Clock, epoch_millis};

/// A string attribute of an item, or "".
pub fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// The envelope the receiver would enqueue for `webhook_json` received now: for tests
/// whose processor runs on the system clock (or on a manual clock started now).
pub fn envelope_for(webhook_json: &str) -> String {
    envelope_at(webhook_json, SystemTime::now())
}

/// The envelope the receiver would enqueue for `webhook_json` received at `received_at`
/// (a time of the clock the test controls).
pub fn envelope_at(webhook_json: &str, received_at: SystemTime) -> String {
    nphooks_samples::queue_message(webhook_json, received_at)
        .body()
        .to_owned()
}

/// The envelope of a demo request for `call_id` sent and received at the sample's fixed
/// times ([`nphooks_samples::sample_times`]): for tests that render it and compare nothing
/// with now, so their snapshots hold on any day.
pub fn rendered_demo_request(call_id: &str, name: &str) -> String {
    let (sent, received) = nphooks_samples::sample_times();
    envelope_at(&demo_request_at(call_id, name, sent), received)
}

/// A demo-request `call.ended` for `call_id`, with a caller `name`, sent now.
pub fn demo_request(call_id: &str, name: &str) -> String {
    demo_request_at(call_id, name, SystemTime::now())
}

/// A demo-request `call.ended` for `call_id`, with a caller `name`, whose `timestamp` says
/// NextPhone sent it at `sent_at` (a time of the clock the test controls).
pub fn demo_request_at(call_id: &str, name: &str, sent_at: SystemTime) -> String {
    serde_json::json!({
        "event": "call.ended",
        "timestamp": nphooks_core::rfc3339(sent_at),
        "data": {
            "call_id": call_id,
            "call_type": "demo_request",
            "caller": {"name": name, "phone": "+15551234567", "email": "dana.whitfield@example.com"},
            "duration_seconds": 184,
            "ai_summary": "Wants a demo for a 40-person dispatch team; prefers Tuesday afternoon.",
            "custom_fields": {"company": "Whitfield Logistics", "team_size": "40"}
        }
    })
    .to_string()
}

/// An SQS record as the event source delivers it (first receive).
pub fn sqs_message(message_id: &str, body: &str) -> SqsMessage {
    serde_json::from_value(serde_json::json!({
        "messageId": message_id,
        "receiptHandle": format!("receipt-{message_id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795707001000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:nphooks-test",
        "awsRegion": "us-east-1"
    }))
    .expect("a valid SQS record")
}

/// A Lambda invocation carrying `records`, with `time_left` before its deadline, for a
/// processor on the system clock.
pub fn sqs_event(records: Vec<SqsMessage>, time_left: Duration) -> LambdaEvent<SqsEvent> {
    sqs_event_on(&Clock::System, records, time_left)
}

/// A Lambda invocation carrying `records`, its deadline `time_left` after `clock`'s now:
/// the deadline is a time of the processor's clock, as Lambda's is of the system's.
pub fn sqs_event_on(
    clock: &Clock,
    records: Vec<SqsMessage>,
    time_left: Duration,
) -> LambdaEvent<SqsEvent> {
    let mut context = Context::default();
    context.deadline = epoch_millis(clock.now() + time_left);
    let mut event = SqsEvent::default();
    event.records = records;
    LambdaEvent::new(event, context)
}
