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

/// A warm-up call that failed (the first request then opens its own connection).
#[derive(Debug, thiserror::Error)]
pub enum WarmUpError {
    #[error("warm-up DescribeTable of table {table} failed: {reason}")]
    Table { table: String, reason: String },
    #[error("warm-up GetQueueAttributes of queue {queue_url} failed: {reason}")]
    Queue { queue_url: String, reason: String },
}

/// Makes, during Init, the connections (TCP and TLS) a function's first request would
/// make, and loads what the SDK loads on its first call (credentials, endpoint rules):
/// one `DescribeTable` of `table` and one `GetQueueAttributes` per queue, all at once (the
/// receiver's first request sends to its queues at once, one connection each). They go
/// through `sdk`'s one HTTP client, whose pool the adapters' clients share. Init runs with
/// more CPU than a 128 MB invocation gets (docs/profile.md). Returns what failed.
pub async fn warm_up<'a>(
    sdk: &SdkConfig,
    table: &str,
    queue_urls: impl IntoIterator<Item = &'a str>,
) -> Vec<WarmUpError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let table_call = async {
        let sent = dynamodb.describe_table().table_name(table).send().await;
        sent.err().map(|e| WarmUpError::Table {
            table: table.to_owned(),
            reason: aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
        })
    };
    let queue_calls = queue_urls.into_iter().map(|queue_url| {
        let sqs = &sqs;
        async move {
            let sent = sqs.get_queue_attributes().queue_url(queue_url).send().await;
            sent.err().map(|e| WarmUpError::Queue {
                queue_url: queue_url.to_owned(),
                reason: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
            })
        }
    });
    let (table_failed, queues_failed) =
        futures::join!(table_call, futures::future::join_all(queue_calls));
    table_failed
        .into_iter()
        .chain(queues_failed.into_iter().flatten())
        .collect()
}

/// [`warm_up`], each failure logged as a warning and otherwise ignored.
pub async fn warm_up_logged<'a>(
    sdk: &SdkConfig,
    table: &str,
    queue_urls: impl IntoIterator<Item = &'a str>,
) {
    for error in warm_up(sdk, table, queue_urls).await {
        tracing::warn!(%error, "warm-up");
    }
}
