//! The new-integration checklist of ARCHITECTURE.md, kept honest: every `Integration`
//! has, in the template, a queue with a DLQ, an alarm on that DLQ, a processor function
//! fed by the queue with its own log group and secret, the receiver's queue URL and send
//! permission; in the repository, a crate under `functions/` and sample events. And the
//! template has no processor the code does not know.

use std::collections::BTreeSet;

use nphooks_core::routing::Integration;
use nphooks_deploy_checks::{Value, root, template};

/// `crm` → `Crm`: the prefix of the integration's logical resource names.
fn pascal(integration: Integration) -> String {
    let name = integration.as_str();
    name[..1].to_uppercase() + &name[1..]
}

fn yaml(value: &Value) -> String {
    serde_yaml::to_string(value).expect("YAML")
}

fn resource<'a>(template: &'a Value, name: &str, kind: &str) -> &'a Value {
    let resource = &template["Resources"][name];
    assert_eq!(
        resource["Type"].as_str(),
        Some(kind),
        "checklist: the template has no {kind} named {name}"
    );
    resource
}

#[test]
fn given_each_integration_then_the_template_has_all_its_parts() {
    let template = template();
    for integration in Integration::ALL {
        let name = pascal(integration);
        // GIVEN the integration's queue, its DLQ and the DLQ's alarm
        let queue = resource(&template, &format!("{name}Queue"), "AWS::SQS::Queue");
        let dlq = format!("{name}DeadLetterQueue");
        resource(&template, &dlq, "AWS::SQS::Queue");
        assert!(
            yaml(&queue["Properties"]["RedrivePolicy"]).contains(&format!("{dlq}.Arn")),
            "checklist: {name}Queue does not redrive to {dlq}"
        );
        let alarm = resource(
            &template,
            &format!("{name}DeadLetterAlarm"),
            "AWS::CloudWatch::Alarm",
        );
        assert!(
            yaml(alarm).contains(&format!("{dlq}.QueueName")),
            "checklist: {name}DeadLetterAlarm does not watch {dlq}"
        );
        // THEN a function built from the integration's binary reads that queue
        let function = resource(
            &template,
            &format!("{name}Function"),
            "AWS::Serverless::Function",
        );
        assert_eq!(
            function["Metadata"]["BuildProperties"]["Binary"].as_str(),
            Some(integration.as_str()),
            "checklist: {name}Function builds another binary"
        );
        let events = yaml(&function["Properties"]["Events"]);
        assert!(
            events.contains("Type: SQS") && events.contains(&format!("{name}Queue.Arn")),
            "checklist: {name}Function is not fed by {name}Queue"
        );
        let properties = yaml(&function["Properties"]);
        for part in [format!("{name}LogGroup"), format!("{name}Secret")] {
            assert!(
                properties.contains(&part),
                "checklist: {name}Function does not use {part}"
            );
        }
        // AND the receiver knows the queue and may send to it
        let receiver = &template["Resources"]["ReceiverFunction"]["Properties"];
        assert!(
            yaml(&receiver["Environment"]["Variables"][integration.queue_url_var()])
                .contains(&format!("{name}Queue")),
            "checklist: the receiver's {} is not {name}Queue",
            integration.queue_url_var()
        );
        assert!(
            yaml(&receiver["Policies"]).contains(&format!("{name}Queue.Arn")),
            "checklist: the receiver may not send to {name}Queue"
        );
        // AND the repository has its crate and sample events
        let crate_dir = root().join("functions").join(integration.as_str());
        assert!(
            crate_dir.join("Cargo.toml").is_file(),
            "checklist: no crate at {}",
            crate_dir.display()
        );
        let events_dir = root().join("events").join(integration.as_str());
        let samples = std::fs::read_dir(&events_dir)
            .map(|entries| entries.filter_map(Result::ok).count())
            .unwrap_or(0);
        assert!(
            samples > 0,
            "checklist: no sample event in {}",
            events_dir.display()
        );
    }
}

#[test]
fn given_the_template_then_every_processor_is_a_known_integration() {
    // GIVEN every function the template feeds from a queue
    let template = template();
    let fed_by_queue: BTreeSet<String> = template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .filter(|(_, r)| yaml(&r["Properties"]["Events"]).contains("Type: SQS"))
        .map(|(_, r)| {
            r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .expect("Binary")
                .to_owned()
        })
        .collect();
    // THEN they are exactly the integrations the code routes to
    let known: BTreeSet<String> = Integration::ALL
        .iter()
        .map(|i| i.as_str().to_owned())
        .collect();
    assert_eq!(fed_by_queue, known);
}
