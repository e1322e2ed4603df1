//! The effect claims as a plain model, and a run of random operations checked against it.

use std::collections::HashMap;
use std::future::Future;

use nphooks_core::claims::{
    Claim, ClaimKey, ClaimState, EffectClaim, EffectClaims, MemoryClaims, PendingRetry,
};
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::routing::Integration;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::workers::Workers;
use super::{KEYS, T, WORKERS, advance, window};

/// What one processor run (a worker) or an operator or the clock does next.
#[derive(Debug, Clone)]
pub enum Op {
    /// The worker claims `key` for `lease` seconds; when `Claimed`, that is its run.
    Claim {
        worker: usize,
        key: usize,
        lease: u64,
    },
    /// The worker's run acted: `complete`, sent twice (a retried write).
    Complete {
        worker: usize,
    },
    /// The worker's run failed transiently: `release` (to `retrying`).
    Release {
        worker: usize,
    },
    /// The worker's run dead-lettered: `fail`.
    Fail {
        worker: usize,
    },
    /// A `release` by the worker of `key`, whether it holds it or not.
    StrayRelease {
        worker: usize,
        key: usize,
    },
    /// An operator's forced replay.
    Forget {
        key: usize,
    },
    Advance(u64),
}

/// What a released run records (its content is checked by the adapters' own tests).
const RETRY: PendingRetry<'static> = PendingRetry {
    attempts: 1,
    next_attempt_at: None,
    reason: "timeout",
};

pub fn ops(steps: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (0..WORKERS, 0..KEYS, 1..=60u64)
            .prop_map(|(worker, key, lease)| Op::Claim { worker, key, lease }),
        2 => (0..WORKERS).prop_map(|worker| Op::Complete { worker }),
        1 => (0..WORKERS).prop_map(|worker| Op::Release { worker }),
        1 => (0..WORKERS).prop_map(|worker| Op::Fail { worker }),
        1 => (0..WORKERS, 0..KEYS).prop_map(|(worker, key)| Op::StrayRelease { worker, key }),
        1 => (0..KEYS).prop_map(|key| Op::Forget { key }),
        3 => advance().prop_map(Op::Advance),
    ];
    prop::collection::vec(op, 1..=steps)
}

/// One claim record, as the module's table describes it.
#[derive(Debug, Clone)]
struct Record {
    state: ClaimState,
    owner: usize,
    lease_until: u64,
    expires_at: u64,
}

#[derive(Debug, Default)]
struct Model {
    records: HashMap<usize, Record>,
    runs: Workers,
    /// Until when a completed claim must answer `AlreadyCompleted`, and in which epoch
    /// it completed (an override lifts it).
    done: HashMap<usize, (u64, u32)>,
}

impl Model {
    fn claim(&mut self, worker: usize, key: usize, lease_until: u64, now: u64) -> Claim {
        if let Some(old) = self.records.get(&key)
            && now < old.expires_at
        {
            match old.state {
                ClaimState::Completed => return Claim::AlreadyCompleted,
                ClaimState::InProgress if now < old.lease_until => return Claim::Busy,
                _ => {}
            }
        }
        let record = Record {
            state: ClaimState::InProgress,
            owner: worker,
            lease_until,
            expires_at: now + window().as_secs(),
        };
        self.records.insert(key, record);
        Claim::Claimed
    }

    fn settle(&mut self, key: usize, state: ClaimState) {
        if let Some(record) = self.records.get_mut(&key) {
            record.state = state;
            if state == ClaimState::Completed {
                let epoch = self.runs.epoch(key);
                self.done.insert(key, (record.expires_at, epoch));
            }
        }
    }

    fn release(&mut self, worker: usize, key: usize) {
        let mine = self
            .records
            .get(&key)
            .is_some_and(|r| r.state == ClaimState::InProgress && r.owner == worker);
        if let Some(record) = self.records.get_mut(&key).filter(|_| mine) {
            record.state = ClaimState::Retrying;
        }
    }

    fn forget(&mut self, key: usize) {
        self.records.remove(&key);
        self.runs.new_epoch(key);
    }

    /// Whether a completed claim of `key` must still answer `AlreadyCompleted`.
    fn done(&self, key: usize, now: u64) -> bool {
        let epoch = self.runs.epoch(key);
        let done = self.done.get(&key);
        done.is_some_and(|&(until, e)| now < until && e == epoch)
    }
}

/// Reads a claim's stored state, whatever the adapter.
pub trait Inspect {
    fn state_of(&self, key: &ClaimKey) -> impl Future<Output = Option<ClaimState>>;
}

impl Inspect for MemoryClaims {
    async fn state_of(&self, key: &ClaimKey) -> Option<ClaimState> {
        self.state(key)
    }
}

fn run_of(prefix: &str, key: usize, worker: usize) -> EffectClaim {
    let delivery = DeliveryKey::from_stored(format!("{prefix}call.ended#c{key}"));
    EffectClaim::new(Integration::Crm, &delivery, format!("run-{worker}"))
}

fn store<T>(result: Result<T, nphooks_core::StoreError>) -> Result<T, TestCaseError> {
    result.map_err(|e| TestCaseError::fail(format!("the store failed: {e}")))
}

/// Applies `ops` to `claims` (keys under `prefix`) and to the model, comparing every
/// answer and, after every step, every claim's state (read through `inspect`) and the
/// invariants.
pub async fn run<C: EffectClaims, I: Inspect>(
    claims: &C,
    inspect: &I,
    prefix: &str,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let mut now = T;
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Claim { worker, key, lease } => {
                let lease_until = now + lease;
                let claim = run_of(prefix, key, worker);
                let answer = store(claims.claim(&claim, lease_until, now, window()).await)?;
                let done = model.done(key, now);
                prop_assert!(
                    !(done && answer == Claim::Claimed),
                    "step {step}: a completed claim was claimed again"
                );
                let expected = model.claim(worker, key, lease_until, now);
                prop_assert_eq!(answer, expected, "step {}: {:?}", step, op);
                if answer == Claim::Claimed {
                    model.runs.hold(worker, key, 0, lease_until);
                }
            }
            Op::Complete { worker } => {
                if let Some(run) = model.runs.settle(worker, now) {
                    for _ in 0..2 {
                        store(claims.complete(&run_of(prefix, run.key, worker), now).await)?;
                    }
                    model.settle(run.key, ClaimState::Completed);
                }
            }
            Op::Release { worker } => {
                if let Some(run) = model.runs.settle(worker, now) {
                    store(
                        claims
                            .release(&run_of(prefix, run.key, worker), &RETRY, now)
                            .await,
                    )?;
                    model.release(worker, run.key);
                }
            }
            Op::Fail { worker } => {
                if let Some(run) = model.runs.settle(worker, now) {
                    let claim = run_of(prefix, run.key, worker);
                    store(claims.fail(&claim, "permanent: http 400", now).await)?;
                    model.settle(run.key, ClaimState::Failed);
                }
            }
            Op::StrayRelease { worker, key } => {
                store(
                    claims
                        .release(&run_of(prefix, key, worker), &RETRY, now)
                        .await,
                )?;
                model.release(worker, key);
                model.runs.drop_hold(worker, key);
            }
            Op::Forget { key } => {
                store(claims.forget(&run_of(prefix, key, 0).key).await)?;
                model.forget(key);
            }
            Op::Advance(secs) => now += secs,
        }
        for key in 0..KEYS {
            let stored = inspect.state_of(&run_of(prefix, key, 0).key).await;
            let expected = model.records.get(&key).map(|r| r.state);
            prop_assert_eq!(stored, expected, "step {}: {:?}, key {}", step, op, key);
            let owners = model.runs.owners(key, now);
            prop_assert!(owners <= 1, "step {step}: {owners} live runs own key {key}");
        }
    }
    Ok(())
}
