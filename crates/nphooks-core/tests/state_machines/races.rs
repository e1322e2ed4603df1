//! True concurrency: tasks racing `claim` or `begin` on one key, on both adapters. In
//! DynamoDB the conditional write is what serialises them (moto behind [`relay`]).

use std::future::Future;
use std::sync::Arc;

use nphooks_core::claims::{Claim, DynamoClaims, EffectClaim, EffectClaims, MemoryClaims};
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::ledger::{Begin, DeliveryLedger, DynamoLedger, MemoryLedger, NewDelivery};
use nphooks_core::routing::Integration;
use tokio::sync::Barrier;

use super::on_moto::moto_table;
use super::relay;
use super::{T, window};

/// Tasks per key.
const RACERS: usize = 12;
/// Keys raced for, one after another.
const ROUNDS: usize = 4;

fn delivery(round: usize) -> DeliveryKey {
    DeliveryKey::from_stored(format!("call.ended#race{round}"))
}

/// Each round, [`RACERS`] tasks made by `racer(round, index)` start at once (behind a
/// barrier); returns their answers per round.
async fn race<T, F, Fut>(racer: F) -> Vec<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        let start = Arc::new(Barrier::new(RACERS));
        let tasks = (0..RACERS).map(|index| {
            let (run, start) = (racer(round, index), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                run.await
            })
        });
        let answers = futures::future::join_all(tasks).await;
        rounds.push(answers.into_iter().map(|a| a.expect("task")).collect());
    }
    rounds
}

/// Runs with their own owners claim one key at once.
async fn race_claims<C: EffectClaims + 'static>(claims: Arc<C>) -> Vec<Vec<Claim>> {
    race(|round, index| {
        let claims = claims.clone();
        let claim = EffectClaim::new(Integration::Email, &delivery(round), format!("run-{index}"));
        async move {
            let claimed = claims.claim(&claim, T + 60, T, window()).await;
            claimed.expect("the store answers")
        }
    })
    .await
}

/// Requests with one body begin one delivery at once.
async fn race_begins<L: DeliveryLedger + 'static>(ledger: Arc<L>) -> Vec<Vec<Begin>> {
    race(|round, _| {
        let ledger = ledger.clone();
        async move {
            let new = NewDelivery {
                payload_hash: "sha256-1",
                queues: &[Integration::Crm],
                envelope: Some("{}"),
            };
            let begun = ledger.begin(&delivery(round), new, T, window()).await;
            begun.expect("the store answers")
        }
    })
    .await
}

/// The same client, sending through a new [`relay`] to moto.
fn through_relay(client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
    let config = client.config().to_builder().endpoint_url(relay::start());
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

fn assert_one_claimed(rounds: &[Vec<Claim>]) {
    for answers in rounds {
        let claimed = answers.iter().filter(|a| **a == Claim::Claimed).count();
        let busy = answers.iter().filter(|a| **a == Claim::Busy).count();
        assert_eq!((claimed, busy), (1, RACERS - 1), "{answers:?}");
    }
}

fn assert_one_started(rounds: &[Vec<Begin>]) {
    let in_progress = Begin::InProgress { same_payload: true };
    for answers in rounds {
        let started = answers.iter().filter(|a| a.owns()).count();
        let blocked = answers.iter().filter(|a| **a == in_progress).count();
        assert_eq!((started, blocked), (1, RACERS - 1), "{answers:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_racing_runs_then_exactly_one_claims_in_memory() {
    assert_one_claimed(&race_claims(Arc::new(MemoryClaims::new())).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_racing_runs_then_exactly_one_claims_in_dynamo() {
    let (client, table) = moto_table("claims-race").await;
    let claims = DynamoClaims::new(through_relay(&client), table);
    assert_one_claimed(&race_claims(Arc::new(claims)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_racing_requests_then_exactly_one_begins_in_memory() {
    assert_one_started(&race_begins(Arc::new(MemoryLedger::new())).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_racing_requests_then_exactly_one_begins_in_dynamo() {
    let (client, table) = moto_table("ledger-race").await;
    let ledger = DynamoLedger::new(through_relay(&client), table);
    assert_one_started(&race_begins(Arc::new(ledger)).await);
}
