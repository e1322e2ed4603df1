//! Running a processor as a Lambda: settings read once at cold start, the real adapters.

use std::time::Duration;

use lambda_runtime::service_fn;
use nphooks_core::claims::DynamoClaims;
use nphooks_core::clock::Clock;
use nphooks_core::queue::SqsQueue;
use nphooks_core::rate_limit::DynamoRateLimiter;

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
    pub async fn load(integration: nphooks_core::routing::Integration) -> crate::Result<Self> {
        let aws = nphooks_core::aws::sdk_config(AWS_TIMEOUTS).await;
        let settings = nphooks_core::aws::load_settings(&aws).await?;
        let config = ProcessorConfig::from_settings(&settings, integration)?;
        Ok(Startup {
            settings,
            aws,
            config,
        })
    }
}

/// Runs a processor Lambda with the real adapters.
pub async fn run_lambda<K: Sink>(startup: Startup, sink: K) -> Result<(), lambda_runtime::Error> {
    let Startup { aws, config, .. } = startup;
    let deps = &ProcessorDeps {
        claims: DynamoClaims::connect(&aws, &config.idempotency_table),
        queue: SqsQueue::connect(&aws),
        limiter: DynamoRateLimiter::connect(&aws, &config.idempotency_table),
        clock: Clock::system(),
        config,
        sink,
    };
    lambda_runtime::run(service_fn(move |event| process_batch(deps, event))).await
}
