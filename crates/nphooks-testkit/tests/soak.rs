//! The chaos soak (issue 12) on the in-memory adapters: nothing accepted is lost, no
//! effect is doubled, under faults at every port, crashes, sender retries, duplicates
//! and lost answers; and the soak fails when a guard is removed.

use nphooks_testkit::chaos::{BrokenGuard, SoakConfig, SoakError, run_blocking};

fn config(deliveries: usize, seed: u64) -> SoakConfig {
    SoakConfig {
        deliveries,
        fault_rate: 0.05,
        seed,
        crashes: true,
        broken: None,
    }
}

#[test]
fn given_100k_deliveries_at_5_percent_faults_and_crashes_then_none_is_lost_or_doubled() {
    let report = run_blocking(config(100_000, 0x5eed_2026)).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{}", report.summary());
    assert_eq!((report.lost, report.tallies.doubled), (0, 0));
    assert!(report.counters.receiver_crashes + report.counters.processor_crashes > 100);
    assert!(
        report.faults.iter().all(|(_, n)| *n > 0),
        "{:?}",
        report.faults
    );
    assert!(report.dead_letters > 0 && report.tallies.effects > 100_000);
    // Its wall time is a figure (`wall=` in the summary line above), not an assertion.
}

#[test]
fn given_a_fixed_seed_then_a_short_soak_repeats_its_figures() {
    let first = run_blocking(config(2_000, 42)).unwrap_or_else(|e| panic!("{e}"));
    let again = run_blocking(config(2_000, 42)).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{}", first.summary());
    assert_eq!(first.faults, again.faults);
    assert_eq!(first.tallies, again.tallies);
    assert_eq!(first.counters.virtual_time, again.counters.virtual_time);
    assert_eq!((first.lost, first.tallies.doubled), (0, 0));
}

fn broken(guard: BrokenGuard) -> String {
    let run = SoakConfig {
        broken: Some(guard),
        ..config(3_000, 7)
    };
    match run_blocking(run) {
        Err(SoakError::Violations(report)) => report.summary(),
        other => panic!("the soak did not catch {guard:?}: {other:?}"),
    }
}

#[test]
fn given_claims_that_reclaim_a_completed_effect_then_the_soak_reports_doubles() {
    let summary = broken(BrokenGuard::ClaimCompleted);
    eprintln!("{summary}");
    assert!(!summary.contains(" doubled=0 "), "{summary}");
}

#[test]
fn given_a_receiver_that_answers_before_every_send_succeeded_then_the_soak_reports_loss() {
    let summary = broken(BrokenGuard::AnswerBeforeSent);
    eprintln!("{summary}");
    assert!(!summary.contains(" lost=0 "), "{summary}");
}
