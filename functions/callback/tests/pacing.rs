//! The account's rate limit and CALLBACK_HOURS against the real processor runtime, the
//! shared DynamoDB limiter in moto and a local NextPhone API that answers 429 above its
//! limit, all on virtual time. Limits scaled down through config: 100 per 60 s with
//! bursts of 50 (the bucket at 50/s, the hour shrunk to a minute).

mod stand_in;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use callback::CallbackSink;
use nphooks_core::clock::{Clock, epoch_millis, parse_rfc3339};
use nphooks_core::config::Settings;
use nphooks_core::rate_limit::RateLimit;
use nphooks_core::routing::Integration;
use nphooks_processor::http::client;
use nphooks_processor::{Deferral, HttpSink, ProcessorDeps, RecordOutcome, Sink};
use nphooks_testkit::event_source::drain_on_virtual_time;
use nphooks_testkit::{Moto, envelope_for};
use stand_in::NextPhoneStandIn;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

const SCALED: RateLimit = RateLimit::new(100, Duration::from_secs(60)).with_burst(50);

fn sink_for(base: &str, extra: &[(&'static str, &'static str)]) -> CallbackSink {
    let mut pairs = vec![
        ("NEXTPHONE_API_URL", base.to_owned()),
        ("NEXTPHONE_API_KEY", "callback-test-key".to_owned()),
        ("NEXTPHONE_RATE_LIMIT", "100/60s".to_owned()),
        ("NEXTPHONE_BURST", "50".to_owned()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    CallbackSink::from_settings(
        &Settings::from_pairs(pairs),
        true,
        client().expect("client"),
    )
    .expect("valid settings")
}

fn voicemail(i: usize) -> String {
    envelope_for(&format!(
        r#"{{"event":"message.collected","data":{{"call_id":"vm_{i:03}","call_type":"voicemail",
            "caller":{{"phone":"+1555010{i:04}","name":"Caller {i}"}}}}}}"#
    ))
}

/// `deps` on a manual clock from `start`, re-sends visible at once.
fn on_virtual_time<C, Q, L>(
    mut deps: ProcessorDeps<C, Q, CallbackSink, L>,
    start: SystemTime,
) -> (ProcessorDeps<C, Q, CallbackSink, L>, Clock) {
    let clock = Clock::manual(start);
    deps.clock = clock.clone();
    deps.config.retry.max_queue_delay = Duration::ZERO;
    assert_eq!(deps.config.rate_limit, None, "the sink's own limit applies");
    (deps, clock)
}

async fn stand_in(server: &MockServer, clock: &Clock) -> NextPhoneStandIn {
    let api = NextPhoneStandIn::new(clock, SCALED);
    Mock::given(method("POST"))
        .and(path("/v1/calls"))
        .respond_with(api.clone())
        .mount(server)
        .await;
    api
}

#[tokio::test]
async fn given_200_voicemails_at_once_then_each_is_called_back_once_within_the_limit() {
    // GIVEN 200 voicemails queued at once, and a NextPhone API that refuses more than
    // 50 requests in any second or 100 in any minute
    let moto = Moto::start("callback-burst").await;
    let server = MockServer::start().await;
    let sink = sink_for(&server.uri(), &[]);
    assert_eq!(sink.rate_limit(), Some(SCALED));
    let (deps, clock) = on_virtual_time(
        moto.processor_deps(Integration::Callback, sink),
        SystemTime::now(),
    );
    let api = stand_in(&server, &clock).await;
    let bodies: Vec<String> = (0..200).map(voicemail).collect();
    moto.send_all(&moto.queue_urls[&Integration::Callback], &bodies)
        .await;

    // WHEN the event source drains the queue in batches of ten (the template's)
    let drained = drain_on_virtual_time(&moto, &deps, &clock, 10, 5_000).await;

    // THEN every caller was called back exactly once, never above either limit, none
    // refused and nothing dead-lettered
    let accepted = api.accepted();
    assert_eq!(accepted.len(), 200, "call backs requested");
    let keys: BTreeSet<&str> = accepted
        .iter()
        .map(|a| a.idempotency_key.as_str())
        .collect();
    let phones: BTreeSet<&str> = accepted
        .iter()
        .filter_map(|a| a.body["to"].as_str())
        .collect();
    assert_eq!((keys.len(), phones.len()), (200, 200), "each once");
    assert_eq!(api.refused(), 0, "no 429");
    assert_eq!(
        api.most_within(Duration::from_secs(1)),
        50,
        "the burst, no more"
    );
    assert!(api.most_within(Duration::from_secs(60)) <= 100);
    assert_eq!(drained.count(|o| matches!(o, RecordOutcome::Done(_))), 200);
    assert!(
        drained.count(|o| matches!(
            o,
            RecordOutcome::Deferred {
                why: Deferral::RateLimited,
                ..
            }
        )) >= 150,
        "the rest waited for their slots"
    );
    assert!(
        moto.drain(&moto.dlq_urls[&Integration::Callback])
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn given_a_voicemail_after_hours_then_the_call_back_waits_for_the_window() {
    // GIVEN callback hours 09:00-18:00 in New York, and a voicemail at 18:30 there
    let evening = parse_rfc3339("2026-12-15T23:30:00Z").expect("valid");
    let opens = parse_rfc3339("2026-12-16T14:00:00Z").expect("valid");
    let moto = Moto::start("callback-hours").await;
    let server = MockServer::start().await;
    let sink = sink_for(
        &server.uri(),
        &[
            ("CALLBACK_HOURS", "09:00-18:00"),
            ("CALLBACK_TIME_ZONE", "America/New_York"),
        ],
    );
    let (deps, clock) = on_virtual_time(moto.processor_deps(Integration::Callback, sink), evening);
    let api = stand_in(&server, &clock).await;
    moto.send_all(&moto.queue_urls[&Integration::Callback], &[voicemail(1)])
        .await;

    // WHEN the event source runs until the queue is empty
    let drained = drain_on_virtual_time(&moto, &deps, &clock, 10, 50).await;

    // THEN the call back was requested once, at 09:00 the next morning and not before
    let accepted = api.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].at_ms, epoch_millis(opens));
    assert_eq!(
        drained.outcomes.first(),
        Some(&RecordOutcome::Deferred {
            why: Deferral::NotDue,
            until: opens
        })
    );
    assert_eq!(drained.count(|o| matches!(o, RecordOutcome::Done(_))), 1);
    assert!(
        moto.drain(&moto.dlq_urls[&Integration::Callback])
            .await
            .is_empty()
    );
}
