use email::{EmailConfig, EmailSink};
use nphooks_core::routing::Integration;
use nphooks_processor::{Startup, run_lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let startup = Startup::load(Integration::Email).await?;
    let email = EmailConfig::from_settings(&startup.settings, startup.config.allow_http)?;
    let sink = EmailSink::connect(email, &startup.aws)?;
    run_lambda(startup, sink).await
}
