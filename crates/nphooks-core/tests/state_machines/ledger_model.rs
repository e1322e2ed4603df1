//! The delivery ledger as a plain model, and a run of random operations checked against it.

use std::collections::HashMap;

use nphooks_core::delivery::DeliveryKey;
use nphooks_core::ledger::{
    Begin, DeliveryLedger, DeliveryState, NewDelivery, RECEIVE_LEASE_SECS, StoredDelivery,
};
use nphooks_core::routing::Integration;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::workers::Workers;
use super::{KEYS, T, WORKERS, advance, window};

/// What one receiver request (a worker) or the clock does next.
#[derive(Debug, Clone)]
pub enum Op {
    /// A request for delivery `key` with body `hash` begins, writing its queues and
    /// envelope; a request the worker was still handling is dropped (its Lambda died).
    Begin {
        worker: usize,
        key: usize,
        hash: usize,
    },
    /// The worker's request enqueued everything and answered: no write.
    Finish {
        worker: usize,
    },
    /// The worker's request failed a send: `abandon`.
    Abandon {
        worker: usize,
    },
    /// An `abandon` from no live request, with any body.
    StrayAbandon {
        key: usize,
        hash: usize,
    },
    Advance(u64),
}

pub fn ops(steps: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (0..WORKERS, 0..KEYS, 0..2usize)
            .prop_map(|(worker, key, hash)| Op::Begin { worker, key, hash }),
        2 => (0..WORKERS).prop_map(|worker| Op::Finish { worker }),
        1 => (0..WORKERS).prop_map(|worker| Op::Abandon { worker }),
        1 => (0..KEYS, 0..2usize).prop_map(|(key, hash)| Op::StrayAbandon { key, hash }),
        3 => advance().prop_map(Op::Advance),
    ];
    prop::collection::vec(op, 1..=steps)
}

/// One delivery record, as the module's table describes it.
#[derive(Debug, Clone)]
struct Record {
    hash: usize,
    lease_until: u64,
    expires_at: u64,
    queues: Vec<String>,
    envelope: Option<String>,
}

#[derive(Debug, Default)]
struct Model {
    records: HashMap<usize, Record>,
}

impl Model {
    /// A live record (unexpired, leased) blocks; any other is replaced by this request's.
    fn begin(&mut self, key: usize, hash: usize, worker: usize, now: u64) -> Begin {
        if let Some(old) = self.records.get(&key)
            && now < old.expires_at
            && now < old.lease_until
        {
            let same_payload = old.hash == hash;
            return Begin::InProgress { same_payload };
        }
        // A record past its lease but not expired is taken over; the old payload is known.
        let answer = match self.records.get(&key) {
            Some(old) if now < old.expires_at => Begin::TookOver {
                same_payload: old.hash == hash,
            },
            _ => Begin::Started,
        };
        let (queues, envelope) = sent_by(worker);
        let record = Record {
            hash,
            lease_until: now + RECEIVE_LEASE_SECS,
            expires_at: now + window().as_secs(),
            queues: queues.iter().map(|q| q.to_string()).collect(),
            envelope,
        };
        self.records.insert(key, record);
        answer
    }

    /// Whether the record was removed.
    fn abandon(&mut self, key: usize, hash: usize) -> bool {
        let mine = self.records.get(&key).is_some_and(|r| r.hash == hash);
        if mine {
            self.records.remove(&key);
        }
        mine
    }

    fn look_up(&self, key: usize) -> Option<StoredDelivery> {
        self.records.get(&key).map(|r| StoredDelivery {
            state: DeliveryState::Received,
            queues: r.queues.clone(),
            envelope: r.envelope.clone(),
        })
    }
}

fn delivery(prefix: &str, key: usize) -> DeliveryKey {
    DeliveryKey::from_stored(format!("{prefix}call.ended#c{key}"))
}

fn hash(h: usize) -> String {
    format!("sha256-{h}")
}

/// What each worker enqueues to: its own routes and envelope (worker 2 has none).
fn sent_by(worker: usize) -> (Vec<Integration>, Option<String>) {
    let queues = Integration::ALL[..=worker % Integration::ALL.len()].to_vec();
    let envelope = (worker != 2).then(|| format!("{{\"v\":1,\"worker\":{worker}}}"));
    (queues, envelope)
}

fn store<T>(result: Result<T, nphooks_core::StoreError>) -> Result<T, TestCaseError> {
    result.map_err(|e| TestCaseError::fail(format!("the store failed: {e}")))
}

/// Applies `ops` to `ledger` (keys under `prefix`) and to the model, comparing every
/// answer and, after every step, every record and the invariants.
pub async fn run<L: DeliveryLedger>(
    ledger: &L,
    prefix: &str,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let mut requests = Workers::default();
    let mut now = T;
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Begin {
                worker,
                key,
                hash: h,
            } => {
                let (key_h, hash_h) = (delivery(prefix, key), hash(h));
                let (queues, envelope) = sent_by(worker);
                let new = NewDelivery {
                    payload_hash: &hash_h,
                    queues: &queues,
                    envelope: envelope.as_deref(),
                };
                let answer = store(ledger.begin(&key_h, new, now, window()).await)?;
                let expected = model.begin(key, h, worker, now);
                prop_assert_eq!(answer, expected, "step {}: {:?}", step, op);
                if answer.owns() {
                    requests.hold(worker, key, h, now + RECEIVE_LEASE_SECS);
                }
            }
            Op::Finish { worker } => {
                // Nothing written: the record stays as begun, its lease running out.
                if let Some(hold) = requests.live(worker, now) {
                    requests.drop_hold(worker, hold.key);
                }
            }
            Op::Abandon { worker } => {
                if let Some(request) = requests.settle(worker, now) {
                    let key = delivery(prefix, request.key);
                    store(ledger.abandon(&key, &hash(request.body)).await)?;
                    model.abandon(request.key, request.body);
                }
            }
            Op::StrayAbandon { key, hash: h } => {
                store(ledger.abandon(&delivery(prefix, key), &hash(h)).await)?;
                if model.abandon(key, h) {
                    requests.new_epoch(key);
                }
            }
            Op::Advance(secs) => now += secs,
        }
        for key in 0..KEYS {
            let stored = store(ledger.look_up(&delivery(prefix, key)).await)?;
            prop_assert_eq!(
                stored,
                model.look_up(key),
                "step {}: {:?}, key {}",
                step,
                op,
                key
            );
            let owners = requests.owners(key, now);
            prop_assert!(
                owners <= 1,
                "step {step}: {owners} live requests own key {key}"
            );
        }
    }
    Ok(())
}
