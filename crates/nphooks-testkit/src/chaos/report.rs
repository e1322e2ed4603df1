//! The soak's ledger check and its one-line summary.
//!
//! For every webhook we answered 2xx (whether the sender heard it or not): each routed
//! integration acted on it, or dead-lettered it with a reason; otherwise it is **lost**.
//! No integration acted on a delivery whose route does not name it. An effect repeated
//! after its completion was recorded is **doubled** (see [`super::sink`]). Webhooks the
//! sender gave up on are counted with the cause of their last failure; any effect they
//! had anyway (a send that succeeded before another failed) is counted as **orphaned**.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;

use super::sender::NextPhone;
use super::sink::{EffectLog, Tallies};
use super::soak::SoakConfig;
use super::sqs::DeadLetter;

/// What the driver counted while running.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Which adapters ran: `memory` or `moto`.
    pub adapters: &'static str,
    pub requests: u64,
    pub invocations: u64,
    pub receiver_crashes: u64,
    pub processor_crashes: u64,
    pub virtual_time: Duration,
    pub wall_time: Duration,
}

/// A soak's figures, and what it found wrong (nothing, when it passes).
#[derive(Debug, Clone)]
pub struct SoakReport {
    pub seed: u64,
    pub deliveries: usize,
    pub fault_rate: f64,
    pub accepted: u64,
    pub faults: Vec<(&'static str, u64)>,
    pub counters: Counters,
    pub sender_retries: u64,
    pub sender_duplicates: u64,
    pub lost_answers: u64,
    pub tallies: Tallies,
    pub dead_letters: u64,
    pub dlq_reasons: BTreeMap<String, u64>,
    pub lost: u64,
    pub gave_up: BTreeMap<String, u64>,
    pub orphaned: u64,
    pub violations: Vec<String>,
}

/// The reason a dead letter carries, by class (`invalid_payload`, `retry budget spent`…).
fn reason_class(letter: &DeadLetter) -> String {
    if letter.redriven {
        return "redriven after 5 receives".to_owned();
    }
    let reason = letter
        .attributes
        .iter()
        .find(|(name, _)| name == "failure_reason")
        .map_or("(none)", |(_, value)| value.as_str());
    reason
        .split([':', '('])
        .next()
        .unwrap_or(reason)
        .trim()
        .to_owned()
}

impl SoakReport {
    /// Checks the ledger of a finished run (on any adapters): `faults` injected by class.
    pub fn check(
        config: &SoakConfig,
        sender: &NextPhone,
        log: &EffectLog,
        dead: &[(Integration, Vec<DeadLetter>)],
        faults: Vec<(&'static str, u64)>,
        counters: Counters,
    ) -> Self {
        let mut report = SoakReport {
            seed: config.seed,
            deliveries: config.deliveries,
            fault_rate: config.fault_rate,
            accepted: 0,
            faults,
            counters,
            sender_retries: sender.retries,
            sender_duplicates: sender.duplicates,
            lost_answers: sender.lost_answers,
            tallies: log.tallies(),
            dead_letters: 0,
            dlq_reasons: BTreeMap::new(),
            lost: 0,
            gave_up: BTreeMap::new(),
            orphaned: 0,
            violations: Vec::new(),
        };
        let mut dead_keys = HashSet::new();
        for (integration, letters) in dead {
            for letter in letters {
                report.dead_letters += 1;
                *report.dlq_reasons.entry(reason_class(letter)).or_default() += 1;
                match Envelope::decode(&letter.body) {
                    Ok(envelope) => {
                        dead_keys.insert((*integration, envelope.delivery_key.as_str().to_owned()));
                    }
                    Err(_) => report.violate(format!("{integration}: a dead letter lost its body")),
                }
            }
        }
        for sent in &sender.webhooks {
            report.accepted += u64::from(sent.accepted);
            if let Some(cause) = &sent.gave_up {
                *report.gave_up.entry(cause.clone()).or_default() += 1;
            }
            let mut orphaned = false;
            for integration in Integration::ALL {
                let acted = log.acted(integration, &sent.key);
                let routed = sent.route.contains(&integration);
                let dead = dead_keys.contains(&(integration, sent.key.clone()));
                if acted && !routed {
                    report.violate(format!(
                        "{integration} acted on {}, which is not routed to it",
                        sent.key
                    ));
                } else if routed && sent.accepted && !acted && !dead {
                    report.lost += 1;
                    report.violate(format!(
                        "lost: {} was answered 2xx, {integration} neither acted nor dead-lettered it",
                        sent.key
                    ));
                } else if acted && !sent.accepted {
                    // Only a webhook the sender gave up on is never answered 2xx.
                    if sent.gave_up.is_none() {
                        report.violate(format!(
                            "{integration} acted on {}, never accepted",
                            sent.key
                        ));
                    }
                    orphaned = true;
                }
            }
            report.orphaned += u64::from(orphaned);
        }
        if report.tallies.doubled > 0 {
            let doubled = report.tallies.doubled;
            report.violate(format!(
                "doubled: {doubled} effects repeated after their completion was recorded"
            ));
        }
        report
    }

    fn violate(&mut self, what: String) {
        if self.violations.len() < 20 {
            self.violations.push(what);
        } else if self.violations.len() == 20 {
            self.violations.push("…".to_owned());
        }
    }

    /// The one summary line.
    pub fn summary(&self) -> String {
        let join = |pairs: &mut dyn Iterator<Item = (String, u64)>| {
            pairs
                .map(|(name, n)| format!("{name}={n}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let faults: u64 = self.faults.iter().map(|(_, n)| n).sum();
        let c = &self.counters;
        let t = &self.tallies;
        let mut line = String::new();
        let _ = write!(
            line,
            "soak adapters={} seed={} deliveries={} fault_rate={} accepted={} requests={} invocations={} \
             faults={faults} [{}] crashes={} (receiver {}, processor {}) sender_retries={} \
             sender_duplicates={} lost_answers={} effects={} dlq={} [{}] gave_up={} [{}] \
             orphaned={} lost={} doubled={} ambiguous_resends={} absorbed_by_idempotency_key={} \
             virtual={:.1}h wall={:.1}s",
            c.adapters,
            self.seed,
            self.deliveries,
            self.fault_rate,
            self.accepted,
            c.requests,
            c.invocations,
            join(&mut self.faults.iter().map(|(k, n)| ((*k).to_owned(), *n))),
            c.receiver_crashes + c.processor_crashes,
            c.receiver_crashes,
            c.processor_crashes,
            self.sender_retries,
            self.sender_duplicates,
            self.lost_answers,
            t.effects,
            self.dead_letters,
            join(&mut self.dlq_reasons.iter().map(|(k, n)| (k.clone(), *n))),
            self.gave_up.values().sum::<u64>(),
            join(&mut self.gave_up.iter().map(|(k, n)| (k.clone(), *n))),
            self.orphaned,
            self.lost,
            t.doubled,
            t.ambiguous_resends,
            t.absorbed,
            c.virtual_time.as_secs_f64() / 3600.0,
            c.wall_time.as_secs_f64(),
        );
        line
    }
}

/// Why a soak failed; each names the seed that reproduces it.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error("soak seed {} found {} violation(s): {:?}\n{}", .0.seed, .0.violations.len(), .0.violations, .0.summary())]
    Violations(Box<SoakReport>),
    #[error("soak seed {seed}: the pipeline had not settled after {days} virtual days")]
    DidNotSettle { seed: u64, days: u64 },
    #[error("soak: could not start a tokio runtime: {0}")]
    Runtime(std::io::Error),
}
