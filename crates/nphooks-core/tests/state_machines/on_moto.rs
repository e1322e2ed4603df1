//! The same properties on the DynamoDB adapters, against moto: 30 cases of up to 20
//! steps each, every case under its own key prefix in one table per test.

use std::collections::HashMap;
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

impl TableProbe {
    /// A string or number attribute of the item at `key`, as stored.
    async fn attribute(&self, key: &ClaimKey, name: &str) -> Option<String> {
        let item = self.item(key).await?;
        match item.get(name)? {
            AttributeValue::S(v) | AttributeValue::N(v) => Some(v.clone()),
            _ => None,
        }
    }

    async fn item(&self, key: &ClaimKey) -> Option<HashMap<String, AttributeValue>> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key(table::KEY, AttributeValue::S(key.as_str().to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("moto answers")
            .item
    }
}

impl claims_model::Inspect for TableProbe {
    async fn state_of(&self, key: &ClaimKey) -> Option<ClaimState> {
        let item = self.item(key).await?;
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

#[tokio::test]
async fn given_a_released_claim_then_its_item_says_when_and_why_it_retries() {
    use nphooks_core::claims::{Claim, EffectClaim, EffectClaims, PendingRetry};
    use nphooks_core::delivery::DeliveryKey;
    use nphooks_core::routing::Integration;
    let (client, table) = moto_table("retrying").await;
    let claims = DynamoClaims::new(client.clone(), &table);
    let delivery = DeliveryKey::from_stored("call.ended#retrying".into());
    let run = EffectClaim::new(Integration::Crm, &delivery, "run-1").at_attempt(2);
    let (t, window) = (super::T, super::window());
    let claimed = claims.claim(&run, t + 60, t, window).await;
    assert_eq!(claimed.expect("moto"), Claim::Claimed);
    let probe = TableProbe {
        client: client.clone(),
        table: table.clone(),
    };
    assert_eq!(
        probe.attribute(&run.key, table::ATTEMPTS).await.as_deref(),
        Some("2")
    );
    // WHEN the run fails transiently and gives the claim up
    let retry = PendingRetry {
        attempts: 2,
        next_attempt_at: Some(t + 95),
        reason: "server_error (503)",
    };
    claims.release(&run, &retry, t + 5).await.expect("moto");
    // THEN the item is `retrying`, with the attempts, the next attempt and the reason,
    // no lease, and still the claim's expiry
    let item = probe.item(&run.key).await.expect("the claim is kept");
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v) | AttributeValue::N(v)) => Some(v.clone()),
        _ => None,
    };
    assert_eq!(text(table::STATE).as_deref(), Some("retrying"));
    assert_eq!(text(table::ATTEMPTS).as_deref(), Some("2"));
    assert_eq!(text(table::NEXT_ATTEMPT_AT), Some((t + 95).to_string()));
    assert_eq!(text(table::REASON).as_deref(), Some("server_error (503)"));
    assert_eq!(text(table::UPDATED_AT), Some((t + 5).to_string()));
    assert!(!item.contains_key(table::LEASE_UNTIL), "{item:?}");
    assert!(item.contains_key(table::EXPIRES_AT), "{item:?}");
    // AND the next run claims it
    let next_run = EffectClaim::new(Integration::Crm, &delivery, "run-2");
    let again = claims.claim(&next_run, t + 200, t + 100, window).await;
    assert_eq!(again.expect("moto"), Claim::Claimed);
}

#[tokio::test]
async fn given_a_record_of_the_two_write_version_then_it_is_a_duplicate_and_replays() {
    use nphooks_core::delivery::DeliveryKey;
    use nphooks_core::ledger::{Begin, DeliveryLedger, DeliveryState, NewDelivery};
    let (client, name) = moto_table("legacy").await;
    let (t, window) = (super::T, super::window());
    // GIVEN an `enqueued` record with a plain-text envelope, as the previous code wrote it
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let n = |v: u64| AttributeValue::N(v.to_string());
    let old = client
        .put_item()
        .table_name(&name)
        .item(table::KEY, s("call.ended#legacy"))
        .item(table::STATE, s("enqueued"))
        .item(table::PAYLOAD_HASH, s("sha256-1"))
        .item(table::EXPIRES_AT, n(window.expires_at(t)))
        .item(table::QUEUES, AttributeValue::L(vec![s("crm")]))
        .item(table::ENVELOPE, s(r#"{"v":1}"#));
    old.send().await.expect("moto");
    let ledger = DynamoLedger::new(client.clone(), &name);
    let key = DeliveryKey::from_stored("call.ended#legacy".into());
    // WHEN the sender retries an hour later, and an operator looks the delivery up
    let new = NewDelivery {
        payload_hash: "sha256-1",
        queues: &[],
        envelope: None,
    };
    let retry = ledger.begin(&key, new, t + 3600, window).await;
    let stored = ledger.look_up(&key).await.expect("moto").expect("kept");
    // THEN it is a duplicate, and its envelope reads back
    assert_eq!(
        retry.expect("moto"),
        Begin::AlreadyEnqueued { same_payload: true }
    );
    assert_eq!(stored.state, DeliveryState::Enqueued);
    assert_eq!(stored.envelope.as_deref(), Some(r#"{"v":1}"#));
}

#[tokio::test]
async fn given_a_begun_delivery_then_its_envelope_is_one_deflated_binary_attribute() {
    use nphooks_core::delivery::DeliveryKey;
    use nphooks_core::ledger::{DeliveryLedger, NewDelivery};
    use nphooks_core::routing::Integration;
    let (client, name) = moto_table("deflated").await;
    let ledger = DynamoLedger::new(client.clone(), &name);
    let key = DeliveryKey::from_stored("call.ended#deflated".into());
    let envelope = format!(r#"{{"v":1,"transcript":"{}"}}"#, "thank you ".repeat(500));
    // WHEN a delivery begins with a 5 KB envelope
    let new = NewDelivery {
        payload_hash: "sha256-1",
        queues: &[Integration::Crm, Integration::Email],
        envelope: Some(&envelope),
    };
    let (t, window) = (super::T, super::window());
    ledger.begin(&key, new, t, window).await.expect("moto");
    // THEN the item holds it as bytes, much smaller, and look_up inflates it
    let item = client
        .get_item()
        .table_name(&name)
        .key(table::KEY, AttributeValue::S(key.as_str().to_owned()))
        .send()
        .await
        .expect("moto")
        .item
        .expect("written");
    let bytes = item[table::ENVELOPE].as_b().expect("binary").as_ref().len();
    assert!(bytes < envelope.len() / 4, "{bytes} of {}", envelope.len());
    let stored = ledger.look_up(&key).await.expect("moto").expect("kept");
    assert_eq!(stored.envelope.as_deref(), Some(envelope.as_str()));
    assert_eq!(stored.queues, ["crm", "email"]);
}
