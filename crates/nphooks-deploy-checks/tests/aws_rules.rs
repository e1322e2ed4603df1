//! What moto does not enforce, checked on template.yaml itself: alarms that can reach a
//! person (the topic's key lets CloudWatch publish; every DLQ re-notifies), and a deploy a
//! stranger completes (required parameters refuse a blank answer, dead letters and
//! backups kept as documented, API access logs, an optional custom domain).

use nphooks_deploy_checks::{Value, template};

fn tag<'a>(value: &'a Value, expected: &str) -> &'a Value {
    let Value::Tagged(tagged) = value else {
        panic!("not {expected}: {value:?}")
    };
    assert_eq!(tagged.tag.to_string(), expected, "{value:?}");
    &tagged.value
}

fn of_type<'a>(template: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(name, r)| (name.as_str().expect("name").to_owned(), r))
        .collect()
}

fn texts(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Sequence(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether an alarm's metric is the depth of queue `dlq`.
fn watches(metric: &Value, dlq: &str) -> bool {
    let dimension = &metric["MetricStat"]["Metric"]["Dimensions"][0]["Value"];
    let expected = format!("{dlq}.QueueName");
    matches!(dimension, Value::Tagged(t) if t.value.as_str() == Some(expected.as_str()))
}

#[test]
fn given_the_alarm_topic_then_it_is_encrypted_with_a_rotated_key_cloudwatch_may_use() {
    let template = template();
    // GIVEN the topic every alarm notifies
    let topic = &template["Resources"]["AlarmTopic"]["Properties"];
    // THEN its key is a customer-managed key of this stack, not alias/aws/sns (whose key
    // policy cannot let CloudWatch encrypt, so every alarm action would fail)
    let key_id = &topic["KmsMasterKeyId"];
    assert!(
        !key_id.as_str().is_some_and(|k| k.contains("alias/aws/")),
        "the alarm topic uses an AWS-managed key: CloudWatch cannot publish to it"
    );
    let key_name = tag(key_id, "!Ref").as_str().expect("key name");
    let key = &template["Resources"][key_name];
    assert_eq!(key["Type"], "AWS::KMS::Key", "{key_name}");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true, "key rotation");
    let statements = key["Properties"]["KeyPolicy"]["Statement"]
        .as_sequence()
        .expect("key policy statements");
    let cloudwatch = statements
        .iter()
        .find(|s| {
            s["Effect"] == "Allow"
                && texts(&s["Principal"]["Service"]).contains(&"cloudwatch.amazonaws.com")
        })
        .expect("a key policy statement for cloudwatch.amazonaws.com");
    let actions = texts(&cloudwatch["Action"]);
    for needed in ["kms:GenerateDataKey*", "kms:Decrypt"] {
        assert!(actions.contains(&needed), "CloudWatch lacks {needed}");
    }
}

#[test]
fn given_every_dead_letter_queue_then_an_alarm_notifies_again_at_each_new_letter() {
    let template = template();
    let alarms = of_type(&template, "AWS::CloudWatch::Alarm");
    let queues = of_type(&template, "AWS::SQS::Queue");
    let dlqs: Vec<String> = queues
        .iter()
        .filter_map(|(_, q)| {
            let target = &q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"];
            (!target.is_null()).then(|| tag(target, "!GetAtt").as_str().expect("X.Arn").into())
        })
        .map(|arn: String| arn.trim_end_matches(".Arn").to_owned())
        .collect();
    assert_eq!(dlqs.len(), 5, "five processors, five DLQs");
    for dlq in dlqs {
        // GIVEN the alarm that watches this DLQ's depth
        let (name, alarm) = alarms
            .iter()
            .find(|(_, a)| {
                a["Properties"]["Metrics"]
                    .as_sequence()
                    .is_some_and(|ms| ms.iter().any(|m| watches(m, &dlq)))
            })
            .unwrap_or_else(|| panic!("{dlq}: no alarm on its depth"));
        let properties = &alarm["Properties"];
        // THEN it alarms on the increase (each new letter), treats no data as no
        // increase (so it returns to OK and can fire again), and notifies the topic
        let expression = properties["Metrics"]
            .as_sequence()
            .expect("metrics")
            .iter()
            .find(|m| m["ReturnData"] == true)
            .and_then(|m| m["Expression"].as_str())
            .unwrap_or_else(|| panic!("{name}: no returned expression"));
        assert!(expression.starts_with("DIFF("), "{name}: {expression}");
        assert_eq!(properties["ComparisonOperator"], "GreaterThanThreshold");
        assert_eq!(properties["Threshold"].as_u64(), Some(0), "{name}");
        assert_eq!(properties["TreatMissingData"], "notBreaching", "{name}");
        let action = &properties["AlarmActions"][0];
        assert_eq!(tag(action, "!Ref").as_str(), Some("AlarmTopic"), "{name}");
    }
}

#[test]
fn given_the_receiver_metrics_then_401_bursts_and_dedup_outages_alarm() {
    let template = template();
    let alarms = of_type(&template, "AWS::CloudWatch::Alarm");
    for metric in ["Unauthorized", "DedupUnavailable"] {
        let (name, alarm) = alarms
            .iter()
            .find(|(_, a)| a["Properties"]["MetricName"] == metric)
            .unwrap_or_else(|| panic!("no alarm on {metric}"));
        let properties = &alarm["Properties"];
        assert_eq!(properties["Namespace"], "nphooks", "{name}");
        assert_eq!(properties["Dimensions"][0]["Name"], "Function", "{name}");
        assert_eq!(properties["Dimensions"][0]["Value"], "receiver", "{name}");
        assert!(!properties["TreatMissingData"].is_null(), "{name}");
        let action = &properties["AlarmActions"][0];
        assert_eq!(tag(action, "!Ref").as_str(), Some("AlarmTopic"), "{name}");
    }
}

#[test]
fn given_a_guided_deploy_then_required_parameters_have_no_default_and_say_what_is_wanted() {
    let template = template();
    for name in ["NotifyUrl", "EmailFrom"] {
        let parameter = &template["Parameters"][name];
        assert!(
            parameter["Default"].is_null(),
            "{name}: a default deploys a stack that cannot work"
        );
        assert!(
            parameter["AllowedPattern"].as_str().is_some(),
            "{name}: a blank answer must fail"
        );
        let explanation = parameter["ConstraintDescription"].as_str().unwrap_or("");
        assert!(explanation.len() > 20, "{name}: say what is wanted");
    }
    for (name, parameter) in template["Parameters"].as_mapping().expect("Parameters") {
        let default = parameter["Default"].as_str().unwrap_or("");
        assert!(!default.contains("example."), "{name:?}: example default");
    }
}

#[test]
fn given_the_stack_then_dead_letters_backups_access_logs_and_domain_are_as_documented() {
    let template = template();
    let resources = &template["Resources"];
    for (name, queue) in of_type(&template, "AWS::SQS::Queue") {
        // SSE-SQS, which checkov's CKV_AWS_27 does not recognise (.checkov.yaml)
        assert_eq!(
            queue["Properties"]["SqsManagedSseEnabled"], true,
            "{name}: encrypted"
        );
        if name.contains("DeadLetter") {
            assert_eq!(
                queue["DeletionPolicy"], "Retain",
                "{name}: kept on sam delete"
            );
        }
    }
    let recovery = &resources["IdempotencyTable"]["Properties"]["PointInTimeRecoverySpecification"];
    let days = recovery["RecoveryPeriodInDays"]
        .as_u64()
        .expect("a set period");
    assert!(
        (1..=7).contains(&days),
        "backups of caller data kept {days} days"
    );
    let api = &resources["WebhookApi"]["Properties"];
    let log_group = tag(&api["AccessLogSettings"]["DestinationArn"], "!GetAtt");
    let log_group = log_group.as_str().expect("X.Arn").trim_end_matches(".Arn");
    assert_eq!(resources[log_group]["Type"], "AWS::Logs::LogGroup");
    let format = api["AccessLogSettings"]["Format"].as_str().expect("format");
    assert!(
        !format.contains("$request.body"),
        "access logs never carry the body"
    );
    for name in ["WebhookDomain", "WebhookDomainMapping"] {
        assert_eq!(resources[name]["Condition"], "HasDomain", "{name}");
    }
}
