//! The effectively-once suite every processor runs against its own sink: the real
//! processor runtime, SQS and DynamoDB in moto, and a local HTTP server (wiremock) that
//! records requests and fails on cue.

use std::time::{Duration, Instant, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;
use nphooks_core::clock::Clock;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_core::table;
use nphooks_processor::retry::{ATTEMPTS_ATTR, NOT_BEFORE_ATTR};
use nphooks_processor::{ProcessorDeps, Sink, process_batch};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{
    Moto, demo_request, demo_request_at, envelope_at, envelope_for, sqs_event, sqs_event_on,
    sqs_message, text,
};

mod dead_letters;
mod retry_budget;

use dead_letters::{bad_request_goes_to_the_dlq, one_bad_body_in_a_batch_of_three};
use retry_budget::{
    down_for_thirty_minutes_then_back, down_past_the_horizon_is_dead_lettered,
    five_hundreds_then_success,
};

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
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

/// The suite is about effects, not pacing: the destination's rate limit is off
/// (`NPHOOKS_RATE_LIMIT=none`), as its own tests turn it on.
fn unpaced<S, Q, K, L>(mut deps: ProcessorDeps<S, Q, K, L>) -> ProcessorDeps<S, Q, K, L> {
    deps.config.rate_limit = Some(None);
    deps
}

/// `deps` on a manual clock starting now, re-sends visible at once (see
/// [`drain_on_virtual_time`]).
fn on_virtual_time<S, Q, K, L>(
    mut deps: ProcessorDeps<S, Q, K, L>,
) -> (ProcessorDeps<S, Q, K, L>, Clock) {
    let clock = Clock::manual(SystemTime::now());
    deps.clock = clock.clone();
    deps.config.retry.max_queue_delay = Duration::ZERO;
    (deps, clock)
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
    down_for_thirty_minutes_then_back(integration, &make_sink).await;
    down_past_the_horizon_is_dead_lettered(integration, &make_sink).await;
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
    let deps = unpaced(moto.processor_deps(integration, make_sink(&server.uri())));
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
    // THEN one more request, and every copy is acknowledged: the winner done, the others
    // done too or sent back to the queue to wait for the claim (never lost)
    assert_eq!(
        requests(&server).await,
        2,
        "{integration}: five concurrent copies"
    );
    let acknowledged = responses
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.batch_item_failures.is_empty()))
        .count();
    assert_eq!(acknowledged, 5, "{integration}: every copy acknowledged");
    let waiting = moto.drain(&moto.queue_urls[&integration]).await;
    assert!(
        waiting.len() <= 4,
        "{integration}: {} re-sent",
        waiting.len()
    );
    for message in &waiting {
        assert_eq!(
            message.body(),
            Some(body.as_str()),
            "{integration}: body intact"
        );
    }
}

async fn too_many_requests_defers_by_retry_after(
    integration: Integration,
    make_sink: &impl MakeSink,
) {
    // GIVEN a sink that answers 429 with Retry-After: 7, and a message received with a long visibility
    let moto = Moto::start(&format!("{integration}-429")).await;
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .set_body_string("rate_limited"),
        )
        .mount(&server)
        .await;
    let deps = unpaced(moto.processor_deps(integration, make_sink(&server.uri())));
    let queue_url = moto.queue_urls[&integration].clone();
    let body = envelope_for(&demo_request("call_429", "Dana Whitfield"));
    let record = moto.send_and_receive(&queue_url, &body, 600).await;
    let message_id = record.message_id.clone().expect("id");

    // WHEN it is processed
    let response = process_batch(&deps, sqs_event(vec![record], PLENTY))
        .await
        .expect("batch handled");

    // THEN it is acknowledged and re-sent, due after 7 s, with no attempt spent; the
    // copy reappears after about 7 s (not the 600 s visibility of the original)
    assert!(failed_ids(&response).is_empty(), "{integration}: 429");
    let _ = message_id;
    let waiting = Instant::now();
    let mut seen = None;
    while waiting.elapsed() < Duration::from_secs(15) && seen.is_none() {
        let received = moto
            .sqs
            .receive_message()
            .queue_url(&queue_url)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive");
        if let Some(copy) = received.messages().first() {
            seen = Some(waiting.elapsed());
            let attributes = copy.message_attributes().expect("retry state");
            assert!(attributes.contains_key(NOT_BEFORE_ATTR), "{integration}");
            assert!(
                !attributes.contains_key(ATTEMPTS_ATTR),
                "{integration}: no attempt spent"
            );
            assert_eq!(copy.body(), Some(body.as_str()));
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
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    // The retry is re-sent visible at once, so the test need not wait out its delay.
    let (deps, clock) = on_virtual_time(unpaced(
        moto.processor_deps(integration, make_sink(&server.uri())),
    ));
    let body = envelope_at(
        &demo_request_at("call_hang", "Dana Whitfield", clock.now()),
        clock.now(),
    );
    let time_left = Duration::from_secs(4);

    // WHEN it is processed
    let started = Instant::now();
    let response = process_batch(
        &deps,
        sqs_event_on(&clock, vec![sqs_message("m-hang", &body)], time_left),
    )
    .await
    .expect("batch handled");

    // THEN the handler returns before the deadline, counts a failed attempt and re-sends
    assert!(
        started.elapsed() < time_left,
        "{integration}: returned after {:?}",
        started.elapsed()
    );
    assert!(failed_ids(&response).is_empty(), "{integration}: hang");
    let retries = moto.drain(&moto.queue_urls[&integration]).await;
    assert_eq!(retries.len(), 1, "{integration}: one retry queued");
    let attempts = retries[0].message_attributes().expect("retry state")[ATTEMPTS_ATTR]
        .string_value()
        .map(str::to_owned);
    assert_eq!(attempts.as_deref(), Some("1"), "{integration}");
}

async fn crashed_claim_is_taken_over_after_its_lease(
    integration: Integration,
    make_sink: &impl MakeSink,
) {
    // GIVEN a claim left in progress by a run that died, its lease now over
    let moto = Moto::start(&format!("{integration}-crash")).await;
    let server = ok_server().await;
    let deps = unpaced(moto.processor_deps(integration, make_sink(&server.uri())));
    let body = envelope_for(&demo_request("call_crash", "Dana Whitfield"));
    let key = Envelope::decode(&body).expect("valid").delivery_key;
    let now = nphooks_core::epoch_seconds(std::time::SystemTime::now());
    moto.dynamodb
        .put_item()
        .table_name(&moto.table)
        .item(
            table::KEY,
            AttributeValue::S(format!("{integration}#{key}")),
        )
        .item(table::STATE, AttributeValue::S("in_progress".into()))
        .item(table::OWNER, AttributeValue::S("dead-run".into()))
        .item(table::LEASE_UNTIL, AttributeValue::N((now - 1).to_string()))
        .item(
            table::EXPIRES_AT,
            AttributeValue::N((now + 3600).to_string()),
        )
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
    assert_eq!(text(&claim, table::STATE), "completed");
}
