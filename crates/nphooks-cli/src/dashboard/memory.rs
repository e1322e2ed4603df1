//! The dashboard over `nphooks serve`'s in-memory pipeline: a [`Journal`] that its ledger
//! and claims report to (the decorators [`Journaled`] wrap the in-memory adapters, so
//! nothing changes for the pipeline), and its in-memory queues and DLQs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use nphooks_core::claims::{
    Claim, ClaimKey, EffectClaim, EffectClaims, MemoryClaims, PendingRetry,
};
use nphooks_core::config::Settings;
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::envelope::Envelope;
use nphooks_core::ledger::{Begin, DeliveryLedger, DeliveryState, NewDelivery, StoredDelivery};
use nphooks_core::queue::MemoryQueue;
use nphooks_core::routing::Integration;
use nphooks_core::store_error::StoreError;
use nphooks_core::window::ReplayWindow;
use nphooks_processor::RecordOutcome;

use super::source::{
    Badge, DashboardSource, DeliveryRow, Detail, Filter, Health, IntegrationState, Letter, Page,
    health_of,
};
use crate::ops::{self, Letters, Target};
use crate::sinks::Outbox;

/// Rows per page.
const PAGE_ROWS: usize = 100;

struct Entry {
    queues: Vec<Integration>,
    envelope: Option<String>,
    received_at: u64,
}

/// What the pipeline's ports reported: deliveries, each claim's state, and retries.
#[derive(Default)]
pub struct Journal {
    deliveries: Mutex<BTreeMap<String, Entry>>,
    claims: Mutex<HashMap<String, IntegrationState>>,
    retries: Mutex<BTreeMap<Integration, Vec<u64>>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now() -> u64 {
    nphooks_core::epoch_seconds(std::time::SystemTime::now())
}

impl Journal {
    fn set(&self, key: &ClaimKey, change: impl FnOnce(&mut IntegrationState)) {
        let Some((integration, _)) = key.as_str().split_once('#') else {
            return;
        };
        let Ok(integration) = integration.parse() else {
            return;
        };
        let mut claims = lock(&self.claims);
        let state = claims
            .entry(key.as_str().to_owned())
            .or_insert(IntegrationState {
                attempts: Some(0),
                ..IntegrationState::queued(integration)
            });
        change(state);
        state.updated_at = Some(now());
    }

    fn row(&self, key: &str, entry: &Entry, dead: &[(Integration, String)]) -> DeliveryRow {
        let claims = lock(&self.claims);
        let states = entry
            .queues
            .iter()
            .map(|&integration| {
                let mut state = claims
                    .get(&format!("{integration}#{key}"))
                    .cloned()
                    .unwrap_or(IntegrationState::queued(integration));
                let in_dlq = dead.iter().any(|(i, k)| *i == integration && k == key);
                if in_dlq && matches!(state.badge, Badge::Failed | Badge::Queued | Badge::Retrying)
                {
                    state.badge = Badge::DeadLettered;
                }
                state
            })
            .collect();
        let envelope = entry
            .envelope
            .as_deref()
            .and_then(|e| Envelope::decode(e).ok());
        DeliveryRow::new(key, envelope.as_ref(), entry.received_at, states)
    }
}

/// An adapter that reports to the journal what it did.
#[derive(Debug)]
pub struct Journaled<T> {
    pub inner: T,
    pub journal: Arc<Journal>,
}

impl<L: DeliveryLedger> DeliveryLedger for Journaled<L> {
    async fn begin(
        &self,
        key: &DeliveryKey,
        delivery: NewDelivery<'_>,
        now: u64,
        window: ReplayWindow,
    ) -> Result<Begin, StoreError> {
        let begun = self.inner.begin(key, delivery, now, window).await?;
        if begun.owns() {
            let entry = Entry {
                queues: delivery.queues.to_vec(),
                envelope: delivery.envelope.map(str::to_owned),
                received_at: now,
            };
            lock(&self.journal.deliveries).insert(key.as_str().to_owned(), entry);
        }
        Ok(begun)
    }

    async fn abandon(&self, key: &DeliveryKey, payload_hash: &str) -> Result<(), StoreError> {
        self.inner.abandon(key, payload_hash).await?;
        lock(&self.journal.deliveries).remove(key.as_str());
        Ok(())
    }

    async fn look_up(&self, key: &DeliveryKey) -> Result<Option<StoredDelivery>, StoreError> {
        self.inner.look_up(key).await
    }
}

impl<C: EffectClaims> EffectClaims for Journaled<C> {
    async fn claim(
        &self,
        claim: &EffectClaim,
        lease_until: u64,
        now: u64,
        window: ReplayWindow,
    ) -> Result<Claim, StoreError> {
        let claimed = self.inner.claim(claim, lease_until, now, window).await?;
        if claimed == Claim::Claimed {
            self.journal.set(&claim.key, |s| {
                s.badge = Badge::InProgress;
                s.attempts = Some(claim.attempt);
                s.next_attempt_at = None;
            });
        }
        Ok(claimed)
    }

    async fn complete(&self, claim: &EffectClaim, now: u64) -> Result<(), StoreError> {
        self.inner.complete(claim, now).await?;
        self.journal.set(&claim.key, |s| s.badge = Badge::Done);
        Ok(())
    }

    async fn release(
        &self,
        claim: &EffectClaim,
        retry: &PendingRetry<'_>,
        now: u64,
    ) -> Result<(), StoreError> {
        self.inner.release(claim, retry, now).await?;
        let mut integration = None;
        self.journal.set(&claim.key, |s| {
            s.badge = Badge::Retrying;
            s.attempts = Some(retry.attempts);
            s.reason = Some(retry.reason.to_owned());
            s.next_attempt_at = retry.next_attempt_at;
            integration = Some(s.integration);
        });
        if let Some(integration) = integration {
            lock(&self.journal.retries)
                .entry(integration)
                .or_default()
                .push(now);
        }
        Ok(())
    }

    async fn fail(&self, claim: &EffectClaim, reason: &str, now: u64) -> Result<(), StoreError> {
        self.inner.fail(claim, reason, now).await?;
        self.journal.set(&claim.key, |s| {
            s.badge = Badge::Failed;
            s.reason = Some(reason.to_owned());
        });
        Ok(())
    }

    async fn forget(&self, key: &ClaimKey) -> Result<(), StoreError> {
        self.inner.forget(key).await?;
        lock(&self.journal.claims).remove(key.as_str());
        Ok(())
    }
}

/// `serve`'s in-memory state.
#[derive(Debug)]
pub struct MemorySource {
    pub journal: Arc<Journal>,
    pub claims: Arc<Journaled<MemoryClaims>>,
    pub queue: Arc<MemoryQueue>,
    /// Each integration's queue and DLQ URLs.
    pub urls: BTreeMap<Integration, (String, String)>,
    pub table: String,
    pub settings: Settings,
    pub aws: aws_config::SdkConfig,
    pub outbox: Arc<Outbox>,
}

impl MemorySource {
    fn letters(&self) -> BTreeMap<Integration, Vec<Letter>> {
        self.urls
            .iter()
            .map(|(&integration, (_, dlq))| {
                // Received with no visibility timeout: each stays where it is, and its id
                // is the one a redrive's selection names.
                let letters = self
                    .queue
                    .receive(dlq, usize::MAX, Duration::ZERO)
                    .into_iter()
                    .map(|m| Letter {
                        id: m.message_id,
                        reason: m
                            .attributes
                            .iter()
                            .find(|(name, _)| name == "failure_reason")
                            .map_or_else(
                                || "(moved after too many receives)".to_owned(),
                                |(_, v)| v.clone(),
                            ),
                        delivery_key: Envelope::decode(&m.body).map_or_else(
                            |_| "(unreadable body)".to_owned(),
                            |e| e.delivery_key.to_string(),
                        ),
                        sent_at_ms: None,
                    })
                    .collect();
                (integration, letters)
            })
            .collect()
    }

    fn rows(&self) -> Vec<DeliveryRow> {
        let dead: Vec<(Integration, String)> = self
            .letters()
            .into_iter()
            .flat_map(|(i, letters)| letters.into_iter().map(move |l| (i, l.delivery_key)))
            .collect();
        let deliveries = lock(&self.journal.deliveries);
        let mut rows: Vec<DeliveryRow> = deliveries
            .iter()
            .map(|(key, entry)| self.journal.row(key, entry, &dead))
            .collect();
        rows.sort_by(|a, b| b.received_at.cmp(&a.received_at).then(a.key.cmp(&b.key)));
        rows
    }
}

impl DashboardSource for MemorySource {
    fn deliveries<'a>(
        &'a self,
        filter: &'a Filter,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, anyhow::Result<Page>> {
        let skip: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let matching: Vec<DeliveryRow> = self
            .rows()
            .into_iter()
            .filter(|r| filter.matches(r))
            .collect();
        let next = (matching.len() > skip + PAGE_ROWS).then(|| (skip + PAGE_ROWS).to_string());
        let rows = matching.into_iter().skip(skip).take(PAGE_ROWS).collect();
        futures::future::ready(Ok(Page { rows, next })).boxed()
    }

    fn delivery<'a>(&'a self, key: &'a str) -> BoxFuture<'a, anyhow::Result<Option<Detail>>> {
        let row = self.rows().into_iter().find(|r| r.key == key);
        let envelope = lock(&self.journal.deliveries)
            .get(key)
            .and_then(|e| e.envelope.as_deref().and_then(|e| Envelope::decode(e).ok()));
        let detail = row.map(|row| Detail {
            row,
            caller: envelope
                .as_ref()
                .map(|e| e.webhook.data.caller.clone())
                .unwrap_or_default(),
            received_at: envelope.map(|e| e.received_at),
        });
        futures::future::ready(Ok(detail)).boxed()
    }

    fn dead_letters(&self) -> BoxFuture<'_, anyhow::Result<BTreeMap<Integration, Vec<Letter>>>> {
        futures::future::ready(Ok(self.letters())).boxed()
    }

    fn health(&self) -> BoxFuture<'_, anyhow::Result<Vec<Health>>> {
        let retries = lock(&self.journal.retries).clone();
        futures::future::ready(Ok(health_of(&self.rows(), &retries, now()))).boxed()
    }

    fn replay<'a>(
        &'a self,
        key: &'a str,
        only: Option<Integration>,
    ) -> BoxFuture<'a, anyhow::Result<Vec<(Integration, RecordOutcome)>>> {
        async move {
            let stored = {
                let deliveries = lock(&self.journal.deliveries);
                let entry = deliveries
                    .get(key)
                    .ok_or_else(|| anyhow::anyhow!("no delivery {key} in this run of serve"))?;
                StoredDelivery {
                    state: DeliveryState::Received,
                    queues: entry.queues.iter().map(|q| q.as_str().to_owned()).collect(),
                    envelope: entry.envelope.clone(),
                }
            };
            let target = Target {
                table: &self.table,
                urls: &self.urls,
                claims: self.claims.clone(),
                queue: self.queue.clone(),
                outbox: &self.outbox,
            };
            let key = DeliveryKey::from_stored(key.to_owned());
            ops::replay_stored(
                &target,
                &self.aws,
                &self.settings,
                &key,
                &stored,
                only,
                false,
            )
            .await
        }
        .boxed()
    }

    fn redrive<'a>(
        &'a self,
        integration: Integration,
        letters: Letters<'a>,
    ) -> BoxFuture<'a, anyhow::Result<usize>> {
        async move {
            let (queue, dlq) = self
                .urls
                .get(&integration)
                .ok_or_else(|| anyhow::anyhow!("no queue for {integration}"))?;
            let source: &MemoryQueue = &self.queue;
            ops::redrive_with(source, &self.queue, dlq, queue, letters).await
        }
        .boxed()
    }
}
