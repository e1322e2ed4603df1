//! The effectively-once suite every processor runs against its own sink: the real
//! processor runtime, SQS and DynamoDB in moto, and a local HTTP server (wiremock) that
//! records requests and fails on cue.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_processor::{Sink, process_batch};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{Moto, demo_request, envelope_for, sqs_event, sqs_message, text};

/// Generous time left for invocations that are not about deadlines.
const PLENTY: Duration = Duration::from_secs(60);

/// How a processor's tests make their sink, given the local server's base URI.
pub trait MakeSink: Fn(&str) -> Self::Sink {
    type Sink: Sink;
}

impl<F, K> MakeSink for F
where
    F: Fn(&str) -> K,
    K: Sink,
{
    type Sink = K;
}

async fn ok_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

fn failed_ids(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

/// Runs every scenario; panics with the scenario's name on the first failure.
pub async fn effectively_once(integration: Integration, make_sink: impl MakeSink) {
    twice_in_a_row_and_five_concurrently(integration, &make_sink).await;
    five_hundreds_then_success(integration, &make_sink).await;
    too_many_requests_defers_by_retry_after(integration, &make_sink).await;
    hanging_sink_stops_before_the_deadline(integration, &make_sink).await;
    bad_request_goes_to_the_dlq(integration, &make_sink).await;
    one_bad_body_in_a_batch_of_three(integration, &make_sink).await;
    crashed_claim_is_taken_over_after_its_lease(integration, &make_sink).await;
}

async fn twice_in_a_row_and_five_concurrently(integration: Integration, make_sink: &impl MakeSink) {
    // GIVEN a sink that accepts everything
    let moto = Moto::start(&format!("{integration}-once")).await;
    let server = ok_server().await;
    let deps = moto.processor_deps(integration, make_sink(&server.uri()));
    let body = envelope_for(&demo_request("call_once", "Dana Whitfield"));

    // WHEN the same message is processed twice in a row
    for attempt in 0..2 {
        let response = process_batch(
            &deps,
            sqs_event(
                vec![sqs_message(&format!("m-seq-{attempt}"), &body)],
                PLENTY,
            ),
        )
        .await
        .expect("batch handled");
        assert!(
            response.batch_item_failures.is_empty(),
            "{integration}: sequential attempt {attempt}"
        );
    }
    // THEN exactly one request reached the sink
    assert_eq!(
        requests(&server).await,
        1,
        "{integration}: processed twice in a row"
    );

    // WHEN five copies of another message run concurrently
    let body = envelope_for(&demo_request("call_concurrent", "Dana Whitfield"));
    let runs = (0..5).map(|i| {
        process_batch(
            &deps,
            sqs_event(vec![sqs_message(&format!("m-par-{i}"), &body)], PLENTY),
        )
    });
    let responses = join_all(runs).await;
    // THEN one more request, and every copy is acknowledged or retried (never lost)
    assert_eq!(
        requests(&server).await,
        2,
        "{integration}: five concurrent copies"
    );
    let acknowledged = responses
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.batch_item_failures.is_empty()))
        .count();
    assert!(
        acknowledged >= 1,
        "{integration}: at least the winner is acknowledged"
    );
}

async fn five_hundreds_then_success(integration: Integration, make_sink: &impl MakeSink) {
    // GIVEN a sink that answers 500, 500, then 200
    let moto = Moto::start(&format!("{integration}-5xx")).await;
    let server = ok_server().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    let deps = moto.processor_deps(integration, make_sink(&server.uri()));
    let body = envelope_for(&demo_request("call_5xx", "Dana Whitfield"));

    // WHEN SQS delivers it three times
    let mut failures = Vec::new();
    for attempt in 0..3 {
        let response = process_batch(&deps, sqs_event(vec![sqs_message("m-5xx", &body)], PLENTY))
            .await
            .expect("batch handled");
        failures.push(failed_ids(&response));
        let _ = attempt;
    }
    // THEN it is reported failed twice and succeeds the third time, with one effect
    assert_eq!(
        failures,
        vec![vec!["m-5xx".to_owned()], vec!["m-5xx".to_owned()], vec![]],
        "{integration}: 500, 500, 200"
    );
    assert_eq!(requests(&server).await, 3, "{integration}");
    let again = process_batch(
        &deps,
        sqs_event(vec![sqs_message("m-5xx-late", &body)], PLENTY),
    )
    .await
    .expect("batch handled");
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(
        requests(&server).await,
        3,
        "{integration}: no second effect after success"
    );
}

async fn too_many_requests_defers_by_retry_after(
    integration: Integration,
    make_sink: &impl MakeSink,
) {
    // GIVEN a sink that answers 429 with Retry-After: 7, and a message received with a long visibility
    let moto = Moto::start(&format!("{integration}-429")).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .set_body_string("rate_limited"),
        )
        .mount(&server)
        .await;
    let deps = moto.processor_deps(integration, make_sink(&server.uri()));
    let queue_url = moto.queue_urls[&integration].clone();
    let body = envelope_for(&demo_request("call_429", "Dana Whitfield"));
    let record = moto.send_and_receive(&queue_url, &body, 600).await;
    let message_id = record.message_id.clone().expect("id");

    // WHEN it is processed
    let response = process_batch(&deps, sqs_event(vec![record], PLENTY))
        .await
        .expect("batch handled");

    // THEN it is reported failed, and reappears after about 7 s instead of 600 s
    assert_eq!(
        failed_ids(&response),
        vec![message_id],
        "{integration}: 429"
    );
    let waiting = Instant::now();
    let mut seen = None;
    while waiting.elapsed() < Duration::from_secs(15) && seen.is_none() {
        let received = moto
            .sqs
            .receive_message()
            .queue_url(&queue_url)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        if !received.messages().is_empty() {
            seen = Some(waiting.elapsed());
        }
    }
    let after =
        seen.unwrap_or_else(|| panic!("{integration}: the message did not reappear within 15 s"));
    assert!(
        after >= Duration::from_secs(4),
        "{integration}: reappeared after {after:?}, too soon for Retry-After: 7"
    );
}

async fn hanging_sink_stops_before_the_deadline(
    integration: Integration,
    make_sink: &impl MakeSink,
) {
    // GIVEN a sink that hangs for 30 s and a Lambda with 4 s left
    let moto = Moto::start(&format!("{integration}-hang")).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let deps = moto.processor_deps(integration, make_sink(&server.uri()));
    let body = envelope_for(&demo_request("call_hang", "Dana Whitfield"));
    let time_left = Duration::from_secs(4);

    // WHEN it is processed
    let started = Instant::now();
    let response = process_batch(
        &deps,
        sqs_event(vec![sqs_message("m-hang", &body)], time_left),
    )
    .await
    .expect("batch handled");

    // THEN the handler returns before the deadline and reports the record failed
    assert!(
        started.elapsed() < time_left,
        "{integration}: returned after {:?}",
        started.elapsed()
    );
    assert_eq!(
        failed_ids(&response),
        vec!["m-hang".to_owned()],
        "{integration}: hang"
    );
}

async fn bad_request_goes_to_the_dlq(integration: Integration, make_sink: &impl MakeSink) {
    // GIVEN a sink that answers 400
    let moto = Moto::start(&format!("{integration}-400")).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("invalid_payload"))
        .mount(&server)
        .await;
    let deps = moto.processor_deps(integration, make_sink(&server.uri()));
    let body = envelope_for(&demo_request("call_400", "Dana Whitfield"));

    // WHEN it is processed
    let response = process_batch(&deps, sqs_event(vec![sqs_message("m-400", &body)], PLENTY))
        .await
        .expect("batch handled");

    // THEN it is acknowledged, and the DLQ holds the body intact with the reason
    assert!(
        response.batch_item_failures.is_empty(),
        "{integration}: acknowledged, no retries burnt"
    );
    let dead = moto.drain(&moto.dlq_urls[&integration]).await;
    assert_eq!(dead.len(), 1, "{integration}: one message in the DLQ");
    assert_eq!(
        dead[0].body(),
        Some(body.as_str()),
        "{integration}: body intact"
    );
    let attributes = dead[0].message_attributes().expect("attributes");
    let reason = attributes["failure_reason"]
        .string_value()
        .unwrap_or_default();
    assert!(reason.contains("400"), "{integration}: reason {reason:?}");
    assert_eq!(
        attributes["integration"].string_value(),
        Some(integration.as_str())
    );
    let key = Envelope::decode(&body).expect("valid").delivery_key;
    let claim = moto
        .item(&format!("{integration}#{key}"))
        .await
        .expect("effect record");
    assert_eq!(text(&claim, "state"), "failed", "{integration}");
}

async fn one_bad_body_in_a_batch_of_three(integration: Integration, make_sink: &impl MakeSink) {
    // GIVEN a batch of three whose middle body is not JSON
    let moto = Moto::start(&format!("{integration}-batch")).await;
    let server = ok_server().await;
    let deps = moto.processor_deps(integration, make_sink(&server.uri()));
    let records = vec![
        sqs_message(
            "m-first",
            &envelope_for(&demo_request("call_first", "Ann Lee")),
        ),
        sqs_message("m-middle", "this is not JSON"),
        sqs_message(
            "m-last",
            &envelope_for(&demo_request("call_last", "Bo Chen")),
        ),
    ];

    // WHEN it is processed
    let response = process_batch(&deps, sqs_event(records, PLENTY))
        .await
        .expect("batch handled");

    // THEN only the middle message is reported, and the other two take effect
    assert_eq!(
        failed_ids(&response),
        vec!["m-middle".to_owned()],
        "{integration}: batch of three"
    );
    assert_eq!(requests(&server).await, 2, "{integration}");
}

async fn crashed_claim_is_taken_over_after_its_lease(
    integration: Integration,
    make_sink: &impl MakeSink,
) {
    // GIVEN a claim left in progress by a run that died, its lease now over
    let moto = Moto::start(&format!("{integration}-crash")).await;
    let server = ok_server().await;
    let deps = moto.processor_deps(integration, make_sink(&server.uri()));
    let body = envelope_for(&demo_request("call_crash", "Dana Whitfield"));
    let key = Envelope::decode(&body).expect("valid").delivery_key;
    let now = nphooks_core::epoch_seconds(std::time::SystemTime::now());
    moto.dynamodb
        .put_item()
        .table_name(&moto.table)
        .item("pk", AttributeValue::S(format!("{integration}#{key}")))
        .item("state", AttributeValue::S("in_progress".into()))
        .item("owner", AttributeValue::S("dead-run".into()))
        .item("lease_until", AttributeValue::N((now - 1).to_string()))
        .item("expires_at", AttributeValue::N((now + 3600).to_string()))
        .send()
        .await
        .expect("put crashed claim");

    // WHEN the message is delivered again, twice
    for attempt in 0..2 {
        let response = process_batch(
            &deps,
            sqs_event(
                vec![sqs_message(&format!("m-crash-{attempt}"), &body)],
                PLENTY,
            ),
        )
        .await
        .expect("batch handled");
        assert!(
            response.batch_item_failures.is_empty(),
            "{integration}: attempt {attempt}"
        );
    }

    // THEN it took effect exactly once
    assert_eq!(requests(&server).await, 1, "{integration}: crashed claim");
    let claim = moto
        .item(&format!("{integration}#{key}"))
        .await
        .expect("effect record");
    assert_eq!(text(&claim, "state"), "completed");
}
