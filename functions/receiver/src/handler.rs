//! The receiver's handler: `authenticate → parse → identify → route → dedupe → enqueue →
//! answer`, each a step of its own below. The answers themselves are in [`crate::answer`].
//! A delivery costs one write to the idempotency table (its record, routed queues and
//! envelope, in `dedupe`) and one send per routed queue; a failed send adds `abandon`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::future::join_all;
use lambda_http::http::{HeaderValue, Method, header};
use lambda_http::{Body, Request, Response};
use nphooks_core::ConfigError;
use nphooks_core::delivery::{DeliveryKey, payload_hash};
use nphooks_core::envelope::QueueMessage;
use nphooks_core::ledger::{Begin, DeliveryLedger, NewDelivery};
use nphooks_core::metrics::receiver as receiver_metrics;
use nphooks_core::queue::Queue;
use nphooks_core::routing::Integration;
use nphooks_core::signature::{SIGNATURE_HEADER, VerifiedBody, VerifiedWebhook};
use nphooks_core::store_error::StoreError;
use nphooks_core::webhook::{Event, WEBHOOK_PATH};
use tracing::{Instrument, Span, field};

use crate::answer::{LOGGED_CALL_ID_CHARS, Outcome, ReceiverError, answer, log_line};
use crate::deps::{Deps, Metrics};

/// The whole request must finish inside this, well under the sender's 5 s.
pub const RECEIVE_BUDGET: Duration = Duration::from_millis(3500);

/// Handles one API Gateway request. Never fails: every problem becomes an answer, each
/// counted by how it was answered (the dashboard's accepted, duplicate and refused).
pub async fn handle<L: DeliveryLedger, Q: Queue>(
    deps: &Deps<L, Q>,
    request: Request,
) -> Response<Body> {
    let result = receive(deps, &request).await;
    let metric = match &result {
        Ok(Outcome::Accepted { .. }) => Some(receiver_metrics::ACCEPTED),
        Ok(Outcome::Duplicate { .. }) => Some(receiver_metrics::DUPLICATE),
        Err(error) if error.status().is_client_error() => Some(receiver_metrics::REFUSED),
        _ => None,
    };
    if let Some(metric) = metric {
        nphooks_core::metrics::emit_count("receiver", metric);
    }
    answer(&result)
}

/// Receives one request within [`RECEIVE_BUDGET`] and logs it as one line on the
/// request span, which each step fills in with what it learnt of the webhook.
pub async fn receive<L: DeliveryLedger, Q: Queue>(
    deps: &Deps<L, Q>,
    request: &Request,
) -> Result<Outcome, ReceiverError> {
    let span = tracing::info_span!(
        "request",
        event = field::Empty,
        call_id = field::Empty,
        delivery_key = field::Empty,
        drift = field::Empty,
    );
    let started = Instant::now();
    let result = tokio::time::timeout(RECEIVE_BUDGET, steps(deps, request))
        .instrument(span.clone())
        .await
        .unwrap_or(Err(Stop::Fail(ReceiverError::Timeout)))
        .or_else(Stop::into_result);
    span.in_scope(|| log_line(&result, started.elapsed()));
    result
}

/// Where a step ends the request early: with an answer, or with an error.
enum Stop {
    Answer(Outcome),
    Fail(ReceiverError),
}

impl Stop {
    fn into_result(self) -> Result<Outcome, ReceiverError> {
        match self {
            Stop::Answer(outcome) => Ok(outcome),
            Stop::Fail(error) => Err(error),
        }
    }
}

impl From<ReceiverError> for Stop {
    fn from(error: ReceiverError) -> Self {
        Stop::Fail(error)
    }
}

/// The README's steps, in order: `identify` sets unknown events and stale replays aside
/// before the table is asked; the route and the envelope come before the dedupe, whose
/// one write keeps them with the record.
async fn steps<L: DeliveryLedger, Q: Queue>(
    deps: &Deps<L, Q>,
    request: &Request,
) -> Result<Outcome, Stop> {
    let verified = authenticate(deps, request)?;
    let webhook = parse(deps, verified)?;
    let key = identify(deps, &webhook)?;
    let route = deps.config.routes.route_for(&webhook);
    let message =
        QueueMessage::for_delivery(&webhook, &key, &nphooks_core::rfc3339(deps.clock.now()));
    let record = dedupe(deps, &key, verified.bytes(), &route, &message).await?;
    enqueue(deps, &key, &route, &message, &record).await?;
    Ok(if route.is_empty() {
        Outcome::Ignored {
            key: Some(key),
            reason: "no route matches this webhook".into(),
        }
    } else {
        Outcome::Accepted {
            key,
            queues: route,
            deduplicated: matches!(record, Record::Kept { .. }),
        }
    })
}

/// A POST to the webhook path within the size limit, signed with a configured secret
/// (and carrying the API key, when one is configured).
fn authenticate<'r, L, Q>(
    deps: &Deps<L, Q>,
    request: &'r Request,
) -> Result<VerifiedBody<'r>, ReceiverError> {
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
    deps.config
        .auth
        .verify(
            header(SIGNATURE_HEADER),
            header(header::AUTHORIZATION.as_str()),
            body,
        )
        .map_err(|failure| {
            Metrics::count(&deps.metrics.unauthorized, "Unauthorized");
            ReceiverError::Unauthorized(failure)
        })
}

/// The verified body read tolerantly; its event, call id and drifted fields recorded.
fn parse<L, Q>(
    deps: &Deps<L, Q>,
    verified: VerifiedBody<'_>,
) -> Result<VerifiedWebhook, ReceiverError> {
    let webhook = verified.parse().map_err(ReceiverError::BadRequest)?;
    let span = Span::current();
    span.record("event", webhook.event.name());
    let call_id: String = webhook
        .data
        .call_id
        .chars()
        .take(LOGGED_CALL_ID_CHARS)
        .collect();
    span.record("call_id", call_id);
    if !webhook.drift().is_empty() {
        let fields = webhook.drift().join(",");
        tracing::warn!(fields, "schema drift: fields read as absent or coerced");
        let drifted = u64::try_from(webhook.drift().len()).unwrap_or(u64::MAX);
        Metrics::add(&deps.metrics.schema_drift, "SchemaDrift", drifted);
        span.record("drift", fields);
    }
    Ok(webhook)
}

/// The delivery this webhook is. Unknown events and stale replays are none: answered
/// `ignored`, nothing stored or sent.
fn identify<L, Q>(deps: &Deps<L, Q>, webhook: &VerifiedWebhook) -> Result<DeliveryKey, Stop> {
    if let Event::Unknown(name) = &webhook.event {
        return Err(Stop::Answer(Outcome::Ignored {
            key: None,
            reason: format!("unknown event {name:?}"),
        }));
    }
    let key = DeliveryKey::for_webhook(webhook);
    Span::current().record("delivery_key", key.as_str());
    let now = deps.clock.epoch_seconds();
    if webhook
        .sent_at()
        .is_some_and(|sent| deps.config.replay_window.is_stale(sent, now))
    {
        Metrics::count(&deps.metrics.stale_webhooks, "StaleWebhook");
        return Err(Stop::Answer(Outcome::Ignored {
            key: Some(key),
            reason: "stale".into(),
        }));
    }
    Ok(key)
}

/// What the idempotency table holds for this delivery while it is enqueued.
enum Record {
    /// Begun by this request (`hash` of the body): abandoned if a send fails.
    Kept { hash: String },
    /// The table was unavailable: enqueued without deduplication.
    Unavailable,
}

/// Begins the delivery record with its route and envelope: the one step that asks the
/// idempotency table whether this delivery is new, and its only write when every send
/// succeeds. A record under its lease is answered 409; one past its lease (a finished
/// or a crashed request: the ledger cannot tell) is taken over and enqueued again.
async fn dedupe<L: DeliveryLedger, Q>(
    deps: &Deps<L, Q>,
    key: &DeliveryKey,
    body: &[u8],
    route: &BTreeSet<Integration>,
    message: &QueueMessage,
) -> Result<Record, Stop> {
    let hash = payload_hash(body);
    let at = deps.clock.epoch_seconds();
    let queues: Vec<Integration> = route.iter().copied().collect();
    let delivery = NewDelivery {
        payload_hash: &hash,
        queues: &queues,
        envelope: Some(message.body()),
    };
    let conflict = |same_payload: bool| {
        if !same_payload {
            Metrics::count(
                &deps.metrics.payload_conflicts,
                "DeliveryKeyPayloadConflict",
            );
        }
    };
    match deps
        .ledger
        .begin(key, delivery, at, deps.config.replay_window)
        .await
    {
        Ok(Begin::Started) => Ok(Record::Kept { hash }),
        // Past the lease: enqueued again; a different body under the key is counted.
        Ok(Begin::TookOver { same_payload }) => {
            conflict(same_payload);
            Ok(Record::Kept { hash })
        }
        Ok(Begin::AlreadyEnqueued { same_payload }) => {
            conflict(same_payload);
            Err(Stop::Answer(Outcome::Duplicate { key: key.clone() }))
        }
        Ok(Begin::InProgress { same_payload }) => {
            conflict(same_payload);
            Err(ReceiverError::InProgress(key.clone()).into())
        }
        // The table refused the request itself: the processors' claims would be refused
        // too, so enqueueing would only fill the DLQs. A bug to fix; the sender retries.
        Err(error @ StoreError::Rejected { .. }) => {
            tracing::error!(%error, "the idempotency table refused the delivery record");
            Err(ReceiverError::StoreRejected(key.clone()).into())
        }
        // Fail open: the processors deduplicate per integration, so a duplicate enqueue
        // is harmless, while refusing would leave the sender's retries to chance.
        Err(error) => {
            tracing::error!(%error, "idempotency table unavailable; enqueueing without deduplication");
            Metrics::count(&deps.metrics.dedup_unavailable, "DedupUnavailable");
            Ok(Record::Unavailable)
        }
    }
}

/// Sends the envelope to every routed queue. When a send failed, abandons the record
/// this request kept, so that the sender's retry starts afresh; when all succeeded, the
/// record `dedupe` wrote stays as it is (no second write).
async fn enqueue<L: DeliveryLedger, Q: Queue>(
    deps: &Deps<L, Q>,
    key: &DeliveryKey,
    route: &BTreeSet<Integration>,
    message: &QueueMessage,
    record: &Record,
) -> Result<(), ReceiverError> {
    let sent = send_all(deps, message, route).await;
    if sent.is_err()
        && let Record::Kept { hash } = record
        // If this fails too, the record's lease runs out long before the first retry
        // (5 min) and it is taken over.
        && let Err(error) = deps.ledger.abandon(key, hash).await
    {
        tracing::error!(%error, "could not release the delivery record");
    }
    sent
}

/// Sends the envelope to every routed queue at once and checks every result.
async fn send_all<L, Q: Queue>(
    deps: &Deps<L, Q>,
    message: &QueueMessage,
    route: &BTreeSet<Integration>,
) -> Result<(), ReceiverError> {
    let sends = route.iter().map(|integration| async move {
        match deps.config.queue_urls.get(integration) {
            Some(url) => deps
                .queue
                .send(url, message)
                .await
                .map_err(|e| e.to_string()),
            None => Err(ConfigError::not_set(integration.queue_url_var()).to_string()),
        }
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
