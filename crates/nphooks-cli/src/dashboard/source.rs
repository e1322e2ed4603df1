//! What the dashboard reads and does, whatever holds the state: the [`DashboardSource`]
//! port, the rows it returns, and how a claim and a dead letter become a badge.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use nphooks_core::claims::ClaimState;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_core::webhook::Caller;

/// One integration's state for one delivery, as a badge shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Badge {
    /// Routed, no claim yet.
    Queued,
    InProgress,
    Done,
    /// A transient failure: the message waits for its next attempt.
    Retrying,
    /// Failed permanently, and its letter is no longer in the DLQ (redriven, or purged).
    Failed,
    DeadLettered,
    Skipped,
}

impl Badge {
    pub const ALL: [Badge; 7] = [
        Badge::Queued,
        Badge::InProgress,
        Badge::Done,
        Badge::Retrying,
        Badge::Failed,
        Badge::DeadLettered,
        Badge::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Badge::Queued => "queued",
            Badge::InProgress => "in-progress",
            Badge::Done => "done",
            Badge::Retrying => "retrying",
            Badge::Failed => "failed",
            Badge::DeadLettered => "dead-lettered",
            Badge::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<Badge> {
        Badge::ALL.into_iter().find(|b| b.as_str() == text)
    }

    /// The badge of a stored claim (its state and lease, or none) at `now`, given
    /// whether the delivery's letter is in the integration's DLQ. No claim is `queued`;
    /// a `retrying` claim is a run that failed transiently, its message due again at the
    /// claim's next attempt; an `in_progress` claim past its lease was a run that crashed
    /// or timed out, and its message comes back: `retrying` too.
    pub fn of_claim(claim: Option<(&str, Option<u64>)>, now: u64, in_dlq: bool) -> Badge {
        let state = claim.and_then(|(state, _)| state.parse::<ClaimState>().ok());
        let lease_over = claim.and_then(|(_, lease)| lease).is_some_and(|l| l <= now);
        match (state, in_dlq) {
            (Some(ClaimState::Completed), _) => Badge::Done,
            (Some(ClaimState::Retrying), _) => Badge::Retrying,
            (Some(ClaimState::InProgress), _) if lease_over => Badge::Retrying,
            (Some(ClaimState::InProgress), _) => Badge::InProgress,
            (Some(ClaimState::Failed) | None, true) => Badge::DeadLettered,
            (Some(ClaimState::Failed), false) => Badge::Failed,
            (None, false) => Badge::Queued,
        }
    }
}

/// One integration of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationState {
    pub integration: Integration,
    pub badge: Badge,
    /// Attempts so far, when the source knows them.
    pub attempts: Option<u32>,
    /// The classified failure reason the processor stored.
    pub reason: Option<String>,
    /// When the state was last written, epoch seconds.
    pub updated_at: Option<u64>,
    /// When a `retrying` delivery's message is due again, epoch seconds, if known.
    pub next_attempt_at: Option<u64>,
}

impl IntegrationState {
    /// Routed to `integration`, and nothing known of it yet.
    pub fn queued(integration: Integration) -> Self {
        IntegrationState {
            integration,
            badge: Badge::Queued,
            attempts: None,
            reason: None,
            updated_at: None,
            next_attempt_at: None,
        }
    }
}

/// One delivery as the deliveries page lists it (no caller data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub key: String,
    pub event: String,
    pub call_type: Option<String>,
    /// When the receiver recorded it, epoch seconds.
    pub received_at: u64,
    pub integrations: Vec<IntegrationState>,
}

impl DeliveryRow {
    /// A row from a stored delivery: its event and call type from the envelope (or the
    /// key), one state per routed integration.
    pub fn new(
        key: &str,
        envelope: Option<&Envelope>,
        received_at: u64,
        integrations: Vec<IntegrationState>,
    ) -> Self {
        DeliveryRow {
            key: key.to_owned(),
            event: envelope.map_or_else(
                || key.split('#').next().unwrap_or_default().to_owned(),
                |e| e.webhook.event.name().to_owned(),
            ),
            call_type: envelope.and_then(|e| e.webhook.data.call_type.clone()),
            received_at,
            integrations,
        }
    }
}

/// One delivery in full: its row, and the caller fields the detail page masks.
#[derive(Debug, Clone)]
pub struct Detail {
    pub row: DeliveryRow,
    pub caller: Caller,
    /// The envelope's own receipt time, RFC 3339.
    pub received_at: Option<String>,
}

/// The deliveries page's filters (query parameters; never caller data).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub event: Option<String>,
    pub call_type: Option<String>,
    pub status: Option<Badge>,
    /// `YYYY-MM-DD`, UTC.
    pub date: Option<String>,
}

impl Filter {
    pub fn matches(&self, row: &DeliveryRow) -> bool {
        self.event.as_ref().is_none_or(|e| *e == row.event)
            && self
                .call_type
                .as_ref()
                .is_none_or(|c| row.call_type.as_ref() == Some(c))
            && self
                .status
                .is_none_or(|s| row.integrations.iter().any(|i| i.badge == s))
            && self
                .date
                .as_ref()
                .is_none_or(|d| day_of(row.received_at) == *d)
    }
}

/// `YYYY-MM-DD` (UTC) of an epoch second.
pub fn day_of(epoch_seconds: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch_seconds);
    nphooks_core::rfc3339(at).chars().take(10).collect()
}

/// A page of deliveries, newest first, and the cursor of the next.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub rows: Vec<DeliveryRow>,
    pub next: Option<String>,
}

/// A letter in a DLQ.
#[derive(Debug, Clone)]
pub struct Letter {
    pub id: String,
    pub reason: String,
    pub delivery_key: String,
    /// When it was dead-lettered, epoch milliseconds.
    pub sent_at_ms: Option<u64>,
}

impl From<crate::ops::DeadLetter> for Letter {
    fn from(letter: crate::ops::DeadLetter) -> Self {
        Letter {
            id: letter.message_id,
            reason: letter.reason,
            delivery_key: letter.delivery_key,
            sent_at_ms: letter.sent_at_ms,
        }
    }
}

/// Health figures of one integration over one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub delivered: u64,
    /// `None` when the source does not record retries.
    pub retried: Option<u64>,
    pub dead_lettered: u64,
    /// Receipt → effect, seconds.
    pub p50: Option<u64>,
    pub p95: Option<u64>,
}

/// The health of one integration: the last hour and the last day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub integration: Integration,
    pub hour: Figures,
    pub day: Figures,
}

/// Health from delivery rows (each integration's `updated_at` is its effect time): the
/// figures of the last hour and day before `now`.
pub fn health_of(
    rows: &[DeliveryRow],
    retried: &BTreeMap<Integration, Vec<u64>>,
    now: u64,
) -> Vec<Health> {
    let figures = |integration: Integration, since: u64| {
        let mut latencies = Vec::new();
        let mut f = Figures {
            retried: retried
                .get(&integration)
                .map(|at| at.iter().filter(|t| **t >= since).count() as u64),
            ..Figures::default()
        };
        for row in rows {
            for state in row
                .integrations
                .iter()
                .filter(|s| s.integration == integration)
            {
                let Some(at) = state.updated_at.filter(|at| *at >= since) else {
                    continue;
                };
                match state.badge {
                    Badge::Done | Badge::Skipped => {
                        f.delivered += 1;
                        latencies.push(at.saturating_sub(row.received_at));
                    }
                    Badge::DeadLettered | Badge::Failed => f.dead_lettered += 1,
                    _ => {}
                }
            }
        }
        latencies.sort_unstable();
        let pick =
            |q: usize| (!latencies.is_empty()).then(|| latencies[(latencies.len() - 1) * q / 100]);
        f.p50 = pick(50);
        f.p95 = pick(95);
        f
    };
    Integration::ALL
        .into_iter()
        .map(|integration| Health {
            integration,
            hour: figures(integration, now.saturating_sub(3600)),
            day: figures(integration, now.saturating_sub(86_400)),
        })
        .collect()
}

/// The dashboard's port: read the state, and the two actions (which run the same code
/// as `nphooks replay` and `nphooks dlq redrive`).
pub trait DashboardSource: Send + Sync {
    /// A page of deliveries matching `filter`, newest first, from `cursor` on.
    fn deliveries<'a>(
        &'a self,
        filter: &'a Filter,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, anyhow::Result<Page>>;

    /// One delivery, if it is stored.
    fn delivery<'a>(&'a self, key: &'a str) -> BoxFuture<'a, anyhow::Result<Option<Detail>>>;

    /// Every integration's dead letters.
    fn dead_letters(&self) -> BoxFuture<'_, anyhow::Result<BTreeMap<Integration, Vec<Letter>>>>;

    /// Every integration's health figures.
    fn health(&self) -> BoxFuture<'_, anyhow::Result<Vec<Health>>>;

    /// Replays one integration of a delivery, or all it was routed to (completed ones
    /// are left alone); what each did.
    fn replay<'a>(
        &'a self,
        key: &'a str,
        only: Option<Integration>,
    ) -> BoxFuture<'a, anyhow::Result<Vec<(Integration, nphooks_processor::RecordOutcome)>>>;

    /// Moves letters of an integration's DLQ back to its queue; how many moved.
    fn redrive<'a>(
        &'a self,
        integration: Integration,
        letters: crate::ops::Letters<'a>,
    ) -> BoxFuture<'a, anyhow::Result<usize>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_claims_and_letters_then_each_badge_follows_the_claim_state_machine() {
        let now = 1_000;
        let cases = [
            (None, false, Badge::Queued),
            (None, true, Badge::DeadLettered),
            (
                Some(("in_progress", Some(now + 1))),
                false,
                Badge::InProgress,
            ),
            (Some(("in_progress", Some(now))), false, Badge::Retrying),
            (Some(("retrying", None)), false, Badge::Retrying),
            (Some(("completed", None)), true, Badge::Done),
            (Some(("failed", None)), true, Badge::DeadLettered),
            (Some(("failed", None)), false, Badge::Failed),
            (Some(("nonsense", None)), false, Badge::Queued),
        ];
        for (claim, in_dlq, badge) in cases {
            assert_eq!(
                Badge::of_claim(claim, now, in_dlq),
                badge,
                "{claim:?} {in_dlq}"
            );
        }
    }
}
