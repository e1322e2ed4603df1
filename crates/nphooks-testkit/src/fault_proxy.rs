//! A fault-injecting HTTP proxy in front of moto: the real SDK clients talk to it as to
//! AWS, it forwards each call to moto, and on cue answers instead as AWS does when it
//! fails — throttled, 5xx, `ValidationException`, a conditional-check race, a connection
//! closed before or after the call reached moto (a lost answer: the write happened, the
//! caller saw an error), or a stall past the SDK's timeout.
//!
//! Faults are chosen per call by rules keyed by the operation (the part of the
//! `X-Amz-Target` header after the dot: `PutItem`, `SendMessage`, `GetSecretValue`) and
//! by the n-th call of it seen by this proxy (1-based, SDK retries included), or by a
//! seeded schedule. Every injected fault is recorded ([`FaultProxy::injected`]).
//!
//! Clients come from [`FaultProxy::aws_for`]: a function's own signing identity (so
//! `scripts/iam/check_iam.py` still attributes the calls that reach moto) with the proxy
//! as endpoint and the function's own timeouts; retries stay the SDK's standard ones.

pub mod matrix;
mod schedule;
pub mod usage;

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_config::SdkConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use nphooks_core::aws::Timeouts;
use tokio::net::{TcpListener, TcpStream};

use crate::Moto;
use schedule::Schedule;
pub use usage::{OpUsage, Usage};

/// How long a stalled call is held before its connection is closed: longer than any
/// SDK timeout in this repository.
pub const STALL: Duration = Duration::from_secs(30);

/// What the proxy does to one call instead of (or besides) forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// 400 `ThrottlingException`.
    Throttling,
    /// 400 `ProvisionedThroughputExceededException` (DynamoDB).
    ProvisionedThroughput,
    /// 500 `InternalServerError`.
    InternalError,
    /// 503 `ServiceUnavailable`.
    Unavailable,
    /// 400 `ValidationException`: the request itself refused.
    Validation,
    /// Forwarded (the write happened), then answered 400 `ConditionalCheckFailedException`
    /// without the item: another writer seemed to win the race.
    ConditionalRace,
    /// Forwarded twice; the second answer is returned (a retried write meeting itself).
    ForwardTwice,
    /// The connection closed before the call reached moto.
    Reset,
    /// Held for [`STALL`], past the SDK's timeouts, then closed; nothing forwarded.
    Stall,
    /// Forwarded (the write happened), then the connection closed without an answer.
    LostAnswer,
}

impl Fault {
    /// The fault's name in the matrix and the record.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Throttling => "ThrottlingException",
            Fault::ProvisionedThroughput => "ProvisionedThroughputExceededException",
            Fault::InternalError => "InternalServerError",
            Fault::Unavailable => "ServiceUnavailable",
            Fault::Validation => "ValidationException",
            Fault::ConditionalRace => "ConditionalCheckFailedException",
            Fault::ForwardTwice => "forwarded twice",
            Fault::Reset => "connection reset",
            Fault::Stall => "stall",
            Fault::LostAnswer => "lost answer",
        }
    }

    /// The HTTP status and AWS error code answered, for the faults that answer one.
    fn error(self) -> Option<(u16, &'static str)> {
        match self {
            Fault::Throttling => Some((400, "ThrottlingException")),
            Fault::ProvisionedThroughput => Some((400, "ProvisionedThroughputExceededException")),
            Fault::InternalError => Some((500, "InternalServerError")),
            Fault::Unavailable => Some((503, "ServiceUnavailable")),
            Fault::Validation => Some((400, "ValidationException")),
            Fault::ConditionalRace => Some((400, "ConditionalCheckFailedException")),
            _ => None,
        }
    }
}

/// One fault the proxy injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    pub operation: String,
    /// Which call of `operation` it was (1-based).
    pub call: usize,
    pub fault: Fault,
}

#[derive(Debug)]
struct Rule {
    operation: String,
    calls: RangeInclusive<usize>,
    fault: Fault,
}

#[derive(Debug, Default)]
struct State {
    calls: HashMap<String, usize>,
    rules: Vec<Rule>,
    schedule: Option<Schedule>,
    injected: Vec<Injection>,
    meter: usage::Meter,
}

/// The proxy, listening on 127.0.0.1 until dropped.
#[derive(Debug)]
pub struct FaultProxy {
    url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FaultProxy {
    /// A proxy in front of the moto server at `AWS_ENDPOINT_URL`.
    pub async fn start() -> FaultProxy {
        let upstream = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto)");
        Self::start_for(&upstream).await
    }

    /// A proxy in front of `upstream` (`http://host:port`, loopback).
    pub async fn start_for(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        serve(Arc::clone(&state), upstream.clone(), request)
                    });
                    // A connection ends with an error whenever a fault closes it.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy { url, state, task }
    }

    /// The proxy's endpoint URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `calls` (1-based, e.g. `1..=1`, `2..=3`) of `operation` get `fault`.
    pub fn fail(&self, operation: &str, calls: RangeInclusive<usize>, fault: Fault) -> &Self {
        lock(&self.state).rules.push(Rule {
            operation: operation.to_owned(),
            calls,
            fault,
        });
        self
    }

    /// Every call of `operation` gets `fault`.
    pub fn always(&self, operation: &str, fault: Fault) -> &Self {
        self.fail(operation, 1..=usize::MAX, fault)
    }

    /// Drops every rule and the schedule: the service has recovered.
    pub fn clear(&self) {
        let mut state = lock(&self.state);
        state.rules.clear();
        state.schedule = None;
    }

    /// Calls no rule matches fail with probability `rate`, with a fault drawn from
    /// `faults`, reproducibly from `seed`.
    pub fn seeded(&self, seed: u64, rate: f64, faults: &[Fault]) -> &Self {
        lock(&self.state).schedule = Some(Schedule::new(seed, rate, faults));
        self
    }

    /// Every fault injected so far, in order.
    pub fn injected(&self) -> Vec<Injection> {
        lock(&self.state).injected.clone()
    }

    /// What the calls so far cost, per service and operation ([`usage`]).
    pub fn usage(&self) -> Usage {
        lock(&self.state).meter.usage.clone()
    }

    /// How many calls of `operation` reached the proxy (SDK retries included).
    pub fn calls(&self, operation: &str) -> usize {
        lock(&self.state).calls.get(operation).copied().unwrap_or(0)
    }

    /// The SDK config of `function`'s code (its signing identity, see
    /// [`Moto::aws_for`]) with this proxy as endpoint and `timeouts` as in its `main`.
    pub fn aws_for(&self, moto: &Moto, function: &str, timeouts: Timeouts) -> SdkConfig {
        moto.aws_for(function)
            .to_builder()
            .endpoint_url(self.url.clone())
            // Otherwise each client takes `AWS_ENDPOINT_URL` (moto itself) over this.
            .service_config(NoEnvOverrides)
            .timeout_config(timeouts.config())
            .build()
    }
}

/// Service settings from nowhere: the environment's `AWS_ENDPOINT_URL` would win over the
/// config's endpoint in every client built from it.
#[derive(Debug)]
struct NoEnvOverrides;

impl aws_types::service_config::LoadServiceConfig for NoEnvOverrides {
    fn load_config(&self, _key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        None
    }
}

/// The operation a request calls: `PutItem` of `DynamoDB_20120810.PutItem`.
fn operation_of(request: &Request<Incoming>) -> (String, String) {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown.unknown");
    let (service, operation) = target.split_once('.').unwrap_or(("unknown", target));
    (service.to_owned(), operation.to_owned())
}

/// The fault for this call, if any, recorded.
fn choose(state: &Mutex<State>, operation: &str) -> Option<Fault> {
    let mut state = lock(state);
    let call = {
        let count = state.calls.entry(operation.to_owned()).or_insert(0);
        *count += 1;
        *count
    };
    let ruled = state
        .rules
        .iter()
        .find(|r| r.operation == operation && r.calls.contains(&call))
        .map(|r| r.fault);
    let fault = ruled.or_else(|| state.schedule.as_mut().and_then(Schedule::pick))?;
    state.injected.push(Injection {
        operation: operation.to_owned(),
        call,
        fault,
    });
    Some(fault)
}

type Answer = Response<Full<Bytes>>;

/// Closing the connection without an answer: a service error makes hyper drop it.
#[derive(Debug, thiserror::Error)]
#[error("fault proxy closed the connection ({0})")]
struct Closed(&'static str);

async fn serve(
    state: Arc<Mutex<State>>,
    upstream: String,
    request: Request<Incoming>,
) -> Result<Answer, Closed> {
    let (service, operation) = operation_of(&request);
    let fault = choose(&state, &operation);
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|_| Closed("body"))?.to_bytes();
    let body = match usage::prepare(&service, &operation, &body) {
        Some(prepared) => Bytes::from(prepared),
        None => body,
    };
    let mut parts = parts;
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    let call = (service.as_str(), operation.as_str());
    if fault.is_some() {
        lock(&state).meter.record(call, &body, None);
    }
    let forward = || {
        let request = Request::from_parts(parts.clone(), Full::new(body.clone()));
        send(upstream.clone(), request)
    };
    match fault {
        None => {
            let answer = forward().await;
            let metered = answer
                .as_ref()
                .ok()
                .map(|a| (a.status().as_u16(), a.body()));
            if let Some((status, full)) = metered {
                let bytes = full
                    .clone()
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                lock(&state)
                    .meter
                    .record(call, &body, Some((status, &bytes)));
            } else {
                lock(&state).meter.record(call, &body, None);
            }
            answer
        }
        Some(Fault::Reset) => Err(Closed("reset")),
        Some(Fault::Stall) => {
            tokio::time::sleep(STALL).await;
            Err(Closed("stall"))
        }
        Some(Fault::LostAnswer) => {
            forward().await?;
            Err(Closed("lost answer"))
        }
        Some(Fault::ForwardTwice) => {
            forward().await?;
            forward().await
        }
        Some(Fault::ConditionalRace) => {
            forward().await?;
            Ok(error_answer(&service, Fault::ConditionalRace))
        }
        Some(fault) => Ok(error_answer(&service, fault)),
    }
}

/// The JSON error AWS answers (awsJson 1.0: `__type` and `message`).
fn error_answer(service: &str, fault: Fault) -> Answer {
    let (status, code) = fault.error().unwrap_or((500, "InternalServerError"));
    let namespace = match service {
        "DynamoDB_20120810" => "com.amazonaws.dynamodb.v20120810",
        "AmazonSQS" => "com.amazonaws.sqs",
        "secretsmanager" => "com.amazonaws.secretsmanager",
        _ => "com.amazonaws",
    };
    let body = serde_json::json!({
        "__type": format!("{namespace}#{code}"),
        "message": format!("injected by the fault proxy: {code}"),
    });
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", code)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Forwards one request to `upstream` on a connection of its own.
async fn send(upstream: String, request: Request<Full<Bytes>>) -> Result<Answer, Closed> {
    let stream = TcpStream::connect(&upstream)
        .await
        .map_err(|_| Closed("moto unreachable"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Closed("handshake"))?;
    tokio::spawn(connection);
    let answer = sender
        .send_request(request)
        .await
        .map_err(|_| Closed("moto answer"))?;
    let (parts, body) = answer.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|_| Closed("moto body"))?
        .to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}
