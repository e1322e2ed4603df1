use nphooks_core::routing::Integration;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nphooks_processor::run::<callback::CallbackSink>(Integration::Callback).await
}
