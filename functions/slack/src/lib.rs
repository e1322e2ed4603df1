//! Posts a call to the Slack channel behind `SLACK_WEBHOOK_URL`: a Block Kit message
//! plus a text fallback. Every caller-supplied string goes through [`Mrkdwn::escape`],
//! so `<!channel>` in a caller's name pings no one, and the message is built within
//! Block Kit's limits ([`limits`]), so Slack never refuses it for its size.

mod blocks;
mod message;
mod text;

use std::time::Duration;

use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_core::rate_limit::RateLimit;
use nphooks_processor::http::{self, OutboundUrl};
use nphooks_processor::{Delivered, HttpSink, Sink, SinkError};

pub use blocks::limits;
pub use message::slack_message;
pub use text::{ELLIPSIS, Mrkdwn, plain_text};

pub const SLACK_WEBHOOK_URL_VAR: &str = "SLACK_WEBHOOK_URL";
/// The longest one post may take unless `NPHOOKS_SINK_TIMEOUT_SECONDS` says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(8);

/// The Slack sink.
#[derive(Debug)]
pub struct SlackSink {
    webhook: OutboundUrl,
    client: reqwest::Client,
    timeout: Duration,
}

impl SlackSink {
    pub fn new(webhook: OutboundUrl, client: reqwest::Client) -> Self {
        SlackSink {
            webhook,
            client,
            timeout: TIMEOUT,
        }
    }
}

/// Slack's incoming webhooks take about one message per second per channel.
pub const SLACK_RATE_LIMIT: RateLimit = RateLimit::new(1, Duration::from_secs(1));

impl HttpSink for SlackSink {
    const DEFAULT_TIMEOUT: Duration = TIMEOUT;

    fn with_timeout(self, timeout: Duration) -> Self {
        SlackSink { timeout, ..self }
    }

    fn from_settings(
        settings: &Settings,
        allow_http: bool,
        client: reqwest::Client,
    ) -> nphooks_processor::Result<Self> {
        let value = settings.required_secret(SLACK_WEBHOOK_URL_VAR, allow_http)?;
        Ok(Self::new(
            OutboundUrl::parse(SLACK_WEBHOOK_URL_VAR, value, allow_http, true)?,
            client,
        ))
    }
}

impl Sink for SlackSink {
    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        Some(SLACK_RATE_LIMIT)
    }

    /// Slack answers 200 `ok`; 429 (with `Retry-After`) and 5xx are retried; 400
    /// `invalid_payload`, 403 `invalid_token`, 404 `no_service` and 410
    /// `channel_is_archived` cannot succeed on retry and go to the DLQ.
    async fn deliver(&self, envelope: &Envelope) -> Result<Delivered, SinkError> {
        let message = slack_message(envelope);
        let request = self.client.post(self.webhook.url().clone()).json(&message);
        let reply = http::send(request).await?;
        Ok(Delivered::Sent(format!(
            "posted to Slack ({})",
            reply.status.as_u16()
        )))
    }
}
