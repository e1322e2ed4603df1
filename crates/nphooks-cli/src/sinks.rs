//! The sinks the local runner uses: each integration's real sink when it is configured,
//! otherwise a preview that runs the same sink code against a local capture server (or,
//! for email, a mailer that writes the MIME message) and writes what would have been
//! sent under `./outbox/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_core::rate_limit::RateLimit;
use nphooks_core::routing::Integration;
use nphooks_core::secret::Secret;
use nphooks_processor::http::OutboundUrl;
use nphooks_processor::{Delivered, FailureReason, Sink, SinkError};

use crate::http_server;

/// The key previews of notifications are signed with when `NOTIFY_SIGNING_SECRET` is unset.
pub const PREVIEW_SIGNING_SECRET: &str = "whsec_cHJldmlldy1vbmx5LW5vdC1hLXNlY3JldA==";

/// A request the capture server received.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// `./outbox/` and the capture server behind HTTP previews.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    base_url: String,
    captured: Arc<Mutex<HashMap<u64, Vec<Captured>>>>,
    next: AtomicU64,
    _server: tokio::task::JoinHandle<()>,
}

impl Outbox {
    /// Starts the capture server on a free loopback port; previews go under `dir`.
    pub async fn start(dir: PathBuf) -> anyhow::Result<Arc<Self>> {
        let listener = http_server::bind(([127, 0, 0, 1], 0).into()).await?;
        let base_url = format!("http://{}", http_server::local_addr(&listener)?);
        let captured: Arc<Mutex<HashMap<u64, Vec<Captured>>>> = Arc::default();
        let store = captured.clone();
        let server = http_server::spawn(listener, move |request| {
            let store = store.clone();
            async move {
                // Paths look like /preview/<slot>/<the sink's own path>.
                let path = request.uri().path().to_owned();
                let mut parts = path.trim_start_matches('/').splitn(3, '/');
                let slot = parts
                    .nth(1)
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                let rest = format!("/{}", parts.next().unwrap_or_default());
                let headers = request
                    .headers()
                    .iter()
                    .filter(|(name, _)| *name != hyper::header::HOST)
                    .map(|(name, value)| {
                        (
                            name.to_string(),
                            String::from_utf8_lossy(value.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                let captured = Captured {
                    method: request.method().to_string(),
                    path: rest,
                    headers,
                    body: request.into_body(),
                };
                store
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(slot)
                    .or_default()
                    .push(captured);
                hyper::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    // Enough for every sink to read a success (HubSpot's batch answer included).
                    .body(Full::new(Bytes::from_static(
                        br#"{"ok":true,"id":"preview","total":0,"results":[{"id":"preview"}]}"#,
                    )))
                    .expect("a static response")
            }
        });
        Ok(Arc::new(Outbox {
            dir,
            base_url,
            captured,
            next: AtomicU64::new(0),
            _server: server,
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn slot(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn take(&self, slot: u64) -> Vec<Captured> {
        self.captured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&slot)
            .unwrap_or_default()
    }

    /// `outbox/<delivery key, file-safe>/<integration>.<extension>`.
    pub fn path_for(
        &self,
        envelope: &Envelope,
        integration: Integration,
        extension: &str,
    ) -> PathBuf {
        let key: String = envelope
            .delivery_key
            .as_str()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir
            .join(key)
            .join(format!("{integration}.{extension}"))
    }
}

/// A captured HTTP request as text: request line, headers, blank line, body as sent.
pub fn render_http(requests: &[Captured]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\n\n");
        }
        out.extend_from_slice(format!("{} {} HTTP/1.1\n", request.method, request.path).as_bytes());
        for (name, value) in &request.headers {
            out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(&request.body);
        out.push(b'\n');
    }
    out
}

fn write(path: &Path, contents: &[u8]) -> Result<(), SinkError> {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, contents));
    written.map_err(|e| {
        tracing::warn!(path = %path.display(), %e, "could not write the preview");
        SinkError::transient(FailureReason::RequestFailed).with_detail("writing the preview")
    })
}

/// What a preview runs: the integration's real sink code, pointed at the outbox.
#[derive(Debug, Clone)]
pub enum PreviewKind {
    Crm,
    Email(email::EmailConfig),
    Slack,
    Notify(notify::SigningKey),
}

/// An integration in preview mode.
#[derive(Debug)]
pub struct PreviewSink {
    integration: Integration,
    kind: PreviewKind,
    outbox: Arc<Outbox>,
    client: reqwest::Client,
}

impl PreviewSink {
    /// The preview for `integration`, reusing whatever of its configuration is set.
    pub fn new(
        integration: Integration,
        settings: &Settings,
        outbox: Arc<Outbox>,
        client: reqwest::Client,
    ) -> anyhow::Result<Self> {
        let kind = match integration {
            Integration::Crm => PreviewKind::Crm,
            Integration::Slack => PreviewKind::Slack,
            Integration::Notify => {
                let secret = Secret::new(
                    settings
                        .optional(notify::NOTIFY_SIGNING_SECRET_VAR)
                        .unwrap_or(PREVIEW_SIGNING_SECRET),
                );
                PreviewKind::Notify(notify::SigningKey::parse(
                    notify::NOTIFY_SIGNING_SECRET_VAR,
                    &secret,
                )?)
            }
            Integration::Email => {
                let from = settings
                    .optional(email::EMAIL_FROM_VAR)
                    .unwrap_or("Acme <hello@example.com>");
                let with_defaults = Settings::from_pairs([
                    (email::EMAIL_TRANSPORT_VAR, "ses"),
                    (email::EMAIL_FROM_VAR, from),
                    (
                        email::EMAIL_BUSINESS_NAME_VAR,
                        settings
                            .optional(email::EMAIL_BUSINESS_NAME_VAR)
                            .unwrap_or("Acme"),
                    ),
                    (
                        email::EMAIL_REPLY_TO_VAR,
                        settings
                            .optional(email::EMAIL_REPLY_TO_VAR)
                            .unwrap_or_default(),
                    ),
                ]);
                PreviewKind::Email(email::EmailConfig::from_settings(&with_defaults, true)?)
            }
        };
        Ok(PreviewSink {
            integration,
            kind,
            outbox,
            client,
        })
    }

    async fn preview(&self, envelope: &Envelope) -> Result<Delivered, SinkError> {
        let slot = self.outbox.slot();
        let url = |path: &str| {
            OutboundUrl::parse(
                "preview",
                &format!("{}/preview/{slot}{path}", self.outbox.base_url),
                true,
                false,
            )
            .map_err(|_| SinkError::permanent(FailureReason::Misconfigured))
        };
        let client = self.client.clone();
        let (result, extension) = match &self.kind {
            PreviewKind::Crm => {
                let sink = crm::CrmSink::new(
                    crm::CrmProvider::Generic,
                    url("/leads")?,
                    Secret::new("preview-token"),
                    client,
                );
                (sink.deliver(envelope).await, "http")
            }
            PreviewKind::Slack => (
                slack::SlackSink::new(url("/services/T00000000/B00000000/PREVIEW")?, client)
                    .deliver(envelope)
                    .await,
                "http",
            ),
            PreviewKind::Notify(key) => (
                notify::NotifySink::new(url("/hooks/nphooks")?, key.clone(), client)
                    .deliver(envelope)
                    .await,
                "http",
            ),
            PreviewKind::Email(config) => {
                let path = self.outbox.path_for(envelope, self.integration, "eml");
                let sink = email::EmailSink::new(config.clone(), OutboxMailer { path });
                (sink.deliver(envelope).await, "eml")
            }
        };
        let delivered = result?;
        let path = self.outbox.path_for(envelope, self.integration, extension);
        let captured = self.outbox.take(slot);
        if !captured.is_empty() {
            write(&path, &render_http(&captured))?;
        }
        Ok(match delivered {
            Delivered::Sent(_) => Delivered::Sent(format!("preview → {}", path.display())),
            skipped @ Delivered::Skipped(_) => skipped,
        })
    }
}

/// Writes the MIME message it is given to a file instead of sending it.
#[derive(Debug)]
pub struct OutboxMailer {
    path: PathBuf,
}

impl email::Mailer for OutboxMailer {
    async fn send(&self, message: &lettre::Message) -> Result<(), SinkError> {
        write(&self.path, &message.formatted())
    }
}

/// Any integration's sink, real or preview.
#[derive(Debug)]
pub enum AnySink {
    Crm(crm::CrmSink),
    Email(Box<email::EmailSink>),
    Slack(slack::SlackSink),
    Notify(notify::NotifySink),
    Preview(PreviewSink),
}

impl AnySink {
    /// The configured sink for `integration`, or its preview when its configuration is absent.
    pub fn for_integration(
        integration: Integration,
        settings: &Settings,
        allow_http: bool,
        aws: &aws_config::SdkConfig,
        outbox: &Arc<Outbox>,
    ) -> anyhow::Result<Self> {
        let client = nphooks_processor::http::client()?;
        let configured = |name: &str| settings.optional(name).is_some();
        Ok(match integration {
            Integration::Crm
                if configured(crm::CRM_API_URL_VAR) || configured(crm::CRM_API_TOKEN_VAR) =>
            {
                AnySink::Crm(crm::CrmSink::from_settings(settings, allow_http, client)?)
            }
            Integration::Email
                if configured(email::SMTP_HOST_VAR)
                    || settings.optional(email::EMAIL_TRANSPORT_VAR) == Some("ses") =>
            {
                AnySink::Email(Box::new(email::EmailSink::connect(
                    email::EmailConfig::from_settings(settings, allow_http)?,
                    aws,
                )?))
            }
            Integration::Slack if configured(slack::SLACK_WEBHOOK_URL_VAR) => AnySink::Slack(
                slack::SlackSink::from_settings(settings, allow_http, client)?,
            ),
            Integration::Notify if configured(notify::NOTIFY_URL_VAR) => AnySink::Notify(
                notify::NotifySink::from_settings(settings, allow_http, client)?,
            ),
            _ => AnySink::Preview(PreviewSink::new(
                integration,
                settings,
                outbox.clone(),
                client,
            )?),
        })
    }

    pub fn is_preview(&self) -> bool {
        matches!(self, AnySink::Preview(_))
    }
}

impl Sink for AnySink {
    fn timeout(&self) -> Duration {
        match self {
            AnySink::Crm(s) => s.timeout(),
            AnySink::Email(s) => s.timeout(),
            AnySink::Slack(s) => s.timeout(),
            AnySink::Notify(s) => s.timeout(),
            AnySink::Preview(_) => Duration::from_secs(10),
        }
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        match self {
            AnySink::Crm(s) => s.rate_limit(),
            AnySink::Email(s) => s.rate_limit(),
            AnySink::Slack(s) => s.rate_limit(),
            AnySink::Notify(s) => s.rate_limit(),
            AnySink::Preview(_) => None,
        }
    }

    fn requests_per_delivery(&self) -> u32 {
        match self {
            AnySink::Crm(s) => s.requests_per_delivery(),
            _ => 1,
        }
    }

    async fn deliver(&self, envelope: &Envelope) -> Result<Delivered, SinkError> {
        match self {
            AnySink::Crm(s) => s.deliver(envelope).await,
            AnySink::Email(s) => s.deliver(envelope).await,
            AnySink::Slack(s) => s.deliver(envelope).await,
            AnySink::Notify(s) => s.deliver(envelope).await,
            AnySink::Preview(s) => s.preview(envelope).await,
        }
    }
}
