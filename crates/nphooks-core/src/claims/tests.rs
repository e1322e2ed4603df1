//! The effect claim's state machine, on the memory adapter: every transition, leases,
//! the replay window and concurrent runs.

use super::*;

const W: ReplayWindow = ReplayWindow::DEFAULT;
const T: u64 = 1_800_000_000;
const LEASE: u64 = 60;
const RETRY: PendingRetry<'static> = PendingRetry {
    attempts: 2,
    next_attempt_at: Some(T + 90),
    reason: "server_error (503)",
};

fn delivery() -> DeliveryKey {
    DeliveryKey::from_stored("call.ended#c1".into())
}

fn run(owner: &str) -> EffectClaim {
    EffectClaim::new(Integration::Crm, &delivery(), owner)
}

/// `claim` at `now` with a lease of [`LEASE`] seconds.
async fn claim(claims: &MemoryClaims, claim: &EffectClaim, now: u64) -> Claim {
    claims
        .claim(claim, now + LEASE, now, W)
        .await
        .expect("memory")
}

fn state(claims: &MemoryClaims) -> Option<ClaimState> {
    claims.state(&run("any").key)
}

#[test]
fn given_an_integration_and_a_delivery_then_the_claim_key_is_both_joined_by_a_hash() {
    let key = ClaimKey::new(Integration::Slack, &delivery());
    assert_eq!(key.as_str(), "slack#call.ended#c1");
    assert_eq!(key.to_string(), key.as_str());
}

#[test]
fn given_each_state_then_its_stored_name_reads_back_as_the_same_state() {
    let states = [
        ClaimState::InProgress,
        ClaimState::Completed,
        ClaimState::Failed,
        ClaimState::Retrying,
    ];
    for state in states {
        assert_eq!(state.as_str().parse(), Ok(state));
    }
    assert_eq!("enqueued".parse::<ClaimState>(), Err(UnknownState));
}

#[tokio::test]
async fn given_no_claim_when_a_run_claims_then_it_holds_it_in_progress() {
    let claims = MemoryClaims::new();
    assert_eq!(claim(&claims, &run("a"), T).await, Claim::Claimed);
    assert_eq!(state(&claims), Some(ClaimState::InProgress));
}

#[tokio::test]
async fn given_a_live_claim_when_another_run_claims_then_it_is_busy() {
    let claims = MemoryClaims::new();
    claim(&claims, &run("a"), T).await;
    let busy = claim(&claims, &run("b"), T + LEASE - 1).await;
    assert_eq!(busy, Claim::Busy);
}

#[tokio::test]
async fn given_a_claim_past_its_lease_when_another_run_claims_then_it_takes_over() {
    let claims = MemoryClaims::new();
    claim(&claims, &run("a"), T).await;
    assert_eq!(claim(&claims, &run("b"), T + LEASE).await, Claim::Claimed);
    // THEN the first run can no longer release it
    claims.release(&run("a"), &RETRY, T).await.expect("memory");
    assert_eq!(claim(&claims, &run("c"), T + LEASE + 1).await, Claim::Busy);
}

#[tokio::test]
async fn given_a_claim_when_a_non_owner_releases_it_then_nothing_changes() {
    let claims = MemoryClaims::new();
    claim(&claims, &run("a"), T).await;
    claims.release(&run("b"), &RETRY, T).await.expect("memory");
    assert_eq!(state(&claims), Some(ClaimState::InProgress));
    assert_eq!(claim(&claims, &run("b"), T + 1).await, Claim::Busy);
}

#[tokio::test]
async fn given_a_claim_when_its_owner_releases_it_then_the_next_run_claims() {
    let claims = MemoryClaims::new();
    claim(&claims, &run("a"), T).await;
    claims.release(&run("a"), &RETRY, T).await.expect("memory");
    // THEN it says why and when the message comes back, until the next run claims it
    assert_eq!(state(&claims), Some(ClaimState::Retrying));
    let noted = claims.pending_retry(&run("a").key).expect("retrying");
    assert_eq!((noted.attempts, noted.next_attempt_at), (2, Some(T + 90)));
    assert_eq!(noted.reason, "server_error (503)");
    assert_eq!(claim(&claims, &run("b"), T + 1).await, Claim::Claimed);
    assert_eq!(claims.pending_retry(&run("a").key), None);
}

#[tokio::test]
async fn given_a_completed_claim_then_every_later_claim_is_already_completed() {
    let claims = MemoryClaims::new();
    claim(&claims, &run("a"), T).await;
    claims.complete(&run("a"), T + 1).await.expect("memory");
    let later = claim(&claims, &run("b"), T + 10 * LEASE).await;
    assert_eq!(later, Claim::AlreadyCompleted);
    // THEN no release undoes it
    claims.release(&run("a"), &RETRY, T).await.expect("memory");
    assert_eq!(state(&claims), Some(ClaimState::Completed));
}

#[tokio::test]
async fn given_a_completed_claim_past_the_replay_window_then_it_is_claimed_afresh() {
    let claims = MemoryClaims::new();
    claim(&claims, &run("a"), T).await;
    claims.complete(&run("a"), T + 1).await.expect("memory");
    let last = claim(&claims, &run("b"), T + W.as_secs() - 1).await;
    let expired = claim(&claims, &run("b"), T + W.as_secs()).await;
    assert_eq!((last, expired), (Claim::AlreadyCompleted, Claim::Claimed));
}

#[tokio::test]
async fn given_a_failed_claim_when_a_redriven_message_claims_then_it_acts_again() {
    let claims = MemoryClaims::new();
    claim(&claims, &run("a"), T).await;
    claims
        .fail(&run("a"), "crm answered 400", T + 1)
        .await
        .expect("memory");
    assert_eq!(state(&claims), Some(ClaimState::Failed));
    // WHEN its owner releases it anyway, nothing changes
    claims.release(&run("a"), &RETRY, T).await.expect("memory");
    assert_eq!(state(&claims), Some(ClaimState::Failed));
    assert_eq!(claim(&claims, &run("b"), T + 2).await, Claim::Claimed);
}

#[tokio::test]
async fn given_a_run_past_its_lease_when_it_completes_then_the_effect_counts_as_done() {
    // GIVEN run a's lease ran out and run b took the claim over
    let claims = MemoryClaims::new();
    claim(&claims, &run("a"), T).await;
    claim(&claims, &run("b"), T + LEASE).await;
    // WHEN run a's effect finishes after all
    claims
        .complete(&run("a"), T + LEASE + 1)
        .await
        .expect("memory");
    // THEN the claim is completed: b cannot release it, a third run acknowledges
    claims.release(&run("b"), &RETRY, T).await.expect("memory");
    assert_eq!(state(&claims), Some(ClaimState::Completed));
    let third = claim(&claims, &run("c"), T + LEASE + 2).await;
    assert_eq!(third, Claim::AlreadyCompleted);
}

#[tokio::test]
async fn given_a_completed_claim_when_an_operator_forgets_it_then_it_runs_again() {
    let claims = MemoryClaims::new();
    claim(&claims, &run("a"), T).await;
    claims.complete(&run("a"), T + 1).await.expect("memory");
    claims.forget(&run("a").key).await.expect("memory");
    assert_eq!(claim(&claims, &run("b"), T + 2).await, Claim::Claimed);
}

#[tokio::test]
async fn given_two_concurrent_runs_when_both_claim_then_exactly_one_holds_it() {
    let claims = MemoryClaims::new();
    let (run_a, run_b) = (run("a"), run("b"));
    let (a, b) = tokio::join!(claim(&claims, &run_a, T), claim(&claims, &run_b, T));
    let mut outcomes = [a, b];
    outcomes.sort_by_key(|c| *c == Claim::Busy);
    assert_eq!(outcomes, [Claim::Claimed, Claim::Busy]);
}

#[tokio::test]
async fn given_the_memory_store_then_effect_claims_follow_their_state_machine() {
    let store = MemoryClaims::new();
    let first = EffectClaim::new(Integration::Crm, &delivery(), "run-1");
    let second = EffectClaim::new(Integration::Crm, &delivery(), "run-2");
    assert_eq!(
        store.claim(&first, 130, 100, W).await.ok(),
        Some(Claim::Claimed)
    );
    assert_eq!(
        store.claim(&second, 131, 101, W).await.ok(),
        Some(Claim::Busy)
    );
    // Only the owner releases; a stranger's release leaves the claim alone.
    store.release(&second, &RETRY, T).await.expect("memory");
    assert_eq!(
        store.claim(&second, 131, 101, W).await.ok(),
        Some(Claim::Busy)
    );
    // The first run dies: after its lease, the next run claims it.
    assert_eq!(
        store.claim(&second, 200, 130, W).await.ok(),
        Some(Claim::Claimed)
    );
    store.fail(&second, "400", 131).await.expect("memory");
    assert_eq!(
        store.claim(&first, 300, 132, W).await.ok(),
        Some(Claim::Claimed)
    );
    store.complete(&first, 133).await.expect("memory");
    assert_eq!(
        store.claim(&second, 400, 134, W).await.ok(),
        Some(Claim::AlreadyCompleted)
    );
}
