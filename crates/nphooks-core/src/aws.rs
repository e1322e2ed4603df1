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

/// Loads the shared SDK config from the standard sources (environment, profile, role).
pub async fn sdk_config(timeouts: Timeouts) -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeouts.connect)
                .operation_attempt_timeout(timeouts.attempt)
                .operation_timeout(timeouts.operation)
                .build(),
        )
        .load()
        .await
}
