//! How a request ends: the outcome or error, its HTTP answer, and its one log line.
//! Every answer's HTTP status is decided in [`status`] (and [`ReceiverError::status`]).

use std::collections::BTreeSet;
use std::time::Duration;

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Response};
use nphooks_core::ParseError;
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::routing::Integration;
use nphooks_core::signature::AuthFailure;
use nphooks_core::webhook::WEBHOOK_PATH;
use serde_json::json;

use crate::handler::RECEIVE_BUDGET;

/// How a request ended well (answered 200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// In every routed queue.
    Accepted {
        key: DeliveryKey,
        queues: BTreeSet<Integration>,
        /// Whether the delivery record was kept (false: the table was unavailable and the
        /// webhook was enqueued without deduplication).
        deduplicated: bool,
    },
    /// Enqueued earlier, as a record of the previous (two-write) version says: since one
    /// write per delivery, a retry past the record's lease is enqueued again instead.
    Duplicate { key: DeliveryKey },
    /// Nothing to enqueue.
    Ignored {
        key: Option<DeliveryKey>,
        reason: String,
    },
}

impl Outcome {
    /// The `status` field of the answer.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Accepted { .. } => "accepted",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::Ignored { .. } => "ignored",
        }
    }

    /// The delivery, when the webhook is one.
    pub fn key(&self) -> Option<&DeliveryKey> {
        match self {
            Outcome::Accepted { key, .. } | Outcome::Duplicate { key } => Some(key),
            Outcome::Ignored { key, .. } => key.as_ref(),
        }
    }

    /// The queues the webhook went to (empty unless accepted).
    pub fn queues(&self) -> BTreeSet<Integration> {
        match self {
            Outcome::Accepted { queues, .. } => queues.clone(),
            _ => BTreeSet::new(),
        }
    }
}

/// How a request ended badly. Each message names the problem.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("no route for {0}; webhooks are received at POST {WEBHOOK_PATH}")]
    NotFound(String),
    #[error("method {0} is not allowed; use POST")]
    MethodNotAllowed(Method),
    #[error("body is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("{0}")]
    Unauthorized(AuthFailure),
    #[error("{0}")]
    BadRequest(ParseError),
    #[error("delivery {0} was begun by another request moments ago; retry later")]
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
    pub fn status(&self) -> StatusCode {
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

    /// The `error` field of the answer.
    pub fn code(&self) -> &'static str {
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

/// How much of a `call_id` a log line carries (the delivery key is bounded on its own).
pub(crate) const LOGGED_CALL_ID_CHARS: usize = 128;

/// The one place a request's end becomes an HTTP status: 200 for every outcome.
pub fn status(result: &Result<Outcome, ReceiverError>) -> StatusCode {
    match result {
        Ok(_) => StatusCode::OK,
        Err(error) => error.status(),
    }
}

/// The HTTP answer to a request that ended with `result`.
pub fn answer(result: &Result<Outcome, ReceiverError>) -> Response<Body> {
    let body = match result {
        Ok(Outcome::Accepted {
            key,
            queues,
            deduplicated,
        }) => {
            json!({"status": "accepted", "delivery_key": key.as_str(), "queues": queue_names(queues), "deduplicated": deduplicated})
        }
        Ok(Outcome::Duplicate { key }) => {
            json!({"status": "duplicate", "delivery_key": key.as_str()})
        }
        Ok(Outcome::Ignored { key, reason }) => {
            json!({"status": "ignored", "delivery_key": key.as_ref().map(DeliveryKey::as_str), "reason": reason})
        }
        Err(error) => json!({"error": error.code(), "message": error.to_string()}),
    };
    let status = status(result);
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

/// One JSON line per webhook, inside the request span that holds what is known of the
/// webhook (event, call id, delivery key, drifted fields). Names no secret, phone
/// number, email or transcript.
pub(crate) fn log_line(result: &Result<Outcome, ReceiverError>, latency: Duration) {
    let (outcome, queues, error) = match result {
        Ok(outcome) => (
            outcome.name(),
            queue_names(&outcome.queues()).join(","),
            None,
        ),
        Err(error) => (error.code(), String::new(), Some(error.to_string())),
    };
    let status = status(result).as_u16();
    tracing::info!(
        outcome,
        status,
        queues,
        error,
        latency_ms = latency.as_secs_f64() * 1000.0,
        "webhook"
    );
}
