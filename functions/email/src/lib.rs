//! The confirmation email to the caller: rendered per call type from `templates/`,
//! sent over SMTP (lettre) or SES (v2 API), effectively once through the processor runtime.
//!
//! A caller without an email address, or with an invalid one, gets none: the delivery
//! completes as skipped (no address logged) and is counted.

mod mailer;
mod render;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};
use nphooks_core::ConfigError;
use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_processor::{Delivered, FromSetup, Sink, SinkError, SinkSetup};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use mailer::{AnyMailer, Mailer, SMTP_HOST_VAR, SesMailer, SmtpMailer, SmtpSettings, SmtpTls};
pub use render::{EmailContext, RenderedEmail, Templates};

pub const EMAIL_TRANSPORT_VAR: &str = "EMAIL_TRANSPORT";
pub const EMAIL_FROM_VAR: &str = "EMAIL_FROM";
pub const EMAIL_REPLY_TO_VAR: &str = "EMAIL_REPLY_TO";
pub const EMAIL_BUSINESS_NAME_VAR: &str = "EMAIL_BUSINESS_NAME";
/// The longest one email may take unless `NPHOOKS_SINK_TIMEOUT_SECONDS` says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Everything that can go wrong in the email crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("template: {0}")]
    Template(String),
    #[error("the {0} header would contain a line break")]
    HeaderInjection(&'static str),
    #[error("could not build the email: {0}")]
    Build(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn config_error(name: &'static str, problem: impl Into<String>) -> Error {
    ConfigError::new(name, problem).into()
}

/// How email leaves.
#[derive(Debug, Clone)]
pub enum Transport {
    Smtp(SmtpSettings),
    Ses,
}

/// The email processor's configuration.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub transport: Transport,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub business_name: String,
}

fn mailbox(name: &'static str, value: &str) -> Result<Mailbox> {
    if value.contains(['\r', '\n']) {
        return Err(config_error(name, "must not contain a line break"));
    }
    value
        .parse::<Mailbox>()
        .map_err(|e| config_error(name, format!("is not an email address ({e}): {value:?}")))
}

impl EmailConfig {
    pub fn from_settings(settings: &Settings, allow_http: bool) -> Result<Self> {
        let transport = match settings.optional(EMAIL_TRANSPORT_VAR).unwrap_or("smtp") {
            "smtp" => Transport::Smtp(SmtpSettings::from_settings(settings, allow_http)?),
            "ses" => Transport::Ses,
            other => {
                return Err(config_error(
                    EMAIL_TRANSPORT_VAR,
                    format!("must be smtp or ses, got {other:?}"),
                ));
            }
        };
        let from = mailbox(
            EMAIL_FROM_VAR,
            settings
                .optional(EMAIL_FROM_VAR)
                .ok_or_else(|| config_error(EMAIL_FROM_VAR, "is not set"))?,
        )?;
        let reply_to = settings
            .optional(EMAIL_REPLY_TO_VAR)
            .map(|v| mailbox(EMAIL_REPLY_TO_VAR, v))
            .transpose()?;
        let business_name = match settings.optional(EMAIL_BUSINESS_NAME_VAR) {
            Some(name) if name.contains(['\r', '\n']) => {
                return Err(config_error(
                    EMAIL_BUSINESS_NAME_VAR,
                    "must not contain a line break",
                ));
            }
            Some(name) => name.to_owned(),
            None => from
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| {
                    config_error(
                        EMAIL_BUSINESS_NAME_VAR,
                        "is not set, and EMAIL_FROM has no display name to use instead",
                    )
                })?,
        };
        Ok(EmailConfig {
            transport,
            from,
            reply_to,
            business_name,
        })
    }
}

/// The email sink, over any [`Mailer`].
#[derive(Debug)]
pub struct EmailSink<M = AnyMailer> {
    config: EmailConfig,
    templates: Templates,
    mailer: M,
    skipped: AtomicU64,
    timeout: Duration,
}

impl EmailSink<AnyMailer> {
    /// Builds the configured transport (SMTP connection settings, or the SES client).
    pub fn connect(config: EmailConfig, aws: &aws_config::SdkConfig) -> Result<Self> {
        Self::connect_within(config, aws, TIMEOUT)
    }

    /// [`EmailSink::connect`], with every email, and the SMTP connection or SES call in
    /// it, bounded by `timeout`.
    pub fn connect_within(
        config: EmailConfig,
        aws: &aws_config::SdkConfig,
        timeout: Duration,
    ) -> Result<Self> {
        let mailer = match &config.transport {
            Transport::Smtp(smtp) => AnyMailer::Smtp(SmtpMailer::within(smtp, timeout)?),
            Transport::Ses => AnyMailer::Ses(SesMailer::within(aws, timeout)),
        };
        Ok(Self::new(config, mailer).with_timeout(timeout))
    }
}

impl FromSetup for EmailSink<AnyMailer> {
    const DEFAULT_TIMEOUT: Duration = TIMEOUT;
    type Error = Error;

    fn from_setup(setup: &SinkSetup<'_>) -> Result<Self> {
        let config = EmailConfig::from_settings(setup.settings, setup.allow_http)?;
        Self::connect_within(config, setup.aws, setup.timeout)
    }
}

impl<M: Mailer> EmailSink<M> {
    pub fn new(config: EmailConfig, mailer: M) -> Self {
        EmailSink {
            config,
            templates: Templates::new(),
            mailer,
            skipped: AtomicU64::new(0),
            timeout: TIMEOUT,
        }
    }

    /// The longest one email may take (the mailer's own timeouts are the caller's).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        EmailSink { timeout, ..self }
    }

    /// Deliveries completed without an email (no or invalid address).
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    fn skip(&self, why: &str) -> Delivered {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        tracing::info!(metric = "EmailSkipped", "{why}");
        nphooks_core::metrics::emit_count("email", "EmailSkipped");
        Delivered::Skipped(why.to_owned())
    }

    /// The email for this delivery, or why there is none.
    pub fn compose(&self, envelope: &Envelope) -> Result<Result<Message, String>> {
        let data = &envelope.webhook.data;
        let call_type = data.call_type.as_deref().unwrap_or_default();
        if !Templates::has(call_type) {
            return Ok(Err(format!(
                "no confirmation email for call type {call_type:?}"
            )));
        }
        let Some(address) = data
            .caller
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        else {
            return Ok(Err("caller has no email address".into()));
        };
        let Ok(address) = address.parse::<Address>() else {
            return Ok(Err("caller's email address is invalid".into()));
        };
        let text_field = |name: &str| match data.custom_fields.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            _ => None,
        };
        let name = data
            .caller
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        let context = EmailContext {
            business_name: self.config.business_name.clone(),
            first_name: name
                .and_then(|n| n.split_whitespace().next())
                .unwrap_or("there")
                .to_owned(),
            service_type: text_field("service_type"),
            preferred_time: text_field("preferred_time"),
            summary: data.ai_summary.clone().filter(|s| !s.trim().is_empty()),
        };
        let Some(rendered) = self.templates.render(call_type, &context)? else {
            return Ok(Err(format!(
                "no confirmation email for call type {call_type:?}"
            )));
        };
        // A display name with a line break or other control character is dropped, not
        // encoded: the address alone is enough.
        let display = name
            .filter(|n| !n.chars().any(char::is_control))
            .map(str::to_owned);
        let domain = self.config.from.email.domain().to_owned();
        let message_id = format!(
            "<{}.nphooks@{domain}>",
            &hex::encode(Sha256::digest(envelope.delivery_key.as_str()))[..32]
        );
        let mut builder = Message::builder()
            .from(self.config.from.clone())
            .to(Mailbox::new(display, address))
            .subject(rendered.subject)
            .message_id(Some(message_id));
        if let Some(reply_to) = &self.config.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map(Ok)
            .map_err(|e| Error::Build(e.to_string()))
    }
}

impl<M: Mailer> Sink for EmailSink<M> {
    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn deliver(&self, envelope: &Envelope) -> Result<Delivered, SinkError> {
        let message = match self.compose(envelope) {
            Ok(Ok(message)) => message,
            Ok(Err(why)) => return Ok(self.skip(&why)),
            Err(error) => return Err(error.into()),
        };
        self.mailer.send(&message).await?;
        Ok(Delivered::Sent("confirmation email sent".into()))
    }
}
