//! A sales endpoint that refuses the notification and echoes the caller's data back: the
//! message is dead-lettered with a classified reason, and the caller's data appears in no
//! log line and no DLQ attribute.

use notify::NotifySink;
use nphooks_core::config::Settings;
use nphooks_core::routing::Integration;
use nphooks_processor::http::client;
use nphooks_processor::{HttpSink, process_batch};
use nphooks_testkit::logs::CapturedLogs;
use nphooks_testkit::{Moto, demo_request, envelope_for, sqs_event, sqs_message};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CALLER: [&str; 4] = [
    "Dana Whitfield",
    "dana.whitfield@example.com",
    "+15551234567",
    "Whitfield Logistics",
];

fn sink_for(server: &MockServer) -> NotifySink {
    // Built at run time: a signing secret written whole here would be a public one.
    let key: String = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".chars().rev().collect();
    let secret = format!("whsec_{key}");
    let settings = Settings::from_pairs([
        ("NOTIFY_URL", format!("{}/hooks/sales", server.uri())),
        ("NOTIFY_SIGNING_SECRET", secret),
    ]);
    NotifySink::from_settings(&settings, true, client().expect("client")).expect("valid config")
}

#[tokio::test]
async fn given_a_422_echoing_the_caller_then_dlq_and_logs_hold_no_caller_data() {
    // GIVEN an endpoint that answers 422 with the caller's email and phone in its body
    let (captured, _guard) = CapturedLogs::start();
    let moto = Moto::start("notify-422").await;
    let server = MockServer::start().await;
    let echo = format!(
        r#"{{"error":"rejected","email":"{}","phone":"{}","name":"{}"}}"#,
        CALLER[1], CALLER[2], CALLER[0]
    );
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(422).set_body_string(echo))
        .mount(&server)
        .await;
    let deps = moto.processor_deps(Integration::Notify, sink_for(&server));
    let body = envelope_for(&demo_request("call_notify_422", CALLER[0]));

    // WHEN the message is processed
    let response = process_batch(
        &deps,
        sqs_event(
            vec![sqs_message("m-422", &body)],
            std::time::Duration::from_secs(60),
        ),
    )
    .await
    .expect("handled");

    // THEN it is dead-lettered, body intact, with a classified reason only
    assert!(response.batch_item_failures.is_empty());
    let dead = moto.drain(&moto.dlq_urls[&Integration::Notify]).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some(body.as_str()));
    let attributes = dead[0].message_attributes().expect("attributes");
    assert_eq!(
        attributes["failure_reason"].string_value(),
        Some("invalid_payload (422)")
    );
    // Our code at every level, and the SDK at INFO and above (as Lambda runs it: at
    // DEBUG/TRACE the AWS SDK logs whole requests, caller data included, by design).
    let logs: Vec<String> = captured
        .text()
        .lines()
        .filter(|line| {
            let ours =
                line.contains(r#""target":"notify"#) || line.contains(r#""target":"nphooks"#);
            let verbose =
                line.contains(r#""level":"DEBUG""#) || line.contains(r#""level":"TRACE""#);
            ours || !verbose
        })
        .map(str::to_owned)
        .collect();
    let logs = logs.join("\n");
    assert!(
        logs.contains("call_notify_422"),
        "the call is named: {logs}"
    );
    for value in CALLER {
        assert!(!logs.contains(value), "{value} in the logs: {logs}");
        for (name, attribute) in attributes {
            let text = attribute.string_value().unwrap_or_default();
            assert!(!text.contains(value), "{value} in DLQ attribute {name}");
        }
    }
}
