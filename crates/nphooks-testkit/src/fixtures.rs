//! Fixtures the tests share: a demo request, its envelope, SQS records and Lambda
//! invocations as the event source delivers them, and item attributes read back.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Context, LambdaEvent};

/// A string attribute of an item, or "".
pub fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// The envelope the receiver would enqueue for `webhook_json`.
pub fn envelope_for(webhook_json: &str) -> String {
    nphooks_samples::queue_message(webhook_json)
        .body()
        .to_owned()
}

/// A demo-request `call.ended` for `call_id`, with a caller `name`.
pub fn demo_request(call_id: &str, name: &str) -> String {
    serde_json::json!({
        "event": "call.ended",
        "timestamp": "2026-11-26T15:30:00Z",
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

/// A Lambda invocation carrying `records`, with `time_left` before its deadline.
pub fn sqs_event(records: Vec<SqsMessage>, time_left: Duration) -> LambdaEvent<SqsEvent> {
    let mut context = Context::default();
    let deadline = SystemTime::now() + time_left;
    context.deadline = deadline
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut event = SqsEvent::default();
    event.records = records;
    LambdaEvent::new(event, context)
}
