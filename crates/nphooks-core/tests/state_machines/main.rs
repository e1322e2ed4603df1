//! Property tests of the two state machines (`DeliveryLedger`, `EffectClaims`) against a
//! plain model: random interleavings of several workers' operations and clock advances,
//! checked after every step on the memory adapters and, in fewer cases, on DynamoDB in moto.

mod claims_model;
mod ledger_model;
mod on_moto;
mod races;
mod relay;
mod workers;

use std::future::Future;

use nphooks_core::window::ReplayWindow;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// When every case starts, epoch seconds.
pub const T: u64 = 1_800_000_000;
/// Workers (receiver requests or processor runs), each with its own view.
pub const WORKERS: usize = 3;
/// Delivery or claim keys per case.
pub const KEYS: usize = 2;

/// The shortest window allowed, so clock advances reach expiry.
pub fn window() -> ReplayWindow {
    ReplayWindow::from_hours(26).expect("the minimum window")
}

/// Mostly short steps (leases; often exactly the receiver's lease, to hit its edge),
/// sometimes about one replay window (expiry).
pub fn advance() -> impl Strategy<Value = u64> {
    let w = window().as_secs();
    let lease = nphooks_core::ledger::RECEIVE_LEASE_SECS;
    prop_oneof![5 => 0..=45u64, 2 => Just(lease), 1 => (w - 40)..=(w + 40)]
}

/// Runs `cases` random cases of `strategy` on one tokio runtime; a failure panics with
/// the shrunk counterexample.
pub fn check<S, F, Fut>(cases: u32, strategy: S, test: F)
where
    S: Strategy,
    F: Fn(S::Value) -> Fut,
    Fut: Future<Output = Result<(), TestCaseError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    check_on(&runtime, cases, strategy, test);
}

/// [`check`] on a given runtime (one whose SDK clients are already built).
pub fn check_on<S, F, Fut>(runtime: &tokio::runtime::Runtime, cases: u32, strategy: S, test: F)
where
    S: Strategy,
    F: Fn(S::Value) -> Fut,
    Fut: Future<Output = Result<(), TestCaseError>>,
{
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    if let Err(failure) = runner.run(&strategy, |value| runtime.block_on(test(value))) {
        panic!("{failure}");
    }
}

#[test]
fn given_any_interleaving_then_the_memory_ledger_follows_the_model() {
    check(10_000, ledger_model::ops(40), |ops| async move {
        let ledger = nphooks_core::ledger::MemoryLedger::new();
        ledger_model::run(&ledger, "", &ops).await
    });
}

#[test]
fn given_any_interleaving_then_the_memory_claims_follow_the_model() {
    check(10_000, claims_model::ops(40), |ops| async move {
        let claims = nphooks_core::claims::MemoryClaims::new();
        claims_model::run(&claims, &claims, "", &ops).await
    });
}
