//! The delivery record's state machine, on the memory adapter: every transition, the
//! lease, the replay window and concurrent requests.

use super::*;

const W: ReplayWindow = ReplayWindow::DEFAULT;
const T: u64 = 1_800_000_000;

fn key() -> DeliveryKey {
    DeliveryKey::from_stored("call.ended#c1".into())
}

async fn begin(ledger: &MemoryLedger, hash: &str, now: u64) -> Begin {
    ledger.begin(&key(), hash, now, W).await.expect("memory")
}

async fn enqueued(ledger: &MemoryLedger, hash: &str, now: u64) {
    assert_eq!(begin(ledger, hash, now).await, Begin::Started);
    let queues = [Integration::Crm, Integration::Slack];
    ledger
        .complete(&key(), &queues, Some("{}"), now)
        .await
        .expect("memory");
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
    assert_eq!(retry, Begin::Started);
    // THEN the new lease runs from the takeover
    let next = begin(&ledger, "h", T + RECEIVE_LEASE_SECS + 1).await;
    assert_eq!(next, Begin::InProgress { same_payload: true });
}

#[tokio::test]
async fn given_an_enqueued_record_when_the_sender_retries_then_it_is_a_duplicate() {
    let ledger = MemoryLedger::new();
    enqueued(&ledger, "h", T).await;
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
    enqueued(&ledger, "h", T).await;
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
    enqueued(&ledger, "h", T).await;
    ledger.abandon(&key(), "h").await.expect("memory");
    let retry = begin(&ledger, "h", T + 1).await;
    assert_eq!(retry, Begin::AlreadyEnqueued { same_payload: true });
}

#[tokio::test]
async fn given_an_enqueued_record_when_looked_up_then_queues_and_envelope_return() {
    let ledger = MemoryLedger::new();
    assert_eq!(ledger.look_up(&key()).await.expect("memory"), None);
    enqueued(&ledger, "h", T).await;
    let stored = ledger.look_up(&key()).await.expect("memory");
    let expected = StoredDelivery {
        enqueued: true,
        queues: vec!["crm".into(), "slack".into()],
        envelope: Some("{}".into()),
    };
    assert_eq!(stored, Some(expected));
}

#[tokio::test]
async fn given_an_envelope_over_the_item_limit_when_completed_then_it_is_not_kept() {
    let ledger = MemoryLedger::new();
    begin(&ledger, "h", T).await;
    let big = "x".repeat(MAX_STORED_ENVELOPE_BYTES + 1);
    let queues = [Integration::Notify];
    ledger
        .complete(&key(), &queues, Some(&big), T)
        .await
        .expect("memory");
    let stored = ledger.look_up(&key()).await.expect("memory").expect("kept");
    assert_eq!((stored.enqueued, stored.envelope), (true, None));
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
    assert_eq!(
        store.begin(&key(), "h", 100, W).await.ok(),
        Some(Begin::Started)
    );
    assert_eq!(
        store.begin(&key(), "h", 101, W).await.ok(),
        Some(Begin::InProgress { same_payload: true })
    );
    // The lease runs out: a retry takes the stale record over.
    let stale = 100 + RECEIVE_LEASE_SECS;
    assert_eq!(
        store.begin(&key(), "h", stale, W).await.ok(),
        Some(Begin::Started)
    );
    store
        .complete(&key(), &[Integration::Crm], Some("{}"), stale)
        .await
        .expect("memory");
    assert_eq!(
        store.begin(&key(), "other", stale + 1, W).await.ok(),
        Some(Begin::AlreadyEnqueued {
            same_payload: false
        })
    );
    let expired = stale + W.as_secs();
    assert_eq!(
        store.begin(&key(), "h", expired, W).await.ok(),
        Some(Begin::Started)
    );
    store.abandon(&key(), "h").await.expect("memory");
    assert_eq!(
        store.begin(&key(), "h", expired, W).await.ok(),
        Some(Begin::Started)
    );
}
