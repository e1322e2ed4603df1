//! The receiver's handler. Every answer's HTTP status is decided in [`ReceiverError::status`]
//! and [`Outcome`]'s arm of [`answer`].

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures::future::join_all;
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use nphooks_core::config::ReceiverConfig;
use nphooks_core::delivery::{DeliveryKey, payload_hash};
use nphooks_core::envelope::QueueMessage;
use nphooks_core::idempotency::{Begin, IdempotencyStore};
use nphooks_core::queue::Queue;
use nphooks_core::routing::Integration;
use nphooks_core::samples::WEBHOOK_PATH;
use nphooks_core::signature::{AuthFailure, SIGNATURE_HEADER};
use nphooks_core::webhook::Event;
use serde_json::json;

/// The whole request must finish inside this, well under the sender's 5 s.
pub const RECEIVE_BUDGET: Duration = Duration::from_millis(3500);

/// What the receiver needs: its config and one adapter per port.
#[derive(Debug)]
pub struct Deps<S, Q> {
    pub config: ReceiverConfig,
    pub store: S,
    pub queue: Q,
    pub metrics: Metrics,
}

impl<S, Q> Deps<S, Q> {
    pub fn new(config: ReceiverConfig, store: S, queue: Q) -> Self {
        Deps {
            config,
            store,
            queue,
            metrics: Metrics::default(),
        }
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
}

impl Metrics {
    fn count(counter: &AtomicU64, name: &str) {
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(metric = name, "{name}");
        nphooks_core::emit_count("receiver", name);
    }
}

/// How a request ended well.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// In every routed queue.
    Accepted {
        key: DeliveryKey,
        queues: BTreeSet<Integration>,
        deduplicated: bool,
    },
    /// Enqueued earlier.
    Duplicate { key: DeliveryKey },
    /// Nothing to enqueue.
    Ignored {
        key: Option<DeliveryKey>,
        reason: String,
    },
}

/// How a request ended badly. Each message names the problem.
#[derive(Debug, thiserror::Error)]
enum ReceiverError {
    #[error("no route for {0}; webhooks are received at POST {WEBHOOK_PATH}")]
    NotFound(String),
    #[error("method {0} is not allowed; use POST")]
    MethodNotAllowed(Method),
    #[error("body is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("{0}")]
    Unauthorized(AuthFailure),
    #[error("{0}")]
    BadRequest(nphooks_core::Error),
    #[error("delivery {0} is being enqueued by another request; retry later")]
    InProgress(DeliveryKey),
    #[error("could not enqueue to the {0} queue; retry later")]
    EnqueueFailed(String),
    #[error("the request did not finish within {}ms; retry later", RECEIVE_BUDGET.as_millis())]
    Timeout,
}

impl ReceiverError {
    /// The one place an error becomes an HTTP status.
    fn status(&self) -> StatusCode {
        match self {
            ReceiverError::NotFound(_) => StatusCode::NOT_FOUND,
            ReceiverError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ReceiverError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ReceiverError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ReceiverError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ReceiverError::InProgress(_) => StatusCode::CONFLICT,
            ReceiverError::EnqueueFailed(_) | ReceiverError::Timeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ReceiverError::NotFound(_) => "not_found",
            ReceiverError::MethodNotAllowed(_) => "method_not_allowed",
            ReceiverError::TooLarge { .. } => "payload_too_large",
            ReceiverError::Unauthorized(_) => "unauthorized",
            ReceiverError::BadRequest(_) => "bad_request",
            ReceiverError::InProgress(_) => "in_progress",
            ReceiverError::EnqueueFailed(_) => "enqueue_failed",
            ReceiverError::Timeout => "timeout",
        }
    }
}

/// What the log line says about the webhook, filled in as the request goes.
#[derive(Debug, Default)]
struct Seen {
    event: Option<String>,
    call_id: Option<String>,
    delivery_key: Option<String>,
}

/// Handles one API Gateway request. Never fails: every problem becomes an answer.
pub async fn handle<S: IdempotencyStore, Q: Queue>(
    deps: &Deps<S, Q>,
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

async fn receive<S: IdempotencyStore, Q: Queue>(
    deps: &Deps<S, Q>,
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
        .map_err(ReceiverError::Unauthorized)?
        .parse()
        .map_err(ReceiverError::BadRequest)?;
    seen.event = Some(webhook.event.name().to_owned());
    seen.call_id = Some(webhook.data.call_id.clone());

    if let Event::Unknown(name) = &webhook.event {
        return Ok(Outcome::Ignored {
            key: None,
            reason: format!("unknown event {name:?}"),
        });
    }
    let key = DeliveryKey::for_webhook(&webhook);
    seen.delivery_key = Some(key.to_string());
    let route = deps.config.routes.route_for(&webhook);
    let hash = payload_hash(body);

    let recorded = match deps.store.begin_delivery(&key, &hash, now()).await {
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
        // Fail open: the processors deduplicate per integration, so a duplicate enqueue
        // is harmless, while refusing would leave the sender's retries to chance.
        Err(error) => {
            tracing::error!(%error, "idempotency table unavailable; enqueueing without deduplication");
            Metrics::count(&deps.metrics.dedup_unavailable, "DedupUnavailable");
            false
        }
    };

    let message =
        QueueMessage::for_delivery(&webhook, &key, &nphooks_core::rfc3339(SystemTime::now()));
    if let Err(failed) = enqueue(deps, &message, &route).await {
        if recorded {
            // Let the sender's retry start afresh. If this fails too, the record's
            // lease runs out long before the first retry (5 min) and it is taken over.
            if let Err(error) = deps.store.abandon_delivery(&key, &hash).await {
                tracing::error!(%error, "could not release the delivery record");
            }
        }
        return Err(failed);
    }
    if recorded {
        let queues: Vec<&str> = route.iter().map(|i| i.as_str()).collect();
        if let Err(error) = deps
            .store
            .complete_delivery(&key, &queues, Some(message.body()), now())
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

fn now() -> u64 {
    nphooks_core::epoch_seconds(SystemTime::now())
}

fn answer(result: Result<Outcome, ReceiverError>) -> Response<Body> {
    let (status, body) = match result {
        Ok(Outcome::Accepted {
            key,
            queues,
            deduplicated,
        }) => (
            StatusCode::OK,
            json!({"status": "accepted", "delivery_key": key.as_str(), "queues": queue_names(&queues), "deduplicated": deduplicated}),
        ),
        Ok(Outcome::Duplicate { key }) => (
            StatusCode::OK,
            json!({"status": "duplicate", "delivery_key": key.as_str()}),
        ),
        Ok(Outcome::Ignored { key, reason }) => (
            StatusCode::OK,
            json!({"status": "ignored", "delivery_key": key.as_ref().map(DeliveryKey::as_str), "reason": reason}),
        ),
        Err(error) => (
            error.status(),
            json!({"error": error.code(), "message": error.to_string()}),
        ),
    };
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json");
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response = response.header(header::ALLOW, "POST");
    }
    response
        .body(Body::Text(body.to_string()))
        .expect("static headers are valid")
}

fn queue_names(queues: &BTreeSet<Integration>) -> Vec<&'static str> {
    queues.iter().map(|i| i.as_str()).collect()
}

/// One JSON line per webhook. Names no secret, phone number, email or transcript.
fn log_line(result: &Result<Outcome, ReceiverError>, seen: &Seen, latency: Duration) {
    let (outcome, queues, error) = match result {
        Ok(Outcome::Accepted { queues, .. }) => ("accepted", queue_names(queues).join(","), None),
        Ok(Outcome::Duplicate { .. }) => ("duplicate", String::new(), None),
        Ok(Outcome::Ignored { .. }) => ("ignored", String::new(), None),
        Err(error) => (error.code(), String::new(), Some(error.to_string())),
    };
    let status = match result {
        Ok(_) => 200,
        Err(error) => error.status().as_u16(),
    };
    tracing::info!(
        delivery_key = seen.delivery_key.as_deref(),
        event = seen.event.as_deref(),
        call_id = seen.call_id.as_deref(),
        outcome,
        status,
        queues,
        error,
        latency_ms = latency.as_secs_f64() * 1000.0,
        "webhook"
    );
}
