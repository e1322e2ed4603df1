//! How a record that did not complete is settled: deferred (re-sent to its own queue with
//! a delay and its retry state), or dead-lettered (its DLQ, body intact, with a classified
//! reason and the attempt count). Only when the re-send itself fails is the record left
//! on the queue for SQS to redeliver. Its effect claim follows: `failed`, or `retrying`.

use std::time::SystemTime;

use aws_lambda_events::event::sqs::SqsMessage;
use nphooks_core::claims::{EffectClaim, EffectClaims, PendingRetry};
use nphooks_core::clock::parse_rfc3339;
use nphooks_core::envelope::{Envelope, QueueMessage};
use nphooks_core::epoch_seconds;
use nphooks_core::queue::Queue;

use crate::retry::{ATTEMPTS_ATTR, RetryState};
use crate::runtime::{ProcessorDeps, RecordOutcome};

/// Why a message was sent back to its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deferral {
    /// A re-sent message arrived before its not-before time (a wait longer than SQS's
    /// 15-minute delay takes several hops).
    NotDue,
    /// Too little of the invocation was left to start it.
    NotStarted,
    /// Waiting for a rate-limit slot or the destination's `Retry-After`: no attempt spent.
    RateLimited,
    /// Another run holds the claim: no attempt spent.
    ClaimBusy,
    /// Attempt `n` failed transiently; backing off.
    Backoff(u32),
}

impl Deferral {
    pub fn as_str(self) -> &'static str {
        match self {
            Deferral::NotDue => "not_due",
            Deferral::NotStarted => "not_started",
            Deferral::RateLimited => "rate_limited",
            Deferral::ClaimBusy => "claim_busy",
            Deferral::Backoff(_) => "backoff",
        }
    }

    /// The failed attempt this deferral follows, if it follows one.
    pub fn attempt(self) -> Option<u32> {
        match self {
            Deferral::Backoff(n) => Some(n),
            _ => None,
        }
    }
}

/// One record being settled, with the retry state it carries.
pub(crate) struct Settle<'a, C, Q, K, L> {
    deps: &'a ProcessorDeps<C, Q, K, L>,
    record: &'a SqsMessage,
    pub state: RetryState,
}

impl<'a, C, Q: Queue, K, L> Settle<'a, C, Q, K, L> {
    pub fn new(
        deps: &'a ProcessorDeps<C, Q, K, L>,
        record: &'a SqsMessage,
        state: RetryState,
    ) -> Self {
        Settle {
            deps,
            record,
            state,
        }
    }

    pub fn message_id(&self) -> &'a str {
        self.record.message_id.as_deref().unwrap_or_default()
    }

    fn body(&self) -> &'a str {
        self.record.body.as_deref().unwrap_or_default()
    }

    /// Re-sends the message to its own queue, due at `until`.
    pub async fn defer(mut self, why: Deferral, until: SystemTime) -> RecordOutcome {
        let now = self.deps.clock.now();
        self.state.not_before = Some(until).filter(|at| *at > now);
        let mut attributes = RetryState::carried(self.record);
        attributes.extend(self.state.attributes());
        let message = QueueMessage::resent(self.body(), attributes);
        let delay = until
            .duration_since(now)
            .unwrap_or_default()
            .min(self.deps.config.retry.max_queue_delay);
        let queue = &self.deps.config.source_queue_url;
        match self.deps.queue.send_delayed(queue, &message, delay).await {
            Ok(()) => RecordOutcome::Deferred { why, until },
            Err(error) => {
                RecordOutcome::Retry(format!("could not defer ({}): {error}", why.as_str()))
            }
        }
    }

    /// Counts a transient failure: backs off, or dead-letters once the budget is spent.
    pub async fn backoff(mut self, reason: &str, envelope: &Envelope) -> RecordOutcome {
        let now = self.deps.clock.now();
        let policy = self.deps.config.retry;
        self.state.attempts += 1;
        let first = *self.state.first_failed_at.get_or_insert(now);
        if policy.exhausted(first, now) {
            return self
                .dead_letter(&format!("retry budget spent: {reason}"))
                .await;
        }
        let seed = format!("{}#{}", self.deps.config.integration, envelope.delivery_key);
        let wait = policy.backoff(self.state.attempts, &seed);
        let attempt = self.state.attempts;
        self.defer(Deferral::Backoff(attempt), now + wait).await
    }

    /// Waits for the destination's rate limit without spending the budget, unless the
    /// message has outlived the replay window.
    pub async fn wait_for_rate_limit(
        self,
        until: SystemTime,
        error: &crate::SinkError,
        envelope: &Envelope,
    ) -> RecordOutcome {
        let age = parse_rfc3339(&envelope.received_at)
            .and_then(|at| self.deps.clock.now().duration_since(at).ok())
            .unwrap_or_default();
        if age >= self.deps.config.retry.max_message_age {
            return self.dead_letter(&format!("expired: {error}")).await;
        }
        self.defer(Deferral::RateLimited, until).await
    }

    /// Sends the message, body intact, to the DLQ with `reason` and the attempt count.
    pub async fn dead_letter(self, reason: &str) -> RecordOutcome {
        let integration = self.deps.config.integration.as_str();
        let message =
            QueueMessage::dead_letter(self.body(), integration, reason, self.message_id())
                .with_attribute(ATTEMPTS_ATTR, self.state.attempts.to_string());
        match self
            .deps
            .queue
            .send(&self.deps.config.dlq_url, &message)
            .await
        {
            Ok(()) => RecordOutcome::DeadLettered(reason.to_owned()),
            Err(error) => {
                RecordOutcome::Retry(format!("{reason}; and the DLQ send failed: {error}"))
            }
        }
    }
}

/// Settles the claim of a run whose sink failed, as its record was settled: `failed`
/// when dead-lettered, else `retrying` with when its message is due. The message was
/// re-sent first: a copy claimed meanwhile by another run is not this run's any more,
/// and the owner condition leaves it alone. A claim that cannot be written keeps its
/// lease, which runs out on its own: the retry waits for it.
pub(crate) async fn settle_claim<C: EffectClaims, Q, K, L>(
    deps: &ProcessorDeps<C, Q, K, L>,
    claim: &EffectClaim,
    outcome: &RecordOutcome,
    attempts: u32,
    reason: &str,
    now: SystemTime,
) {
    let at = epoch_seconds(now);
    let result = match outcome {
        RecordOutcome::DeadLettered(reason) => deps.claims.fail(claim, reason, at).await,
        other => {
            let next_attempt_at = match other {
                RecordOutcome::Deferred { until, .. } => Some(epoch_seconds(*until)),
                _ => None,
            };
            let retry = PendingRetry {
                attempts,
                next_attempt_at,
                reason,
            };
            deps.claims.release(claim, &retry, at).await
        }
    };
    if let Err(error) = result {
        tracing::warn!(%error, "could not settle the claim");
    }
}
