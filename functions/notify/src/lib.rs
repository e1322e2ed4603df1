//! Notifies the sales team: POSTs a JSON description of each routed call to `NOTIFY_URL`,
//! signed per the [Standard Webhooks](https://www.standardwebhooks.com/) spec with
//! `NOTIFY_SIGNING_SECRET` (`whsec_<base64 key>`).
//!
//! The `webhook-id` is derived from the delivery key, so every retry of one delivery
//! carries the same id and the receiving end can deduplicate on it.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_core::secret::Secret;
use nphooks_processor::http::{self, OutboundUrl};
use nphooks_processor::{Delivered, FailureReason, HttpSink, Sink, SinkError};
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const NOTIFY_URL_VAR: &str = "NOTIFY_URL";
pub const NOTIFY_SIGNING_SECRET_VAR: &str = "NOTIFY_SIGNING_SECRET";
/// The longest one notification may take unless `NPHOOKS_SINK_TIMEOUT_SECONDS` says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(8);

pub const HEADER_WEBHOOK_ID: &str = "webhook-id";
pub const HEADER_WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// The Standard Webhooks secret prefix.
const SECRET_PREFIX: &str = "whsec_";

/// The key that signs notifications, decoded from a `whsec_<base64>` secret.
/// `Debug` never prints it.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// Decodes a Standard Webhooks secret (`whsec_` followed by the base64 key; the
    /// prefix may be omitted). `name` is the configuration variable, for the error.
    pub fn parse(name: &'static str, secret: &Secret) -> nphooks_processor::Result<Self> {
        let bad = |problem: &str| nphooks_core::ConfigError::new(name, problem);
        let encoded = secret.expose().trim();
        let encoded = encoded.strip_prefix(SECRET_PREFIX).unwrap_or(encoded);
        // The decode error is not shown: it can quote part of the secret.
        let key = BASE64.decode(encoded).map_err(|_| {
            bad("must be a Standard Webhooks secret: whsec_ followed by a base64-encoded key")
        })?;
        if key.is_empty() {
            return Err(bad(
                "holds an empty key (expected whsec_ followed by a base64-encoded key)",
            )
            .into());
        }
        Ok(SigningKey(key))
    }

    /// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
    pub fn sign(&self, webhook_id: &str, timestamp: u64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// The notify sink.
#[derive(Debug)]
pub struct NotifySink {
    url: OutboundUrl,
    key: SigningKey,
    client: reqwest::Client,
    timeout: Duration,
}

impl NotifySink {
    pub fn new(url: OutboundUrl, key: SigningKey, client: reqwest::Client) -> Self {
        NotifySink {
            url,
            key,
            client,
            timeout: TIMEOUT,
        }
    }
}

impl HttpSink for NotifySink {
    const DEFAULT_TIMEOUT: Duration = TIMEOUT;

    fn with_timeout(self, timeout: Duration) -> Self {
        NotifySink { timeout, ..self }
    }

    /// Reads `NOTIFY_URL` (https, unless `allow_http`) and `NOTIFY_SIGNING_SECRET`
    /// (required, `whsec_<base64>`). Every error names its variable.
    fn from_settings(
        settings: &Settings,
        allow_http: bool,
        client: reqwest::Client,
    ) -> nphooks_processor::Result<Self> {
        let url = OutboundUrl::parse(
            NOTIFY_URL_VAR,
            settings.required(NOTIFY_URL_VAR)?,
            allow_http,
            false,
        )?;
        let secret = Secret::new(settings.required_secret(NOTIFY_SIGNING_SECRET_VAR, allow_http)?);
        let key = SigningKey::parse(NOTIFY_SIGNING_SECRET_VAR, &secret)?;
        Ok(Self::new(url, key, client))
    }
}

impl Sink for NotifySink {
    fn timeout(&self) -> Duration {
        self.timeout
    }

    /// 2xx → sent; 408, 429 (with `Retry-After`), 5xx and network errors → retried;
    /// any other status → DLQ.
    async fn deliver(&self, envelope: &Envelope) -> Result<Delivered, SinkError> {
        let body = serde_json::to_vec(&notification(envelope))
            .map_err(|_| SinkError::permanent(FailureReason::UnusableData))?;
        let id = webhook_id(envelope.delivery_key.as_str());
        let timestamp = nphooks_core::epoch_seconds(SystemTime::now());
        let signature = self.key.sign(&id, timestamp, &body);
        let request = self
            .client
            .post(self.url.url().clone())
            .header(CONTENT_TYPE, "application/json")
            .header(HEADER_WEBHOOK_ID, &id)
            .header(HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string())
            .header(HEADER_WEBHOOK_SIGNATURE, signature)
            .body(body);
        let reply = http::send(request).await?;
        // Only the status and the (hashed) id: nothing the caller said.
        Ok(Delivered::Sent(format!(
            "notified the sales team ({}, {id})",
            reply.status.as_u16()
        )))
    }
}

/// `msg_` + the first 32 hex digits of SHA-256(delivery key): the same for every retry
/// of one delivery, different for another.
pub fn webhook_id(delivery_key: &str) -> String {
    let digest = Sha256::digest(delivery_key.as_bytes());
    let mut id = String::with_capacity(4 + 32);
    id.push_str("msg_");
    for byte in &digest[..16] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// The notification's `type`: `call.<call_type>`, or the event name without a call type.
fn notification_type(envelope: &Envelope) -> String {
    match envelope
        .webhook
        .data
        .call_type
        .as_deref()
        .filter(|t| !t.is_empty())
    {
        Some(call_type) => format!("call.{call_type}"),
        None => envelope.webhook.event.name().to_owned(),
    }
}

/// A whole number of seconds as an integer (`184`, not `184.0`); otherwise as given.
fn seconds(value: f64) -> Value {
    if value.fract() == 0.0 && value >= 0.0 && value <= u64::MAX as f64 {
        json!(value as u64)
    } else {
        json!(value)
    }
}

/// The JSON body sent to `NOTIFY_URL`. Absent fields are `null`, so the shape is stable.
pub fn notification(envelope: &Envelope) -> Value {
    let data = &envelope.webhook.data;
    json!({
        "type": notification_type(envelope),
        "delivery_key": envelope.delivery_key.as_str(),
        "timestamp": envelope.received_at,
        "data": {
            "call_id": data.call_id,
            "call_type": data.call_type,
            "caller": {
                "name": data.caller.name,
                "phone": data.caller.phone,
                "email": data.caller.email,
            },
            "duration_seconds": data.duration_seconds.map(seconds),
            "summary": data.ai_summary,
            "custom_fields": data.custom_fields,
            "event": envelope.webhook.event.name(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_delivery_key_then_the_webhook_id_is_msg_and_32_hex_digits() {
        let id = webhook_id("call.ended#c1");
        assert_eq!(id.len(), 36, "{id}");
        assert!(id.starts_with("msg_"), "{id}");
        assert!(
            id[4..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(id, webhook_id("call.ended#c1"));
        assert_ne!(id, webhook_id("call.ended#c2"));
    }

    #[test]
    fn given_the_spec_example_then_the_signature_matches_it() {
        // The Standard Webhooks reference example.
        let key = SigningKey::parse(
            NOTIFY_SIGNING_SECRET_VAR,
            &Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        )
        .expect("valid");
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn given_whole_and_fractional_durations_then_whole_ones_are_integers() {
        assert_eq!(seconds(184.0), json!(184));
        assert_eq!(seconds(1.5), json!(1.5));
    }
}
