//! The calls each function makes during Init to open its connections
//! (`nphooks_core::aws::warm_up`), made here as each function makes them, signed as that
//! function: the IAM check holds them to the roles template.yaml generates.

use nphooks_core::aws::{WarmUpError, warm_up};
use nphooks_core::routing::Integration;
use nphooks_testkit::{Moto, RECEIVER_FUNCTION, function_id};

#[tokio::test]
async fn given_the_stack_then_every_function_warms_up_without_a_failure() {
    // GIVEN moto with the table and every queue
    let moto = Moto::start("warm-up").await;
    // WHEN the receiver warms up its table and all its queues, and each processor its
    // table and its own queue (as main.rs and nphooks_processor::lambda do)
    let receiver = warm_up(
        &moto.aws_for(RECEIVER_FUNCTION),
        &moto.table,
        moto.queue_urls.values().map(String::as_str),
    )
    .await;
    let mut processors = Vec::new();
    for integration in Integration::ALL {
        let aws = moto.aws_for(function_id(integration));
        let queue = moto.queue_urls[&integration].as_str();
        processors.extend(warm_up(&aws, &moto.table, [queue]).await);
    }
    // THEN nothing failed
    assert!(receiver.is_empty(), "{receiver:?}");
    assert!(processors.is_empty(), "{processors:?}");
}

#[tokio::test]
async fn given_a_missing_table_and_queue_then_warm_up_names_both() {
    // GIVEN moto, and a table and a queue that do not exist
    let moto = Moto::start("warm-up-missing").await;
    let queue = format!("{}-gone", moto.queue_urls[&Integration::Crm]);
    // WHEN the set-up identity warms them up
    let failed = warm_up(&moto.aws, "no-such-table", [queue.as_str()]).await;
    // THEN each failure names what it called
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        matches!(&failed[0], WarmUpError::Table { table, .. } if table == "no-such-table"),
        "{}",
        failed[0]
    );
    assert!(
        matches!(&failed[1], WarmUpError::Queue { queue_url, .. } if *queue_url == queue),
        "{}",
        failed[1]
    );
    assert!(failed[0].to_string().contains("no-such-table"));
}
