//! How a request ends: the outcome or error, its HTTP answer, and its one log line.
//! Every answer's HTTP status is decided in [`ReceiverError::status`] and
//! [`Outcome`]'s arm of [`answer`].

use std::collections::BTreeSet;
use std::time::Duration;

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Response};
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::routing::Integration;
use nphooks_core::samples::WEBHOOK_PATH;
use nphooks_core::signature::AuthFailure;
use serde_json::json;

use crate::handler::RECEIVE_BUDGET;

/// How a request ended well.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
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
pub(crate) enum ReceiverError {
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
    #[error(
        "the idempotency table refused the record of delivery {0} as invalid; nothing was enqueued"
    )]
    StoreRejected(DeliveryKey),
    #[error("could not enqueue to the {0} queue; retry later")]
    EnqueueFailed(String),
    #[error("the request did not finish within {}ms; retry later", RECEIVE_BUDGET.as_millis())]
    Timeout,
}

impl ReceiverError {
    /// The one place an error becomes an HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ReceiverError::NotFound(_) => StatusCode::NOT_FOUND,
            ReceiverError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ReceiverError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ReceiverError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ReceiverError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ReceiverError::InProgress(_) => StatusCode::CONFLICT,
            ReceiverError::StoreRejected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ReceiverError::EnqueueFailed(_) | ReceiverError::Timeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            ReceiverError::NotFound(_) => "not_found",
            ReceiverError::MethodNotAllowed(_) => "method_not_allowed",
            ReceiverError::TooLarge { .. } => "payload_too_large",
            ReceiverError::Unauthorized(_) => "unauthorized",
            ReceiverError::BadRequest(_) => "bad_request",
            ReceiverError::InProgress(_) => "in_progress",
            ReceiverError::StoreRejected(_) => "store_rejected",
            ReceiverError::EnqueueFailed(_) => "enqueue_failed",
            ReceiverError::Timeout => "timeout",
        }
    }
}

/// What the log line says about the webhook, filled in as the request goes.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) event: Option<String>,
    /// At most [`LOGGED_CALL_ID_CHARS`] characters of it.
    pub(crate) call_id: Option<String>,
    pub(crate) delivery_key: Option<String>,
    /// The paths of drifted fields, comma-separated (never their values).
    pub(crate) drift: Option<String>,
}

/// How much of a `call_id` a log line carries (the delivery key is bounded on its own).
pub(crate) const LOGGED_CALL_ID_CHARS: usize = 128;

pub(crate) fn answer(result: Result<Outcome, ReceiverError>) -> Response<Body> {
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

pub(crate) fn queue_names(queues: &BTreeSet<Integration>) -> Vec<&'static str> {
    queues.iter().map(|i| i.as_str()).collect()
}

/// One JSON line per webhook. Names no secret, phone number, email or transcript.
pub(crate) fn log_line(result: &Result<Outcome, ReceiverError>, seen: &Seen, latency: Duration) {
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
        drift = seen.drift.as_deref(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "webhook"
    );
}
