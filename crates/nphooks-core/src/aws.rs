//! AWS SDK configuration: one HTTPS client (rustls on ring), explicit timeouts, and the
//! SDK's standard `AWS_ENDPOINT_URL` so tests and local runs can point at a moto server.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig, timeout::TimeoutConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// Timeouts for every call made with the returned config.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// One attempt.
    pub attempt: Duration,
    /// All attempts of one operation together.
    pub operation: Duration,
}

impl Timeouts {
    /// As the SDK's timeout config.
    pub fn config(self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }
}

/// Loads the shared SDK config from the standard sources (environment, profile, role).
pub async fn sdk_config(timeouts: Timeouts) -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(timeouts.config())
        .load()
        .await
}

/// The settings of a function at cold start: the environment, plus, when `APP_SECRET_ARN`
/// is set, the keys of that Secrets Manager secret (read once).
pub async fn load_settings(sdk: &SdkConfig) -> Result<crate::config::Settings, crate::ConfigError> {
    with_app_secret(crate::config::Settings::from_env(), sdk).await
}

/// `settings` plus the keys of the secret named by its `APP_SECRET_ARN`, if any.
pub async fn with_app_secret(
    settings: crate::config::Settings,
    sdk: &SdkConfig,
) -> Result<crate::config::Settings, crate::ConfigError> {
    let Some(arn) = settings
        .optional(crate::config::APP_SECRET_ARN_VAR)
        .map(str::to_owned)
    else {
        return Ok(settings);
    };
    let secret = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .map_err(|e| {
            crate::ConfigError::new(
                crate::config::APP_SECRET_ARN_VAR,
                format!(
                    "names a secret that could not be read: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                ),
            )
        })?;
    let json = secret.secret_string().ok_or(crate::ConfigError::new(
        crate::config::APP_SECRET_ARN_VAR,
        "names a secret with no string value",
    ))?;
    settings.with_secret_json(json)
}
