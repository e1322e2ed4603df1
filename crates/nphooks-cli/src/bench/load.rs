//! The bench's webhooks and its sender: N distinct signed bodies prepared before the
//! clock starts, POSTed from a pool of keep-alive HTTP/1.1 connections (hyper client).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::routing::{Integration, RoutingTable};
use nphooks_core::signature::{SIGNATURE_HEADER, sign};
use nphooks_core::webhook::Webhook;
use nphooks_samples::WEBHOOK_PATH;

use super::effects::{nanos, slot};
use crate::body::build_body;

/// The webhooks, signed, with the delivery key and the integrations each must reach.
#[derive(Debug)]
pub(super) struct Prepared {
    pub bodies: Vec<Bytes>,
    pub signatures: Vec<HeaderValue>,
    pub keys: Vec<String>,
    /// Per webhook, whether each integration (in `Integration::ALL` order) is routed.
    pub routes: Vec<[bool; Integration::ALL.len()]>,
}

/// `n` webhooks cycling through `events` (names as `nphooks send` takes them), each with
/// its own `data.call_id`, signed with `secret`.
pub(super) fn prepare(
    events: &[String],
    n: usize,
    secret: &str,
    routing: &RoutingTable,
) -> anyhow::Result<Prepared> {
    let templates = events
        .iter()
        .map(|event| {
            let body = build_body(event, &[])?;
            serde_json::from_str::<serde_json::Value>(&body)
                .with_context(|| format!("the sample body of `{event}` is not JSON"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!templates.is_empty(), "--events names no event");
    let mut prepared = Prepared {
        bodies: Vec::with_capacity(n),
        signatures: Vec::with_capacity(n),
        keys: Vec::with_capacity(n),
        routes: Vec::with_capacity(n),
    };
    for i in 0..n {
        let mut body = templates[i % templates.len()].clone();
        body["data"]["call_id"] = serde_json::Value::from(format!("bench_{i:08}"));
        let bytes = serde_json::to_vec(&body)?;
        let webhook = Webhook::parse(&bytes)
            .map_err(|e| anyhow::anyhow!("a bench webhook does not parse: {e}"))?;
        let mut routes = [false; Integration::ALL.len()];
        for integration in routing.route_for(&webhook) {
            routes[slot(integration)] = true;
        }
        prepared.routes.push(routes);
        prepared
            .keys
            .push(DeliveryKey::for_webhook(&webhook).as_str().to_owned());
        prepared
            .signatures
            .push(HeaderValue::from_str(&sign(secret, &bytes))?);
        prepared.bodies.push(Bytes::from(bytes));
    }
    Ok(prepared)
}

/// What the sender saw.
#[derive(Debug)]
pub(super) struct Posted {
    /// Nanoseconds from the start to each webhook's POST.
    pub sent_at: Vec<AtomicU64>,
    /// Answers other than 200 `accepted` for a routed webhook (or 200 for an unrouted one).
    pub refused: AtomicU64,
    /// The first refusal or connection error, for the report.
    pub first_problem: std::sync::Mutex<Option<String>>,
}

impl Posted {
    pub(super) fn new(webhooks: usize) -> Self {
        Posted {
            sent_at: (0..webhooks).map(|_| AtomicU64::new(0)).collect(),
            refused: AtomicU64::new(0),
            first_problem: std::sync::Mutex::new(None),
        }
    }

    fn problem(&self, what: String) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_problem
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        first.get_or_insert(what);
    }

    pub(super) fn sent_at(&self, i: usize) -> Duration {
        Duration::from_nanos(self.sent_at[i].load(Ordering::Relaxed))
    }
}

/// POSTs every prepared webhook to `addr` over `connections` keep-alive connections,
/// each taking the next unsent webhook when its previous answer is in.
pub(super) async fn post_all(
    addr: SocketAddr,
    prepared: Arc<Prepared>,
    connections: usize,
    started: Instant,
) -> anyhow::Result<Arc<Posted>> {
    let posted = Arc::new(Posted::new(prepared.bodies.len()));
    let next = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..connections {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("could not connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(connection);
        let work = (prepared.clone(), posted.clone(), next.clone());
        senders.push(tokio::spawn(send_loop(sender, work, addr, started)));
    }
    for sender in senders {
        sender.await.context("a sender task failed")?;
    }
    Ok(posted)
}

async fn send_loop(
    mut sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    (prepared, posted, next): (Arc<Prepared>, Arc<Posted>, Arc<AtomicUsize>),
    addr: SocketAddr,
    started: Instant,
) {
    let host =
        HeaderValue::from_str(&addr.to_string()).unwrap_or(HeaderValue::from_static("localhost"));
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= prepared.bodies.len() {
            return;
        }
        let mut request = hyper::Request::new(Full::new(prepared.bodies[i].clone()));
        *request.method_mut() = hyper::Method::POST;
        *request.uri_mut() = hyper::Uri::from_static(WEBHOOK_PATH);
        let headers = request.headers_mut();
        headers.insert(HOST, host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(SIGNATURE_HEADER, prepared.signatures[i].clone());
        if sender.ready().await.is_err() {
            posted.problem(format!("webhook {i}: the connection closed"));
            continue;
        }
        posted.sent_at[i].store(nanos(started.elapsed()), Ordering::Relaxed);
        let answer = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.into_body().collect().await.map(|b| b.to_bytes());
                (status, body.unwrap_or_default())
            }
            Err(error) => {
                posted.problem(format!("webhook {i}: {error}"));
                continue;
            }
        };
        let routed = prepared.routes[i].iter().any(|r| *r);
        let accepted = answer.0 == 200 && answer_is(&answer.1, "accepted");
        if answer.0 != 200 || routed != accepted {
            posted.problem(format!(
                "webhook {i}: {} {}",
                answer.0,
                String::from_utf8_lossy(&answer.1)
            ));
        }
    }
}

fn answer_is(body: &[u8], status: &str) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|answer| answer["status"] == status)
}
