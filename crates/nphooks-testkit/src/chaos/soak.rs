//! The soak driver: the simulated NextPhone, the receiver and the five processors on
//! in-memory adapters under one fault plan, on one virtual clock. The driver jumps the
//! clock to the next due event (a send, a message becoming visible), never sleeps, and
//! at the end checks the ledger of what happened ([`super::report`]).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use nphooks_core::claims::MemoryClaims;
use nphooks_core::clock::{Clock, from_epoch_millis};
use nphooks_core::config::ReceiverConfig;
use nphooks_core::ledger::MemoryLedger;
use nphooks_core::rate_limit::{MemoryRateLimiter, RateLimit};
use nphooks_core::routing::{Integration, RoutingTable};
use nphooks_core::secret::Secret;
use nphooks_core::signature::WebhookAuth;
use nphooks_core::window::ReplayWindow;
use nphooks_processor::{ProcessorConfig, ProcessorDeps, process_records};
use nphooks_samples::{TEST_API_KEY, TEST_WEBHOOK_SECRET};

use super::plan::{FaultPlan, unless_crashed};
use super::ports::{ChaosClaims, ChaosLedger, ChaosLimiter, ChaosQueue, Instance};
use super::report::{Counters, SoakError, SoakReport};
use super::sender::NextPhone;
use super::sink::{EffectLog, RecordingSink};
use super::sqs::SimQueue;

/// One soak run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoakConfig {
    pub deliveries: usize,
    /// Faults per port call (and the sender's duplicate and lost-answer rate).
    pub fault_rate: f64,
    pub seed: u64,
    /// Whether faults include crashes (a handler dropped at a port call).
    pub crashes: bool,
    /// Run without one guard, to show the soak catches it.
    pub broken: Option<BrokenGuard>,
}

/// Which guard a soak runs without (test-only adapters in [`super::ports`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenGuard {
    /// A claim on a `completed` effect succeeds.
    ClaimCompleted,
    /// The receiver answers 2xx although a send failed.
    AnswerBeforeSent,
}

pub(crate) const INTEGRATIONS: [Integration; 5] = Integration::ALL;
/// The processors' Lambda timeout, and their queues' visibility timeout (6 ×).
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(30);
const VISIBILITY: Duration = Duration::from_secs(180);
const BATCH_SIZE: usize = 10;
/// One webhook every this long.
const SPACING: Duration = Duration::from_millis(100);
/// The soak gives up (an error) when the pipeline has not settled by then.
const MAX_VIRTUAL: Duration = Duration::from_secs(14 * 24 * 3600);

type Claims = Arc<ChaosClaims<MemoryClaims>>;
type Processor = ProcessorDeps<
    Claims,
    ChaosQueue<Arc<SimQueue>>,
    RecordingSink,
    ChaosLimiter<MemoryRateLimiter>,
>;
/// Each destination's rate limit: it binds when retries bunch up.
const RATE_LIMIT: RateLimit = RateLimit::new(10, Duration::from_secs(1));
type Receiver = receiver::Deps<ChaosLedger<MemoryLedger>, ChaosQueue<Arc<SimQueue>>>;

fn queue_url(integration: Integration) -> String {
    format!("sim://{integration}")
}

fn dlq_url(integration: Integration) -> String {
    format!("sim://{integration}-dlq")
}

/// Runs the soak on a current-thread tokio runtime with paused time (latency and
/// stalls cost no wall time).
pub fn run_blocking(config: SoakConfig) -> Result<SoakReport, SoakError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(SoakError::Runtime)?
        .block_on(run(config))
}

/// Runs the soak; must run on a runtime with paused time ([`run_blocking`]).
pub async fn run(config: SoakConfig) -> Result<SoakReport, SoakError> {
    let wall = std::time::Instant::now();
    let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let clock = Clock::manual(start);
    let plan = Arc::new(FaultPlan::new(
        config.seed,
        config.fault_rate,
        config.crashes,
        clock.clone(),
    ));
    let redrive = INTEGRATIONS.map(|i| (queue_url(i), dlq_url(i)));
    let sqs = Arc::new(SimQueue::new(clock.clone(), redrive));
    let log = Arc::new(EffectLog::default());
    let queue = ChaosQueue {
        inner: sqs.clone(),
        plan: plan.clone(),
        hide_failures: false,
    };
    let receiver = receiver_deps(&config, &plan, queue.clone(), &clock);
    let claims: Claims = Arc::new(ChaosClaims {
        inner: MemoryClaims::new(),
        plan: plan.clone(),
        log: log.clone(),
        reclaim_completed: config.broken == Some(BrokenGuard::ClaimCompleted),
    });
    let processors: Vec<Processor> = INTEGRATIONS
        .iter()
        .map(|&integration| ProcessorDeps {
            config: ProcessorConfig {
                rate_limit: Some(Some(RATE_LIMIT)),
                ..ProcessorConfig::local(
                    integration,
                    "soak",
                    &queue_url(integration),
                    &dlq_url(integration),
                )
            },
            claims: claims.clone(),
            queue: queue.clone(),
            sink: RecordingSink {
                integration,
                plan: plan.clone(),
                log: log.clone(),
            },
            limiter: ChaosLimiter {
                inner: MemoryRateLimiter::new(),
                plan: plan.clone(),
            },
            clock: clock.clone(),
        })
        .collect();
    let start_ms = clock.epoch_millis();
    let mut sender = NextPhone::new(
        config.seed,
        config.deliveries,
        config.fault_rate,
        start_ms,
        SPACING,
    );
    let mut receiver_instance = Instance::default();
    let mut instances: Vec<Instance> = INTEGRATIONS.map(|_| Instance::default()).into();
    let mut counters = Counters {
        adapters: "memory",
        ..Counters::default()
    };
    loop {
        let next = processors
            .iter()
            .filter_map(|p| sqs.next_visible(&p.config.source_queue_url))
            .chain(sender.next_due())
            .min();
        let Some(next) = next else {
            break;
        };
        clock.advance_to(from_epoch_millis(next));
        if clock.now().duration_since(start).unwrap_or_default() > MAX_VIRTUAL {
            return Err(SoakError::DidNotSettle {
                seed: config.seed,
                days: MAX_VIRTUAL.as_secs() / 86_400,
            });
        }
        while let Some((webhook, attempt)) = sender.pop_due(clock.epoch_millis()) {
            plan.begin_invocation();
            counters.requests += 1;
            if !receiver_instance.start(&plan).await {
                // The cold start could not read the secret: API Gateway answers 502.
                plan.sync();
                sender.answered(webhook, attempt, Some(502), clock.epoch_millis());
                continue;
            }
            let request = sender.request(webhook);
            let result = unless_crashed(&plan, receiver::receive(&receiver, &request)).await;
            plan.sync();
            let status = result.map(|r| receiver::status(&r).as_u16());
            if status.is_none() {
                counters.receiver_crashes += 1;
                receiver_instance.crashed();
            }
            sender.answered(webhook, attempt, status, clock.epoch_millis());
        }
        for (processor, instance) in processors.iter().zip(&mut instances) {
            let url = &processor.config.source_queue_url;
            let batch = sqs.receive(url, BATCH_SIZE, VISIBILITY);
            if batch.is_empty() {
                continue;
            }
            plan.begin_invocation();
            counters.invocations += 1;
            if !instance.start(&plan).await {
                // The batch goes back to the queue after its visibility timeout.
                plan.sync();
                continue;
            }
            let deadline = processor.clock.now() + LAMBDA_TIMEOUT;
            let run = process_records(processor, &batch, deadline);
            let outcomes = unless_crashed(&plan, run).await;
            plan.sync();
            let Some(outcomes) = outcomes else {
                counters.processor_crashes += 1;
                instance.crashed();
                continue;
            };
            for (record, outcome) in batch.iter().zip(outcomes) {
                if outcome.is_final() {
                    sqs.delete(record.receipt_handle.as_deref().unwrap_or_default());
                }
            }
        }
    }
    counters.virtual_time = clock.now().duration_since(start).unwrap_or_default();
    counters.wall_time = wall.elapsed();
    let dead = INTEGRATIONS.map(|i| (i, sqs.dead_letters(&dlq_url(i))));
    let report = SoakReport::check(&config, &sender, &log, &dead, plan.counts(), counters);
    if report.violations.is_empty() {
        Ok(report)
    } else {
        Err(SoakError::Violations(Box::new(report)))
    }
}

fn receiver_deps(
    config: &SoakConfig,
    plan: &Arc<FaultPlan>,
    queue: ChaosQueue<Arc<SimQueue>>,
    clock: &Clock,
) -> Receiver {
    let ledger = ChaosLedger {
        inner: MemoryLedger::new(),
        plan: plan.clone(),
    };
    let queue = ChaosQueue {
        hide_failures: config.broken == Some(BrokenGuard::AnswerBeforeSent),
        ..queue
    };
    let urls = INTEGRATIONS.map(|i| (i, queue_url(i)));
    receiver::Deps::new(receiver_config(urls), ledger, queue).with_clock(clock.clone())
}

/// The receiver's configuration in a soak: the test secret and API key, the default
/// routes, these queues.
pub(crate) fn receiver_config(
    queue_urls: impl IntoIterator<Item = (Integration, String)>,
) -> ReceiverConfig {
    ReceiverConfig {
        auth: WebhookAuth::new(
            vec![Secret::new(TEST_WEBHOOK_SECRET)],
            Some(&Secret::new(TEST_API_KEY)),
        ),
        idempotency_table: "soak".to_owned(),
        queue_urls: queue_urls.into_iter().collect(),
        routes: RoutingTable::default_table(),
        max_body_bytes: 1024 * 1024,
        replay_window: ReplayWindow::default(),
    }
}
