//! The delivery record's state machine, on the memory adapter: every transition, the
//! lease, the replay window and concurrent requests.

use super::*;

const W: ReplayWindow = ReplayWindow::DEFAULT;
const T: u64 = 1_800_000_000;

fn key() -> DeliveryKey {
    DeliveryKey::from_stored("call.ended#c1".into())
}

const QUEUES: [Integration; 2] = [Integration::Crm, Integration::Slack];

fn delivery(hash: &str) -> NewDelivery<'_> {
    NewDelivery {
        payload_hash: hash,
        queues: &QUEUES,
        envelope: Some("{}"),
    }
}

async fn begin(ledger: &MemoryLedger, hash: &str, now: u64) -> Begin {
    ledger
        .begin(&key(), delivery(hash), now, W)
        .await
        .expect("memory")
}

/// A record the previous (two-write) version marked `enqueued`.
fn enqueued(ledger: &MemoryLedger, hash: &str, now: u64) {
    ledger.insert_enqueued(&key(), hash, now);
}

#[test]
fn given_each_state_then_its_stored_name_reads_back_as_the_same_state() {
    for state in [DeliveryState::Received, DeliveryState::Enqueued] {
        assert_eq!(state.as_str().parse(), Ok(state));
    }
    assert_eq!("completed".parse::<DeliveryState>(), Err(UnknownState));
}

#[tokio::test]
async fn given_no_record_when_a_request_begins_then_it_owns_the_delivery() {
    let ledger = MemoryLedger::new();
    assert_eq!(begin(&ledger, "h", T).await, Begin::Started);
    assert_eq!(ledger.len(), 1);
}

#[tokio::test]
async fn given_a_received_record_when_another_begins_then_it_is_in_progress() {
    let ledger = MemoryLedger::new();
    begin(&ledger, "h", T).await;
    let same = begin(&ledger, "h", T + 1).await;
    let other = begin(&ledger, "other", T + RECEIVE_LEASE_SECS - 1).await;
    assert_eq!(same, Begin::InProgress { same_payload: true });
    assert_eq!(
        other,
        Begin::InProgress {
            same_payload: false
        }
    );
}

#[tokio::test]
async fn given_a_received_record_past_its_lease_then_a_retry_takes_it_over() {
    let ledger = MemoryLedger::new();
    begin(&ledger, "h", T).await;
    let retry = begin(&ledger, "h", T + RECEIVE_LEASE_SECS).await;
    assert_eq!(retry, Begin::TookOver { same_payload: true });
    // THEN the new lease runs from the takeover
    let next = begin(&ledger, "h", T + RECEIVE_LEASE_SECS + 1).await;
    assert_eq!(next, Begin::InProgress { same_payload: true });
}

#[tokio::test]
async fn given_an_old_enqueued_record_when_the_sender_retries_then_it_is_a_duplicate() {
    let ledger = MemoryLedger::new();
    enqueued(&ledger, "h", T);
    // WHEN long past the lease (an enqueued record has none), same and other payload
    let same = begin(&ledger, "h", T + 3600).await;
    let other = begin(&ledger, "other", T + 3600).await;
    assert_eq!(same, Begin::AlreadyEnqueued { same_payload: true });
    assert_eq!(
        other,
        Begin::AlreadyEnqueued {
            same_payload: false
        }
    );
}

#[tokio::test]
async fn given_an_enqueued_record_past_the_replay_window_then_it_begins_afresh() {
    let ledger = MemoryLedger::new();
    enqueued(&ledger, "h", T);
    let last = begin(&ledger, "h", T + W.as_secs() - 1).await;
    let expired = begin(&ledger, "h", T + W.as_secs()).await;
    assert_eq!(last, Begin::AlreadyEnqueued { same_payload: true });
    assert_eq!(expired, Begin::Started);
}

#[tokio::test]
async fn given_a_received_record_when_its_request_abandons_it_then_a_retry_starts() {
    let ledger = MemoryLedger::new();
    begin(&ledger, "h", T).await;
    ledger.abandon(&key(), "h").await.expect("memory");
    assert!(ledger.is_empty());
    assert_eq!(begin(&ledger, "h", T + 1).await, Begin::Started);
}

#[tokio::test]
async fn given_another_payload_when_it_abandons_then_the_record_stays() {
    let ledger = MemoryLedger::new();
    begin(&ledger, "h", T).await;
    ledger.abandon(&key(), "other").await.expect("memory");
    let retry = begin(&ledger, "h", T + 1).await;
    assert_eq!(retry, Begin::InProgress { same_payload: true });
}

#[tokio::test]
async fn given_an_enqueued_record_when_abandoned_then_it_stays_enqueued() {
    let ledger = MemoryLedger::new();
    enqueued(&ledger, "h", T);
    ledger.abandon(&key(), "h").await.expect("memory");
    let retry = begin(&ledger, "h", T + 1).await;
    assert_eq!(retry, Begin::AlreadyEnqueued { same_payload: true });
}

#[tokio::test]
async fn given_a_begun_delivery_then_one_write_kept_its_queues_and_envelope() {
    let ledger = MemoryLedger::new();
    assert_eq!(ledger.look_up(&key()).await.expect("memory"), None);
    assert_eq!(begin(&ledger, "h", T).await, Begin::Started);
    assert_eq!(ledger.operations(), 2, "one read, then one write");
    let stored = ledger.look_up(&key()).await.expect("memory");
    let expected = StoredDelivery {
        state: DeliveryState::Received,
        queues: vec!["crm".into(), "slack".into()],
        envelope: Some("{}".into()),
    };
    assert_eq!(stored, Some(expected));
}

#[tokio::test]
async fn given_a_finished_delivery_past_its_lease_then_a_retry_enqueues_it_again() {
    // GIVEN a delivery begun (and, unknown to the ledger, enqueued) at T
    let ledger = MemoryLedger::new();
    begin(&ledger, "h", T).await;
    // WHEN the sender retries after its answer was lost (5 minutes later)
    let retry = begin(&ledger, "h", T + 300).await;
    // THEN the retry owns it and enqueues again (the processors' claims dedupe)
    assert_eq!(retry, Begin::TookOver { same_payload: true });
}

#[tokio::test]
async fn given_a_different_body_past_the_lease_then_the_takeover_says_so() {
    // GIVEN a delivery begun at T
    let ledger = MemoryLedger::new();
    begin(&ledger, "h", T).await;
    // WHEN another body under the same key arrives past the lease
    let other = begin(&ledger, "other", T + RECEIVE_LEASE_SECS).await;
    // THEN it owns the delivery, and the conflict is known (no extra write)
    assert!(other.owns());
    assert_eq!(
        other,
        Begin::TookOver {
            same_payload: false
        }
    );
}

#[tokio::test]
async fn given_an_envelope_over_the_item_limit_when_begun_then_it_is_not_kept() {
    let ledger = MemoryLedger::new();
    let big = stored::incompressible(3 * MAX_STORED_ENVELOPE_BYTES);
    let new = NewDelivery {
        envelope: Some(&big),
        ..delivery("h")
    };
    ledger.begin(&key(), new, T, W).await.expect("memory");
    let stored = ledger.look_up(&key()).await.expect("memory").expect("kept");
    assert_eq!(stored.queues.len(), 2);
    assert_eq!(stored.envelope, None);
}

#[tokio::test]
async fn given_two_concurrent_requests_when_both_begin_then_exactly_one_owns_it() {
    let ledger = MemoryLedger::new();
    let (a, b) = tokio::join!(begin(&ledger, "h", T), begin(&ledger, "h", T));
    let started = [a, b].iter().filter(|b| **b == Begin::Started).count();
    assert_eq!(started, 1, "{a:?} {b:?}");
    assert!([a, b].contains(&Begin::InProgress { same_payload: true }));
}

#[tokio::test]
async fn given_the_memory_store_then_it_follows_the_delivery_state_machine() {
    let store = MemoryLedger::new();
    let key = key();
    let at = |now| store.begin(&key, delivery("h"), now, W);
    assert_eq!(at(100).await.ok(), Some(Begin::Started));
    assert_eq!(
        at(101).await.ok(),
        Some(Begin::InProgress { same_payload: true })
    );
    // The lease runs out: a retry takes the record over.
    let stale = 100 + RECEIVE_LEASE_SECS;
    let took_over = Begin::TookOver { same_payload: true };
    assert_eq!(at(stale).await.ok(), Some(took_over));
    let expired = stale + W.as_secs();
    assert_eq!(at(expired).await.ok(), Some(Begin::Started));
    store.abandon(&key, "h").await.expect("memory");
    assert_eq!(at(expired).await.ok(), Some(Begin::Started));
}
