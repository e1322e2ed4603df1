//! Calls a caller back through NextPhone's API (`POST /v1/calls`) with a script rendered
//! from a template per call type ([`script`]), within the account's rate limit (held by
//! the runtime's shared limiter across every concurrent Lambda) and `CALLBACK_HOURS`
//! ([`hours`]; outside them the message waits). A caller without a valid E.164 phone is
//! completed as skipped and counted (`CallbackSkippedNoPhone`). Effectively once: the
//! request carries the delivery key as its `Idempotency-Key`, and the claim guards it.

pub mod hours;
pub mod script;

use std::time::{Duration, SystemTime};

use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_core::rate_limit::RateLimit;
use nphooks_core::webhook::{Event, EventKind};
use nphooks_processor::nextphone::{E164, NextPhoneApi};
use nphooks_processor::{Delivered, FailureReason, HttpSink, Sink, SinkError};
use serde_json::Value;

pub use hours::CallbackHours;
pub use script::{ScriptContext, Scripts, speakable};

pub const CALLBACK_BUSINESS_NAME_VAR: &str = "CALLBACK_BUSINESS_NAME";
/// The metric counted for each caller skipped for want of an E.164 phone.
pub const SKIPPED_METRIC: &str = "CallbackSkippedNoPhone";
/// The longest one request may take unless `NPHOOKS_SINK_TIMEOUT_SECONDS` says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(8);

/// The callback sink.
#[derive(Debug)]
pub struct CallbackSink {
    api: NextPhoneApi,
    hours: Option<CallbackHours>,
    business_name: String,
    scripts: Scripts,
    timeout: Duration,
}

/// What a call back would be: the number and the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRequest {
    pub to: E164,
    pub script: String,
}

impl CallbackSink {
    pub fn new(api: NextPhoneApi, business_name: impl Into<String>) -> Self {
        CallbackSink {
            api,
            hours: None,
            business_name: speakable(&business_name.into()),
            scripts: Scripts::default(),
            timeout: TIMEOUT,
        }
    }

    /// Calls back only within `hours`.
    pub fn with_hours(self, hours: CallbackHours) -> Self {
        CallbackSink {
            hours: Some(hours),
            ..self
        }
    }

    /// The API client (for previews that build the request without sending it).
    pub fn api(&self) -> &NextPhoneApi {
        &self.api
    }

    /// The call back `envelope` asks for; `None` when the caller has no E.164 phone.
    pub fn request_for(&self, envelope: &Envelope) -> Result<Option<CallbackRequest>, SinkError> {
        let data = &envelope.webhook.data;
        let Some(to) = data.caller.phone.as_deref().and_then(E164::parse) else {
            return Ok(None);
        };
        let text = |name: &str| match data.custom_fields.get(name) {
            Some(Value::String(s)) => Some(speakable(s)).filter(|s| !s.is_empty()),
            _ => None,
        };
        let first_name = data
            .caller
            .name
            .as_deref()
            .map(speakable)
            .and_then(|n| n.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "there".to_owned());
        let context = ScriptContext {
            business_name: self.business_name.clone(),
            first_name,
            service_type: text("service_type"),
            preferred_time: text("preferred_time"),
        };
        let message = envelope.webhook.event == Event::Known(EventKind::MessageCollected);
        let call_type = if message {
            None
        } else {
            data.call_type.as_deref()
        };
        let script = self.scripts.render(call_type, &context).map_err(|e| {
            tracing::error!(error = %e, "callback script");
            SinkError::permanent(FailureReason::Misconfigured)
        })?;
        Ok(Some(CallbackRequest { to, script }))
    }
}

impl HttpSink for CallbackSink {
    const DEFAULT_TIMEOUT: Duration = TIMEOUT;

    fn with_timeout(self, timeout: Duration) -> Self {
        CallbackSink { timeout, ..self }
    }

    fn from_settings(
        settings: &Settings,
        allow_http: bool,
        client: reqwest::Client,
    ) -> nphooks_processor::Result<Self> {
        let api = NextPhoneApi::from_settings(settings, allow_http, client)?;
        let name = settings
            .optional(CALLBACK_BUSINESS_NAME_VAR)
            .unwrap_or("our team");
        let sink = Self::new(api, name);
        Ok(match CallbackHours::from_settings(settings)? {
            Some(hours) => sink.with_hours(hours),
            None => sink,
        })
    }
}

impl Sink for CallbackSink {
    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        Some(self.api.rate_limit())
    }

    fn closed_until(&self, now: SystemTime) -> Option<SystemTime> {
        self.hours.as_ref()?.closed_until(now)
    }

    /// 2xx → sent; 429 (with `Retry-After`), 408 and 5xx → retried; other 4xx → DLQ. A
    /// caller without an E.164 phone → skipped and counted.
    async fn deliver(&self, envelope: &Envelope) -> Result<Delivered, SinkError> {
        let Some(request) = self.request_for(envelope)? else {
            nphooks_core::metrics::emit_count("callback", SKIPPED_METRIC);
            return Ok(Delivered::Skipped(
                "caller has no E.164 phone number".into(),
            ));
        };
        let key = envelope.delivery_key.as_str();
        let reply = self
            .api
            .place_call(&request.to, &request.script, key)
            .await?;
        Ok(Delivered::Sent(format!(
            "call back requested from NextPhone ({})",
            reply.status.as_u16()
        )))
    }
}
