use crm::CrmSink;
use nphooks_core::routing::Integration;
use nphooks_processor::{Startup, http, run_lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let startup = Startup::load(Integration::Crm).await?;
    let sink = CrmSink::from_settings(
        &startup.settings,
        startup.config.allow_http,
        http::client()?,
    )?;
    run_lambda(startup, sink).await
}
