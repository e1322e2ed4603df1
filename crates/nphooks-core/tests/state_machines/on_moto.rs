//! The same properties on the DynamoDB adapters, against moto: 30 cases of up to 20
//! steps each, every case under its own key prefix in one table per test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use nphooks_core::aws::{Timeouts, sdk_config};
use nphooks_core::claims::{ClaimKey, ClaimState, DynamoClaims};
use nphooks_core::ledger::DynamoLedger;
use nphooks_core::table;

use super::{check_on, claims_model, ledger_model};

const CASES: u32 = 30;
const STEPS: usize = 20;

static CASE: AtomicUsize = AtomicUsize::new(0);

/// A fresh table in the moto server the test runner started.
pub async fn moto_table(test: &str) -> (aws_sdk_dynamodb::Client, String) {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: run through cargo test (scripts/test-runner.sh starts moto)"
    );
    let sdk = sdk_config(Timeouts {
        connect: Duration::from_secs(2),
        attempt: Duration::from_secs(5),
        operation: Duration::from_secs(10),
    })
    .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let name = format!("idem-{test}-{}", std::process::id());
    table::create(&client, &name)
        .await
        .expect("create table in moto");
    (client, name)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn prefix() -> String {
    format!("case{}/", CASE.fetch_add(1, Ordering::SeqCst))
}

/// Reads a claim's state straight from the table.
struct TableProbe {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl claims_model::Inspect for TableProbe {
    async fn state_of(&self, key: &ClaimKey) -> Option<ClaimState> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(table::KEY, AttributeValue::S(key.as_str().to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("moto answers")
            .item?;
        let state = item.get(table::STATE)?.as_s().expect("a string state");
        Some(state.parse().expect("a claim state"))
    }
}

#[test]
fn given_any_interleaving_then_the_dynamo_ledger_follows_the_model() {
    let runtime = runtime();
    let (client, name) = runtime.block_on(moto_table("ledger-model"));
    let ledger = DynamoLedger::new(client, name);
    check_on(&runtime, CASES, ledger_model::ops(STEPS), |ops| {
        let ledger = ledger.clone();
        async move { ledger_model::run(&ledger, &prefix(), &ops).await }
    });
}

#[test]
fn given_any_interleaving_then_the_dynamo_claims_follow_the_model() {
    let runtime = runtime();
    let (client, table) = runtime.block_on(moto_table("claims-model"));
    let claims = DynamoClaims::new(client.clone(), &table);
    let probe = TableProbe { client, table };
    check_on(&runtime, CASES, claims_model::ops(STEPS), |ops| {
        let claims = claims.clone();
        let probe = &probe;
        async move { claims_model::run(&claims, probe, &prefix(), &ops).await }
    });
}

#[tokio::test]
async fn given_a_forgotten_claim_when_its_run_completes_then_nothing_is_stored() {
    use claims_model::Inspect;
    use nphooks_core::claims::{Claim, EffectClaim, EffectClaims};
    use nphooks_core::delivery::DeliveryKey;
    use nphooks_core::routing::Integration;
    let (client, table) = moto_table("forgotten").await;
    let claims = DynamoClaims::new(client.clone(), &table);
    let delivery = DeliveryKey::from_stored("call.ended#forgotten".into());
    let run = EffectClaim::new(Integration::Slack, &delivery, "run-1");
    let (t, window) = (super::T, super::window());
    let claimed = claims.claim(&run, t + 60, t, window).await;
    assert_eq!(claimed.expect("moto"), Claim::Claimed);
    // WHEN an operator forgets it mid-run, and the run then completes, then fails
    claims.forget(&run.key).await.expect("moto");
    // THEN no item is created: it would have no `expires_at`, and in DynamoDB (not
    // moto) a condition on a missing attribute is false, so it would block for ever
    let probe = TableProbe { client, table };
    claims.complete(&run, t + 1).await.expect("moto");
    assert_eq!(probe.state_of(&run.key).await, None);
    claims.fail(&run, "permanent", t + 1).await.expect("moto");
    assert_eq!(probe.state_of(&run.key).await, None);
}
