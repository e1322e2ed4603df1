//! `nphooks bill`'s count against moto: the AWS requests of a routed demo delivery,
//! counted at the endpoint, so that a call added to the happy path fails here; and the
//! bytes each function logs, EMF lines included.

use std::collections::BTreeMap;

use nphooks_cli::bill::report::render;
use nphooks_cli::bill::{measure, requests};

fn op(service: &str, operation: &str) -> (String, String) {
    (service.to_owned(), operation.to_owned())
}

const DDB: &str = "DynamoDB_20120810";
const SQS: &str = "AmazonSQS";

#[tokio::test]
async fn given_ten_demo_deliveries_then_each_costs_one_write_four_sends_and_two_writes_a_processor()
{
    // GIVEN / WHEN ten demo deliveries through the receiver and the four processors they route to
    let run = measure(10, None).await.expect("the run");
    // THEN the receiver made exactly one DynamoDB write and four sends per delivery
    let receiver = BTreeMap::from([(op(DDB, "PutItem"), 10), (op(SQS, "SendMessage"), 40)]);
    assert_eq!(requests(&run.receiver.usage), receiver);
    // AND each processor a claim and a complete per delivery, one receive and one delete
    // per full batch; Slack's rate limit is held in memory, no slot write
    for (integration, processor) in &run.processors {
        let expected = BTreeMap::from([
            (op(DDB, "PutItem"), 10),
            (op(DDB, "UpdateItem"), 10),
            (op(SQS, "ReceiveMessage"), 1),
            (op(SQS, "DeleteMessageBatch"), 1),
        ]);
        assert_eq!(requests(&processor.usage), expected, "{integration}");
    }
    // AND the demo's record (deflated envelope) fits one write unit: 9 a delivery
    let units: u64 = std::iter::once(&run.receiver)
        .chain(run.processors.values())
        .flat_map(|f| f.usage.values())
        .map(|u| u.write_units)
        .sum();
    assert_eq!(units, 10 * 9);
    // AND every byte each function wrote is counted: its log lines, and its EMF lines
    // (the receiver's one a request, each processor's one a batch)
    let functions = std::iter::once(("receiver".to_owned(), &run.receiver, 10))
        .chain(run.processors.iter().map(|(i, p)| (i.to_string(), p, 1)));
    for (name, function, emf_lines) in functions {
        let logged = function.logged;
        assert!(logged.tracing_bytes > 0, "{name}: {logged:?}");
        assert_eq!(logged.metric_lines, emf_lines, "{name}: {logged:?}");
        assert!(logged.metric_bytes > 100 * emf_lines, "{name}: {logged:?}");
        assert_eq!(logged.bytes(), logged.tracing_bytes + logged.metric_bytes);
    }
    // AND the bill prices them all
    let all: u64 = std::iter::once(&run.receiver)
        .chain(run.processors.values())
        .map(|f| f.logged.bytes())
        .sum();
    let report = render(&run, 1_000_000);
    let row = format!("| **all** | | | | **{:.1}** |", all as f64 / 10.0);
    assert!(report.contains(&row), "{row} in {report}");
}
