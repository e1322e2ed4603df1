//! The bench's sinks: each integration's real work up to the network (the CRM lead, the
//! email's MIME message, the Slack post, the signed notification, each as the request or
//! message its sink would send), recorded in memory per delivery instead of sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_core::secret::Secret;
use nphooks_processor::{Delivered, FailureReason, Sink, SinkError};

use crate::sinks::PREVIEW_SIGNING_SECRET;

/// Which slot of a delivery's counters an integration uses.
pub(super) fn slot(integration: Integration) -> usize {
    Integration::ALL
        .iter()
        .position(|i| *i == integration)
        .unwrap_or_default()
}

/// Every effect the sinks performed, per delivery and integration.
#[derive(Debug)]
pub(super) struct Effects {
    started: Instant,
    index: HashMap<String, usize>,
    counts: Vec<[AtomicU32; Integration::ALL.len()]>,
    /// Nanoseconds from `started` to each delivery's latest effect.
    last: Vec<AtomicU64>,
    total: AtomicU64,
    /// Effects on a delivery key the bench did not send.
    unknown: AtomicU64,
    bytes: AtomicU64,
}

impl Effects {
    /// Counters for the deliveries `keys` (in the order the webhooks are sent).
    pub(super) fn new(keys: &[String], started: Instant) -> Self {
        Effects {
            started,
            index: keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), i))
                .collect(),
            counts: keys.iter().map(|_| Default::default()).collect(),
            last: keys.iter().map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    pub(super) fn record(&self, delivery_key: &str, integration: Integration) {
        let at = nanos(self.started.elapsed());
        self.total.fetch_add(1, Ordering::Relaxed);
        match self.index.get(delivery_key) {
            Some(&i) => {
                self.counts[i][slot(integration)].fetch_add(1, Ordering::Relaxed);
                self.last[i].fetch_max(at, Ordering::Relaxed);
            }
            None => {
                self.unknown.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn add_bytes(&self, bytes: usize) {
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(super) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(super) fn unknown(&self) -> u64 {
        self.unknown.load(Ordering::Relaxed)
    }

    pub(super) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// How many times each integration acted on delivery `i`.
    pub(super) fn counts(&self, i: usize) -> [u32; Integration::ALL.len()] {
        self.counts[i].each_ref().map(|c| c.load(Ordering::Relaxed))
    }

    /// When delivery `i`'s latest effect happened, from the start.
    pub(super) fn last(&self, i: usize) -> Duration {
        Duration::from_nanos(self.last[i].load(Ordering::Relaxed))
    }
}

pub(super) fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// Where the requests would have gone (never contacted: requests are built, not sent).
const NOWHERE: &str = "http://127.0.0.1:9/bench";

/// One integration's work, done up to the network and recorded.
#[derive(Debug)]
pub(super) struct BenchSink {
    integration: Integration,
    effects: Arc<Effects>,
    client: reqwest::Client,
    work: Work,
}

#[derive(Debug)]
enum Work {
    Crm,
    Email(Box<email::EmailSink<MemoryMailer>>),
    Slack,
    Notify(notify::SigningKey),
    Callback(Box<callback::CallbackSink>),
}

impl BenchSink {
    pub(super) fn new(integration: Integration, effects: Arc<Effects>) -> anyhow::Result<Self> {
        let work = match integration {
            Integration::Crm => Work::Crm,
            Integration::Slack => Work::Slack,
            Integration::Callback => {
                let base =
                    nphooks_processor::http::OutboundUrl::parse("bench", NOWHERE, true, false)?;
                let api = nphooks_processor::nextphone::NextPhoneApi::new(
                    base,
                    Secret::new("bench-key"),
                    reqwest::Client::new(),
                );
                Work::Callback(Box::new(callback::CallbackSink::new(api, "Acme")))
            }
            Integration::Notify => Work::Notify(notify::SigningKey::parse(
                notify::NOTIFY_SIGNING_SECRET_VAR,
                &Secret::new(PREVIEW_SIGNING_SECRET),
            )?),
            Integration::Email => {
                let settings = Settings::from_pairs([
                    (email::EMAIL_TRANSPORT_VAR, "ses"),
                    (email::EMAIL_FROM_VAR, "Acme <hello@example.com>"),
                ]);
                let config = email::EmailConfig::from_settings(&settings, true)?;
                let mailer = MemoryMailer(effects.clone());
                Work::Email(Box::new(email::EmailSink::new(config, mailer)))
            }
        };
        Ok(BenchSink {
            integration,
            effects,
            client: reqwest::Client::new(),
            work,
        })
    }

    /// The request the integration's sink would send, built but not sent.
    fn request(&self, envelope: &Envelope) -> Result<reqwest::Request, SinkError> {
        let key = envelope.delivery_key.as_str();
        let post = self.client.post(NOWHERE);
        let built = match &self.work {
            Work::Crm => post
                .bearer_auth("bench-token")
                .header("Idempotency-Key", crm::idempotency_key(key))
                .json(&crm::generic_body(envelope)),
            Work::Slack => post.json(&slack::slack_message(envelope)),
            // A caller with no E.164 phone is skipped, as the sink skips it.
            Work::Callback(sink) => match sink.request_for(envelope)? {
                Some(call) => sink.api().call_request(&call.to, &call.script, key),
                None => post,
            },
            // Email goes through its own sink and mailer, never a request.
            Work::Email(_) => return Err(SinkError::permanent(FailureReason::Misconfigured)),
            Work::Notify(signing) => {
                let body = serde_json::to_vec(&notify::notification(envelope))
                    .map_err(|_| SinkError::permanent(FailureReason::UnusableData))?;
                let id = notify::webhook_id(key);
                let timestamp = nphooks_core::epoch_seconds(SystemTime::now());
                post.header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(notify::HEADER_WEBHOOK_ID, &id)
                    .header(notify::HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string())
                    .header(
                        notify::HEADER_WEBHOOK_SIGNATURE,
                        signing.sign(&id, timestamp, &body),
                    )
                    .body(body)
            }
        };
        built
            .build()
            .map_err(|_| SinkError::permanent(FailureReason::UnusableData))
    }
}

impl Sink for BenchSink {
    fn timeout(&self) -> Duration {
        crate::sinks::PREVIEW_TIMEOUT
    }

    async fn deliver(&self, envelope: &Envelope) -> Result<Delivered, SinkError> {
        let delivered = match &self.work {
            Work::Email(sink) => sink.deliver(envelope).await?,
            _ => {
                let request = self.request(envelope)?;
                let body = request.body().and_then(|b| b.as_bytes());
                self.effects.add_bytes(body.map_or(0, <[u8]>::len));
                Delivered::Sent("recorded".to_owned())
            }
        };
        self.effects
            .record(envelope.delivery_key.as_str(), self.integration);
        Ok(delivered)
    }
}

/// Renders the MIME message as SMTP would send it, and counts its bytes.
#[derive(Debug)]
struct MemoryMailer(Arc<Effects>);

impl email::Mailer for MemoryMailer {
    async fn send(&self, message: &lettre::Message) -> Result<(), SinkError> {
        self.0.add_bytes(message.formatted().len());
        Ok(())
    }
}
