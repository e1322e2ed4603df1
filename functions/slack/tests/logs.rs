//! The processor's logs name the call, never the caller or the secret webhook URL. In a
//! test binary of its own: tracing caches which call sites are enabled per process, and
//! tests running beside it on other threads would decide that for it.

use nphooks_core::routing::Integration;
use nphooks_processor::http::{OutboundUrl, client};
use nphooks_testkit::{demo_request, envelope_for};
use slack::SlackSink;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sink_for(base: &str) -> SlackSink {
    let url = OutboundUrl::parse(
        "SLACK_WEBHOOK_URL",
        &format!("{base}/services/T000/B000/XXXXSECRET"),
        true,
        true,
    )
    .expect("valid");
    SlackSink::new(url, client().expect("client"))
}

#[tokio::test]
async fn given_deliveries_that_succeed_and_fail_then_the_processor_logs_name_the_call_but_no_caller_data_or_secret_url()
 {
    let (captured, _guard) = nphooks_testkit::logs::CapturedLogs::start();
    let moto = nphooks_testkit::Moto::start("slack-logs").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("rollup_error"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    let mut deps = moto.processor_deps(Integration::Slack, sink_for(&server.uri()));
    deps.config.rate_limit = Some(None); // two posts in a row: pacing is tested elsewhere
    let body = envelope_for(&demo_request("call_slack_logs", "Priya Raman"));

    for attempt in 0..2 {
        let record = nphooks_testkit::sqs_message(&format!("m-logs-{attempt}"), &body);
        nphooks_processor::process_batch(
            &deps,
            nphooks_testkit::sqs_event(vec![record], std::time::Duration::from_secs(60)),
        )
        .await
        .expect("handled");
    }

    let logs = captured.text();
    assert!(
        logs.contains("call_slack_logs"),
        "the call is named: {logs}"
    );
    assert!(
        logs.contains("\"outcome\":\"deferred\"") && logs.contains("\"outcome\":\"sent\""),
        "{logs}"
    );
    for leaked in [
        "Priya",
        "Raman",
        "+15551234567",
        "dana.whitfield@example.com",
        "XXXXSECRET",
        "Whitfield Logistics",
    ] {
        assert!(
            !logs.contains(leaked),
            "{leaked} leaked into the logs: {logs}"
        );
    }
}
