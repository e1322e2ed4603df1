//! Every sample event in `events/` through its function's handler, as `sam local invoke`
//! or `cargo lambda invoke` would deliver it, against moto and the local stand-ins.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use nphooks_core::claims::DynamoClaims;
use nphooks_core::config::{ReceiverConfig, Settings};
use nphooks_core::queue::SqsQueue;
use nphooks_core::rate_limit::DynamoRateLimiter;
use nphooks_core::routing::Integration;
use nphooks_processor::http::{OutboundUrl, client};
use nphooks_processor::{HttpSink, ProcessorDeps, Sink, process_batch};
use nphooks_samples::receiver_samples;
use nphooks_testkit::Moto;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn events_dir(function: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(function)
}

fn files(function: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(events_dir(function))
        .unwrap_or_else(|_| panic!("events/{function} exists"))
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "events/{function} has sample events");
    files
}

#[tokio::test]
async fn given_each_receiver_sample_event_then_the_receiver_answers_as_documented_against_moto() {
    let moto = Moto::start("samples-receiver").await;
    let pairs = moto.receiver_settings();
    let config = ReceiverConfig::from_settings(&Settings::from_pairs(pairs)).expect("config");
    let deps = receiver::Deps::new(config, moto.ledger(), moto.queue());
    let samples = receiver_samples();
    for file in files("receiver") {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned();
        let sample = samples
            .iter()
            .find(|s| s.file_name == name)
            .unwrap_or_else(|| panic!("{name} is undocumented"));
        let request =
            lambda_http::request::from_str(&std::fs::read_to_string(&file).expect("readable"))
                .expect("API Gateway v2 event");
        let response = receiver::handle(&deps, request).await;
        assert_eq!(response.status().as_u16(), sample.expected_status, "{name}");
        let body: serde_json::Value =
            serde_json::from_slice(response.body().as_ref()).expect("JSON");
        let outcome = if sample.expected_status == 200 {
            &body["status"]
        } else {
            &body["error"]
        };
        assert_eq!(outcome, sample.expected_outcome, "{name}: {body}");
    }
    // The routed samples reached their queues: every processor's queue holds messages.
    for (integration, url) in &moto.queue_urls {
        assert!(
            !moto.drain(url).await.is_empty(),
            "{integration} queue received the routed samples"
        );
    }
}

/// Runs every sample event of `integration` through `sink` and checks each takes effect once.
async fn run_samples<K: Sink>(moto: &Moto, integration: Integration, sink: K) -> usize {
    let mut deps = moto.processor_deps(integration, sink);
    deps.config.rate_limit = Some(None); // samples run back to back; pacing is tested elsewhere
    run_samples_expecting_no_failure(&deps, integration).await
}

/// Runs every sample event of `integration` as Lambda delivers it; each is acknowledged
/// (no batch item failure). Returns how many there were.
async fn run_samples_expecting_no_failure<K: Sink>(
    deps: &ProcessorDeps<DynamoClaims, SqsQueue, K, DynamoRateLimiter>,
    integration: Integration,
) -> usize {
    let mut count = 0;
    for file in files(integration.as_str()) {
        let event: SqsEvent =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("readable"))
                .expect("an SQS event");
        let response = process_batch(
            deps,
            nphooks_testkit::sqs_event(event.records, Duration::from_secs(60)),
        )
        .await
        .expect("handled");
        assert!(
            response.batch_item_failures.is_empty(),
            "{}: {:?}",
            file.display(),
            response.batch_item_failures
        );
        count += 1;
    }
    count
}

async fn stand_in() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"id":"1"}"#))
        .mount(&server)
        .await;
    server
}

/// Slack's sink, posting to `server`.
fn slack_sink(server: &MockServer) -> slack::SlackSink {
    let url = format!("{}/services/T/B/x", server.uri());
    let url = OutboundUrl::parse("SLACK_WEBHOOK_URL", &url, true, true).expect("url");
    slack::SlackSink::new(url, client().expect("client"))
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

#[tokio::test]
async fn given_each_processor_sample_event_then_it_takes_effect_once_against_moto_and_the_stand_ins()
 {
    let moto = Moto::start("samples-processors").await;
    let http = || client().expect("client");

    let server = stand_in().await;
    let events = run_samples(&moto, Integration::Slack, slack_sink(&server)).await;
    assert_eq!(
        requests(&server).await,
        events,
        "slack: one post per sample"
    );

    let server = stand_in().await;
    let settings = Settings::from_pairs([
        ("NOTIFY_URL", format!("{}/hooks/sales", server.uri())),
        (
            "NOTIFY_SIGNING_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        ),
    ]);
    let events = run_samples(
        &moto,
        Integration::Notify,
        notify::NotifySink::from_settings(&settings, true, http()).expect("sink"),
    )
    .await;
    assert_eq!(
        requests(&server).await,
        events,
        "notify: one notification per sample"
    );

    let server = stand_in().await;
    let settings = Settings::from_pairs([
        ("CRM_PROVIDER", "generic".to_owned()),
        ("CRM_API_URL", format!("{}/leads", server.uri())),
        ("CRM_API_TOKEN", "crm-token".to_owned()),
    ]);
    let events = run_samples(
        &moto,
        Integration::Crm,
        crm::CrmSink::from_settings(&settings, true, http()).expect("sink"),
    )
    .await;
    assert_eq!(requests(&server).await, events, "crm: one lead per sample");

    let port: u16 = std::env::var("NPHOOKS_TEST_SMTP_PORT")
        .expect("NPHOOKS_TEST_SMTP_PORT: run scripts/test.sh")
        .parse()
        .expect("port");
    let smtp = email::SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: email::SmtpTls::None,
        credentials: None,
    };
    let config = email::EmailConfig {
        transport: email::Transport::Smtp(smtp.clone()),
        from: "Acme <hello@acme.example>".parse().expect("mailbox"),
        reply_to: None,
        business_name: "Acme".into(),
    };
    let sink = email::EmailSink::new(config, email::SmtpMailer::new(&smtp).expect("mailer"));
    run_samples(&moto, Integration::Email, sink).await;
}

#[tokio::test]
async fn given_each_slack_sample_event_when_slack_asks_to_wait_then_it_is_dead_lettered_expired_as_documented()
 {
    // GIVEN the Slack samples (replayed old events, received at SAMPLE_RECEIVED_AT) and a
    // Slack that answers 429 with Retry-After
    let moto = Moto::start("samples-expired").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "5"))
        .mount(&server)
        .await;
    let mut deps = moto.processor_deps(Integration::Slack, slack_sink(&server));
    deps.config.rate_limit = Some(None);
    let received_at = nphooks_core::clock::parse_rfc3339(nphooks_samples::SAMPLE_RECEIVED_AT)
        .expect("an RFC 3339 time");
    assert!(
        deps.clock.now() > received_at + deps.config.retry.max_message_age,
        "the samples are older than the replay window"
    );

    // WHEN each is processed
    let events = run_samples_expecting_no_failure(&deps, Integration::Slack).await;

    // THEN each reached Slack once, and is in the DLQ as `expired`, not waiting on its queue
    assert_eq!(requests(&server).await, events);
    let dead = moto.drain(&moto.dlq_urls[&Integration::Slack]).await;
    let reasons: Vec<&str> = dead
        .iter()
        .filter_map(|m| {
            m.message_attributes()?
                .get("failure_reason")?
                .string_value()
        })
        .collect();
    assert_eq!(
        reasons,
        vec!["expired: rate_limited (429)"; events],
        "as events/README.md documents"
    );
    assert!(
        moto.drain(&moto.queue_urls[&Integration::Slack])
            .await
            .is_empty(),
        "nothing left waiting"
    );
}
