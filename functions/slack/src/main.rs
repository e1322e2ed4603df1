use nphooks_core::config::Settings;
use nphooks_core::routing::Integration;
use nphooks_processor::{ProcessorConfig, http, run_lambda};
use slack::SlackSink;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = Settings::from_env();
    let config = ProcessorConfig::from_settings(&settings, Integration::Slack)?;
    let sink = SlackSink::from_settings(&settings, config.allow_http, http::client()?)?;
    run_lambda(config, sink).await
}
