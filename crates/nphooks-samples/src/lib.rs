//! Realistic sample webhooks, signed as NextPhone signs them, wrapped in the API Gateway
//! HTTP API (v2) events Lambda receives. `events/` is generated from here, so the files
//! cannot drift from the signer; the receiver's tests check that they are current.
//!
//! Test fixtures, with the test-only secret: the CLI, the test kit and tests depend on
//! this crate, no Lambda does.

use std::time::SystemTime;

use base64::Engine;
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::envelope::QueueMessage;
use nphooks_core::routing::{Integration, RoutingTable};
use nphooks_core::secret::Secret;
use nphooks_core::signature::{SIGNATURE_HEADER, WebhookAuth, sign};
pub use nphooks_core::webhook::WEBHOOK_PATH;
use nphooks_core::webhook::{EventKind, Webhook};
use serde_json::{Value, json};

/// The documented test secret the sample events are signed with. Never use it in production.
pub const TEST_WEBHOOK_SECRET: &str = "whsec_nphooks_test_only";
/// The documented test API key the sample events carry.
pub const TEST_API_KEY: &str = "np_live_nphooks_test_only";

const CALL_ID: &str = "call_8f14e45fceea167a";
/// The `timestamp` of the stale sample: older than any replay window the receiver accepts.
pub const STALE_TIMESTAMP: &str = "2020-01-02T15:30:00Z";

/// A realistic body for each event; `call.ended` is the demo request of the design's flow.
/// The samples carry no `timestamp` (the sender may omit it), so that the files under
/// `events/` never age past the receiver's replay window; `call_ended_stale.json` has one.
pub fn webhook_body(kind: EventKind) -> Value {
    let caller = json!({"phone": "+15551234567", "name": "Dana Whitfield", "email": "dana.whitfield@example.com"});
    let data = match kind {
        EventKind::CallAnswered => json!({
            "call_id": CALL_ID, "caller": caller, "to_number": "+15550100200"
        }),
        EventKind::CallEnded => call_ended_data("demo_request"),
        EventKind::CallTransferred => json!({
            "call_id": CALL_ID, "caller": caller, "call_type": "demo_request",
            "transferred_to": "+15550100300", "reason": "caller asked for a person"
        }),
        EventKind::MessageCollected => json!({
            "call_id": CALL_ID, "caller": caller, "call_type": "voicemail",
            "duration_seconds": 42,
            "transcript": "Hi, this is Dana from Whitfield Logistics. Please call me back about the demo.",
            "ai_summary": "Caller left a message asking for a call back about a demo."
        }),
        EventKind::DataCollected => json!({
            "call_id": CALL_ID, "caller": caller,
            "custom_fields": {"company_size": "51-200"}
        }),
        EventKind::TranscriptReady => json!({
            "call_id": CALL_ID, "caller": caller,
            "transcript": "AI: Thanks for calling Acme. How can I help?\nCaller: I'd like a demo of your routing product."
        }),
    };
    json!({"event": kind.as_str(), "data": data})
}

/// `call.ended` data for a call type (`demo_request`, `quote_request`, `emergency`, …).
pub fn call_ended_data(call_type: &str) -> Value {
    json!({
        "call_id": CALL_ID,
        "caller": {"phone": "+15551234567", "name": "Dana Whitfield", "email": "dana.whitfield@example.com"},
        "call_type": call_type,
        "duration_seconds": 184,
        "to_number": "+15550100200",
        "transcript": "AI: Thanks for calling Acme. How can I help?\nCaller: We'd like a demo of your call routing for our dispatch team, ideally next Tuesday.",
        "ai_summary": "Dana Whitfield (Whitfield Logistics) wants a product demo for a 40-person dispatch team; prefers next Tuesday afternoon.",
        "custom_fields": {
            "company": "Whitfield Logistics",
            "team_size": "40",
            "preferred_time": "Tuesday afternoon",
            "service_type": "call routing"
        }
    })
}

/// How a sample request is wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Signed with [`TEST_WEBHOOK_SECRET`], Bearer [`TEST_API_KEY`], text body.
    Signed,
    /// Signed, body base64-encoded by API Gateway (as for a non-JSON content type).
    SignedBase64,
    /// Signed with the wrong secret.
    BadSignature,
}

/// An API Gateway HTTP API (payload 2.0) event carrying `body`, as Lambda receives it.
pub fn api_gateway_event(method: &str, path: &str, body: &str, delivery: Delivery) -> Value {
    let secret = match delivery {
        Delivery::BadSignature => "not-the-secret",
        _ => TEST_WEBHOOK_SECRET,
    };
    let base64 = delivery == Delivery::SignedBase64;
    let content_type = if base64 {
        "application/octet-stream"
    } else {
        "application/json"
    };
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "authorization": format!("Bearer {TEST_API_KEY}"),
            "content-length": body.len().to_string(),
            "content-type": content_type,
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "NextPhone-Webhooks/1.0",
            SIGNATURE_HEADER: sign(secret, body.as_bytes()),
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "NextPhone-Webhooks/1.0"
            },
            "requestId": "nphooks-sample-request",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "26/Nov/2026:15:30:01 +0000",
            "timeEpoch": 1_795_707_001_000_u64
        },
        "body": if base64 { base64::engine::general_purpose::STANDARD.encode(body) } else { body.to_owned() },
        "isBase64Encoded": base64
    })
}

/// One sample event file for the receiver and the answer it documents.
#[derive(Debug, Clone)]
pub struct SampleEvent {
    /// File name under `events/receiver/`.
    pub file_name: String,
    pub description: String,
    pub expected_status: u16,
    /// The `status` field of a 200 answer, or the `error` field otherwise.
    pub expected_outcome: &'static str,
    pub event: Value,
}

/// The receiver's sample events: each of the six event types, the other routed call
/// types, a base64-encoded body, and a bad signature.
pub fn receiver_samples() -> Vec<SampleEvent> {
    let post = |body: &Value, delivery| {
        let text = serde_json::to_string_pretty(body).expect("serialises");
        api_gateway_event("POST", WEBHOOK_PATH, &text, delivery)
    };
    let mut samples: Vec<SampleEvent> = EventKind::ALL
        .into_iter()
        .map(|kind| {
            let routed = matches!(kind, EventKind::CallEnded | EventKind::MessageCollected);
            SampleEvent {
                file_name: format!("{}.json", kind.as_str().replace('.', "_")),
                description: if kind == EventKind::CallEnded {
                    "call.ended, demo request: routed to crm, email, slack, notify and callback"
                        .into()
                } else if routed {
                    format!("{kind}: routed to slack, notify and callback")
                } else {
                    format!("{kind}: accepted and deduplicated, no route by default")
                },
                expected_status: 200,
                expected_outcome: if routed { "accepted" } else { "ignored" },
                event: post(&webhook_body(kind), Delivery::Signed),
            }
        })
        .collect();
    for (call_type, routes) in [
        ("quote_request", "crm, email, slack, notify and callback"),
        ("emergency", "slack and notify"),
    ] {
        let body = json!({"event": "call.ended", "data": call_ended_data(call_type)});
        let mut body = body;
        body["data"]["call_id"] = json!(format!("call_{call_type}_5e1c"));
        samples.push(SampleEvent {
            file_name: format!("call_ended_{call_type}.json"),
            description: format!("call.ended, {call_type}: routed to {routes}"),
            expected_status: 200,
            expected_outcome: "accepted",
            event: post(&body, Delivery::Signed),
        });
    }
    let mut base64_body = webhook_body(EventKind::CallEnded);
    base64_body["data"]["call_id"] = json!("call_base64_body_77aa");
    samples.push(SampleEvent {
        file_name: "call_ended_base64_body.json".into(),
        description:
            "call.ended whose body API Gateway base64-encoded: verified over the decoded bytes"
                .into(),
        expected_status: 200,
        expected_outcome: "accepted",
        event: post(&base64_body, Delivery::SignedBase64),
    });
    let mut stale = webhook_body(EventKind::CallEnded);
    stale["timestamp"] = json!(STALE_TIMESTAMP);
    samples.push(SampleEvent {
        file_name: "call_ended_stale.json".into(),
        description: format!(
            "call.ended signed, but sent at {STALE_TIMESTAMP}, older than the replay window: ignored as stale, nothing enqueued"
        ),
        expected_status: 200,
        expected_outcome: "ignored",
        event: post(&stale, Delivery::Signed),
    });
    samples.push(SampleEvent {
        file_name: "bad_signature.json".into(),
        description: "call.ended signed with the wrong secret: 401, nothing stored or sent".into(),
        expected_status: 401,
        expected_outcome: "unauthorized",
        event: post(&webhook_body(EventKind::CallEnded), Delivery::BadSignature),
    });
    samples
}

/// When the processors' sample events under `events/` say the receiver received them.
/// Those files are *replayed old events*: they keep this date for ever (see
/// `events/README.md`). Tests make their envelopes with [`queue_message`] at a time of
/// the clock they control instead.
pub const SAMPLE_RECEIVED_AT: &str = "2026-11-26T15:30:01Z";

/// [`SAMPLE_RECEIVED_AT`] as a time, and the second before it, when NextPhone sent the
/// call: for tests that only render a message (snapshots) and compare nothing with now.
pub fn sample_times() -> (SystemTime, SystemTime) {
    let received = nphooks_core::clock::parse_rfc3339(SAMPLE_RECEIVED_AT).expect("RFC 3339");
    (received - std::time::Duration::from_secs(1), received)
}

/// The queue message the receiver enqueues for `body` (signed, verified, enveloped) when
/// it receives it at `received_at`.
pub fn queue_message(body: &str, received_at: SystemTime) -> QueueMessage {
    queue_message_stamped(body, &nphooks_core::rfc3339(received_at))
}

fn queue_message_stamped(body: &str, received_at: &str) -> QueueMessage {
    let auth = WebhookAuth::new(vec![Secret::new(TEST_WEBHOOK_SECRET)], None);
    let verified = auth
        .verify(
            Some(sign(TEST_WEBHOOK_SECRET, body.as_bytes()).as_bytes()),
            None,
            body.as_bytes(),
        )
        .expect("signed with the test secret")
        .parse()
        .expect("samples are valid webhooks");
    QueueMessage::for_delivery(&verified, &DeliveryKey::for_webhook(&verified), received_at)
}

/// An SQS event (as the Lambda event source delivers it) carrying `message`.
pub fn sqs_event(integration: Integration, message: &QueueMessage, message_id: &str) -> Value {
    let attributes: serde_json::Map<String, Value> = message
        .attributes()
        .iter()
        .map(|(name, value)| {
            ((*name).to_owned(), json!({"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}))
        })
        .collect();
    json!({"Records": [{
        "messageId": message_id,
        "receiptHandle": format!("AQEB-sample-receipt-{message_id}"),
        "body": message.body(),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795707001000",
            "SenderId": "AROAEXAMPLE:nphooks-receiver",
            "ApproximateFirstReceiveTimestamp": "1795707001100"
        },
        "messageAttributes": attributes,
        "md5OfBody": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(message.body().as_bytes()))[..32].to_owned(),
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:nphooks-{integration}"),
        "awsRegion": "us-east-1"
    }]})
}

/// One sample SQS event per processor and routed sample webhook: what the receiver
/// enqueues for the demo request (every integration) and for a message left (Slack,
/// notify and callback), wrapped as the event source delivers it.
pub fn processor_samples() -> Vec<(String, String, Value)> {
    let routes = RoutingTable::default_table();
    let mut samples = Vec::new();
    for kind in [EventKind::CallEnded, EventKind::MessageCollected] {
        let body = serde_json::to_string_pretty(&webhook_body(kind)).expect("serialises");
        let message = queue_message_stamped(&body, SAMPLE_RECEIVED_AT);
        let webhook = Webhook::parse(body.as_bytes()).expect("valid");
        for integration in routes.route_for(&webhook) {
            let name = kind.as_str().replace('.', "_");
            let description = format!(
                "the envelope of `events/receiver/{name}.json`, as the {integration} queue delivers it"
            );
            let event = sqs_event(
                integration,
                &message,
                &format!("00000000-0000-4000-8000-{:012}", samples.len() + 1),
            );
            samples.push((format!("{integration}/{name}.json"), description, event));
        }
    }
    samples
}

/// Every file under `events/`, as (path relative to `events/`, contents). `events/` is
/// exactly this; the receiver's tests fail when the files on disk differ.
pub fn event_files() -> Vec<(String, String)> {
    let samples = receiver_samples();
    let mut index = format!(
        "# Sample events\n\n\
         Generated by `nphooks_samples::event_files` — do not edit by hand. To regenerate:\n\
         `NPHOOKS_UPDATE_EVENTS=1 cargo test -p receiver --test events`.\n\n\
         The receiver's events are API Gateway HTTP API (payload 2.0) events, signed with the\n\
         documented **test-only** secret `whsec_nphooks_test_only` and carrying the test API key\n\
         `np_live_nphooks_test_only`. Use them with `cargo lambda invoke receiver --data-file events/receiver/FILE`\n\
         or `sam local invoke ReceiverFunction -e events/receiver/FILE`.\n\n\
         **Dates.** The receiver's events carry no `timestamp` (NextPhone may leave it out), so the\n\
         receiver dates each one when it receives it, and answers as below on any date. Only\n\
         `call_ended_stale.json` carries one, {STALE_TIMESTAMP}: older than any replay window, on any date.\n\n\
         | file | what it is | status | outcome |\n|---|---|---|---|\n",
    );
    let mut files = Vec::new();
    for sample in samples {
        index.push_str(&format!(
            "| `receiver/{}` | {} | {} | `{}` |\n",
            sample.file_name, sample.description, sample.expected_status, sample.expected_outcome
        ));
        let mut text = serde_json::to_string_pretty(&sample.event).expect("serialises");
        text.push('\n');
        files.push((format!("receiver/{}", sample.file_name), text));
    }
    index.push_str(&format!(
        "\nThe processors' events are SQS events carrying the receiver's real envelope. Use them with\n\
         `cargo lambda invoke crm --data-file events/crm/call_ended.json` or `sam local invoke CrmFunction -e …`;\n\
         each takes effect once and reports no batch item failure; invoked again, nothing more happens\n\
         (`duplicate`). Slack posts one message a second: invoked back to back, the second waits on its\n\
         queue for its slot (`deferred`) unless the processor runs with `NPHOOKS_RATE_LIMIT=none`.\n\n\
         **Dates.** These are *replayed old events*: each envelope says the receiver received the call\n\
         at {SAMPLE_RECEIVED_AT}, and the files keep that date for ever. A processor acts on a first\n\
         delivery whatever its age, so the outcome above holds on any date; the age counts only when a\n\
         destination makes it wait (429, `Retry-After`): older than the replay window (7 days), it is\n\
         then dead-lettered `expired` instead of waiting. Tests never use these dates: they make\n\
         envelopes at a time of the clock they control (`nphooks_testkit::envelope_at`), and CI runs\n\
         them all again with the clock a year ahead (`scripts/test.sh`, the clock guard).\n\n\
         | file | what it is |\n|---|---|\n"
    ));
    for (path, description, event) in processor_samples() {
        index.push_str(&format!("| `{path}` | {description} |\n"));
        let mut text = serde_json::to_string_pretty(&event).expect("serialises");
        text.push('\n');
        files.push((path, text));
    }
    files.push(("README.md".into(), index));
    files
}
