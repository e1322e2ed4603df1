//! Running a processor as a Lambda: settings read once at cold start, the real adapters.

use std::time::Duration;

use lambda_runtime::service_fn;
use nphooks_core::claims::DynamoClaims;
use nphooks_core::clock::Clock;
use nphooks_core::config::Settings;
use nphooks_core::queue::SqsQueue;
use nphooks_core::routing::Integration;

use crate::config::ProcessorConfig;
use crate::runtime::{ProcessorDeps, Sink, process_batch};

/// Timeouts for the SDK calls a processor makes (claims, slots, re-sends, DLQ sends).
pub const AWS_TIMEOUTS: nphooks_core::aws::Timeouts = nphooks_core::aws::Timeouts {
    connect: Duration::from_secs(1),
    attempt: Duration::from_secs(2),
    operation: Duration::from_secs(5),
};

/// What a processor reads once at cold start: its settings (environment plus the
/// Secrets Manager secret in AWS), the shared AWS config, and its processor config.
#[derive(Debug)]
pub struct Startup {
    pub settings: nphooks_core::config::Settings,
    pub aws: aws_config::SdkConfig,
    pub config: ProcessorConfig,
}

impl Startup {
    pub async fn load(integration: Integration) -> crate::Result<Self> {
        let aws = nphooks_core::aws::sdk_config(AWS_TIMEOUTS).await;
        let settings = nphooks_core::aws::load_settings(&aws).await?;
        let config = ProcessorConfig::from_settings(&settings, integration)?;
        Ok(Startup {
            settings,
            aws,
            config,
        })
    }

    /// What this processor's sink is built from; its timeout is `NPHOOKS_SINK_TIMEOUT_SECONDS`
    /// or `default`.
    pub fn sink_setup(&self, default: Duration) -> SinkSetup<'_> {
        SinkSetup {
            settings: &self.settings,
            allow_http: self.config.allow_http,
            aws: &self.aws,
            timeout: self.config.sink_timeout.unwrap_or(default),
        }
    }
}

/// What a sink is built from, once per cold start.
#[derive(Debug, Clone, Copy)]
pub struct SinkSetup<'a> {
    pub settings: &'a Settings,
    /// `NPHOOKS_ALLOW_HTTP=1`: `http://` and loopback destinations are allowed.
    pub allow_http: bool,
    /// For sinks that call AWS (SES).
    pub aws: &'a aws_config::SdkConfig,
    /// The longest one delivery may take ([`Sink::timeout`]); no call inside it waits longer.
    pub timeout: Duration,
}

impl<'a> SinkSetup<'a> {
    /// The setup of a processor run outside Lambda (the local runner): the timeout is
    /// `NPHOOKS_SINK_TIMEOUT_SECONDS` or `default`.
    pub fn read(
        settings: &'a Settings,
        allow_http: bool,
        aws: &'a aws_config::SdkConfig,
        default: Duration,
    ) -> crate::Result<Self> {
        Ok(SinkSetup {
            settings,
            allow_http,
            aws,
            timeout: crate::config::sink_timeout(settings)?.unwrap_or(default),
        })
    }

    /// An HTTP client whose every request ends within [`SinkSetup::timeout`].
    pub fn http_client(&self) -> crate::Result<reqwest::Client> {
        crate::http::client_within(self.timeout)
    }
}

/// A sink a processor builds once at cold start.
pub trait FromSetup: Sink + Sized {
    /// The longest one delivery may take when `NPHOOKS_SINK_TIMEOUT_SECONDS` is unset.
    const DEFAULT_TIMEOUT: Duration;

    type Error: std::error::Error + Send + Sync + 'static;

    /// Builds the sink; its [`Sink::timeout`] is `setup.timeout`.
    fn from_setup(setup: &SinkSetup<'_>) -> Result<Self, Self::Error>;
}

/// A sink that calls one HTTP API: built from its settings and the shared HTTP client,
/// then given its timeout. Every such sink is [`FromSetup`] the same way.
pub trait HttpSink: Sink + Sized {
    /// The longest one delivery may take when `NPHOOKS_SINK_TIMEOUT_SECONDS` is unset.
    const DEFAULT_TIMEOUT: Duration;

    /// Reads the sink's own settings; every error names its variable.
    fn from_settings(
        settings: &Settings,
        allow_http: bool,
        client: reqwest::Client,
    ) -> crate::Result<Self>;

    /// The longest one delivery may take (the client's own timeouts are the caller's).
    fn with_timeout(self, timeout: Duration) -> Self;
}

impl<T: HttpSink> FromSetup for T {
    const DEFAULT_TIMEOUT: Duration = <T as HttpSink>::DEFAULT_TIMEOUT;
    type Error = crate::Error;

    fn from_setup(setup: &SinkSetup<'_>) -> crate::Result<Self> {
        let sink = T::from_settings(setup.settings, setup.allow_http, setup.http_client()?)?;
        Ok(sink.with_timeout(setup.timeout))
    }
}

/// A processor Lambda's whole `main`: logging, [`Startup::load`], the sink built once,
/// then [`run_lambda`].
pub async fn run<K: FromSetup>(integration: Integration) -> Result<(), lambda_runtime::Error> {
    nphooks_core::logging::init();
    let startup = Startup::load(integration).await?;
    let sink = K::from_setup(&startup.sink_setup(K::DEFAULT_TIMEOUT))?;
    run_lambda(startup, sink).await
}

/// Runs a processor Lambda with the real adapters, their connections opened during Init
/// (`nphooks_core::aws::warm_up`: the table, and the queue, whose URL is the SQS host's).
pub async fn run_lambda<K: Sink>(startup: Startup, sink: K) -> Result<(), lambda_runtime::Error> {
    let Startup {
        aws,
        config,
        settings,
    } = startup;
    let limiter = crate::limiter::limiter(&settings, &aws, &config.idempotency_table)?;
    let queue = [config.source_queue_url.as_str()];
    nphooks_core::aws::warm_up_logged(&aws, &config.idempotency_table, queue).await;
    let deps = &ProcessorDeps {
        claims: DynamoClaims::connect(&aws, &config.idempotency_table),
        queue: SqsQueue::connect(&aws),
        limiter,
        clock: Clock::system(),
        config,
        sink,
    };
    lambda_runtime::run(service_fn(move |event| process_batch(deps, event))).await
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::config::SINK_TIMEOUT_VAR;

    fn aws() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder().build()
    }

    #[test]
    fn given_no_sink_timeout_then_the_setup_takes_the_sinks_default() {
        let settings = Settings::from_pairs([("OTHER", "x")]);
        let aws = aws();
        let setup = SinkSetup::read(&settings, false, &aws, Duration::from_secs(8)).expect("ok");
        assert_eq!(setup.timeout, Duration::from_secs(8));
    }

    #[test]
    fn given_a_bad_sink_timeout_then_reading_the_setup_names_the_variable() {
        let settings = Settings::from_pairs([(SINK_TIMEOUT_VAR, "eight")]);
        let aws = aws();
        let error = SinkSetup::read(&settings, false, &aws, Duration::from_secs(8))
            .expect_err("not a number");
        assert!(error.to_string().contains(SINK_TIMEOUT_VAR), "{error}");
    }

    #[tokio::test]
    async fn given_a_sink_timeout_then_its_client_gives_up_on_a_silent_peer_by_then() {
        // GIVEN a peer that accepts connections and never answers, and a 1 s sink timeout
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let _held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let settings = Settings::from_pairs([(SINK_TIMEOUT_VAR, "1")]);
        let aws = aws();
        let setup = SinkSetup::read(&settings, true, &aws, Duration::from_secs(8)).expect("ok");
        // WHEN the setup's client calls it
        let started = Instant::now();
        let result = crate::http::send(setup.http_client().expect("client").get(url)).await;
        // THEN the call ends as a timeout after about a second, not the default 10 s
        let error = result.expect_err("no answer");
        assert_eq!(setup.timeout, Duration::from_secs(1));
        assert_eq!(error.reason, crate::FailureReason::Timeout, "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}
