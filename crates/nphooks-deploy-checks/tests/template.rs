//! template.yaml cannot drift from the code: every environment variable a function gets
//! is a name its config reads, every name it requires is provided (by the environment or
//! the secret), every processor queue has a DLQ, enough visibility and partial batch
//! responses, every function has sample events, and no policy grants `*` unexplained.

use std::collections::BTreeSet;

use nphooks_core::config::Settings;
use nphooks_deploy_checks::{Evaluator, Value, binary, functions, root, template, template_text};
use nphooks_testkit::Moto;

#[path = "template/loaders.rs"]
mod loaders;

use loaders::*;

#[tokio::test]
async fn given_the_template_then_every_function_gets_exactly_the_config_its_code_reads() {
    let template = template();
    let moto = Moto::start("template").await;
    let secrets = aws_sdk_secretsmanager::Client::new(&moto.aws);
    // GIVEN one secret per function, as the stack creates them, with valid values
    let mut arns = std::collections::BTreeMap::new();
    let mut all_keys = BTreeSet::new();
    for (name, function) in functions(&template) {
        let logical = function_secret(&name, function);
        let keys = secret_keys(&template, &logical);
        let secret: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .map(|k| (k.clone(), secret_value(k).into()))
            .collect();
        let arn = secrets
            .create_secret()
            .name(format!("{logical}-template-{}", std::process::id()))
            .secret_string(serde_json::Value::Object(secret).to_string())
            .send()
            .await
            .expect("create secret")
            .arn
            .expect("arn");
        all_keys.extend(keys.iter().cloned());
        arns.insert(name, (arn, keys));
    }
    for name in SECRET_NAMES {
        assert!(
            all_keys.contains(*name),
            "no function's secret holds {name}"
        );
    }
    let mut read_by = std::collections::BTreeMap::<String, BTreeSet<String>>::new();

    let parameter_sets: [&[(&str, &str)]; 3] = [
        &[],
        &[
            ("EmailTransport", "smtp"),
            ("SmtpHost", "smtp.example.com"),
            ("EmailReplyTo", "sales@example.com"),
            (
                "Routes",
                r#"[{"name":"all","events":["call.ended"],"integrations":["crm","email","slack","notify","callback"]}]"#,
            ),
            ("CrmProvider", "hubspot"),
        ],
        &[
            ("CrmProvider", "salesforce"),
            ("SalesforceLoginUrl", "https://acme.my.salesforce.com"),
            ("SalesforceFieldMap", r#"{"region":"Region__c"}"#),
        ],
    ];
    let mut checked = BTreeSet::new();
    for parameters in parameter_sets {
        let evaluator = Evaluator::new(&template, parameters);
        for (name, function) in functions(&template) {
            let binary = binary(function);
            let mut env = evaluator.environment(function);
            for secret_name in SECRET_NAMES {
                assert!(
                    !env.contains_key(*secret_name),
                    "{name}: {secret_name} is a secret, not an environment value"
                );
            }
            assert!(
                env.contains_key("APP_SECRET_ARN"),
                "{name}: no APP_SECRET_ARN"
            );
            env.insert("APP_SECRET_ARN".into(), arns[&name].0.clone());

            // WHEN the function loads its configuration, reading its secret as itself
            let settings = nphooks_core::aws::with_app_secret(
                Settings::from_pairs(env.clone()),
                &moto.aws_for(&name),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            load(&binary, &settings).unwrap_or_else(|e| {
                panic!("{name} ({parameters:?}): a required name is missing: {e}")
            });
            let read = settings.names_read();
            read_by
                .entry(name.clone())
                .or_default()
                .extend(read.iter().cloned());
            let unread: Vec<_> = env.keys().filter(|k| !read.contains(*k)).collect();
            assert!(
                unread.is_empty(),
                "{name} ({parameters:?}) gets variables its code never reads: {unread:?}"
            );
            checked.insert(binary);
        }
    }
    // THEN each function's secret holds only keys its code reads (least secret)
    for (name, (_, keys)) in &arns {
        let unread: Vec<_> = keys
            .iter()
            .filter(|k| !read_by[name].contains(*k))
            .collect();
        assert!(
            unread.is_empty(),
            "{name}'s secret holds keys its code never reads: {unread:?}"
        );
    }
    assert_eq!(
        checked,
        ["callback", "crm", "email", "notify", "receiver", "slack"]
            .map(String::from)
            .into_iter()
            .collect(),
        "every function is checked"
    );
    for parameter in template["Parameters"]
        .as_mapping()
        .expect("Parameters")
        .keys()
    {
        let parameter = parameter.as_str().expect("name").to_ascii_lowercase();
        assert!(
            !["secret", "password", "token", "webhookurl", "apikey"]
                .iter()
                .any(|word| parameter.contains(word)),
            "parameter {parameter} looks like a secret: secrets go in the Secrets Manager secret"
        );
    }
}

#[test]
fn given_the_template_then_every_processor_queue_has_a_dlq_enough_visibility_and_partial_batch_responses()
 {
    let template = template();
    let resources = &template["Resources"];
    let mut processors = 0;
    for (name, function) in functions(&template) {
        let Some(events) = function["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values().filter(|e| e["Type"] == "SQS") {
            processors += 1;
            let properties = &event["Properties"];
            let Value::Tagged(queue_ref) = &properties["Queue"] else {
                panic!("{name}: Queue is not !GetAtt")
            };
            let queue_name = queue_ref
                .value
                .as_str()
                .expect("X.Arn")
                .trim_end_matches(".Arn");
            let queue = &resources[queue_name]["Properties"];
            let timeout = function["Properties"]["Timeout"].as_u64().expect("Timeout");
            let visibility = queue["VisibilityTimeout"]
                .as_u64()
                .expect("VisibilityTimeout");
            assert!(
                visibility >= 6 * timeout,
                "{name}: visibility {visibility} < 6 x timeout {timeout}"
            );
            assert_eq!(
                queue["RedrivePolicy"]["maxReceiveCount"].as_u64(),
                Some(5),
                "{name}"
            );
            let Value::Tagged(dlq_ref) = &queue["RedrivePolicy"]["deadLetterTargetArn"] else {
                panic!("{name}: no DLQ")
            };
            let dlq = &resources[dlq_ref
                .value
                .as_str()
                .expect("X.Arn")
                .trim_end_matches(".Arn")];
            assert_eq!(dlq["Type"], "AWS::SQS::Queue", "{name}");
            assert_eq!(
                dlq["Properties"]["MessageRetentionPeriod"].as_u64(),
                Some(1_209_600),
                "{name}: DLQ keeps 14 days"
            );
            let types: Vec<_> = properties["FunctionResponseTypes"]
                .as_sequence()
                .into_iter()
                .flatten()
                .collect();
            assert!(
                types.iter().any(|t| *t == "ReportBatchItemFailures"),
                "{name}: no ReportBatchItemFailures"
            );
            assert!(
                properties["ScalingConfig"]["MaximumConcurrency"]
                    .as_u64()
                    .is_some(),
                "{name}: concurrency unbounded"
            );
            assert!(
                properties["BatchSize"].as_u64().is_some(),
                "{name}: no batch size"
            );
        }
    }
    assert_eq!(processors, 5, "five processors");
    let receiver_timeout = resources["ReceiverFunction"]["Properties"]["Timeout"]
        .as_u64()
        .expect("Timeout");
    assert!(
        receiver_timeout < 5,
        "the receiver answers inside the sender's 5 s"
    );
    let table = &resources["IdempotencyTable"];
    assert_eq!(table["DeletionPolicy"], "Retain");
    assert_eq!(
        table["Properties"]["TimeToLiveSpecification"]["AttributeName"],
        nphooks_core::table::EXPIRES_AT
    );
    assert_eq!(
        table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
}

#[test]
fn given_the_template_then_every_function_has_sample_events() {
    for (name, function) in functions(&template()) {
        let dir = root().join("events").join(binary(function));
        let count = std::fs::read_dir(&dir)
            .unwrap_or_else(|_| panic!("{name}: no {}", dir.display()))
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .count();
        assert!(count > 0, "{name}: no sample event in {}", dir.display());
    }
}

#[test]
fn given_the_template_then_no_policy_grants_a_wildcard_without_a_comment_saying_why() {
    let text = template_text();
    let lines: Vec<&str> = text.lines().collect();
    let mut statements = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start() != "- Statement:" {
            continue;
        }
        statements += 1;
        let indent = line.len() - line.trim_start().len();
        let body: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .copied()
            .collect();
        // A `*` in a key condition (dynamodb:LeadingKeys) narrows; in an action or
        // resource it widens, and needs a comment above the statement (or its !If).
        if body
            .iter()
            .any(|l| l.contains('*') && !l.contains("LeadingKeys"))
        {
            let mut above = i - 1;
            while lines[above].trim_start().starts_with("- ") {
                above -= 1;
            }
            assert!(
                lines[above].trim_start().starts_with('#'),
                "the inline statement at line {} grants a wildcard with no comment",
                i + 1
            );
        }
    }
    assert!(statements > 0, "the template has inline statements");
    // Policy templates are scoped to one named resource each, never "*".
    for (name, function) in functions(&template()) {
        for policy in function["Properties"]["Policies"]
            .as_sequence()
            .expect("Policies")
        {
            if let Some(mapping) = policy.as_mapping() {
                for (kind, scope) in mapping {
                    if kind == "Statement" {
                        continue;
                    }
                    for value in scope.as_mapping().expect("scope").values() {
                        assert!(
                            matches!(value, Value::Tagged(_)),
                            "{name}: {kind:?} is not scoped to a template resource"
                        );
                    }
                }
            }
        }
    }
}
