//! The CloudWatch dashboard in `template.yaml` (`DeliveryDashboard`) shows every
//! integration's health and only metrics the code emits: the names come from the code's
//! constants, the queues and functions from the template's own wiring.

use std::collections::BTreeSet;

use nphooks_core::config::{ReceiverConfig, Settings};
use nphooks_core::ledger::MemoryLedger;
use nphooks_core::metrics::receiver as receiver_metrics;
use nphooks_core::metrics::{Capture, FUNCTION_DIMENSION, NAMESPACE};
use nphooks_core::queue::MemoryQueue;
use nphooks_core::routing::Integration;
use nphooks_deploy_checks::{Value, binary, functions, root, template};
use nphooks_processor::metrics::{COUNTS, EFFECT_LATENCY, INTEGRATION_DIMENSION};

/// One metric of a widget: `[namespace, name, dimension, value, …]` and the options' stat.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Shown {
    fields: Vec<String>,
    stat: String,
}

impl Shown {
    fn is(&self, namespace: &str, name: &str, dimension: &str, value: &str) -> bool {
        self.fields == [namespace, name, dimension, value]
    }
}

/// The text under the dashboard body's `!Sub`.
fn body(template: &Value) -> String {
    let properties = &template["Resources"]["DeliveryDashboard"]["Properties"];
    let Value::Tagged(body) = &properties["DashboardBody"] else {
        panic!("DashboardBody is not !Sub")
    };
    assert_eq!(body.tag.to_string(), "!Sub");
    body.value.as_str().expect("!Sub text").to_owned()
}

/// Every metric of every widget, its stat from its options or else the widget's.
fn shown(body: &str) -> Vec<Shown> {
    let body: serde_json::Value = serde_json::from_str(body).expect("the body is JSON");
    let mut all = Vec::new();
    for widget in body["widgets"].as_array().expect("widgets") {
        let properties = &widget["properties"];
        for metric in properties["metrics"].as_array().into_iter().flatten() {
            let parts = metric.as_array().expect("a metric is an array");
            let fields: Vec<String> = parts
                .iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect();
            assert!(
                !fields.iter().any(|f| f == "." || f == "..."),
                "spelled out: {metric}"
            );
            let options = parts.iter().find(|p| p.is_object());
            let stat = options.and_then(|o| o["stat"].as_str());
            let stat = stat.or(properties["stat"].as_str()).expect("a stat");
            all.push(Shown {
                fields,
                stat: stat.to_owned(),
            });
        }
    }
    all
}

/// The logical names of `integration`'s function, queue and DLQ, read from the wiring.
fn wiring(template: &Value, integration: Integration) -> [String; 3] {
    let (function, spec) = functions(template)
        .into_iter()
        .find(|(_, f)| binary(f) == integration.as_str())
        .unwrap_or_else(|| panic!("no function for {integration}"));
    let events = spec["Properties"]["Events"].as_mapping().expect("Events");
    let event = events
        .values()
        .find(|e| e["Type"] == "SQS")
        .expect("an SQS event");
    let queue = target(&event["Properties"]["Queue"]);
    let redrive = &template["Resources"][queue.as_str()]["Properties"]["RedrivePolicy"];
    let dlq = target(&redrive["deadLetterTargetArn"]);
    [function, queue, dlq]
}

/// `X` of a `!GetAtt X.Arn`.
fn target(value: &Value) -> String {
    let Value::Tagged(get_att) = value else {
        panic!("not !GetAtt: {value:?}")
    };
    let text = get_att.value.as_str().expect("X.Arn");
    text.trim_end_matches(".Arn").to_owned()
}

#[test]
fn given_the_dashboard_then_every_integration_shows_each_health_figure() {
    let template = template();
    let shown = shown(&body(&template));
    let has = |ns: &str, name: &str, dim: &str, value: &str| {
        shown.iter().any(|s| s.is(ns, name, dim, value))
    };
    for integration in Integration::ALL {
        let name = integration.as_str();
        for metric in COUNTS {
            assert!(
                has(NAMESPACE, metric, INTEGRATION_DIMENSION, name),
                "{name}: {metric}"
            );
        }
        let latency: BTreeSet<&str> = shown
            .iter()
            .filter(|s| s.is(NAMESPACE, EFFECT_LATENCY, INTEGRATION_DIMENSION, name))
            .map(|s| s.stat.as_str())
            .collect();
        assert_eq!(latency, BTreeSet::from(["p50", "p95"]), "{name}");
        let [function, queue, dlq] = wiring(&template, integration);
        let (dlq_depth, queue_age) = (
            format!("${{{dlq}.QueueName}}"),
            format!("${{{queue}.QueueName}}"),
        );
        let function = format!("${{{function}}}");
        let visible = "ApproximateNumberOfMessagesVisible";
        assert!(
            has("AWS/SQS", visible, "QueueName", &dlq_depth),
            "{name}: DLQ depth"
        );
        let oldest = "ApproximateAgeOfOldestMessage";
        assert!(
            has("AWS/SQS", oldest, "QueueName", &queue_age),
            "{name}: queue age"
        );
        for metric in ["Errors", "Throttles"] {
            assert!(
                has("AWS/Lambda", metric, "FunctionName", &function),
                "{name}: {metric}"
            );
        }
    }
    for metric in receiver_metrics::OUTCOMES {
        assert!(
            has(NAMESPACE, metric, FUNCTION_DIMENSION, "receiver"),
            "{metric}"
        );
    }
}

#[test]
fn given_the_dashboard_then_each_of_its_nphooks_metrics_is_one_the_code_emits() {
    let template = template();
    let emitted: BTreeSet<&str> = COUNTS
        .into_iter()
        .chain([EFFECT_LATENCY])
        .chain(receiver_metrics::OUTCOMES)
        .collect();
    let ours: Vec<Shown> = shown(&body(&template))
        .into_iter()
        .filter(|s| s.fields[0] == NAMESPACE)
        .collect();
    assert!(!ours.is_empty());
    for metric in ours {
        assert!(emitted.contains(metric.fields[1].as_str()), "{metric:?}");
        let dimension = (metric.fields[2].as_str(), metric.fields[3].as_str());
        let integration = Integration::ALL.iter().any(|i| i.as_str() == dimension.1);
        let known = match dimension.0 {
            INTEGRATION_DIMENSION => integration,
            FUNCTION_DIMENSION => dimension.1 == "receiver",
            _ => false,
        };
        assert!(known, "{metric:?}: no such dimension is emitted");
    }
}

#[test]
fn given_the_dashboard_then_its_names_resolve_and_its_url_is_an_output() {
    let template = template();
    let body = body(&template);
    let resources = template["Resources"].as_mapping().expect("Resources");
    for reference in body.split("${").skip(1) {
        let name = reference.split('}').next().expect("closed");
        let logical = name.split('.').next().expect("a name");
        let known = name.starts_with("AWS::") || resources.contains_key(logical);
        assert!(known, "${{{name}}} names no resource of the stack");
    }
    let output = &template["Outputs"]["DeliveryDashboardUrl"]["Value"];
    let Value::Tagged(url) = output else {
        panic!("DeliveryDashboardUrl is not !Sub")
    };
    let url = url.value.as_str().expect("!Sub text");
    assert!(
        url.starts_with("https://") && url.ends_with("dashboard/${DeliveryDashboard}"),
        "{url}"
    );
}

/// The receiver on the in-memory adapters, configured as `serve` would be.
fn receiver_deps() -> receiver::Deps<MemoryLedger, MemoryQueue> {
    let mut pairs = vec![
        (
            "NEXTPHONE_WEBHOOK_SECRETS",
            nphooks_samples::TEST_WEBHOOK_SECRET,
        ),
        ("NEXTPHONE_API_KEY", nphooks_samples::TEST_API_KEY),
        ("IDEMPOTENCY_TABLE", "memory"),
        ("NPHOOKS_ALLOW_HTTP", "1"),
    ];
    pairs.extend(Integration::ALL.map(|i| (i.queue_url_var(), "memory://queue")));
    let config = ReceiverConfig::from_settings(&Settings::from_pairs(pairs));
    let config = config.expect("a valid config");
    receiver::Deps::new(config, MemoryLedger::new(), MemoryQueue::new())
}

#[tokio::test]
async fn given_an_accepted_and_a_refused_webhook_then_the_receiver_counts_each_answer() {
    let deps = receiver_deps();
    let capture = Capture::start();
    for sample in ["call_ended.json", "bad_signature.json"] {
        let path = root().join("events/receiver").join(sample);
        let text = std::fs::read_to_string(path).expect("a sample event");
        let request = lambda_http::request::from_str(&text).expect("API Gateway v2 event");
        receiver::handle(&deps, request).await;
    }
    let lines = capture.lines();
    let counted: Vec<&str> = lines
        .iter()
        .flat_map(|line| {
            receiver_metrics::OUTCOMES
                .into_iter()
                .filter(|m| line[*m] == 1)
        })
        .collect();
    assert_eq!(
        counted,
        [receiver_metrics::ACCEPTED, receiver_metrics::REFUSED]
    );
}
