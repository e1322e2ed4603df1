//! The CRM processor: each routed call becomes a lead.
//!
//! - `CRM_PROVIDER=generic` (the default): the lead as JSON, `POST`ed to `CRM_API_URL`
//!   with `Authorization: Bearer <CRM_API_TOKEN>` and `Idempotency-Key: <delivery key>`.
//! - `CRM_PROVIDER=hubspot`: a HubSpot CRM v3 contact upserted by email (or found by
//!   phone), plus the call's summary as a note; `CRM_API_URL` is the API base
//!   (default `https://api.hubapi.com`). See [`hubspot`].
//! - `CRM_PROVIDER=salesforce`: a Salesforce Lead upserted on an external-ID field holding
//!   the delivery key, with an OAuth 2.0 client-credentials token. See [`salesforce`].
//!
//! Nothing here logs a caller's name, phone, email or summary, nor the token. Error
//! bodies from the CRM are left out of failure reasons (which are logged and kept on
//! dead letters), because CRMs echo the rejected values in them.

pub mod hubspot;
mod lead;
pub mod salesforce;

use std::time::Duration;

use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_core::rate_limit::RateLimit;
use nphooks_core::secret::Secret;
use nphooks_processor::http::{self, OutboundUrl};
use nphooks_processor::{Delivered, FailureReason, HttpSink, Sink, SinkError};
use serde_json::Value;

pub use lead::{CrmLead, LEAD_SOURCE, split_name};

pub const CRM_PROVIDER_VAR: &str = "CRM_PROVIDER";
pub const CRM_API_URL_VAR: &str = "CRM_API_URL";
pub const CRM_API_TOKEN_VAR: &str = "CRM_API_TOKEN";
pub const HUBSPOT_DEFAULT_BASE: &str = "https://api.hubapi.com";
/// The longest one delivery may take unless `NPHOOKS_SINK_TIMEOUT_SECONDS` says
/// otherwise (HubSpot makes up to three requests).
pub const TIMEOUT: Duration = Duration::from_secs(8);

/// Which CRM the leads go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrmProvider {
    Generic,
    HubSpot,
    Salesforce,
}

impl CrmProvider {
    /// `generic` (also when unset), `hubspot` or `salesforce`, any case.
    pub fn from_settings(settings: &Settings) -> nphooks_processor::Result<Self> {
        match settings.optional(CRM_PROVIDER_VAR) {
            None => Ok(CrmProvider::Generic),
            Some(v) if v.eq_ignore_ascii_case("generic") => Ok(CrmProvider::Generic),
            Some(v) if v.eq_ignore_ascii_case("hubspot") => Ok(CrmProvider::HubSpot),
            Some(v) if v.eq_ignore_ascii_case("salesforce") => Ok(CrmProvider::Salesforce),
            Some(other) => Err(config_error(
                CRM_PROVIDER_VAR,
                format!("must be generic, hubspot or salesforce, got {other:?}"),
            )),
        }
    }
}

/// Where leads go: an endpoint and a bearer token (generic, HubSpot), or Salesforce.
#[derive(Debug)]
enum Target {
    Bearer { url: OutboundUrl, token: Secret },
    Salesforce(Box<salesforce::Salesforce>),
}

/// The CRM sink. `Debug` shows the provider and URL, never a token or credential.
#[derive(Debug)]
pub struct CrmSink {
    provider: CrmProvider,
    target: Target,
    client: reqwest::Client,
    timeout: Duration,
}

impl CrmSink {
    /// `url` is the endpoint (generic) or the API base (HubSpot). The token must be
    /// usable in a header (checked by [`CrmSink::from_settings`]). Salesforce sinks are
    /// made by [`CrmSink::salesforce`]; given here, every delivery fails as misconfigured.
    pub fn new(
        provider: CrmProvider,
        url: OutboundUrl,
        token: Secret,
        client: reqwest::Client,
    ) -> Self {
        CrmSink {
            provider,
            target: Target::Bearer { url, token },
            client,
            timeout: TIMEOUT,
        }
    }

    /// A Salesforce sink.
    pub fn salesforce(salesforce: salesforce::Salesforce, client: reqwest::Client) -> Self {
        CrmSink {
            provider: CrmProvider::Salesforce,
            target: Target::Salesforce(Box::new(salesforce)),
            client,
            timeout: TIMEOUT,
        }
    }

    pub fn provider(&self) -> CrmProvider {
        self.provider
    }

    async fn deliver_generic(
        &self,
        (url, token): (&OutboundUrl, &Secret),
        lead: &CrmLead,
        envelope: &Envelope,
    ) -> Result<Delivered, SinkError> {
        let request = self
            .client
            .post(url.url().clone())
            .bearer_auth(token.expose())
            .header(
                "Idempotency-Key",
                idempotency_key(envelope.delivery_key.as_str()),
            )
            .json(&lead.to_json());
        let reply = http::send(request).await?;
        Ok(Delivered::Sent(format!(
            "lead posted to the CRM ({})",
            reply.status.as_u16()
        )))
    }
}

/// HubSpot allows 100 requests per 10 seconds per private app.
pub const HUBSPOT_RATE_LIMIT: RateLimit = RateLimit::new(100, Duration::from_secs(10));

impl HttpSink for CrmSink {
    const DEFAULT_TIMEOUT: Duration = TIMEOUT;

    fn with_timeout(self, timeout: Duration) -> Self {
        CrmSink { timeout, ..self }
    }

    /// Reads `CRM_PROVIDER`, then `CRM_API_URL` and `CRM_API_TOKEN`, or Salesforce's
    /// settings ([`salesforce::Salesforce::from_settings`]); every error names its variable.
    fn from_settings(
        settings: &Settings,
        allow_http: bool,
        client: reqwest::Client,
    ) -> nphooks_processor::Result<Self> {
        let provider = CrmProvider::from_settings(settings)?;
        let url = match (provider, settings.optional(CRM_API_URL_VAR)) {
            (CrmProvider::Salesforce, _) => {
                let salesforce = salesforce::Salesforce::from_settings(settings, allow_http)?;
                return Ok(Self::salesforce(salesforce, client));
            }
            (_, Some(url)) => url,
            (CrmProvider::HubSpot, None) => HUBSPOT_DEFAULT_BASE,
            (CrmProvider::Generic, None) => settings.required(CRM_API_URL_VAR)?,
        };
        let url = OutboundUrl::parse(CRM_API_URL_VAR, url, allow_http, false)?;
        let token = settings.required_secret(CRM_API_TOKEN_VAR, allow_http)?;
        // Checked here so a bad token stops start-up instead of failing every delivery.
        if !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(config_error(
                CRM_API_TOKEN_VAR,
                "must be printable ASCII without spaces".into(),
            ));
        }
        Ok(Self::new(provider, url, Secret::new(token), client))
    }
}

impl Sink for CrmSink {
    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        match self.provider {
            CrmProvider::Generic | CrmProvider::Salesforce => None,
            CrmProvider::HubSpot => Some(HUBSPOT_RATE_LIMIT),
        }
    }

    /// HubSpot: search or upsert, update or create, and the note. Salesforce: the
    /// upsert, sent again after a 401 (token requests are not API calls).
    fn requests_per_delivery(&self) -> u32 {
        match self.provider {
            CrmProvider::Generic => 1,
            CrmProvider::Salesforce => 2,
            CrmProvider::HubSpot => 3,
        }
    }

    /// 2xx → sent; 408, 429 (`Retry-After` honoured), 5xx and network errors →
    /// transient; other 4xx, and a caller HubSpot cannot key → permanent (DLQ).
    /// Salesforce's own codes: see [`salesforce::classify`].
    async fn deliver(&self, envelope: &Envelope) -> Result<Delivered, SinkError> {
        let lead = CrmLead::from_envelope(envelope);
        let (url, token) = match &self.target {
            Target::Salesforce(salesforce) => {
                let key = envelope.delivery_key.as_str();
                return salesforce.deliver(&self.client, &lead, key).await;
            }
            Target::Bearer { url, token } => (url, token),
        };
        match self.provider {
            CrmProvider::Generic => self.deliver_generic((url, token), &lead, envelope).await,
            CrmProvider::Salesforce => Err(SinkError::permanent(FailureReason::Misconfigured)
                .with_detail("a Salesforce CRM sink must be built by CrmSink::salesforce")),
            CrmProvider::HubSpot => {
                let timestamp = envelope
                    .webhook
                    .timestamp
                    .as_deref()
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or(&envelope.received_at);
                hubspot::HubSpot {
                    client: &self.client,
                    base: url,
                    token: token.expose(),
                }
                .deliver(&lead, timestamp)
                .await
            }
        }
    }
}

pub use nphooks_processor::http::idempotency_key;

fn config_error(name: &'static str, problem: String) -> nphooks_processor::Error {
    nphooks_core::ConfigError::new(name, problem).into()
}

/// The body the generic provider posts for an envelope.
pub fn generic_body(envelope: &Envelope) -> Value {
    CrmLead::from_envelope(envelope).to_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_delivery_keys_then_the_header_value_is_printable_and_distinct() {
        assert_eq!(idempotency_key("call.ended#call_1"), "call.ended#call_1");
        assert_eq!(idempotency_key("call.ended#a b"), "call.ended#a%20b");
        assert_eq!(idempotency_key("x#\r\n%"), "x#%0D%0A%25");
        assert_eq!(idempotency_key("x#é"), "x#%C3%A9");
    }
}
