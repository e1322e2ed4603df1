//! The chaos soak (issue 12) on the real adapters against moto: `DynamoLedger`,
//! `DynamoClaims` and `SqsQueue` behind the fault proxy's seeded AWS faults, with crash
//! points, sender retries, duplicates and lost answers; nothing accepted is lost, no
//! effect is doubled. `scripts/test.sh` runs it on its own (its own moto), so its summary
//! line is in the log; the main `cargo test` run skips it.

use nphooks_testkit::chaos::moto::AWS_FAULTS;
use nphooks_testkit::chaos::{SoakConfig, run_on_moto};

const DELIVERIES: u64 = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_2000_deliveries_on_moto_with_aws_faults_and_crashes_then_none_is_lost_or_doubled() {
    // GIVEN 2,000 webhooks, 5 % of AWS calls and sink calls failing, 5 % of invocations crashing
    let config = SoakConfig {
        deliveries: DELIVERIES as usize,
        fault_rate: 0.05,
        seed: 0x5eed_0012,
        crashes: true,
        broken: None,
    };
    // WHEN they run through the receiver and the five processors on moto
    let report = run_on_moto(config).await.unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{}", report.summary());
    // THEN nothing answered 2xx is lost and no effect doubled, under every fault class
    assert_eq!((report.lost, report.tallies.doubled), (0, 0));
    assert!(report.counters.receiver_crashes + report.counters.processor_crashes > 0);
    let injected = |class: &str| report.faults.iter().find(|(c, _)| *c == class).map(|f| f.1);
    for fault in AWS_FAULTS {
        assert!(injected(fault.name()) > Some(0), "{:?}", report.faults);
    }
    assert!(injected("sink_transient") > Some(0), "{:?}", report.faults);
    // AND the sender's retries get almost every webhook through (moto's speed no cause)
    assert!(
        report.accepted * 100 >= DELIVERIES * 98,
        "{}",
        report.summary()
    );
    assert!(report.tallies.effects > DELIVERIES, "{}", report.summary());
}
