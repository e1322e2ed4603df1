//! The receiver's row of the fault matrix (issue 12): `receiver::handle` on the real
//! adapters (`DynamoLedger`, `SqsQueue`) and the Secrets Manager read, with the SDK
//! pointed at a fault proxy in front of moto and the receiver's own timeouts and the
//! SDK's standard retries (3 attempts). Each cell is one request; what it observed is
//! rendered into `docs/fault-matrix.md` (section `receiver`) and compared with the file.

mod common;

use std::time::{Duration, SystemTime};

use common::{settings, signed, status_and_json};
use futures::StreamExt;
use nphooks_core::aws::Timeouts;
use nphooks_core::clock::Clock;
use nphooks_core::config::{ReceiverConfig, Settings};
use nphooks_core::ledger::DynamoLedger;
use nphooks_core::queue::SqsQueue;
use nphooks_samples::TEST_API_KEY;
use nphooks_testkit::fault_proxy::matrix::column::*;
use nphooks_testkit::fault_proxy::matrix::{AT_ONCE, Case, EVERY, cases, check_docs};
use nphooks_testkit::fault_proxy::{Fault, FaultProxy};
use nphooks_testkit::{Moto, RECEIVER_FUNCTION, demo_request, text};
use receiver::Deps;

/// The receiver's SDK timeouts, as `functions/receiver/src/main.rs` sets them.
const RECEIVER_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_millis(500),
    attempt: Duration::from_millis(700),
    operation: Duration::from_millis(1500),
};

/// The sender's first retry comes 5 minutes after a non-2xx answer.
const SENDER_RETRY: Duration = Duration::from_secs(300);

const BEGIN: &str = "ledger.begin (PutItem)";
const SEND: &str = "queue.send (SendMessage)";
const ABANDON: &str = "ledger.abandon (DeleteItem, after a failed send)";
const SECRET: &str = "secret read at cold start (GetSecretValue)";

fn all_cases() -> Vec<Case> {
    let mut all = cases(BEGIN, "PutItem", &ALL);
    let send = [
        THROTTLED_ONCE,
        THROTTLED,
        E500,
        RESET,
        STALL,
        LOST_ONCE,
        LOST,
    ];
    all.extend(cases(SEND, "SendMessage", &send));
    let abandon = cases(ABANDON, "SendMessage", &[E500]).remove(0);
    all.push(abandon.and("DeleteItem", EVERY, Fault::InternalError));
    all
}

/// What one request did: its answer, the queues, the delivery record.
async fn observe(deps: &Deps<DynamoLedger, SqsQueue>, moto: &Moto, call_id: &str) -> String {
    let body = demo_request(call_id, "Dana Whitfield");
    let (status, answer) = status_and_json(receiver::handle(deps, signed(&body)).await);
    let name = answer["status"]
        .as_str()
        .or(answer["error"].as_str())
        .unwrap_or("?");
    let dedup = match answer["deduplicated"].as_bool() {
        Some(false) => " without dedup",
        _ => "",
    };
    let counts: Vec<usize> = moto.counts().await.into_values().collect();
    // THEN (invariant 2) a 2xx means the webhook is in every routed queue
    if (200..300).contains(&status) && name == "accepted" {
        assert!(
            counts.iter().all(|n| *n >= 1),
            "2xx but not durable: {counts:?} {answer}"
        );
    }
    // How many copies beyond the first depends on the SDK's jittered backoff: counted
    // only as "more than once".
    let reached = counts.iter().filter(|n| **n > 0).count();
    let doubled = counts.iter().filter(|n| **n > 1).count();
    let queued = match (reached, doubled) {
        (0, _) => "nothing enqueued".to_owned(),
        (r, _) if r < counts.len() => format!("enqueued to {r} of {} queues", counts.len()),
        (_, 0) => "enqueued once to each queue".to_owned(),
        (_, d) => format!("enqueued to each queue, {d} more than once"),
    };
    let record = match moto.item(&format!("call.ended#{call_id}")).await {
        Some(item) => format!("record {}", text(&item, "state")),
        None => "no record".to_owned(),
    };
    format!("{status} {name}{dedup}, {queued}, {record}")
}

/// Runs one cell; a non-2xx answer is followed by the sender's retry 5 minutes later,
/// the fault gone by then.
async fn run(index: usize, case: &Case) -> String {
    let moto = Moto::start(&format!("fm-r{index}")).await;
    let proxy = FaultProxy::start().await;
    case.arm(&proxy);
    let aws = proxy.aws_for(&moto, RECEIVER_FUNCTION, RECEIVER_TIMEOUTS);
    let config = ReceiverConfig::from_settings(&settings(&moto.queue_urls, &moto.table))
        .expect("valid config");
    let clock = Clock::manual(SystemTime::now());
    let ledger = DynamoLedger::connect(&aws, &moto.table);
    let deps = Deps::new(config, ledger, SqsQueue::connect(&aws)).with_clock(clock.clone());
    let call_id = format!("call_fm_{index}");
    let mut outcome = observe(&deps, &moto, &call_id).await;
    case.assert_injected(&proxy);
    if !outcome.starts_with('2') {
        proxy.clear();
        clock.advance(SENDER_RETRY);
        outcome = format!(
            "{outcome}; retry: {}",
            observe(&deps, &moto, &call_id).await
        );
    }
    outcome
}

/// The cold-start secret read through the proxy: started, or refused naming the variable.
async fn secret_cell(case: &Case) -> String {
    let moto = Moto::start("fm-secret").await;
    let value = serde_json::json!({ "NEXTPHONE_API_KEY": TEST_API_KEY });
    // Named after the receiver's template secret, for the IAM check.
    let arn = aws_sdk_secretsmanager::Client::new(&moto.aws)
        .create_secret()
        .name(format!("ReceiverSecret-{}", moto.table))
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create secret in moto")
        .arn
        .expect("arn");
    let proxy = FaultProxy::start().await;
    case.arm(&proxy);
    let aws = proxy.aws_for(&moto, RECEIVER_FUNCTION, RECEIVER_TIMEOUTS);
    let settings = Settings::from_pairs([("APP_SECRET_ARN".to_owned(), arn)]);
    match nphooks_core::aws::with_app_secret(settings, &aws).await {
        Ok(read) => {
            assert_eq!(read.optional("NEXTPHONE_API_KEY"), Some(TEST_API_KEY));
            "starts".to_owned()
        }
        Err(error) => {
            let message = error.to_string();
            assert!(message.contains("APP_SECRET_ARN"), "{message}");
            assert!(!message.contains(TEST_API_KEY), "{message}");
            "start-up refused naming APP_SECRET_ARN (Lambda retries the cold start)".to_owned()
        }
    }
}

#[tokio::test]
async fn receiver_fault_matrix_matches_docs() {
    // GIVEN each port call of the receiver failing in each way AWS fails
    let cases = all_cases();
    // WHEN one webhook is received per cell, eight cells at a time (each has its own table,
    // queues and proxy), and the secret read at cold start fails
    let runs = cases.iter().enumerate().map(|(i, case)| run(i, case));
    let outcomes: Vec<_> = futures::stream::iter(runs)
        .buffered(AT_ONCE)
        .collect()
        .await;
    let throttled = Case::new(
        SECRET,
        THROTTLED_ONCE,
        "GetSecretValue",
        1..=1,
        Fault::Throttling,
    );
    let down = Case::new(SECRET, E500, "GetSecretValue", EVERY, Fault::InternalError);
    let (started, refused) = tokio::join!(secret_cell(&throttled), secret_cell(&down));
    // THEN what each did is what docs/fault-matrix.md says
    let mut observed: Vec<(&Case, String)> = cases.iter().zip(outcomes).collect();
    observed.extend([(&throttled, started), (&down, refused)]);
    check_docs("receiver", &ALL, &observed);
}
