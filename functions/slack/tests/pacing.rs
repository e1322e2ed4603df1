//! Slack's rate limit (about one post per second) against the real processor runtime, the
//! shared rate limiter in moto, and a local Slack that refuses anything faster — all on
//! virtual time, so minutes of pacing run in seconds.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use nphooks_core::clock::Clock;
use nphooks_core::routing::Integration;
use nphooks_processor::http::{OutboundUrl, client};
use nphooks_processor::{Deferral, ProcessorDeps, RecordOutcome};
use nphooks_testkit::event_source::drain_on_virtual_time;
use nphooks_testkit::stand_ins::RateLimitedEndpoint;
use nphooks_testkit::{Moto, demo_request, envelope_for};
use slack::SlackSink;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sink_for(base: &str) -> SlackSink {
    let url = OutboundUrl::parse(
        "SLACK_WEBHOOK_URL",
        &format!("{base}/services/T/B/X"),
        true,
        true,
    )
    .expect("valid");
    SlackSink::new(url, client().expect("client"))
}

/// Slack deps on moto, on a manual clock, with Slack's own rate limit in force.
fn paced<S, Q, L>(
    mut deps: ProcessorDeps<S, Q, SlackSink, L>,
) -> (ProcessorDeps<S, Q, SlackSink, L>, Clock) {
    let clock = Clock::manual(SystemTime::now());
    deps.clock = clock.clone();
    deps.config.retry.max_queue_delay = Duration::ZERO;
    assert_eq!(deps.config.rate_limit, None, "the sink's own limit applies");
    (deps, clock)
}

async fn enqueue(moto: &Moto, calls: impl Iterator<Item = String>) {
    let url = &moto.queue_urls[&Integration::Slack];
    let bodies: Vec<String> = calls
        .map(|call| envelope_for(&demo_request(&call, "Dana Whitfield")))
        .collect();
    moto.send_all(url, &bodies).await;
}

#[tokio::test]
async fn given_slack_answers_429_ten_times_then_one_post_and_no_dlq() {
    // GIVEN a Slack that answers 429 Retry-After: 1 ten times, then 200
    let moto = Moto::start("slack-429x10").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(10)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    let (deps, clock) = paced(moto.processor_deps(Integration::Slack, sink_for(&server.uri())));
    enqueue(&moto, ["call_429x10".to_owned()].into_iter()).await;

    // WHEN the event source runs until the queue is empty
    let drained = drain_on_virtual_time(&moto, &deps, &clock, 2, 50).await;

    // THEN exactly one post went through, every 429 waited without spending an attempt,
    // and nothing is in the DLQ
    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 11);
    assert_eq!(drained.count(|o| matches!(o, RecordOutcome::Done(_))), 1);
    let waits = drained.count(|o| {
        matches!(
            o,
            RecordOutcome::Deferred {
                why: Deferral::RateLimited,
                ..
            }
        )
    });
    assert!(waits >= 10, "{waits} rate-limit waits");
    assert_eq!(
        drained.count(|o| matches!(
            o,
            RecordOutcome::Deferred {
                why: Deferral::Backoff(_),
                ..
            }
        )),
        0,
        "no attempt spent"
    );
    assert!(
        moto.drain(&moto.dlq_urls[&Integration::Slack])
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn given_500_messages_and_a_slack_of_one_post_a_second_then_all_post_once() {
    // GIVEN 500 calls queued for a Slack that answers 429 above one request per second
    let moto = Moto::start("slack-burst").await;
    let server = MockServer::start().await;
    let (deps, clock) = paced(moto.processor_deps(Integration::Slack, sink_for(&server.uri())));
    let slack = RateLimitedEndpoint::new(&clock, 1);
    Mock::given(method("POST"))
        .respond_with(slack.clone())
        .mount(&server)
        .await;
    enqueue(&moto, (0..500).map(|i| format!("call_burst_{i:03}"))).await;

    // WHEN the event source drains the queue in batches of two (the template's)
    let drained = drain_on_virtual_time(&moto, &deps, &clock, 2, 5_000).await;

    // THEN every call was posted exactly once, no faster than Slack allows, none refused,
    // nothing dead-lettered
    let posted: Vec<String> = slack
        .accepted()
        .iter()
        .map(|body| String::from_utf8_lossy(body).into_owned())
        .collect();
    assert_eq!(posted.len(), 500, "posts");
    let calls: BTreeSet<String> = (0..500)
        .filter(|i| {
            posted
                .iter()
                .any(|p| p.contains(&format!("call_burst_{i:03}")))
        })
        .map(|i| i.to_string())
        .collect();
    assert_eq!(calls.len(), 500, "each call posted");
    assert_eq!(slack.refused(), 0, "no 429 storm");
    assert_eq!(slack.busiest_second(), 1);
    assert_eq!(drained.count(|o| matches!(o, RecordOutcome::Done(_))), 500);
    // 500 posts a second apart: the first at once, the last 499 s later (to the ms).
    assert!(
        drained.elapsed >= Duration::from_millis(498_990),
        "{:?}",
        drained.elapsed
    );
    assert!(
        moto.drain(&moto.dlq_urls[&Integration::Slack])
            .await
            .is_empty()
    );
}
