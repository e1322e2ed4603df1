//! Effect claims in DynamoDB: "is this claim live?" is the write's condition.

use std::collections::HashMap;

use super::{Claim, ClaimKey, ClaimState, EffectClaim, EffectClaims, PendingRetry, RECLAIMABLE};
use crate::store_error::StoreError;
use crate::table::{self, DynamoTable, PutOutcome, n, s, text_of};
use crate::window::ReplayWindow;

/// Effect claims in the DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoClaims {
    table: DynamoTable,
}

impl DynamoClaims {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoClaims {
            table: DynamoTable::new(client, table),
        }
    }

    pub fn connect(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(aws_sdk_dynamodb::Client::new(sdk), table)
    }
}

impl EffectClaims for DynamoClaims {
    async fn claim(
        &self,
        claim: &EffectClaim,
        lease_until: u64,
        now: u64,
        window: ReplayWindow,
    ) -> Result<Claim, StoreError> {
        let in_progress = ClaimState::InProgress.as_str();
        let item = HashMap::from([
            (table::KEY.to_owned(), s(claim.key.as_str())),
            (table::STATE.to_owned(), s(in_progress)),
            (table::OWNER.to_owned(), s(&claim.owner)),
            (table::ATTEMPTS.to_owned(), n(u64::from(claim.attempt))),
            (table::LEASE_UNTIL.to_owned(), n(lease_until)),
            (table::EXPIRES_AT.to_owned(), n(window.expires_at(now))),
            (table::UPDATED_AT.to_owned(), n(now)),
        ]);
        let reclaimable = RECLAIMABLE.map(ClaimState::as_str);
        let old = self
            .table
            .put_unless_live(item, in_progress, &reclaimable, now)
            .await?;
        Ok(match old {
            PutOutcome::Written(_) => Claim::Claimed,
            PutOutcome::Blocked(old) => {
                Claim::blocked_by(text_of(&old, table::STATE).and_then(|t| t.parse().ok()))
            }
        })
    }

    async fn complete(&self, claim: &EffectClaim, now: u64) -> Result<(), StoreError> {
        let completed = ClaimState::Completed.as_str();
        self.table
            .settle(claim.key.as_str(), completed, &[], now)
            .await
    }

    async fn release(
        &self,
        claim: &EffectClaim,
        retry: &PendingRetry<'_>,
        now: u64,
    ) -> Result<(), StoreError> {
        let in_progress = ClaimState::InProgress.as_str();
        let mine = (table::OWNER, claim.owner.as_str());
        let mut noted = vec![
            (table::ATTEMPTS, n(u64::from(retry.attempts))),
            (table::REASON, s(retry.reason)),
        ];
        noted.extend(
            retry
                .next_attempt_at
                .map(|at| (table::NEXT_ATTEMPT_AT, n(at))),
        );
        let retrying = (ClaimState::Retrying.as_str(), noted.as_slice());
        self.table
            .settle_if_still(claim.key.as_str(), in_progress, mine, retrying, now)
            .await
    }

    async fn fail(&self, claim: &EffectClaim, reason: &str, now: u64) -> Result<(), StoreError> {
        let failed = ClaimState::Failed.as_str();
        let reason = [(table::REASON, s(reason))];
        self.table
            .settle(claim.key.as_str(), failed, &reason, now)
            .await
    }

    async fn forget(&self, key: &ClaimKey) -> Result<(), StoreError> {
        self.table.delete(key.as_str()).await
    }
}
