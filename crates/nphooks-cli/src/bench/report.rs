//! The bench's one summary line, and its accounting: each routed integration acted on
//! each webhook exactly once, and nothing else acted.

use std::time::Duration;

use super::BenchArgs;
use super::effects::Effects;
use super::load::{Posted, Prepared};

/// What one bench run measured and counted.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    pub webhooks: usize,
    pub connections: usize,
    /// From the first POST to the last effect.
    pub wall: Duration,
    /// POST → last effect of its route, for each routed webhook whose effects all landed, sorted.
    pub latencies: Vec<Duration>,
    pub expected_effects: u64,
    pub effects: u64,
    /// (delivery, integration) pairs routed but never acted on.
    pub missing: u64,
    /// Extra actions on a routed pair, and any action on a pair not routed or not sent.
    pub doubled: u64,
    pub unexpected: u64,
    /// POSTs not answered as their route says (200 `accepted` when routed).
    pub refused: u64,
    pub first_refusal: Option<String>,
    /// Messages left on a queue or DLQ at the end.
    pub left_on_queues: usize,
    /// Records deferred, dead-lettered or left for a retry; queue errors.
    pub unfinished: u64,
    pub queue_errors: u64,
    pub effect_bytes: u64,
}

impl BenchReport {
    pub(super) fn new(
        args: &BenchArgs,
        prepared: &Prepared,
        posted: &Posted,
        effects: &Effects,
        (left_on_queues, unfinished, queue_errors): (usize, u64, u64),
    ) -> Self {
        let (mut missing, mut doubled, mut unexpected, mut expected) = (0, 0, 0, 0);
        let mut latencies = Vec::with_capacity(prepared.routes.len());
        let mut first_post = Duration::MAX;
        let mut last_effect = Duration::ZERO;
        for (i, routes) in prepared.routes.iter().enumerate() {
            let counts = effects.counts(i);
            let mut complete = true;
            for (&routed, &count) in routes.iter().zip(&counts) {
                let count = u64::from(count);
                match routed {
                    true if count == 0 => (missing, complete) = (missing + 1, false),
                    true => doubled += count - 1,
                    false => unexpected += count,
                }
                expected += u64::from(routed);
            }
            first_post = first_post.min(posted.sent_at(i));
            last_effect = last_effect.max(effects.last(i));
            if complete && routes.iter().any(|r| *r) {
                latencies.push(effects.last(i).saturating_sub(posted.sent_at(i)));
            }
        }
        latencies.sort_unstable();
        BenchReport {
            webhooks: args.webhooks,
            connections: args.connections,
            wall: last_effect.saturating_sub(first_post),
            latencies,
            expected_effects: expected,
            effects: effects.total(),
            missing,
            doubled,
            unexpected: unexpected + effects.unknown(),
            refused: posted.refused.load(std::sync::atomic::Ordering::Relaxed),
            first_refusal: posted
                .first_problem
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            left_on_queues,
            unfinished,
            queue_errors,
            effect_bytes: effects.bytes(),
        }
    }

    /// Every routed effect exactly once, nothing else, every POST answered as routed.
    pub fn is_exact(&self) -> bool {
        self.missing == 0
            && self.doubled == 0
            && self.unexpected == 0
            && self.refused == 0
            && self.left_on_queues == 0
            && self.effects == self.expected_effects
    }

    /// Webhooks per second, first POST to last effect.
    pub fn throughput(&self) -> f64 {
        self.webhooks as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The `p`-th percentile (0–100) of the latencies.
    pub fn percentile(&self, p: f64) -> Duration {
        let Some(last) = self.latencies.len().checked_sub(1) else {
            return Duration::ZERO;
        };
        let rank = ((p / 100.0) * last as f64).round() as usize;
        self.latencies[rank.min(last)]
    }

    pub fn summary(&self) -> String {
        let ms = |d: Duration| format!("{:.2}ms", d.as_secs_f64() * 1000.0);
        format!(
            "bench webhooks={} connections={} wall={:.3}s throughput={:.0}/s \
             post→last-effect p50={} p99={} max={} effects={}/{} missing={} doubled={} \
             unexpected={} refused={} unfinished={} effect_bytes={}",
            self.webhooks,
            self.connections,
            self.wall.as_secs_f64(),
            self.throughput(),
            ms(self.percentile(50.0)),
            ms(self.percentile(99.0)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.effects,
            self.expected_effects,
            self.missing,
            self.doubled,
            self.unexpected,
            self.refused,
            self.unfinished,
            self.effect_bytes,
        )
    }

    /// What was wrong, when [`BenchReport::is_exact`] is false.
    pub fn violations(&self) -> String {
        let mut problems = Vec::new();
        let mut count = |n: u64, what: &str| {
            if n > 0 {
                problems.push(format!("{n} {what}"));
            }
        };
        count(self.missing, "effects missing");
        count(self.doubled, "effects doubled");
        count(self.unexpected, "effects not routed");
        count(self.refused, "webhooks not accepted as routed");
        count(self.left_on_queues as u64, "messages left on the queues");
        if let Some(first) = &self.first_refusal {
            problems.push(format!("first refusal: {first}"));
        }
        problems.join("; ")
    }
}
