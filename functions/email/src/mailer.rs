//! The mail port: SMTP (lettre) or SES (v2 API, raw MIME). Failures are classified here:
//! SMTP 4xx, timeouts and connection errors are transient; SMTP 5xx is permanent.

use std::future::Future;
use std::time::Duration;

use aws_sdk_sesv2::config::timeout::TimeoutConfig;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{EmailContent, RawMessage};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use nphooks_core::config::Settings;
use nphooks_core::secret::Secret;
use nphooks_processor::{FailureReason, SinkError, SmtpCode};

use crate::{Error, Result, config_error};

pub const SMTP_HOST_VAR: &str = "SMTP_HOST";
pub const SMTP_PORT_VAR: &str = "SMTP_PORT";
pub const SMTP_USERNAME_VAR: &str = "SMTP_USERNAME";
pub const SMTP_PASSWORD_VAR: &str = "SMTP_PASSWORD";
pub const SMTP_TLS_VAR: &str = "SMTP_TLS";

/// The longest connecting to the SMTP server may take, unless the email's own timeout is
/// shorter. lettre's async transport times out the connection only: the SMTP dialogue is
/// bounded by the email's timeout ([`nphooks_processor::Sink::timeout`]), which the
/// processor runtime enforces.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one email.
pub trait Mailer: Send + Sync {
    fn send(&self, message: &Message) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// `SMTP_TLS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text: local servers only (`NPHOOKS_ALLOW_HTTP=1`).
    None,
    /// STARTTLS required (default, port 587).
    StartTls,
    /// Implicit TLS (port 465).
    Tls,
}

/// SMTP connection settings. `Debug` never shows the password.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub credentials: Option<(String, Secret)>,
}

impl SmtpSettings {
    pub fn from_settings(settings: &Settings, allow_http: bool) -> Result<Self> {
        let host = settings
            .optional(SMTP_HOST_VAR)
            .ok_or_else(|| config_error(SMTP_HOST_VAR, "is not set (EMAIL_TRANSPORT is smtp)"))?
            .to_owned();
        let tls = match settings.optional(SMTP_TLS_VAR).unwrap_or("starttls") {
            "none" if allow_http => SmtpTls::None,
            "none" => {
                return Err(config_error(
                    SMTP_TLS_VAR,
                    "is none (plain text), allowed only with NPHOOKS_ALLOW_HTTP=1 for local servers",
                ));
            }
            "starttls" => SmtpTls::StartTls,
            "tls" => SmtpTls::Tls,
            other => {
                return Err(config_error(
                    SMTP_TLS_VAR,
                    format!("must be none, starttls or tls, got {other:?}"),
                ));
            }
        };
        let port = match settings.optional(SMTP_PORT_VAR) {
            Some(text) => text.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                config_error(
                    SMTP_PORT_VAR,
                    format!("must be a port number, got {text:?}"),
                )
            })?,
            None => match tls {
                SmtpTls::None => 25,
                SmtpTls::StartTls => 587,
                SmtpTls::Tls => 465,
            },
        };
        let credentials = match (
            settings.optional(SMTP_USERNAME_VAR),
            settings.secret(SMTP_PASSWORD_VAR, allow_http)?,
        ) {
            (Some(user), Some(password)) => Some((user.to_owned(), Secret::new(password))),
            (None, None) => None,
            (Some(_), None) => {
                return Err(config_error(
                    SMTP_PASSWORD_VAR,
                    "is not set, but SMTP_USERNAME is",
                ));
            }
            (None, Some(_)) => {
                return Err(config_error(
                    SMTP_USERNAME_VAR,
                    "is not set, but SMTP_PASSWORD is",
                ));
            }
        };
        Ok(SmtpSettings {
            host,
            port,
            tls,
            credentials,
        })
    }
}

/// SMTP through lettre; one connection per message (a processor sends a handful).
#[derive(Debug, Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpMailer {
    pub fn new(settings: &SmtpSettings) -> Result<Self> {
        Self::within(settings, SMTP_TIMEOUT)
    }

    /// Connecting takes at most `timeout`, or [`SMTP_TIMEOUT`] if that is shorter.
    pub fn within(settings: &SmtpSettings, timeout: Duration) -> Result<Self> {
        let tls_parameters = || {
            TlsParameters::new(settings.host.clone())
                .map_err(|e| config_error(SMTP_HOST_VAR, format!("cannot be used for TLS: {e}")))
        };
        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters()?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT.min(timeout)));
        if let Some((user, password)) = &settings.credentials {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
        })
    }
}

impl Mailer for SmtpMailer {
    async fn send(&self, message: &Message) -> Result<(), SinkError> {
        match self.transport.send(message.clone()).await {
            Ok(_) => Ok(()),
            // Server replies may quote the recipient: keep only the code.
            Err(e) if e.is_permanent() => Err(with_code(
                SinkError::permanent(FailureReason::MailRejected),
                &e,
            )),
            Err(e) if e.is_transient() => Err(with_code(
                SinkError::transient(FailureReason::MailDeferred),
                &e,
            )),
            Err(e) if e.is_timeout() => Err(SinkError::transient(FailureReason::Timeout)),
            Err(_) => Err(SinkError::transient(FailureReason::ConnectFailed)),
        }
    }
}

/// The SMTP reply code (e.g. 550) on the failure; never the reply's text.
fn with_code(failure: SinkError, error: &lettre::transport::smtp::Error) -> SinkError {
    match error
        .status()
        .and_then(|c| c.to_string().parse().ok())
        .and_then(SmtpCode::new)
    {
        Some(code) => failure.with_smtp_code(code),
        None => failure,
    }
}

/// SES through the official v2 SDK client, sending the same raw MIME.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
}

impl SesMailer {
    pub fn new(client: aws_sdk_sesv2::Client) -> Self {
        SesMailer { client }
    }

    /// A client on the shared AWS config whose timeouts (connect, attempt, operation)
    /// are each cut to `timeout` when longer.
    pub fn within(aws: &aws_config::SdkConfig, timeout: Duration) -> Self {
        let shared = aws.timeout_config();
        let cap = |d: Option<Duration>| Some(d.map_or(timeout, |d| d.min(timeout)));
        let mut timeouts = TimeoutConfig::builder();
        timeouts
            .set_connect_timeout(cap(shared.and_then(|t| t.connect_timeout())))
            .set_operation_attempt_timeout(cap(shared.and_then(|t| t.operation_attempt_timeout())))
            .set_operation_timeout(cap(shared.and_then(|t| t.operation_timeout())))
            .set_read_timeout(shared.and_then(|t| t.read_timeout()));
        let config = aws_sdk_sesv2::config::Builder::from(aws)
            .timeout_config(timeouts.build())
            .build();
        Self::new(aws_sdk_sesv2::Client::from_conf(config))
    }
}

impl Mailer for SesMailer {
    async fn send(&self, message: &Message) -> Result<(), SinkError> {
        let raw = RawMessage::builder()
            .data(Blob::new(message.formatted()))
            .build()
            .map_err(|_| SinkError::permanent(FailureReason::UnusableData))?;
        let result = self
            .client
            .send_email()
            .content(EmailContent::builder().raw(raw).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => {
                // SES messages can name the recipient: only the class and status travel.
                let status = error.raw_response().and_then(|r| {
                    nphooks_processor::StatusCode::from_u16(r.status().as_u16()).ok()
                });
                let failure = match error.as_service_error() {
                    Some(e)
                        if e.is_too_many_requests_exception()
                            || e.is_limit_exceeded_exception() =>
                    {
                        SinkError::transient(FailureReason::RateLimited)
                    }
                    Some(_) if status.is_some_and(|s| s.is_server_error()) => {
                        SinkError::transient(FailureReason::ServerError)
                    }
                    Some(_) => SinkError::permanent(FailureReason::MailRejected),
                    None => SinkError::transient(FailureReason::RequestFailed), // timeout, connection
                };
                Err(match status {
                    Some(status) => failure.with_status(status),
                    None => failure,
                })
            }
        }
    }
}

/// The configured mailer.
#[derive(Debug, Clone)]
pub enum AnyMailer {
    Smtp(SmtpMailer),
    Ses(SesMailer),
}

impl Mailer for AnyMailer {
    async fn send(&self, message: &Message) -> Result<(), SinkError> {
        match self {
            AnyMailer::Smtp(m) => m.send(message).await,
            AnyMailer::Ses(m) => m.send(message).await,
        }
    }
}

impl From<Error> for SinkError {
    fn from(error: Error) -> Self {
        match error {
            Error::Config(_) | Error::Template(_) => {
                SinkError::permanent(FailureReason::Misconfigured)
            }
            Error::HeaderInjection(header) => {
                SinkError::permanent(FailureReason::UnusableData).with_detail(header)
            }
            Error::Build(_) => SinkError::permanent(FailureReason::UnusableData),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sesv2::config::{BehaviorVersion, Region};

    use super::*;

    #[test]
    fn given_a_short_timeout_then_the_ses_client_cuts_each_shared_timeout_to_it() {
        // GIVEN the processors' shared AWS timeouts (1 s, 2 s, 5 s)
        let shared = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(1))
            .operation_attempt_timeout(Duration::from_secs(2))
            .operation_timeout(Duration::from_secs(5))
            .build();
        let aws = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .timeout_config(shared)
            .build();
        let of = |mailer: SesMailer| {
            let config = mailer.client.config().timeout_config().cloned();
            let t = config.expect("timeouts");
            (
                t.connect_timeout(),
                t.operation_attempt_timeout(),
                t.operation_timeout(),
            )
        };
        let s = |n| Some(Duration::from_secs(n));
        // WHEN the SES mailer is built within 3 s, and within the default 15 s
        // THEN only what exceeds the sink's timeout is cut
        assert_eq!(
            of(SesMailer::within(&aws, Duration::from_secs(3))),
            (s(1), s(2), s(3))
        );
        assert_eq!(
            of(SesMailer::within(&aws, crate::TIMEOUT)),
            (s(1), s(2), s(5))
        );
    }
}
