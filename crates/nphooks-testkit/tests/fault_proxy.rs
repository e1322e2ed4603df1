//! The fault proxy itself: a seeded schedule injects the same faults for the same seed,
//! records each one, and forwards the rest to moto unchanged.

use std::time::Duration;

use nphooks_core::aws::Timeouts;
use nphooks_core::table;
use nphooks_testkit::fault_proxy::{Fault, FaultProxy, Injection};
use nphooks_testkit::{Moto, SETUP_IDENTITY};

const QUICK: Timeouts = Timeouts {
    connect: Duration::from_secs(1),
    attempt: Duration::from_secs(2),
    operation: Duration::from_secs(5),
};

/// 20 reads through a proxy seeded with `seed` (one SDK attempt each, so every fault
/// shows); what was injected, and how many reads failed.
async fn twenty_reads(moto: &Moto, seed: u64) -> (Vec<Injection>, usize) {
    let proxy = FaultProxy::start().await;
    proxy.seeded(seed, 0.3, &[Fault::Throttling, Fault::Reset]);
    let aws = proxy
        .aws_for(moto, SETUP_IDENTITY, QUICK)
        .to_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let mut failed = 0;
    for _ in 0..20 {
        let read = client
            .get_item()
            .table_name(&moto.table)
            .key(
                table::KEY,
                aws_sdk_dynamodb::types::AttributeValue::S("k".into()),
            )
            .send()
            .await;
        failed += usize::from(read.is_err());
    }
    assert_eq!(proxy.calls("GetItem"), 20);
    (proxy.injected(), failed)
}

#[tokio::test]
async fn given_one_seed_twice_then_the_same_calls_fail_the_same_way_and_the_rest_pass() {
    // GIVEN a table in moto and a proxy seeded to fail 30 % of calls
    let moto = Moto::start("proxy").await;
    // WHEN 20 reads go through it, twice with one seed and once with another
    let (first, failed) = twenty_reads(&moto, 11).await;
    let (again, _) = twenty_reads(&moto, 11).await;
    let (other, _) = twenty_reads(&moto, 12).await;
    // THEN the faults are reproducible, each recorded, and only those calls failed
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert!(!first.is_empty() && first.len() < 20, "{first:?}");
    assert_eq!(failed, first.len(), "{first:?}");
    assert!(
        first
            .iter()
            .all(|i| i.operation == "GetItem" && (1..=20).contains(&i.call))
    );
}
