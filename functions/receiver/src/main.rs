use std::time::Duration;

use lambda_http::{Error, run, service_fn, tracing};
use nphooks_core::aws::{Timeouts, load_settings, sdk_config, warm_up_logged};
use nphooks_core::config::ReceiverConfig;
use nphooks_core::ledger::DynamoLedger;
use nphooks_core::queue::SqsQueue;
use receiver::{Deps, handle};

/// Per-call limits that keep the whole answer well inside the sender's 5 s.
const AWS_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_millis(500),
    attempt: Duration::from_millis(700),
    operation: Duration::from_millis(1500),
};

/// One thread: a Lambda handles one request at a time, and a second worker only adds
/// wake-ups between threads to every AWS call (docs/profile.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    nphooks_core::logging::init();
    let aws = sdk_config(AWS_TIMEOUTS).await;
    let config = ReceiverConfig::from_settings(&load_settings(&aws).await?).map_err(|error| {
        // Shown as text (not Debug) in the function's log: it names the variable to fix.
        tracing::error!(%error, "configuration refused");
        error.to_string()
    })?;
    // The connections the first request would open, opened during Init (docs/profile.md).
    let queues = config.queue_urls.values().map(String::as_str);
    warm_up_logged(&aws, &config.idempotency_table, queues).await;
    let ledger = DynamoLedger::connect(&aws, &config.idempotency_table);
    let deps = &Deps::new(config, ledger, SqsQueue::connect(&aws));
    run(service_fn(move |request| async move {
        Ok::<_, Error>(handle(deps, request).await)
    }))
    .await
}
