//! `nphooks bench`: the whole pipeline in one process — the receiver's handler over real
//! HTTP on loopback (the server `serve` uses), the four processors on in-memory queues fed
//! as the event source feeds them, and sinks that do each integration's work up to the
//! network and record it in memory — measured from each webhook's POST to the last effect
//! of its route. Every effect is counted per delivery: one missing or doubled fails it.

mod effects;
mod load;
mod report;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsMessage;
use nphooks_core::claims::MemoryClaims;
use nphooks_core::config::{ReceiverConfig, Settings};
use nphooks_core::ledger::MemoryLedger;
use nphooks_core::routing::Integration;
use nphooks_processor::RecordOutcome;
use nphooks_processor::retry::RetryPolicy;
use nphooks_samples::TEST_WEBHOOK_SECRET;

use crate::event_source::{Pipeline, Report};
use crate::http_server;
use crate::serve::{self, ServeOptions};
use effects::{BenchSink, Effects};
pub use report::BenchReport;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Distinct signed webhooks to send.
    #[arg(long, default_value_t = 10_000)]
    pub webhooks: usize,
    /// Keep-alive HTTP/1.1 connections they are sent over, each one request at a time.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// The events sent, in turn (names as `nphooks send` takes them).
    #[arg(long, value_delimiter = ',', default_value = "call.ended")]
    pub events: Vec<String>,
    /// Concurrent batches per integration (the event source's concurrency).
    #[arg(long, default_value_t = 1)]
    pub pollers: usize,
}

/// How long the bench waits for the next effect before it gives up on the missing ones.
const STALL: Duration = Duration::from_secs(15);

/// The processors' outcomes, counted (`serve` prints them; the bench only counts).
#[derive(Debug, Default)]
struct Outcomes {
    finished: AtomicU64,
    unfinished: AtomicU64,
    errors: AtomicU64,
}

impl Report for Outcomes {
    fn error(&self, _: Integration, _: &anyhow::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    fn outcome(&self, _: Integration, _: &SqsMessage, outcome: &RecordOutcome, _: Duration) {
        let counter = if outcome.is_finished() {
            &self.finished
        } else {
            &self.unfinished
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the bench and accounts for every effect.
pub async fn run(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(args.webhooks > 0, "--webhooks must be at least 1");
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    let no_settings: [(&str, &str); 0] = [];
    let settings = serve::with_local_defaults(&Settings::from_pairs(no_settings), false);
    let config = ReceiverConfig::from_settings(&settings)?;
    let prepared = Arc::new(load::prepare(
        &args.events,
        args.webhooks,
        TEST_WEBHOOK_SECRET,
        &config.routes,
    )?);

    let (queues, dlqs) = serve::memory_queues(&config);
    let options = ServeOptions {
        pollers: args.pollers,
        ..ServeOptions::default()
    };
    let started = Instant::now();
    let effects = Arc::new(Effects::new(&prepared.keys, started));
    let sinks = config
        .queue_urls
        .keys()
        .map(|&i| Ok((i, BenchSink::new(i, effects.clone())?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let outcomes = Arc::new(Outcomes::default());
    let pipeline = Pipeline {
        receiver_config: &config,
        claims: Arc::new(MemoryClaims::new()),
        queue: queues.clone(),
        source: queues.clone(),
        dlqs: &dlqs,
        allow_http: true,
        retry: RetryPolicy::default(),
        options: &options,
    };
    let mut tasks = pipeline.spawn_processors(sinks, outcomes.clone());
    let listener = http_server::bind(([127, 0, 0, 1], 0).into()).await?;
    let addr = http_server::local_addr(&listener)?;
    let deps = Arc::new(receiver::Deps::new(
        config,
        MemoryLedger::new(),
        queues.clone(),
    ));
    tasks.push(http_server::spawn(listener, move |request| {
        let deps = deps.clone();
        async move { serve::respond(&deps, request).await.1 }
    }));

    let expected: u64 = prepared
        .routes
        .iter()
        .flatten()
        .map(|&r| u64::from(r))
        .sum();
    let posted = load::post_all(addr, prepared.clone(), args.connections, started).await?;
    // Done when every expected effect has landed and no message is left anywhere (a
    // message still queued or in flight could yet act again).
    let mut seen = (effects.total(), Instant::now());
    while effects.total() < expected || queues.total() > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if effects.total() != seen.0 {
            seen = (effects.total(), Instant::now());
        } else if seen.1.elapsed() > STALL {
            break;
        }
    }
    for task in tasks {
        task.abort();
    }
    Ok(BenchReport::new(
        args,
        &prepared,
        &posted,
        &effects,
        (
            queues.total(),
            outcomes.unfinished.load(Ordering::Relaxed),
            outcomes.errors.load(Ordering::Relaxed),
        ),
    ))
}

/// `nphooks bench`: one summary line; exits non-zero when an effect is missing or doubled.
pub async fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let report = run(args).await?;
    println!("{}", report.summary());
    if report.is_exact() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: {}", report.violations());
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(webhooks: usize, events: &[&str]) -> BenchArgs {
        BenchArgs {
            webhooks,
            connections: 8,
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            pollers: 2,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn given_200_webhooks_when_benched_then_each_routed_effect_lands_once() {
        let events = [
            "call.ended",
            "message.collected",
            "call.ended:emergency",
            "call.answered",
        ];
        let report = run(&args(200, &events)).await.expect("the bench runs");

        assert!(report.is_exact(), "{}", report.violations());
        // 50 demo requests × 4 integrations, 50 messages × slack, notify and callback,
        // 50 emergencies × slack and notify, 50 answered calls routed nowhere.
        assert_eq!((report.expected_effects, report.effects), (450, 450));
        assert_eq!(
            report.latencies.len(),
            150,
            "one latency per routed webhook"
        );
        assert!(report.percentile(99.0) <= report.latencies[149]);
        assert!(report.wall > Duration::ZERO && report.effect_bytes > 0);
        let summary = report.summary();
        assert!(
            summary.contains(" effects=450/450 missing=0 doubled=0 "),
            "{summary}"
        );
    }

    #[test]
    fn given_an_effect_twice_and_one_never_then_the_report_counts_both() {
        let keys = ["call.ended#a".to_owned(), "call.ended#b".to_owned()];
        let started = Instant::now();
        let effects = Effects::new(&keys, started);
        let prepared = load::Prepared {
            bodies: Vec::new(),
            signatures: Vec::new(),
            keys: keys.to_vec(),
            routes: vec![[true, false, true, false, false]; 2],
        };
        let (crm, slack) = (Integration::Crm, Integration::Slack);
        effects.record("call.ended#a", crm);
        effects.record("call.ended#a", crm);
        effects.record("call.ended#a", slack);
        effects.record("call.ended#b", crm);
        effects.record("call.ended#unknown", crm);
        let posted = load::Posted::new(keys.len());

        let report = BenchReport::new(&args(2, &[]), &prepared, &posted, &effects, (0, 0, 0));

        let counted = (report.missing, report.doubled, report.unexpected);
        assert_eq!(
            counted,
            (1, 1, 1),
            "b's slack missing, a's crm twice, one unknown key"
        );
        assert_eq!((report.effects, report.expected_effects), (5, 4));
        assert_eq!(report.latencies.len(), 1, "only a landed whole");
        assert!(!report.is_exact());
        let violations = report.violations();
        assert!(violations.contains("1 effects doubled"), "{violations}");
    }
}
