//! Posts a call to the Slack channel behind `SLACK_WEBHOOK_URL`: a Block Kit message
//! plus a text fallback. Every caller-supplied string goes through [`Mrkdwn::escape`],
//! so `<!channel>` in a caller's name pings no one.

use std::time::Duration;

use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_processor::http::{self, OutboundUrl};
use nphooks_processor::{Delivered, Sink, SinkError};
use serde_json::{Value, json};

pub const SLACK_WEBHOOK_URL_VAR: &str = "SLACK_WEBHOOK_URL";

/// Text safe to place in Slack mrkdwn: `&`, `<` and `>` are entities, so no link,
/// mention or `<!channel>` can be formed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mrkdwn(String);

impl Mrkdwn {
    /// Escapes caller-supplied text, cut to `max_chars` characters.
    pub fn escape(text: &str, max_chars: usize) -> Self {
        let mut out = String::with_capacity(text.len());
        for (i, c) in text.chars().enumerate() {
            if i == max_chars {
                out.push('…');
                break;
            }
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
        }
        Mrkdwn(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The Slack sink.
#[derive(Debug)]
pub struct SlackSink {
    webhook: OutboundUrl,
    client: reqwest::Client,
}

impl SlackSink {
    pub fn new(webhook: OutboundUrl, client: reqwest::Client) -> Self {
        SlackSink { webhook, client }
    }

    pub fn from_settings(
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
        Duration::from_secs(8)
    }

    /// Slack answers 200 `ok`; 429 (with `Retry-After`) and 5xx are retried; 400
    /// `invalid_payload`, 403 `invalid_token`, 404 `no_service` and 410
    /// `channel_is_archived` cannot succeed on retry and go to the DLQ.
    async fn deliver(&self, envelope: &Envelope) -> Result<Delivered, SinkError> {
        let message = slack_message(envelope);
        let request = self.client.post(self.webhook.url().clone()).json(&message);
        let reply = http::send(request, &self.webhook).await?;
        Ok(Delivered::Sent(format!(
            "posted to Slack ({})",
            reply.status
        )))
    }
}

fn field(label: &str, value: &Mrkdwn) -> Value {
    json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", value.as_str())})
}

/// `demo_request` → `Demo request`.
fn humanise(call_type: &str) -> String {
    let spaced = call_type.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn duration(seconds: f64) -> String {
    // Whole seconds are what a person reads; the value is non-negative (validated).
    let total = seconds.round() as u64;
    match (total / 60, total % 60) {
        (0, s) => format!("{s}s"),
        (m, s) => format!("{m}m {s}s"),
    }
}

/// The Block Kit message for a call.
pub fn slack_message(envelope: &Envelope) -> Value {
    let data = &envelope.webhook.data;
    let kind = data
        .call_type
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(humanise)
        .unwrap_or_else(|| envelope.webhook.event.name().to_owned());
    let kind = Mrkdwn::escape(&kind, 60);
    let name = Mrkdwn::escape(data.caller.name.as_deref().unwrap_or("Unknown caller"), 200);
    let phone = Mrkdwn::escape(data.caller.phone.as_deref().unwrap_or("—"), 50);
    let mut fields = vec![field("Caller", &name), field("Phone", &phone)];
    if let Some(email) = &data.caller.email {
        fields.push(field("Email", &Mrkdwn::escape(email, 200)));
    }
    if let Some(seconds) = data.duration_seconds {
        fields.push(field("Duration", &Mrkdwn(duration(seconds))));
    }

    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": format!("📞 {}", kind.as_str()), "emoji": true}}),
        json!({"type": "section", "fields": fields}),
    ];
    if let Some(summary) = data.ai_summary.as_deref().filter(|s| !s.trim().is_empty()) {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Summary*\n{}", Mrkdwn::escape(summary, 2900).as_str())}}));
    }
    // A section holds at most 10 fields.
    let custom: Vec<Value> = data
        .custom_fields
        .iter()
        .take(10)
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            field(
                Mrkdwn::escape(&humanise(key), 100).as_str(),
                &Mrkdwn::escape(&text, 1800),
            )
        })
        .collect();
    if !custom.is_empty() {
        blocks.push(json!({"type": "section", "fields": custom}));
    }
    blocks.push(
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!(
            "{} · call `{}`",
            Mrkdwn::escape(envelope.webhook.event.name(), 60).as_str(),
            Mrkdwn::escape(&data.call_id, 100).as_str()
        )}]}),
    );

    json!({
        "text": format!("New {} call from {} ({})", kind.as_str(), name.as_str(), phone.as_str()),
        "blocks": blocks,
    })
}
