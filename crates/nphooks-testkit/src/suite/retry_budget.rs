//! The suite's scenarios of the retry budget, on virtual time: 5xx then success, a sink
//! down for half an hour, a sink down past the 24-hour horizon.

use std::time::Duration;

use nphooks_core::routing::Integration;
use nphooks_processor::RecordOutcome;
use nphooks_processor::process_batch;
use nphooks_processor::retry::ATTEMPTS_ATTR;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{MakeSink, PLENTY, ok_server, on_virtual_time, requests, unpaced};
use crate::event_source::drain_on_virtual_time;
use crate::stand_ins::DownUntil;
use crate::{Moto, demo_request_at, envelope_at, sqs_event_on, sqs_message};

pub(super) async fn five_hundreds_then_success(
    integration: Integration,
    make_sink: &impl MakeSink,
) {
    // GIVEN a sink that answers 500, 500, then 200, and the message in its queue
    let moto = Moto::start(&format!("{integration}-5xx")).await;
    let server = ok_server().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    let (deps, clock) = on_virtual_time(unpaced(
        moto.processor_deps(integration, make_sink(&server.uri())),
    ));
    let queue_url = moto.queue_urls[&integration].clone();
    let body = envelope_at(
        &demo_request_at("call_5xx", "Dana Whitfield", clock.now()),
        clock.now(),
    );
    moto.send(&queue_url, &body).await;

    // WHEN the event source runs until the queue is empty
    let drained = drain_on_virtual_time(&moto, &deps, &clock, 10, 20).await;

    // THEN it backed off twice (no receive spent), then took effect once
    let backoffs: Vec<Option<u32>> = drained
        .outcomes
        .iter()
        .filter_map(|o| match o {
            RecordOutcome::Deferred { why, .. } => Some(why.attempt()),
            _ => None,
        })
        .collect();
    assert_eq!(backoffs, vec![Some(1), Some(2)], "{integration}: 500, 500");
    assert_eq!(drained.count(|o| matches!(o, RecordOutcome::Done(_))), 1);
    assert_eq!(requests(&server).await, 3, "{integration}");
    assert!(
        drained.elapsed >= Duration::from_secs(45),
        "{:?}",
        drained.elapsed
    );
    let again = process_batch(
        &deps,
        sqs_event_on(&clock, vec![sqs_message("m-5xx-late", &body)], PLENTY),
    )
    .await
    .expect("batch handled");
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(
        requests(&server).await,
        3,
        "{integration}: no second effect after success"
    );
    assert!(moto.drain(&moto.dlq_urls[&integration]).await.is_empty());
}

pub(super) async fn down_for_thirty_minutes_then_back(
    integration: Integration,
    make_sink: &impl MakeSink,
) {
    // GIVEN a sink that answers 503 for the first 30 (virtual) minutes
    let moto = Moto::start(&format!("{integration}-down")).await;
    let server = MockServer::start().await;
    let (deps, clock) = on_virtual_time(unpaced(
        moto.processor_deps(integration, make_sink(&server.uri())),
    ));
    let down = DownUntil::new(&clock, clock.now() + Duration::from_secs(30 * 60), 503);
    Mock::given(any())
        .respond_with(down.clone())
        .mount(&server)
        .await;
    let body = envelope_at(
        &demo_request_at("call_down", "Dana Whitfield", clock.now()),
        clock.now(),
    );
    moto.send(&moto.queue_urls[&integration], &body).await;

    // WHEN the event source runs until the queue is empty
    let drained = drain_on_virtual_time(&moto, &deps, &clock, 10, 100).await;

    // THEN it was delivered exactly once when the sink came back, and nothing dead-lettered
    assert_eq!(down.succeeded(), 1, "{integration}: one delivery");
    assert!(
        down.failed() >= 3,
        "{integration}: {} failures",
        down.failed()
    );
    assert!(
        drained.elapsed >= Duration::from_secs(30 * 60),
        "{:?}",
        drained.elapsed
    );
    assert!(moto.drain(&moto.dlq_urls[&integration]).await.is_empty());
}

pub(super) async fn down_past_the_horizon_is_dead_lettered(
    integration: Integration,
    make_sink: &impl MakeSink,
) {
    // GIVEN a sink that answers 503 for two days, and the default 24-hour budget
    let moto = Moto::start(&format!("{integration}-gone")).await;
    let server = MockServer::start().await;
    let (deps, clock) = on_virtual_time(unpaced(
        moto.processor_deps(integration, make_sink(&server.uri())),
    ));
    let down = DownUntil::new(&clock, clock.now() + Duration::from_secs(48 * 3600), 503);
    Mock::given(any())
        .respond_with(down.clone())
        .mount(&server)
        .await;
    let body = envelope_at(
        &demo_request_at("call_gone", "Dana Whitfield", clock.now()),
        clock.now(),
    );
    moto.send(&moto.queue_urls[&integration], &body).await;

    // WHEN the event source runs until the queue is empty
    let drained = drain_on_virtual_time(&moto, &deps, &clock, 10, 200).await;

    // THEN after 24 h of backoff it is in the DLQ, body intact, with reason and attempts
    assert_eq!(down.succeeded(), 0, "{integration}");
    assert!(
        drained.elapsed >= deps.config.retry.horizon,
        "{:?}",
        drained.elapsed
    );
    assert!(
        drained.elapsed < Duration::from_secs(26 * 3600),
        "{:?}",
        drained.elapsed
    );
    let dead = moto.drain(&moto.dlq_urls[&integration]).await;
    assert_eq!(dead.len(), 1, "{integration}: one dead letter");
    assert_eq!(dead[0].body(), Some(body.as_str()));
    let attributes = dead[0].message_attributes().expect("attributes");
    let reason = attributes["failure_reason"]
        .string_value()
        .unwrap_or_default();
    assert_eq!(
        reason, "retry budget spent: server_error (503)",
        "{integration}"
    );
    let attempts: usize = attributes[ATTEMPTS_ATTR]
        .string_value()
        .and_then(|a| a.parse().ok())
        .expect("attempt count");
    assert_eq!(
        attempts,
        down.failed(),
        "{integration}: every attempt counted"
    );
    assert!(attempts > 20, "{integration}: {attempts} attempts");
}
