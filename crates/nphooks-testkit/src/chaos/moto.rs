//! The soak on the real adapters against moto: `DynamoLedger`, `DynamoClaims` and
//! `SqsQueue` on the real SDK clients, each signing as its own function, through the
//! fault proxy's seeded schedule (every AWS fault it knows); crash points (a handler
//! future dropped at a random await point); the simulated NextPhone; the five processors
//! fed by an event source from moto's queues (real visibility timeouts, receive counts,
//! moto's redrive to the DLQs). The same plan, sender, sinks and ledger check as the
//! in-memory soak ([`super::soak`]).
//!
//! Time. Real IO cannot run on paused time, so the driver runs in rounds: each round
//! sends the requests due and runs two batch invocations per integration,
//! concurrently, and waits for all of them; then the clock moves on by [`SCALE`] times
//! the wall time the round took (or jumps to the sender's next retry when nothing is in
//! flight). Within a round the clock stands still, as a Lambda's lease outlives its
//! invocation; SQS delays are asked for scaled ([`ScaledDelays`]), the SDK's own retry
//! backoff is scaled the same way, and visibility timeouts are a few real seconds.
//!
//! Speed. moto answers one call at a time; the port calls take turns behind a gate
//! ([`MOTO_PERMITS`]) so that none times out waiting in moto's queue, and the wall time
//! is moto's: about 6.5 proxied calls per delivery.

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use nphooks_core::aws::Timeouts;
use nphooks_core::claims::DynamoClaims;
use nphooks_core::clock::{Clock, from_epoch_millis};
use nphooks_core::ledger::DynamoLedger;
use nphooks_core::queue::SqsQueue;
use nphooks_core::rate_limit::DynamoRateLimiter;
use nphooks_processor::{AWS_TIMEOUTS, ProcessorConfig, ProcessorDeps, process_records};

use super::moto_sqs::{self, ScaledDelays};
use super::plan::FaultPlan;
use super::ports::{ChaosClaims, ChaosLedger, ChaosQueue};
use super::report::{Counters, SoakError, SoakReport};
use super::rng::SplitMix64;
use super::sender::NextPhone;
use super::sink::{EffectLog, RecordingSink};
use super::soak::{BrokenGuard, INTEGRATIONS, SoakConfig, receiver_config};
use crate::fault_proxy::{Fault, FaultProxy};
use crate::{Moto, RECEIVER_FUNCTION, function_id};

/// The clock runs this many times faster than wall time between rounds.
pub const SCALE: u32 = 100;
/// The receiver's SDK timeouts (as in `functions/receiver/src/main.rs`).
const RECEIVER_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_millis(500),
    attempt: Duration::from_millis(700),
    operation: Duration::from_millis(1500),
};
/// A processor invocation's deadline, and when it is killed past it (a Lambda timeout).
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(6);
const KILL_AFTER: Duration = Duration::from_secs(8);
/// Real seconds a received message stays hidden: longer than an invocation can live.
const VISIBILITY_SECS: i32 = 10;
const BATCH_SIZE: i32 = 10;
/// Batch invocations per integration per round (moto takes receives in turn, so two on
/// one queue are safe), and receiver requests per round.
const BATCHES_PER_ROUND: usize = 2;
const REQUESTS_PER_ROUND: usize = 30;
/// Port calls of the receiver and the processors in moto at once. moto takes DynamoDB and
/// SQS calls in turn (`scripts/lib/moto_server.py`), 10 to 40 ms each on this machine, so
/// a call queued behind fifty others waited past the receiver's 700 ms attempt timeout:
/// a round of 30 requests was answered 503 throughout, and the sender gave up on a fifth
/// of the webhooks (the soak measured moto's queue, not the pipeline; DynamoDB and SQS
/// answer in milliseconds under such load). Behind the gate a call waits its turn before
/// the SDK starts its clocks; the proxy's stalls still time out.
const MOTO_PERMITS: usize = 4;
/// One webhook every this long (virtual).
const SPACING: Duration = Duration::from_secs(1);
/// The soak gives up when the pipeline has not settled after this much wall time.
const MAX_WALL: Duration = Duration::from_secs(600);
/// Every fault the proxy knows.
pub const AWS_FAULTS: [Fault; 10] = [
    Fault::Throttling,
    Fault::ProvisionedThroughput,
    Fault::InternalError,
    Fault::Unavailable,
    Fault::Validation,
    Fault::ConditionalRace,
    Fault::ForwardTwice,
    Fault::Reset,
    Fault::Stall,
    Fault::LostAnswer,
];

type Claims = ChaosClaims<DynamoClaims>;
type Processor =
    ProcessorDeps<Claims, ScaledDelays<ChaosQueue<SqsQueue>>, RecordingSink, DynamoRateLimiter>;
type Receiver = receiver::Deps<ChaosLedger<DynamoLedger>, ChaosQueue<SqsQueue>>;

/// Runs the soak against the moto server at `AWS_ENDPOINT_URL`, on a real-time runtime.
pub async fn run_on_moto(config: SoakConfig) -> Result<SoakReport, SoakError> {
    let wall = Instant::now();
    let moto = Moto::start("soak-moto").await;
    for integration in INTEGRATIONS {
        moto_sqs::redrive(
            &moto,
            &moto.queue_urls[&integration],
            &moto.dlq_urls[&integration],
        )
        .await;
    }
    let proxy = FaultProxy::start().await;
    proxy.seeded(config.seed, config.fault_rate, &AWS_FAULTS);
    let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let clock = Clock::manual(start);
    // The sinks' faults; the AWS calls' come from the proxy. A plan at rate 0 lets the
    // port wrappers only observe (completions), run broken, and take turns (MOTO_PERMITS).
    let plan = Arc::new(FaultPlan::scaled(
        config.seed,
        config.fault_rate,
        SCALE,
        clock.clone(),
    ));
    let quiet = FaultPlan::scaled(config.seed, 0.0, SCALE, clock.clone()).gated(MOTO_PERMITS);
    let quiet = Arc::new(quiet);
    let log = Arc::new(EffectLog::default());
    let aws_for = |function: &str, timeouts: Timeouts| {
        let scaled_backoff = RetryConfig::standard().with_initial_backoff(
            Duration::from_secs(1) / SCALE, // the SDK's 1 s, on the soak's clock
        );
        proxy
            .aws_for(&moto, function, timeouts)
            .to_builder()
            .retry_config(scaled_backoff)
            .build()
    };
    let receiver_aws = aws_for(RECEIVER_FUNCTION, RECEIVER_TIMEOUTS);
    let receiver: Receiver = receiver::Deps::new(
        receiver_config(moto.queue_urls.clone()),
        ChaosLedger {
            inner: DynamoLedger::connect(&receiver_aws, &moto.table),
            plan: quiet.clone(),
        },
        ChaosQueue {
            inner: SqsQueue::connect(&receiver_aws),
            plan: quiet.clone(),
            hide_failures: config.broken == Some(BrokenGuard::AnswerBeforeSent),
        },
    )
    .with_clock(clock.clone());
    let processors: Vec<Processor> = INTEGRATIONS
        .iter()
        .map(|&integration| {
            let aws = aws_for(function_id(integration), AWS_TIMEOUTS);
            ProcessorDeps {
                config: ProcessorConfig {
                    rate_limit: Some(None),
                    ..ProcessorConfig::local(
                        integration,
                        &moto.table,
                        &moto.queue_urls[&integration],
                        &moto.dlq_urls[&integration],
                    )
                },
                claims: ChaosClaims {
                    inner: DynamoClaims::connect(&aws, &moto.table),
                    plan: quiet.clone(),
                    log: log.clone(),
                    reclaim_completed: config.broken == Some(BrokenGuard::ClaimCompleted),
                },
                queue: ScaledDelays {
                    inner: ChaosQueue {
                        inner: SqsQueue::connect(&aws),
                        plan: quiet.clone(),
                        hide_failures: false,
                    },
                    scale: SCALE,
                },
                sink: RecordingSink {
                    integration,
                    plan: plan.clone(),
                    log: log.clone(),
                },
                limiter: DynamoRateLimiter::connect(&aws, &moto.table),
                clock: clock.clone(),
            }
        })
        .collect();
    let mut sender = NextPhone::new(
        config.seed,
        config.deliveries,
        config.fault_rate,
        clock.epoch_millis(),
        SPACING,
    );
    let mut crashes = SplitMix64::new(config.seed ^ 0xC4A5_4C4A_5400_0001);
    let mut counters = Counters {
        adapters: "moto",
        ..Counters::default()
    };
    let mut round = Instant::now();
    loop {
        clock.advance(round.elapsed() * SCALE);
        round = Instant::now();
        if wall.elapsed() > MAX_WALL {
            return Err(SoakError::DidNotSettle {
                seed: config.seed,
                days: clock
                    .now()
                    .duration_since(start)
                    .unwrap_or_default()
                    .as_secs()
                    / 86_400,
            });
        }
        let now = clock.epoch_millis();
        let mut due = Vec::new();
        while due.len() < REQUESTS_PER_ROUND
            && let Some(send) = sender.pop_due(now)
        {
            due.push((send, crash_point(&mut crashes, config)));
        }
        let requests = due.iter().map(|&((webhook, attempt), crash)| {
            let request = sender.request(webhook);
            let receiver = &receiver;
            async move {
                let run = async { receiver::status(&receiver::receive(receiver, &request).await) };
                let status = unless_dropped(crash, run).await.map(|s| s.as_u16());
                (webhook, attempt, status)
            }
        });
        let invocations = processors.iter().flat_map(|processor| {
            let crashes: Vec<_> = (0..BATCHES_PER_ROUND)
                .map(|_| crash_point(&mut crashes, config))
                .collect();
            let moto = &moto;
            crashes
                .into_iter()
                .map(move |crash| invoke(moto, processor, crash))
        });
        let invocations: Vec<_> = invocations.collect();
        let (answers, invoked) = futures::future::join(
            futures::future::join_all(requests),
            futures::future::join_all(invocations),
        )
        .await;
        let busy = !answers.is_empty() || invoked.iter().any(Option::is_some);
        if std::env::var_os("NPHOOKS_SOAK_PROGRESS").is_some() {
            // Where the wall time goes: moto's calls, the round, the receiver's answers.
            let calls: u64 = proxy.usage().values().map(|u| u.requests).sum();
            let mut statuses = std::collections::BTreeMap::new();
            for (_, _, status) in &answers {
                *statuses.entry(status.unwrap_or(0)).or_insert(0) += 1;
            }
            eprintln!(
                "soak-moto wall={:.0}s virtual={}s requests={} invocations={} calls={calls} \
                 round={}ms answers={statuses:?}",
                wall.elapsed().as_secs_f64(),
                clock
                    .now()
                    .duration_since(start)
                    .unwrap_or_default()
                    .as_secs(),
                counters.requests,
                counters.invocations,
                round.elapsed().as_millis(),
            );
        }
        for (webhook, attempt, status) in answers {
            counters.requests += 1;
            counters.receiver_crashes += u64::from(status.is_none());
            sender.answered(webhook, attempt, status, clock.epoch_millis());
        }
        for crashed in invoked.into_iter().flatten() {
            counters.invocations += 1;
            counters.processor_crashes += u64::from(crashed);
        }
        if !busy && settled(&moto).await {
            match sender.next_due() {
                Some(at) => clock.advance_to(from_epoch_millis(at)),
                None => break,
            }
        } else if !busy {
            // Messages in flight or delayed: they come back in real time.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    counters.virtual_time = clock.now().duration_since(start).unwrap_or_default();
    counters.wall_time = wall.elapsed();
    let mut dead = Vec::new();
    for integration in INTEGRATIONS {
        let url = &moto.dlq_urls[&integration];
        dead.push((integration, moto_sqs::dead_letters(&moto, url).await));
    }
    // The plan drew the sinks' faults only (the AWS calls' are the proxy's).
    let store_side = [
        "error",
        "rejected",
        "crash",
        "rate_limiter",
        "secret_cold_start",
    ];
    let mut faults: Vec<(&'static str, u64)> = plan
        .counts()
        .into_iter()
        .filter(|(class, _)| !store_side.contains(class))
        .map(|(class, n)| match class {
            "lost_answer" => ("sink_lost_answer", n),
            "latency" => ("sink_latency", n),
            "stall" => ("sink_stall", n),
            _ => (class, n),
        })
        .collect();
    for fault in AWS_FAULTS {
        let injected = proxy.injected().iter().filter(|i| i.fault == fault).count();
        faults.push((fault.name(), injected as u64));
    }
    let report = SoakReport::check(&config, &sender, &log, &dead, faults, counters);
    if report.violations.is_empty() {
        Ok(report)
    } else {
        Err(SoakError::Violations(Box::new(report)))
    }
}

/// Whether every integration's queue is empty (nothing visible, in flight or delayed).
async fn settled(moto: &Moto) -> bool {
    for integration in INTEGRATIONS {
        if !moto_sqs::is_empty(moto, &moto.queue_urls[&integration]).await {
            return false;
        }
    }
    true
}

/// One batch invocation of `processor`: `None` when its queue had nothing visible,
/// `Some(crashed)` otherwise (crashed: dropped, or killed past its deadline).
async fn invoke(moto: &Moto, processor: &Processor, crash: Option<u32>) -> Option<bool> {
    let url = &processor.config.source_queue_url;
    let batch = moto_sqs::receive(moto, url, BATCH_SIZE, VISIBILITY_SECS).await;
    if batch.is_empty() {
        return None;
    }
    let deadline = processor.clock.now() + LAMBDA_TIMEOUT;
    let run = tokio::time::timeout(KILL_AFTER, process_records(processor, &batch, deadline));
    let Some(Ok(outcomes)) = unless_dropped(crash, run).await else {
        return Some(true);
    };
    let settled: Vec<_> = batch
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| outcome.is_final())
        .map(|(record, _)| record)
        .collect();
    moto_sqs::delete(moto, url, &settled).await;
    Some(false)
}

/// Whether an invocation crashes, and after how many of its await points.
fn crash_point(rng: &mut SplitMix64, config: SoakConfig) -> Option<u32> {
    let crash = config.crashes && rng.chance(config.fault_rate);
    let after = 1 + rng.below(16) as u32;
    crash.then_some(after)
}

/// Runs `handler` as a Lambda that dies at its `crash`-th await point (if it gets that
/// far): `None` then, the handler future dropped with everything it held.
async fn unless_dropped<F: std::future::Future>(
    crash: Option<u32>,
    handler: F,
) -> Option<F::Output> {
    let mut handler = std::pin::pin!(handler);
    let mut pending = 0;
    std::future::poll_fn(|cx| match handler.as_mut().poll(cx) {
        std::task::Poll::Ready(out) => std::task::Poll::Ready(Some(out)),
        std::task::Poll::Pending => {
            pending += 1;
            if crash.is_some_and(|at| pending >= at) {
                std::task::Poll::Ready(None)
            } else {
                std::task::Poll::Pending
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn given_a_crash_point_then_the_handler_is_dropped_at_that_await_point() {
        let steps = std::sync::atomic::AtomicU32::new(0);
        let handler = || async {
            for _ in 0..5 {
                steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
            "answered"
        };
        assert_eq!(unless_dropped(None, handler()).await, Some("answered"));
        steps.store(0, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(unless_dropped(Some(3), handler()).await, None);
        assert_eq!(steps.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
