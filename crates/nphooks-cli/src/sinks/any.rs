//! [`AnySink`]: each integration's real sink when its configuration is present, else
//! its preview into the outbox (`nphooks serve` and `demo`).

use std::sync::Arc;
use std::time::Duration;

use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_core::rate_limit::RateLimit;
use nphooks_core::routing::Integration;
use nphooks_processor::nextphone::NEXTPHONE_API_KEY_VAR;
use nphooks_processor::{Delivered, FromSetup, Sink, SinkError, SinkSetup};

use super::{Outbox, PREVIEW_TIMEOUT, PreviewSink};

/// Any integration's sink, real or preview.
#[derive(Debug)]
pub enum AnySink {
    Crm(crm::CrmSink),
    Email(Box<email::EmailSink>),
    Slack(slack::SlackSink),
    Notify(notify::NotifySink),
    Callback(callback::CallbackSink),
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
        let configured = |name: &str| settings.optional(name).is_some();
        Ok(match integration {
            Integration::Crm
                if configured(crm::CRM_API_URL_VAR)
                    || configured(crm::CRM_API_TOKEN_VAR)
                    || configured(crm::salesforce::LOGIN_URL_VAR) =>
            {
                AnySink::Crm(real(settings, allow_http, aws)?)
            }
            Integration::Email
                if configured(email::SMTP_HOST_VAR)
                    || settings.optional(email::EMAIL_TRANSPORT_VAR) == Some("ses") =>
            {
                AnySink::Email(Box::new(real(settings, allow_http, aws)?))
            }
            Integration::Slack if configured(slack::SLACK_WEBHOOK_URL_VAR) => {
                AnySink::Slack(real(settings, allow_http, aws)?)
            }
            Integration::Notify if configured(notify::NOTIFY_URL_VAR) => {
                AnySink::Notify(real(settings, allow_http, aws)?)
            }
            Integration::Callback if configured(NEXTPHONE_API_KEY_VAR) => {
                AnySink::Callback(real(settings, allow_http, aws)?)
            }
            _ => AnySink::Preview(PreviewSink::new(
                integration,
                &SinkSetup::read(settings, allow_http, aws, PREVIEW_TIMEOUT)?,
                outbox.clone(),
            )?),
        })
    }

    pub fn is_preview(&self) -> bool {
        matches!(self, AnySink::Preview(_))
    }
}

/// An integration's real sink, built as its Lambda builds it.
fn real<K: FromSetup>(
    settings: &Settings,
    allow_http: bool,
    aws: &aws_config::SdkConfig,
) -> anyhow::Result<K> {
    Ok(K::from_setup(&SinkSetup::read(
        settings,
        allow_http,
        aws,
        K::DEFAULT_TIMEOUT,
    )?)?)
}

impl Sink for AnySink {
    fn timeout(&self) -> Duration {
        match self {
            AnySink::Crm(s) => s.timeout(),
            AnySink::Email(s) => s.timeout(),
            AnySink::Slack(s) => s.timeout(),
            AnySink::Notify(s) => s.timeout(),
            AnySink::Callback(s) => s.timeout(),
            AnySink::Preview(s) => s.timeout,
        }
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        match self {
            AnySink::Crm(s) => s.rate_limit(),
            AnySink::Email(s) => s.rate_limit(),
            AnySink::Slack(s) => s.rate_limit(),
            AnySink::Notify(s) => s.rate_limit(),
            AnySink::Callback(s) => s.rate_limit(),
            AnySink::Preview(_) => None,
        }
    }

    fn requests_per_delivery(&self) -> u32 {
        match self {
            AnySink::Crm(s) => s.requests_per_delivery(),
            _ => 1,
        }
    }

    fn closed_until(&self, now: std::time::SystemTime) -> Option<std::time::SystemTime> {
        match self {
            AnySink::Callback(s) => s.closed_until(now),
            _ => None,
        }
    }

    async fn deliver(&self, envelope: &Envelope) -> Result<Delivered, SinkError> {
        match self {
            AnySink::Crm(s) => s.deliver(envelope).await,
            AnySink::Email(s) => s.deliver(envelope).await,
            AnySink::Slack(s) => s.deliver(envelope).await,
            AnySink::Notify(s) => s.deliver(envelope).await,
            AnySink::Callback(s) => s.deliver(envelope).await,
            AnySink::Preview(s) => s.preview(envelope).await,
        }
    }
}
