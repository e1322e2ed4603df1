//! `nphooks serve`: the receiver's handler behind `POST /webhook/nextphone` on loopback,
//! and every processor's handler fed from the queues as the Lambda event source would
//! (batches, visibility timeout, redrive to the DLQ after `maxReceiveCount`).
//!
//! Offline (the default) it runs on the in-memory ledger, claims and queues; with `--aws` or
//! `AWS_ENDPOINT_URL` set it uses DynamoDB and SQS (a moto server after `init-local`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use nphooks_core::claims::{DynamoClaims, EffectClaims, MemoryClaims};
use nphooks_core::config::{ReceiverConfig, Settings};
use nphooks_core::ledger::{DeliveryLedger, DynamoLedger, MemoryLedger};
use nphooks_core::queue::{MemoryQueue, Queue, SqsQueue};
use nphooks_core::routing::Integration;
use nphooks_processor::config::retry_policy;
use nphooks_samples::TEST_WEBHOOK_SECRET;

use crate::dashboard::memory::{Journal, Journaled, MemorySource};
use crate::event_source::Pipeline;
use crate::http_server;
use crate::progress::{Tracker, line};
use crate::queues::{QueueSource, SqsSource};
use crate::sinks::{AnySink, Outbox};

/// Names of what `init-local` creates and `serve --aws` uses: `<prefix>-idempotency`,
/// `<prefix>-<integration>` and `<prefix>-<integration>-dlq`, where the prefix is
/// `NPHOOKS_LOCAL_PREFIX` (default `nphooks`) so several stacks can share one moto server.
pub const LOCAL_PREFIX_VAR: &str = "NPHOOKS_LOCAL_PREFIX";

fn prefix() -> String {
    std::env::var(LOCAL_PREFIX_VAR)
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "nphooks".to_owned())
}

pub fn default_table() -> String {
    format!("{}-idempotency", prefix())
}

pub fn queue_name(integration: Integration) -> String {
    format!("{}-{integration}", prefix())
}

pub fn dlq_name(integration: Integration) -> String {
    format!("{}-{integration}-dlq", prefix())
}

/// How `serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub port: u16,
    pub aws: bool,
    pub outbox: PathBuf,
    /// How long a received message stays hidden before a retry (the template uses
    /// 6 × the function timeout; locally shorter, so retries are seen).
    pub visibility: Duration,
    pub batch_size: usize,
    /// How long each processor invocation may run.
    pub invocation_timeout: Duration,
    /// Concurrent batches per integration (the event source's concurrency).
    pub pollers: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            port: 3000,
            aws: false,
            outbox: PathBuf::from("outbox"),
            visibility: Duration::from_secs(10),
            batch_size: 10,
            invocation_timeout: Duration::from_secs(30),
            pollers: 1,
        }
    }
}

/// The running pipeline.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub tracker: Arc<Tracker>,
    pub outbox: Arc<Outbox>,
    pub previews: Vec<Integration>,
    /// The in-memory state, for the dashboard (none with `--aws`).
    memory: Option<Arc<MemorySource>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// What the dashboard reads of this pipeline: its in-memory state, or (`--aws`, moto
    /// included) its table and DLQs.
    pub fn dashboard_source(
        &self,
        settings: Settings,
        aws: aws_config::SdkConfig,
    ) -> Arc<dyn crate::dashboard::DashboardSource> {
        match &self.memory {
            Some(memory) => memory.clone(),
            None => Arc::new(crate::dashboard::AwsSource::new(aws, settings)),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Fills in what an offline run needs and the user did not set: the documented test
/// secret, the default table name, and (offline) in-memory queue URLs.
pub fn with_local_defaults(settings: &Settings, aws: bool) -> Settings {
    let mut pairs = settings.pairs();
    let mut default = |name: &str, value: String| {
        if settings.optional(name).is_none() {
            pairs.push((name.to_owned(), value));
        }
    };
    default("NEXTPHONE_WEBHOOK_SECRETS", TEST_WEBHOOK_SECRET.to_owned());
    default("NPHOOKS_ALLOW_HTTP", "1".to_owned());
    default("IDEMPOTENCY_TABLE", default_table());
    if !aws {
        for integration in Integration::ALL {
            default(
                integration.queue_url_var(),
                format!("local://{}", queue_name(integration)),
            );
        }
    }
    Settings::from_pairs(pairs)
}

/// Starts the pipeline and returns once it is listening.
pub async fn start(settings: Settings, options: &ServeOptions) -> anyhow::Result<Running> {
    let listener = http_server::bind(([127, 0, 0, 1], options.port).into()).await?;
    let addr = http_server::local_addr(&listener)?;
    let outbox = Outbox::start(options.outbox.clone()).await?;
    let tracker = Arc::new(Tracker::default());
    let aws_config = nphooks_core::aws::sdk_config(nphooks_processor::AWS_TIMEOUTS).await;
    let allow_http = nphooks_processor::config::allow_http(&settings)?;

    if options.aws {
        let sqs = aws_sdk_sqs::Client::new(&aws_config);
        let settings = resolve_queue_urls(settings, &sqs).await?;
        let receiver = ReceiverConfig::from_settings(&settings)?;
        let ledger = DynamoLedger::connect(&aws_config, &receiver.idempotency_table);
        let claims = Arc::new(DynamoClaims::connect(
            &aws_config,
            &receiver.idempotency_table,
        ));
        let queue = Arc::new(SqsQueue::connect(&aws_config));
        let source = Arc::new(SqsSource {
            client: sqs.clone(),
        });
        let mut dlqs = BTreeMap::new();
        for integration in Integration::ALL {
            dlqs.insert(integration, queue_url(&sqs, &dlq_name(integration)).await?);
        }
        launch(
            listener,
            addr,
            settings,
            receiver,
            ledger,
            claims,
            queue,
            source,
            dlqs,
            allow_http,
            &aws_config,
            outbox,
            tracker,
            options,
        )
    } else {
        let receiver = ReceiverConfig::from_settings(&settings)?;
        let (queues, dlqs) = memory_queues(&receiver);
        // The dashboard's view of this run: the ledger and claims report to a journal.
        let journal = Arc::new(Journal::default());
        let claims = Arc::new(Journaled {
            inner: MemoryClaims::new(),
            journal: journal.clone(),
        });
        let source = MemorySource {
            journal: journal.clone(),
            claims: claims.clone(),
            queue: queues.clone(),
            urls: receiver
                .queue_urls
                .iter()
                .map(|(i, url)| (*i, (url.clone(), dlqs[i].clone())))
                .collect(),
            table: receiver.idempotency_table.clone(),
            settings: settings.clone(),
            aws: aws_config.clone(),
            outbox: outbox.clone(),
        };
        let mut running = launch(
            listener,
            addr,
            settings,
            receiver,
            Journaled {
                inner: MemoryLedger::new(),
                journal,
            },
            claims,
            queues.clone(),
            queues,
            dlqs,
            allow_http,
            &aws_config,
            outbox,
            tracker,
            options,
        )?;
        running.memory = Some(Arc::new(source));
        Ok(running)
    }
}

/// Offline queues: each integration's queue redriving to its DLQ `local://<prefix>-<x>-dlq`.
pub(crate) fn memory_queues(
    receiver: &ReceiverConfig,
) -> (Arc<MemoryQueue>, BTreeMap<Integration, String>) {
    let dlqs: BTreeMap<Integration, String> = Integration::ALL
        .into_iter()
        .map(|i| (i, format!("local://{}", dlq_name(i))))
        .collect();
    let redrive = receiver
        .queue_urls
        .iter()
        .map(|(integration, url)| (url.clone(), dlqs[integration].clone()));
    (Arc::new(MemoryQueue::with_redrive(redrive)), dlqs)
}

/// `<X>_QUEUE_URL` when set, else the URL of the queue `init-local` names `nphooks-<x>`.
async fn resolve_queue_urls(
    settings: Settings,
    sqs: &aws_sdk_sqs::Client,
) -> anyhow::Result<Settings> {
    let mut pairs = settings.pairs();
    for integration in Integration::ALL {
        if settings.optional(integration.queue_url_var()).is_none() {
            pairs.push((
                integration.queue_url_var().to_owned(),
                queue_url(sqs, &queue_name(integration)).await?,
            ));
        }
    }
    Ok(Settings::from_pairs(pairs))
}

pub async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> anyhow::Result<String> {
    sqs.get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "queue {name} was not found ({}): run `nphooks init-local` against the moto server, or set its *_QUEUE_URL",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?
        .queue_url
        .ok_or_else(|| anyhow::anyhow!("queue {name} has no URL"))
}

#[allow(clippy::too_many_arguments)]
fn launch<L, C, Q, Src>(
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    settings: Settings,
    receiver_config: ReceiverConfig,
    ledger: L,
    claims: Arc<C>,
    queue: Arc<Q>,
    source: Arc<Src>,
    dlqs: BTreeMap<Integration, String>,
    allow_http: bool,
    aws_config: &aws_config::SdkConfig,
    outbox: Arc<Outbox>,
    tracker: Arc<Tracker>,
    options: &ServeOptions,
) -> anyhow::Result<Running>
where
    L: DeliveryLedger + 'static,
    C: EffectClaims + 'static,
    Q: Queue + 'static,
    Src: QueueSource + 'static,
{
    let mut previews = Vec::new();
    let mut sinks = Vec::new();
    for integration in receiver_config.queue_urls.keys().copied() {
        let sink =
            AnySink::for_integration(integration, &settings, allow_http, aws_config, &outbox)?;
        if sink.is_preview() {
            previews.push(integration);
        }
        sinks.push((integration, sink));
    }
    let pipeline = Pipeline {
        receiver_config: &receiver_config,
        claims,
        queue: queue.clone(),
        source,
        dlqs: &dlqs,
        allow_http,
        retry: retry_policy(&settings, receiver_config.replay_window)?,
        options,
    };
    let mut tasks = pipeline.spawn_processors(sinks, tracker.clone());

    let deps = Arc::new(receiver::Deps::new(receiver_config, ledger, queue));
    let server_tracker = tracker.clone();
    tasks.push(http_server::spawn(listener, move |request| {
        let deps = deps.clone();
        let tracker = server_tracker.clone();
        async move { webhook(&deps, &tracker, request).await }
    }));
    Ok(Running {
        addr,
        tracker,
        outbox,
        previews,
        memory: None,
        tasks,
    })
}

/// The receiver's handler on one request: its result, and the HTTP answer.
pub(crate) async fn respond<L: DeliveryLedger, Q: Queue>(
    deps: &receiver::Deps<L, Arc<Q>>,
    request: http_server::FullRequest,
) -> (
    Result<receiver::Outcome, receiver::ReceiverError>,
    hyper::Response<Full<Bytes>>,
) {
    let (parts, body) = request.into_parts();
    let request = lambda_http::Request::from_parts(parts, lambda_http::Body::Binary(body.to_vec()));
    let result = receiver::receive(deps, &request).await;
    let (parts, body) = receiver::answer(&result).into_parts();
    let bytes = Bytes::copy_from_slice(body.as_ref());
    (result, hyper::Response::from_parts(parts, Full::new(bytes)))
}

/// One webhook through the receiver's own handler.
async fn webhook<L: DeliveryLedger, Q: Queue>(
    deps: &receiver::Deps<L, Arc<Q>>,
    tracker: &Tracker,
    request: http_server::FullRequest,
) -> hyper::Response<Full<Bytes>> {
    let started = Instant::now();
    let (result, response) = respond(deps, request).await;
    let elapsed = started.elapsed().as_millis();
    match &result {
        Ok(receiver::Outcome::Accepted { key, queues, .. }) => {
            line(format!(
                "← {key} accepted → {} ({elapsed} ms)",
                queues
                    .iter()
                    .map(|i| i.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            tracker.expect(key.as_str(), queues.clone());
        }
        Ok(outcome) => line(format!(
            "← {} {}{} ({elapsed} ms)",
            outcome.key().map_or("-", |key| key.as_str()),
            outcome.name(),
            match outcome {
                receiver::Outcome::Ignored { reason, .. } => format!(": {reason}"),
                _ => String::new(),
            }
        )),
        Err(error) => line(format!(
            "← {} {}: {error} ({elapsed} ms)",
            response.status().as_u16(),
            error.code(),
        )),
    }
    response
}
