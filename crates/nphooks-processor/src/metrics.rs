//! The processors' health metrics: one CloudWatch EMF line per batch (namespace
//! `nphooks`, dimension `Integration`) with how many records were delivered, retried,
//! dead-lettered or already done, and each delivery's [`EFFECT_LATENCY`] as a sample.
//! One line per batch rather than per record, and only the counts that are not zero: a
//! batch of 10 delivered records costs about 35 log bytes a record, a batch of one about
//! 240 (a line per record would be about 240 each). No caller data and no free text:
//! counts and numbers only.

use std::time::{Duration, SystemTime};

use nphooks_core::metrics::{Metric, Unit};

use crate::runtime::{Delivered, RecordOutcome};
use crate::settle::Deferral;

/// The dimension every processor metric carries: the integration's name.
pub const INTEGRATION_DIMENSION: &str = "Integration";
/// Records whose effect is done (sent, or completed with nothing to do).
pub const DELIVERED: &str = "Delivered";
/// Records that failed transiently (or could not be settled) and will be tried again.
pub const RETRIED: &str = "Retried";
/// Records sent to the DLQ: a permanent failure, or the retry budget spent.
pub const DEAD_LETTERED: &str = "DeadLettered";
/// Records whose effect an earlier delivery had already completed.
pub const ALREADY_DONE: &str = "AlreadyDone";
/// Milliseconds from the receiver's receipt (`received_at`) to the effect, per send.
pub const EFFECT_LATENCY: &str = "EffectLatency";
/// The counts, in the order of each line.
pub const COUNTS: [&str; 4] = [DELIVERED, RETRIED, DEAD_LETTERED, ALREADY_DONE];
/// CloudWatch reads at most this many values of one metric from one line.
const MAX_SAMPLES: usize = 100;

/// What happened on the way to a record's outcome that the outcome does not say.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Trace {
    /// When the sink acted.
    pub effect_at: Option<SystemTime>,
    /// The sink failed transiently (a 429 waits like a pacing deferral, but is a retry).
    pub sink_failed: bool,
}

/// How one record counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tally {
    /// Done; with the time from receipt to the effect when the sink sent something.
    Delivered(Option<Duration>),
    Retried,
    DeadLettered,
    AlreadyDone,
    /// Deferred without a failure (not yet due, paced, claim busy): not counted.
    Waiting,
}

impl Tally {
    pub fn of(outcome: &RecordOutcome, trace: Trace, received_at: Option<SystemTime>) -> Self {
        match outcome {
            RecordOutcome::Done(Delivered::Sent(_)) => {
                let latency = trace
                    .effect_at
                    .zip(received_at)
                    .and_then(|(effect, received)| effect.duration_since(received).ok());
                Tally::Delivered(latency)
            }
            RecordOutcome::Done(Delivered::Skipped(_)) => Tally::Delivered(None),
            RecordOutcome::AlreadyDone => Tally::AlreadyDone,
            RecordOutcome::DeadLettered(_) => Tally::DeadLettered,
            RecordOutcome::Retry(_) => Tally::Retried,
            RecordOutcome::Deferred {
                why: Deferral::Backoff(_),
                ..
            } => Tally::Retried,
            RecordOutcome::Deferred { .. } if trace.sink_failed => Tally::Retried,
            RecordOutcome::Deferred { .. } => Tally::Waiting,
        }
    }
}

/// Emits the batch's line (none if nothing counts, more than one only past 100 latency
/// samples), stamped `at`.
pub(crate) fn emit_batch(integration: &str, tallies: &[Tally], at: SystemTime) {
    for metrics in batch_metrics(tallies) {
        nphooks_core::metrics::emit(INTEGRATION_DIMENSION, integration, &metrics, at);
    }
}

/// The metrics of each line: the counts that are not zero, then the latency samples.
fn batch_metrics(tallies: &[Tally]) -> Vec<Vec<Metric<'static>>> {
    let count = |wanted: fn(&Tally) -> bool| tallies.iter().filter(|t| wanted(t)).count();
    let counts = [
        count(|t| matches!(t, Tally::Delivered(_))),
        count(|t| *t == Tally::Retried),
        count(|t| *t == Tally::DeadLettered),
        count(|t| *t == Tally::AlreadyDone),
    ];
    let mut first: Vec<Metric<'static>> = COUNTS
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| Metric {
            name,
            unit: Unit::Count,
            values: vec![n as u64],
        })
        .collect();
    let samples: Vec<u64> = tallies
        .iter()
        .filter_map(|t| match t {
            Tally::Delivered(Some(latency)) => {
                Some(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX))
            }
            _ => None,
        })
        .collect();
    let mut chunks = samples.chunks(MAX_SAMPLES).map(|chunk| Metric {
        name: EFFECT_LATENCY,
        unit: Unit::Milliseconds,
        values: chunk.to_vec(),
    });
    first.extend(chunks.next());
    std::iter::once(first)
        .filter(|metrics| !metrics.is_empty())
        .chain(chunks.map(|latency| vec![latency]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(ms: u64) -> Tally {
        Tally::Delivered(Some(Duration::from_millis(ms)))
    }

    #[test]
    fn given_a_mixed_batch_then_one_line_counts_each_outcome_seen_and_every_latency() {
        let tallies = [millis(120), Tally::Retried, Tally::Waiting, millis(80)];
        let lines = batch_metrics(&tallies);
        assert_eq!(lines.len(), 1);
        let values: Vec<(&str, Vec<u64>)> = lines[0]
            .iter()
            .map(|m| (m.name, m.values.clone()))
            .collect();
        let expected = [
            (DELIVERED, vec![2]),
            (RETRIED, vec![1]),
            (EFFECT_LATENCY, vec![120, 80]),
        ];
        assert_eq!(values, expected);
        assert!(
            batch_metrics(&[Tally::Waiting]).is_empty(),
            "nothing to count"
        );
    }

    #[test]
    fn given_more_than_100_latencies_then_the_rest_go_on_further_lines() {
        let tallies = vec![millis(5); 250];
        let lines = batch_metrics(&tallies);
        let sizes: Vec<Vec<usize>> = lines
            .iter()
            .map(|line| line.iter().map(|m| m.values.len()).collect())
            .collect();
        assert_eq!(sizes, [vec![1, 100], vec![100], vec![50]]);
        assert_eq!(lines[0][0].values, [250]);
    }

    #[test]
    fn given_a_429_wait_then_it_counts_as_retried_but_pacing_does_not() {
        let waiting = RecordOutcome::Deferred {
            why: Deferral::RateLimited,
            until: SystemTime::UNIX_EPOCH,
        };
        let failed = Trace {
            sink_failed: true,
            ..Trace::default()
        };
        assert_eq!(Tally::of(&waiting, failed, None), Tally::Retried);
        assert_eq!(Tally::of(&waiting, Trace::default(), None), Tally::Waiting);
    }
}
