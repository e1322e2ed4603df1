//! The receiver's handler: `authenticate → parse → dedupe → route → enqueue → answer`.
//! The answers themselves are in [`crate::answer`].

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use lambda_http::http::{HeaderValue, Method, header};
use lambda_http::{Body, Request, Response};
use nphooks_core::clock::Clock;
use nphooks_core::config::ReceiverConfig;
use nphooks_core::delivery::{DeliveryKey, payload_hash};
use nphooks_core::envelope::QueueMessage;
use nphooks_core::ledger::{Begin, DeliveryLedger};
use nphooks_core::queue::Queue;
use nphooks_core::routing::Integration;
use nphooks_core::samples::WEBHOOK_PATH;
use nphooks_core::signature::SIGNATURE_HEADER;
use nphooks_core::store_error::StoreError;
use nphooks_core::webhook::Event;

use crate::answer::{LOGGED_CALL_ID_CHARS, Outcome, ReceiverError, Seen, answer, log_line};

/// The whole request must finish inside this, well under the sender's 5 s.
pub const RECEIVE_BUDGET: Duration = Duration::from_millis(3500);

/// What the receiver needs: its config and one adapter per port.
#[derive(Debug)]
pub struct Deps<L, Q> {
    pub config: ReceiverConfig,
    pub ledger: L,
    pub queue: Q,
    pub metrics: Metrics,
    /// The current time (the wall clock, unless a test sets it).
    pub clock: Clock,
}

impl<L, Q> Deps<L, Q> {
    pub fn new(config: ReceiverConfig, ledger: L, queue: Q) -> Self {
        Deps {
            config,
            ledger,
            queue,
            metrics: Metrics::default(),
            clock: Clock::system(),
        }
    }

    /// The same deps, reading the time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}

/// Counters for what is logged as a warning. Each increment is also logged as a
/// CloudWatch Embedded Metric (`nphooks` namespace).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Same delivery key, different body: nothing new accepted.
    pub payload_conflicts: AtomicU64,
    /// The idempotency table failed; the webhook was enqueued without deduplication.
    pub dedup_unavailable: AtomicU64,
    /// Optional fields of an unexpected type, read as absent or coerced (one per field).
    pub schema_drift: AtomicU64,
    /// Signed webhooks whose `timestamp` is older than the replay window.
    pub stale_webhooks: AtomicU64,
    /// Requests answered 401.
    pub unauthorized: AtomicU64,
}

impl Metrics {
    fn count(counter: &AtomicU64, name: &str) {
        Self::add(counter, name, 1);
    }

    fn add(counter: &AtomicU64, name: &str, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
        tracing::warn!(metric = name, value, "{name}");
        nphooks_core::emit_metric("receiver", name, value);
    }
}

/// Handles one API Gateway request. Never fails: every problem becomes an answer.
pub async fn handle<L: DeliveryLedger, Q: Queue>(
    deps: &Deps<L, Q>,
    request: Request,
) -> Response<Body> {
    let started = Instant::now();
    let mut seen = Seen::default();
    let result = tokio::time::timeout(RECEIVE_BUDGET, receive(deps, &request, &mut seen))
        .await
        .unwrap_or(Err(ReceiverError::Timeout));
    log_line(&result, &seen, started.elapsed());
    answer(result)
}

async fn receive<L: DeliveryLedger, Q: Queue>(
    deps: &Deps<L, Q>,
    request: &Request,
    seen: &mut Seen,
) -> Result<Outcome, ReceiverError> {
    if request.uri().path() != WEBHOOK_PATH {
        return Err(ReceiverError::NotFound(request.uri().path().to_owned()));
    }
    if request.method() != Method::POST {
        return Err(ReceiverError::MethodNotAllowed(request.method().clone()));
    }
    let body: &[u8] = request.body().as_ref();
    if body.len() > deps.config.max_body_bytes {
        return Err(ReceiverError::TooLarge {
            size: body.len(),
            limit: deps.config.max_body_bytes,
        });
    }
    let header = |name: &str| request.headers().get(name).map(HeaderValue::as_bytes);
    let webhook = deps
        .config
        .auth
        .verify(
            header(SIGNATURE_HEADER),
            header(header::AUTHORIZATION.as_str()),
            body,
        )
        .map_err(|failure| {
            Metrics::count(&deps.metrics.unauthorized, "Unauthorized");
            ReceiverError::Unauthorized(failure)
        })?
        .parse()
        .map_err(ReceiverError::BadRequest)?;
    seen.event = Some(webhook.event.name().to_owned());
    seen.call_id = Some(
        webhook
            .data
            .call_id
            .chars()
            .take(LOGGED_CALL_ID_CHARS)
            .collect(),
    );
    if !webhook.drift().is_empty() {
        let fields = webhook.drift().join(",");
        tracing::warn!(fields, "schema drift: fields read as absent or coerced");
        let drifted = u64::try_from(webhook.drift().len()).unwrap_or(u64::MAX);
        Metrics::add(&deps.metrics.schema_drift, "SchemaDrift", drifted);
        seen.drift = Some(fields);
    }
    let now = deps.clock.epoch_seconds();

    if let Event::Unknown(name) = &webhook.event {
        return Ok(Outcome::Ignored {
            key: None,
            reason: format!("unknown event {name:?}"),
        });
    }
    let key = DeliveryKey::for_webhook(&webhook);
    seen.delivery_key = Some(key.to_string());
    let window = deps.config.replay_window;
    if webhook
        .sent_at()
        .is_some_and(|sent| window.is_stale(sent, now))
    {
        Metrics::count(&deps.metrics.stale_webhooks, "StaleWebhook");
        return Ok(Outcome::Ignored {
            key: Some(key),
            reason: "stale".into(),
        });
    }
    let route = deps.config.routes.route_for(&webhook);
    let hash = payload_hash(body);

    let recorded = match deps.ledger.begin(&key, &hash, now, window).await {
        Ok(Begin::Started) => true,
        Ok(Begin::AlreadyEnqueued { same_payload }) => {
            if !same_payload {
                Metrics::count(
                    &deps.metrics.payload_conflicts,
                    "DeliveryKeyPayloadConflict",
                );
            }
            return Ok(Outcome::Duplicate { key });
        }
        Ok(Begin::InProgress { same_payload }) => {
            if !same_payload {
                Metrics::count(
                    &deps.metrics.payload_conflicts,
                    "DeliveryKeyPayloadConflict",
                );
            }
            return Err(ReceiverError::InProgress(key));
        }
        // The table refused the request itself: the processors' claims would be refused
        // too, so enqueueing would only fill the DLQs. A bug to fix; the sender retries.
        Err(error @ StoreError::Rejected { .. }) => {
            tracing::error!(%error, "the idempotency table refused the delivery record");
            return Err(ReceiverError::StoreRejected(key));
        }
        // Fail open: the processors deduplicate per integration, so a duplicate enqueue
        // is harmless, while refusing would leave the sender's retries to chance.
        Err(error) => {
            tracing::error!(%error, "idempotency table unavailable; enqueueing without deduplication");
            Metrics::count(&deps.metrics.dedup_unavailable, "DedupUnavailable");
            false
        }
    };

    let message =
        QueueMessage::for_delivery(&webhook, &key, &nphooks_core::rfc3339(deps.clock.now()));
    if let Err(failed) = enqueue(deps, &message, &route).await {
        if recorded {
            // Let the sender's retry start afresh. If this fails too, the record's
            // lease runs out long before the first retry (5 min) and it is taken over.
            if let Err(error) = deps.ledger.abandon(&key, &hash).await {
                tracing::error!(%error, "could not release the delivery record");
            }
        }
        return Err(failed);
    }
    if recorded {
        let queues: Vec<Integration> = route.iter().copied().collect();
        if let Err(error) = deps
            .ledger
            .complete(&key, &queues, Some(message.body()), now)
            .await
        {
            // The messages are durable; a retry would re-enqueue and the processors
            // would deduplicate it.
            tracing::error!(%error, "enqueued, but could not mark the delivery record");
        }
    }
    Ok(if route.is_empty() {
        Outcome::Ignored {
            key: Some(key),
            reason: "no route matches this webhook".into(),
        }
    } else {
        Outcome::Accepted {
            key,
            queues: route,
            deduplicated: recorded,
        }
    })
}

/// Sends the envelope to every routed queue at once and checks every result.
async fn enqueue<S, Q: Queue>(
    deps: &Deps<S, Q>,
    message: &QueueMessage,
    route: &BTreeSet<Integration>,
) -> Result<(), ReceiverError> {
    let sends =
        route.iter().map(|integration| async move {
            let url = deps.config.queue_urls.get(integration).ok_or_else(|| {
                nphooks_core::Error::Config {
                    name: integration.queue_url_var(),
                    problem: "is not set".into(),
                }
            })?;
            deps.queue.send(url, message).await
        });
    let mut failed = Vec::new();
    for (integration, result) in route.iter().zip(join_all(sends).await) {
        if let Err(error) = result {
            tracing::error!(%error, queue = integration.as_str(), "enqueue failed");
            failed.push(integration.as_str());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(ReceiverError::EnqueueFailed(failed.join(", ")))
    }
}
