//! Configuration every processor reads.

use std::time::Duration;

use nphooks_core::ConfigError;
use nphooks_core::config::{IDEMPOTENCY_TABLE_VAR, Settings};
use nphooks_core::rate_limit::RateLimit;
use nphooks_core::routing::Integration;
use nphooks_core::window::ReplayWindow;

use crate::Result;
use crate::retry::RetryPolicy;

pub const DLQ_URL_VAR: &str = "DLQ_URL";
pub use nphooks_core::secrets::ALLOW_HTTP_VAR;
/// Hours a transient failure is retried before it is dead-lettered (default 24).
pub const RETRY_HORIZON_VAR: &str = "NPHOOKS_RETRY_HORIZON_HOURS";
/// The first backoff in seconds (default 30); it doubles per failure, up to an hour.
pub const RETRY_BASE_VAR: &str = "NPHOOKS_RETRY_BASE_SECONDS";
/// The destination's rate limit (`N/Ts` or `none`); unset: the integration's default.
pub const RATE_LIMIT_VAR: &str = "NPHOOKS_RATE_LIMIT";
/// Seconds one delivery may take, every call to the destination inside it included
/// (1 to 900); unset: the sink's default (8; email 15).
pub const SINK_TIMEOUT_VAR: &str = "NPHOOKS_SINK_TIMEOUT_SECONDS";

#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub integration: Integration,
    pub idempotency_table: String,
    /// Where permanent failures go, body intact.
    pub dlq_url: String,
    /// The processor's own queue (`CRM_QUEUE_URL`, …): retries are re-sent to it.
    pub source_queue_url: String,
    /// `NPHOOKS_ALLOW_HTTP=1`: `http://` and loopback outbound URLs are allowed (local runs, tests).
    pub allow_http: bool,
    pub retry: RetryPolicy,
    /// `None`: the sink's own default; `Some(None)`: no limit; `Some(Some(l))`: `l`.
    pub rate_limit: Option<Option<RateLimit>>,
    /// How long effect claims live (`NPHOOKS_REPLAY_WINDOW_HOURS`, shared with the receiver).
    pub replay_window: ReplayWindow,
    /// `NPHOOKS_SINK_TIMEOUT_SECONDS`; `None`: the sink's own default.
    pub sink_timeout: Option<Duration>,
}

impl ProcessorConfig {
    pub fn from_settings(settings: &Settings, integration: Integration) -> Result<Self> {
        let replay_window = ReplayWindow::from_settings(settings)?;
        let retry = retry_policy(settings, replay_window)?;
        Ok(ProcessorConfig {
            integration,
            idempotency_table: settings.required(IDEMPOTENCY_TABLE_VAR)?.to_owned(),
            dlq_url: settings.required(DLQ_URL_VAR)?.to_owned(),
            source_queue_url: settings.required(integration.queue_url_var())?.to_owned(),
            allow_http: allow_http(settings)?,
            retry,
            replay_window,
            rate_limit: settings
                .optional(RATE_LIMIT_VAR)
                .map(|text| RateLimit::parse(RATE_LIMIT_VAR, text))
                .transpose()?,
            sink_timeout: sink_timeout(settings)?,
        })
    }

    /// The configuration tests and the local runner use: this integration's queues, the
    /// default retry policy, the sink's own rate limit.
    pub fn local(integration: Integration, table: &str, queue_url: &str, dlq_url: &str) -> Self {
        ProcessorConfig {
            integration,
            idempotency_table: table.to_owned(),
            dlq_url: dlq_url.to_owned(),
            source_queue_url: queue_url.to_owned(),
            allow_http: true,
            retry: RetryPolicy::default(),
            rate_limit: None,
            replay_window: ReplayWindow::default(),
            sink_timeout: None,
        }
    }
}

/// The retry policy `settings` ask for ([`RETRY_HORIZON_VAR`], [`RETRY_BASE_VAR`]), bounded
/// by the replay window: the Lambdas' and `nphooks serve`'s.
pub fn retry_policy(settings: &Settings, replay_window: ReplayWindow) -> Result<RetryPolicy> {
    let window_hours = replay_window.as_secs() / 3600;
    let horizon_hours = number(settings, RETRY_HORIZON_VAR, 1, window_hours)?.unwrap_or(24);
    Ok(RetryPolicy {
        horizon: Duration::from_secs(3600 * horizon_hours.min(window_hours)),
        base: Duration::from_secs(number(settings, RETRY_BASE_VAR, 1, 900)?.unwrap_or(30)),
        max_message_age: Duration::from_secs(replay_window.as_secs()),
        ..RetryPolicy::default()
    })
}

/// A whole number from `min` to `max`, or unset.
fn number(settings: &Settings, name: &'static str, min: u64, max: u64) -> Result<Option<u64>> {
    let Some(text) = settings.optional(name) else {
        return Ok(None);
    };
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(ConfigError::new(
            name,
            format!("must be a whole number from {min} to {max}, got {text:?}"),
        )
        .into()),
    }
}

/// Reads `NPHOOKS_SINK_TIMEOUT_SECONDS`: unset, or 1 to 900 seconds.
pub fn sink_timeout(settings: &Settings) -> Result<Option<Duration>> {
    Ok(number(settings, SINK_TIMEOUT_VAR, 1, 900)?.map(Duration::from_secs))
}

/// Reads `NPHOOKS_ALLOW_HTTP`: unset, `0` or `1` (see [`Settings::local_mode`]).
pub fn allow_http(settings: &Settings) -> Result<bool> {
    Ok(settings.local_mode()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: &[(&'static str, &'static str)]) -> Result<ProcessorConfig> {
        let mut pairs = vec![
            (IDEMPOTENCY_TABLE_VAR, "t"),
            (DLQ_URL_VAR, "https://sqs/dlq"),
            ("SLACK_QUEUE_URL", "https://sqs/slack"),
        ];
        pairs.extend_from_slice(extra);
        ProcessorConfig::from_settings(&Settings::from_pairs(pairs), Integration::Slack)
    }

    #[test]
    fn given_retry_and_rate_settings_then_they_load_or_name_the_variable() {
        let defaults = load(&[]).expect("valid");
        assert_eq!(defaults.retry, RetryPolicy::default());
        assert_eq!(defaults.rate_limit, None);
        assert_eq!(defaults.sink_timeout, None);
        let set = load(&[
            (RETRY_HORIZON_VAR, "2"),
            (RETRY_BASE_VAR, "5"),
            (RATE_LIMIT_VAR, "14/1s"),
            (SINK_TIMEOUT_VAR, "12"),
        ])
        .expect("valid");
        assert_eq!(set.retry.horizon, Duration::from_secs(7200));
        assert_eq!(set.retry.base, Duration::from_secs(5));
        assert_eq!(set.sink_timeout, Some(Duration::from_secs(12)));
        assert_eq!(
            set.rate_limit,
            Some(Some(RateLimit::new(14, Duration::from_secs(1))))
        );
        assert_eq!(
            load(&[(RATE_LIMIT_VAR, "none")]).expect("valid").rate_limit,
            Some(None)
        );
        for (name, bad) in [
            (RETRY_HORIZON_VAR, "0"),
            (RETRY_HORIZON_VAR, "1d"),
            (RETRY_BASE_VAR, "901"),
            (RATE_LIMIT_VAR, "fast"),
            (SINK_TIMEOUT_VAR, "0"),
            (SINK_TIMEOUT_VAR, "901"),
            (SINK_TIMEOUT_VAR, "8s"),
        ] {
            let message = load(&[(name, bad)]).expect_err(bad).to_string();
            assert!(message.contains(name), "{message}");
        }
    }
}
