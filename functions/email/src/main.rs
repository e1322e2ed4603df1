use email::{EmailConfig, EmailSink};
use nphooks_core::config::Settings;
use nphooks_core::routing::Integration;
use nphooks_processor::{ProcessorConfig, run_lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = Settings::from_env();
    let config = ProcessorConfig::from_settings(&settings, Integration::Email)?;
    let email = EmailConfig::from_settings(&settings, config.allow_http)?;
    let sink = EmailSink::connect(email).await?;
    run_lambda(config, sink).await
}
