//! The processor's row of the fault matrix (issue 12): `process_records` on the real
//! adapters (`DynamoClaims`, `SqsQueue`, `DynamoRateLimiter`) signing as the CRM function,
//! with the SDK pointed at a fault proxy in front of moto, the processors' own timeouts
//! and the SDK's standard retries (3 attempts), and a sink that counts its effects. Each
//! cell is one record, then the same record again 60 s later (past the claim's lease, the
//! fault gone): a duplicate SQS delivery. What each did is rendered into
//! `docs/fault-matrix.md` (section `processor`) and compared with the file. The proxy's
//! seeded schedule is tested at the end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use nphooks_core::aws::Timeouts;
use nphooks_core::claims::{ClaimKey, DynamoClaims};
use nphooks_core::clock::Clock;
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::envelope::Envelope;
use nphooks_core::queue::SqsQueue;
use nphooks_core::rate_limit::{DynamoRateLimiter, RateLimit};
use nphooks_core::routing::Integration;
use nphooks_core::table;
use nphooks_processor::{
    AWS_TIMEOUTS, Delivered, FailureReason, ProcessorDeps, RecordOutcome, Sink, SinkError,
    process_records,
};
use nphooks_testkit::fault_proxy::matrix::column::*;
use nphooks_testkit::fault_proxy::matrix::{AT_ONCE, Case, cases, check_docs};
use nphooks_testkit::fault_proxy::{Fault, FaultProxy, Injection};
use nphooks_testkit::{
    Moto, SETUP_IDENTITY, demo_request, envelope_for, function_id, sqs_message, text,
};

const CRM: Integration = Integration::Crm;

/// How the sink answers its first call (later calls succeed).
#[derive(Debug, Clone, Copy)]
enum First {
    Succeeds,
    FailsTransiently,
    FailsPermanently,
}

/// A sink whose first answer is scripted; it counts the effects that happened.
#[derive(Debug)]
struct CountingSink {
    first: First,
    calls: AtomicUsize,
    effects: AtomicUsize,
}

impl Sink for CountingSink {
    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }

    async fn deliver(&self, _envelope: &Envelope) -> Result<Delivered, SinkError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        match (call, self.first) {
            (0, First::FailsTransiently) => Err(SinkError::transient(FailureReason::ServerError)),
            (0, First::FailsPermanently) => {
                Err(SinkError::permanent(FailureReason::InvalidPayload))
            }
            _ => {
                self.effects.fetch_add(1, Ordering::SeqCst);
                Ok(Delivered::Sent("lead created".into()))
            }
        }
    }
}

/// One cell, and how the sink and the limiter are set for it.
struct Cell {
    case: Case,
    first: First,
    rate_limited: bool,
    /// A known way to double an effect (a finding of this matrix; see the docs).
    doubles: bool,
}

const CLAIM: &str = "claims.claim (PutItem)";
const COMPLETE: &str = "claims.complete (UpdateItem)";
const RELEASE: &str = "claims.release (UpdateItem to retrying, after a transient sink failure)";
const DEFER: &str = "queue.send_delayed (SendMessage, re-send after a transient sink failure)";
const DLQ: &str = "queue.send (SendMessage to the DLQ, after a permanent sink failure)";
const LIMIT: &str = "limiter.reserve (UpdateItem, a limit of 10/s)";

/// Every column but 503 (the SDK treats it as it treats 500).
fn columns() -> Vec<&'static str> {
    ALL.into_iter().filter(|c| *c != E503).collect()
}

fn cells() -> Vec<Cell> {
    let mut all = cases(CLAIM, "PutItem", &columns());
    all.extend(cases(COMPLETE, "UpdateItem", &[E500, LOST_ONCE, LOST]));
    all.extend(cases(RELEASE, "UpdateItem", &[E500]));
    all.extend(cases(DEFER, "SendMessage", &[E500, LOST_ONCE]));
    all.extend(cases(DLQ, "SendMessage", &[E500, LOST_ONCE]));
    // The limiter's first UpdateItem, all three SDK attempts; completing is the 4th.
    let limiter = Case::new(LIMIT, THROTTLED, "UpdateItem", 1..=3, Fault::Throttling);
    all.push(limiter);
    all.into_iter()
        .map(|case| Cell {
            first: match case.row {
                RELEASE | DEFER => First::FailsTransiently,
                DLQ => First::FailsPermanently,
                _ => First::Succeeds,
            },
            rate_limited: case.row == LIMIT,
            doubles: case.row == COMPLETE && case.column == E500,
            case,
        })
        .collect()
}

type Deps = ProcessorDeps<DynamoClaims, SqsQueue, CountingSink, DynamoRateLimiter>;

fn name(outcome: &RecordOutcome) -> String {
    match outcome {
        RecordOutcome::Done(_) => "done".to_owned(),
        RecordOutcome::AlreadyDone => "already done".to_owned(),
        RecordOutcome::Deferred { why, .. } => format!("deferred ({})", why.as_str()),
        RecordOutcome::DeadLettered(_) => "dead-lettered".to_owned(),
        RecordOutcome::Retry(_) => "left on the queue (batch item failure)".to_owned(),
    }
}

/// Processes the record once and says what happened: outcome, effects so far, the
/// claim, and what was sent to the queue and the DLQ.
async fn observe(deps: &Deps, moto: &Moto, body: &str, index: usize) -> String {
    let record = sqs_message(&format!("m-{index}"), body);
    let deadline = deps.clock.now() + Duration::from_secs(20);
    let outcome = process_records(deps, &[record], deadline).await.remove(0);
    let effects = deps.sink.effects.load(Ordering::SeqCst);
    let key = DeliveryKey::from_stored(format!("call.ended#call_fp_{index}"));
    let claim = match moto.item(ClaimKey::new(CRM, &key).as_str()).await {
        Some(item) => format!("claim {}", text(&item, "state")),
        None => "no claim".to_owned(),
    };
    let mut sent = String::new();
    for (queue, urls) in [("queue", &moto.queue_urls), ("DLQ", &moto.dlq_urls)] {
        let held = held(moto, &urls[&CRM]).await;
        if held > 0 {
            sent.push_str(&format!(", {queue} holds {held}"));
        }
    }
    format!("{}, effects {effects}, {claim}{sent}", name(&outcome))
}

/// Every message `url` holds: visible, in flight, or delayed (a deferred retry).
async fn held(moto: &Moto, url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName::{
        ApproximateNumberOfMessages, ApproximateNumberOfMessagesDelayed,
        ApproximateNumberOfMessagesNotVisible,
    };
    let attributes = moto
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("queue attributes from moto")
        .attributes
        .unwrap_or_default();
    [
        ApproximateNumberOfMessages,
        ApproximateNumberOfMessagesDelayed,
        ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|name| attributes.get(name)?.parse::<usize>().ok())
    .sum()
}

async fn run(index: usize, cell: &Cell) -> (String, usize) {
    let moto = Moto::start(&format!("fm-p{index}")).await;
    let proxy = FaultProxy::start().await;
    cell.case.arm(&proxy);
    let aws = proxy.aws_for(&moto, function_id(CRM), AWS_TIMEOUTS);
    let clock = Clock::manual(SystemTime::now());
    let mut deps = moto.processor_deps(
        CRM,
        CountingSink {
            first: cell.first,
            calls: AtomicUsize::new(0),
            effects: AtomicUsize::new(0),
        },
    );
    deps.claims = DynamoClaims::connect(&aws, &moto.table);
    deps.queue = SqsQueue::connect(&aws);
    deps.limiter = DynamoRateLimiter::connect(&aws, &moto.table);
    deps.clock = clock.clone();
    if cell.rate_limited {
        deps.config.rate_limit = Some(Some(RateLimit::new(10, Duration::from_secs(1))));
    }
    let body = envelope_for(&demo_request(&format!("call_fp_{index}"), "Dana Whitfield"));
    let first = observe(&deps, &moto, &body, index).await;
    cell.case.assert_injected(&proxy);
    proxy.clear();
    clock.advance(Duration::from_secs(60));
    let again = observe(&deps, &moto, &body, index).await;
    let effects = deps.sink.effects.load(Ordering::SeqCst);
    (format!("{first}; duplicate 60 s later: {again}"), effects)
}

#[tokio::test]
async fn processor_fault_matrix_matches_docs() {
    // GIVEN each port call of a processor failing in each way AWS fails
    // WHEN a record and its duplicate are processed per cell, eight cells at a time
    let cells = cells();
    let runs = cells.iter().enumerate().map(|(i, cell)| run(i, cell));
    let outcomes: Vec<_> = futures::stream::iter(runs)
        .buffered(AT_ONCE)
        .collect()
        .await;
    let mut observed = Vec::new();
    for (cell, (outcome, effects)) in cells.iter().zip(outcomes) {
        let (row, column) = (cell.case.row, cell.case.column);
        // THEN nothing is lost: the effect happened by the duplicate's run at the latest
        assert!(effects >= 1, "{row} / {column}: lost: {outcome}");
        // AND nothing is doubled, except where the docs report that it is
        let expected = if cell.doubles { 2 } else { 1 };
        assert_eq!(effects, expected, "{row} / {column}: {outcome}");
        observed.push((&cell.case, outcome));
    }
    // AND what each did is what docs/fault-matrix.md says
    check_docs("processor", &columns(), &observed);
}

// The proxy itself (here rather than in a test binary of its own: one link less in CI).

const QUICK: Timeouts = Timeouts {
    connect: Duration::from_secs(1),
    attempt: Duration::from_secs(2),
    operation: Duration::from_secs(5),
};

/// 20 reads through a proxy seeded with `seed` (one SDK attempt each, so every fault
/// shows); what was injected, and how many reads failed.
async fn twenty_reads(moto: &Moto, seed: u64) -> (Vec<Injection>, usize) {
    let proxy = FaultProxy::start().await;
    proxy.seeded(seed, 0.3, &[Fault::Throttling, Fault::Reset]);
    let aws = proxy
        .aws_for(moto, SETUP_IDENTITY, QUICK)
        .to_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let mut failed = 0;
    for _ in 0..20 {
        let read = client
            .get_item()
            .table_name(&moto.table)
            .key(
                table::KEY,
                aws_sdk_dynamodb::types::AttributeValue::S("k".into()),
            )
            .send()
            .await;
        failed += usize::from(read.is_err());
    }
    assert_eq!(proxy.calls("GetItem"), 20);
    (proxy.injected(), failed)
}

#[tokio::test]
async fn given_one_seed_twice_then_the_same_calls_fail_the_same_way_and_the_rest_pass() {
    // GIVEN a table in moto and a proxy seeded to fail 30 % of calls
    let moto = Moto::start("proxy").await;
    // WHEN 20 reads go through it, twice with one seed and once with another
    let (first, failed) = twenty_reads(&moto, 11).await;
    let (again, _) = twenty_reads(&moto, 11).await;
    let (other, _) = twenty_reads(&moto, 12).await;
    // THEN the faults are reproducible, each recorded, and only those calls failed
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert!(!first.is_empty() && first.len() < 20, "{first:?}");
    assert_eq!(failed, first.len(), "{first:?}");
    assert!(
        first
            .iter()
            .all(|i| i.operation == "GetItem" && (1..=20).contains(&i.call))
    );
}
