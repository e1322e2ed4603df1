//! `nphooks bill`: runs demo deliveries through the real adapters on the moto server at
//! `AWS_ENDPOINT_URL` — the receiver's `handle()`, then each processor's `process_batch()`
//! on its queue in full batches of 10 with preview sinks, as the Lambda runs them — counts
//! every AWS request at the endpoint (the test kit's proxy in front of moto,
//! [`nphooks_testkit::fault_proxy::usage`]) and every byte each function logs ([`meter`]),
//! then prints what a delivery costs and the monthly bill ([`report`], [`prices`]).

pub mod meter;
pub mod prices;
pub mod report;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use nphooks_core::aws::Timeouts;
use nphooks_core::claims::DynamoClaims;
use nphooks_core::clock::Clock;
use nphooks_core::config::{ReceiverConfig, Settings};
use nphooks_core::ledger::DynamoLedger;
use nphooks_core::queue::SqsQueue;
use nphooks_core::rate_limit::RateLimit;
use nphooks_core::routing::Integration;
use nphooks_processor::{AWS_TIMEOUTS, ProcessorConfig, ProcessorDeps, process_batch};
use nphooks_samples::{Delivery, WEBHOOK_PATH};
use nphooks_testkit::fault_proxy::{FaultProxy, Usage};
use nphooks_testkit::{Moto, RECEIVER_FUNCTION, function_id};
use receiver::Deps;

use self::meter::{Logged, Meter};
use crate::sinks::{AnySink, Outbox};

/// `nphooks bill` arguments.
#[derive(Debug, clap::Args)]
pub struct BillArgs {
    /// Demo deliveries to run through the real adapters on moto (a multiple of 10 fills
    /// every SQS batch).
    #[arg(long, default_value_t = 20)]
    pub deliveries: usize,
    /// Deliveries a month the bill is for.
    #[arg(long, default_value_t = 1_000_000)]
    pub per_month: u64,
    /// A second run whose transcripts are this many bytes (0: none).
    #[arg(long, default_value_t = 10 * 1024)]
    pub transcript_bytes: usize,
}

/// The receiver's SDK timeouts, as its `main.rs` sets them.
const RECEIVER_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_millis(500),
    attempt: Duration::from_millis(700),
    operation: Duration::from_millis(1500),
};

/// What one function did over the run.
#[derive(Debug, Clone, Default)]
pub struct FunctionRun {
    /// Its AWS requests, counted at the endpoint.
    pub usage: Usage,
    /// Lambda invocations it took (one per webhook; one per SQS batch).
    pub invocations: u64,
    /// Wall time inside its handler here (moto on loopback).
    pub busy: Duration,
    /// What its code wrote to stdout: JSON log lines at INFO and EMF metric lines.
    pub logged: Logged,
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct Measured {
    pub deliveries: u64,
    /// The request body's size.
    pub body_bytes: usize,
    pub receiver: FunctionRun,
    pub processors: BTreeMap<Integration, FunctionRun>,
}

/// Runs the command: the demo run, then the long-transcript run.
pub async fn bill(args: &BillArgs) -> anyhow::Result<ExitCode> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        bail!(
            "AWS_ENDPOINT_URL is not set: start a moto server (see the README) and point AWS_ENDPOINT_URL at it"
        );
    }
    if args.deliveries == 0 {
        bail!("--deliveries must be at least 1");
    }
    let mut runs = vec![measure(args.deliveries, None).await?];
    if args.transcript_bytes > 0 {
        runs.push(measure(args.deliveries, Some(args.transcript_bytes)).await?);
    }
    for run in &runs {
        println!("{}", report::render(run, args.per_month));
    }
    println!("{}", report::footnotes());
    Ok(ExitCode::SUCCESS)
}

/// Where the default routing table sends a demo request (no call back: see `routes.default.json`).
const DEMO_ROUTE: [Integration; 4] = [
    Integration::Crm,
    Integration::Email,
    Integration::Slack,
    Integration::Notify,
];

/// A demo request (`call.ended`, `demo_request`: routed to [`DEMO_ROUTE`]) sent now, its
/// transcript `transcript_bytes` long when given.
fn demo_body(call_id: &str, transcript_bytes: Option<usize>) -> String {
    let mut body: serde_json::Value =
        serde_json::from_str(&nphooks_testkit::demo_request(call_id, "Dana Whitfield"))
            .expect("the demo request is JSON");
    body["timestamp"] = nphooks_core::rfc3339(SystemTime::now()).into();
    if let Some(bytes) = transcript_bytes {
        body["data"]["transcript"] = transcript(bytes).into();
    }
    body.to_string()
}

/// Words drawn from a small vocabulary: about as compressible as speech.
fn transcript(bytes: usize) -> String {
    const WORDS: [&str; 24] = [
        "yes", "the", "demo", "on", "Tuesday", "works", "for", "us", "we", "have", "twelve",
        "agents", "and", "need", "pricing", "before", "March", "could", "you", "send", "a",
        "quote", "thanks", "please",
    ];
    let mut text = String::with_capacity(bytes + 16);
    let mut x: u32 = 11;
    while text.len() < bytes {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        text.push_str(WORDS[(x >> 16) as usize % WORDS.len()]);
        text.push(' ');
    }
    text.truncate(bytes);
    text
}

/// `after` less `before`, per operation.
fn since(after: &Usage, before: &Usage) -> Usage {
    after
        .iter()
        .map(|(op, a)| {
            let b = before.get(op).copied().unwrap_or_default();
            let mut d = *a;
            d.requests -= b.requests;
            d.request_bytes -= b.request_bytes;
            d.response_bytes -= b.response_bytes;
            d.billed_requests -= b.billed_requests;
            d.write_units -= b.write_units;
            d.read_units -= b.read_units;
            (op.clone(), d)
        })
        .filter(|(_, d)| d.requests > 0)
        .collect()
}

/// Runs `deliveries` demo deliveries through the receiver and the four processors of [`DEMO_ROUTE`].
pub async fn measure(
    deliveries: usize,
    transcript_bytes: Option<usize>,
) -> anyhow::Result<Measured> {
    let moto = Moto::start("bill").await;
    let proxy = FaultProxy::start().await;
    let receiver = receive_all(&moto, &proxy, deliveries, transcript_bytes).await?;
    let mut seen = proxy.usage();
    let outbox = Outbox::start(std::env::temp_dir().join("nphooks-bill-outbox")).await?;
    let mut processors = BTreeMap::new();
    for integration in DEMO_ROUTE {
        let mut run = process_all(&moto, &proxy, &outbox, integration, deliveries).await?;
        let now = proxy.usage();
        run.usage = since(&now, &seen);
        seen = now;
        processors.insert(integration, run);
    }
    Ok(Measured {
        deliveries: u64::try_from(deliveries).unwrap_or(u64::MAX),
        body_bytes: demo_body("call_bill_0", transcript_bytes).len(),
        receiver,
        processors,
    })
}

async fn receive_all(
    moto: &Moto,
    proxy: &FaultProxy,
    deliveries: usize,
    transcript_bytes: Option<usize>,
) -> anyhow::Result<FunctionRun> {
    let aws = proxy.aws_for(moto, RECEIVER_FUNCTION, RECEIVER_TIMEOUTS);
    let settings = Settings::from_pairs(moto.receiver_settings());
    let config = ReceiverConfig::from_settings(&settings)?;
    let ledger = DynamoLedger::connect(&aws, &moto.table);
    let deps = Deps::new(config, ledger, SqsQueue::connect(&aws));
    let mut run = FunctionRun::default();
    let meter = Meter::start();
    let accepted =
        serde_json::json!({"status": "accepted", "queues": DEMO_ROUTE.map(|i| i.as_str())});
    for i in 0..deliveries {
        let body = demo_body(&format!("call_bill_{i}"), transcript_bytes);
        let event =
            nphooks_samples::api_gateway_event("POST", WEBHOOK_PATH, &body, Delivery::Signed);
        let request = lambda_http::request::from_str(&event.to_string())
            .context("the demo request as API Gateway delivers it")?;
        let started = Instant::now();
        let response = receiver::handle(&deps, request).await;
        run.busy += started.elapsed();
        run.invocations += 1;
        let answer: serde_json::Value = match response.body() {
            lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap_or_default(),
            _ => serde_json::Value::Null,
        };
        if answer["status"] != accepted["status"] || answer["queues"] != accepted["queues"] {
            bail!("the demo delivery was not accepted into the demo's queues: {answer}");
        }
    }
    run.logged = meter.logged();
    run.usage = proxy.usage();
    Ok(run)
}

/// The integration's processor on its queue, fed in batches of up to 10 as the event
/// source mapping does (receive, the handler, delete what it acknowledged).
async fn process_all(
    moto: &Moto,
    proxy: &FaultProxy,
    outbox: &Arc<Outbox>,
    integration: Integration,
    deliveries: usize,
) -> anyhow::Result<FunctionRun> {
    let aws = proxy.aws_for(moto, function_id(integration), AWS_TIMEOUTS);
    let url = &moto.queue_urls[&integration];
    let mut config =
        ProcessorConfig::local(integration, &moto.table, url, &moto.dlq_urls[&integration]);
    // Slack's sink paces itself (1 post/s), in memory as template.yaml's
    // NPHOOKS_MAX_CONCURRENCY has it; with a limit no batch waits for.
    if integration == Integration::Slack {
        config.rate_limit = Some(Some(RateLimit::new(100_000, Duration::from_secs(1))));
    }
    let sink = AnySink::for_integration(integration, &Settings::default(), true, &aws, outbox)?;
    let bounded = Settings::from_pairs([(nphooks_processor::limiter::MAX_CONCURRENCY_VAR, "2")]);
    let deps = ProcessorDeps {
        config,
        claims: DynamoClaims::connect(&aws, &moto.table),
        queue: SqsQueue::connect(&aws),
        sink,
        limiter: nphooks_processor::limiter::limiter(&bounded, &aws, &moto.table)?,
        clock: Clock::system(),
    };
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let mut run = FunctionRun::default();
    let mut done = 0;
    let mut empty = 0;
    let meter = Meter::start();
    while done < deliveries {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .context("receive from the queue")?;
        let messages = received.messages();
        if messages.is_empty() {
            empty += 1;
            if empty > 10 {
                bail!("{integration}: {done} of {deliveries} messages arrived");
            }
            continue;
        }
        let records: Vec<_> = messages
            .iter()
            .map(nphooks_testkit::event_source::record_from)
            .collect();
        let event = nphooks_testkit::sqs_event(records, Duration::from_secs(30));
        let started = Instant::now();
        let response = process_batch(&deps, event).await;
        run.busy += started.elapsed();
        run.invocations += 1;
        let response = response.map_err(|e| anyhow::anyhow!("{integration}: batch failed: {e}"))?;
        let retried: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        let acknowledged = messages
            .iter()
            .filter(|m| !retried.contains(&m.message_id().unwrap_or_default()));
        let entries = acknowledged
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        sqs.delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .context("delete the batch")?;
        done += messages.len();
        // The batch's metric line says how many were delivered.
        let delivered: u64 = meter
            .metric_lines()
            .iter()
            .filter_map(|line| line[nphooks_processor::metrics::DELIVERED].as_u64())
            .sum();
        if delivered != u64::try_from(done).unwrap_or(u64::MAX) {
            bail!("{integration}: {delivered} of {done} demo deliveries finished");
        }
    }
    run.logged = meter.logged();
    Ok(run)
}

/// Counted calls of the receiver, for tests: `(service, operation)` → requests.
pub fn requests(usage: &Usage) -> BTreeMap<(String, String), u64> {
    usage.iter().map(|(k, v)| (k.clone(), v.requests)).collect()
}
