//! template.yaml cannot drift from the code: every environment variable a function gets
//! is a name its config reads, every name it requires is provided (by the environment or
//! the secret), every processor queue has a DLQ, enough visibility and partial batch
//! responses, every function has sample events, and no policy grants `*` unexplained.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use nphooks_core::config::{ReceiverConfig, Settings};
use nphooks_core::routing::Integration;
use nphooks_processor::ProcessorConfig;
use nphooks_processor::http::client;
use nphooks_testkit::Moto;
use serde_yaml::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template_text() -> String {
    std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml")
}

fn template() -> Value {
    serde_yaml::from_str(&template_text()).expect("template.yaml is YAML")
}

/// Evaluates the intrinsic functions the template uses, for one set of parameter values.
struct Evaluator<'a> {
    template: &'a Value,
    parameters: BTreeMap<String, String>,
}

/// What a `!Ref` to a resource stands for here: a queue URL, a table name, an ARN.
fn resource_stand_in(template: &Value, name: &str) -> String {
    match template["Resources"][name]["Type"].as_str() {
        Some("AWS::SQS::Queue") => {
            format!("https://sqs.us-east-1.amazonaws.com/123456789012/{name}")
        }
        Some("AWS::SecretsManager::Secret") => {
            format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}")
        }
        _ => name.to_owned(),
    }
}

impl<'a> Evaluator<'a> {
    fn new(template: &'a Value, overrides: &[(&str, &str)]) -> Self {
        let mut parameters: BTreeMap<String, String> = template["Parameters"]
            .as_mapping()
            .expect("Parameters")
            .iter()
            .map(|(name, spec)| {
                let default = match &spec["Default"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Null => String::new(),
                    other => panic!("unexpected default {other:?}"),
                };
                (name.as_str().expect("name").to_owned(), default)
            })
            .collect();
        for (name, value) in overrides {
            assert!(parameters.contains_key(*name), "no parameter {name}");
            parameters.insert((*name).to_owned(), (*value).to_owned());
        }
        Evaluator {
            template,
            parameters,
        }
    }

    fn condition(&self, name: &str) -> bool {
        self.truth(&self.template["Conditions"][name])
    }

    fn truth(&self, value: &Value) -> bool {
        let Value::Tagged(tagged) = value else {
            panic!("not a condition: {value:?}")
        };
        let args = tagged.value.as_sequence();
        match tagged.tag.to_string().as_str() {
            "!Equals" => {
                let args = args.expect("!Equals takes a list");
                self.eval(&args[0]) == self.eval(&args[1])
            }
            "!Not" => !self.truth(&args.expect("!Not takes a list")[0]),
            "!Condition" => self.condition(tagged.value.as_str().expect("name")),
            other => panic!("unsupported condition {other}"),
        }
    }

    /// `None` for `AWS::NoValue`.
    fn eval(&self, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Tagged(tagged) => match tagged.tag.to_string().as_str() {
                "!Ref" => {
                    let name = tagged.value.as_str().expect("!Ref name");
                    if name == "AWS::NoValue" {
                        None
                    } else if let Some(value) = self.parameters.get(name) {
                        Some(value.clone())
                    } else {
                        assert!(
                            !self.template["Resources"][name].is_null(),
                            "!Ref to unknown {name}"
                        );
                        Some(resource_stand_in(self.template, name))
                    }
                }
                "!GetAtt" => Some(format!(
                    "getatt:{}",
                    tagged.value.as_str().expect("!GetAtt a.b")
                )),
                "!Sub" => Some(tagged.value.as_str().expect("!Sub string").to_owned()),
                "!If" => {
                    let args = tagged.value.as_sequence().expect("!If takes a list");
                    let branch = if self.condition(args[0].as_str().expect("condition name")) {
                        &args[1]
                    } else {
                        &args[2]
                    };
                    self.eval(branch)
                }
                other => panic!("unsupported intrinsic {other}"),
            },
            other => panic!("cannot evaluate {other:?}"),
        }
    }

    /// The environment a function gets: Globals, then its own, `AWS::NoValue` dropped.
    fn environment(&self, function: &Value) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for variables in [
            &self.template["Globals"]["Function"]["Environment"]["Variables"],
            &function["Properties"]["Environment"]["Variables"],
        ] {
            for (name, value) in variables.as_mapping().into_iter().flatten() {
                if let Some(value) = self.eval(value) {
                    env.insert(name.as_str().expect("name").to_owned(), value);
                }
            }
        }
        env
    }
}

fn functions(template: &Value) -> Vec<(String, &Value)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(name, r)| (name.as_str().expect("name").to_owned(), r))
        .collect()
}

fn binary(function: &Value) -> String {
    function["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .expect("BuildProperties.Binary")
        .to_owned()
}

/// A valid value for each key of the stack's secret (its placeholders are not valid).
fn secret_value(key: &str) -> &'static str {
    match key {
        "NEXTPHONE_WEBHOOK_SECRETS" => "whsec_one,whsec_two",
        "NEXTPHONE_API_KEY" => "np_live_example",
        "CRM_API_TOKEN" => "crm-token",
        "SMTP_USERNAME" => "mailer",
        "SMTP_PASSWORD" => "mail-password",
        "SLACK_WEBHOOK_URL" => "https://hooks.slack.com/services/T000/B000/XXXX",
        "NOTIFY_SIGNING_SECRET" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        other => panic!("the secret has a key no test value is known for: {other}"),
    }
}

fn secret_keys(template: &Value) -> Vec<String> {
    let text = template["Resources"]["AppSecret"]["Properties"]["SecretString"]
        .as_str()
        .expect("SecretString");
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).expect("the secret is a JSON object");
    object.keys().cloned().collect()
}

/// Loads a function's whole configuration the way its `main` does; the settings record
/// which names were read.
fn load(binary: &str, settings: &Settings) -> Result<(), String> {
    let processor = |integration| {
        ProcessorConfig::from_settings(settings, integration).map_err(|e| e.to_string())
    };
    let http = client().expect("http client");
    match binary {
        "receiver" => ReceiverConfig::from_settings(settings)
            .map(drop)
            .map_err(|e| e.to_string()),
        "crm" => {
            processor(Integration::Crm)?;
            crm::CrmSink::from_settings(settings, false, http)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        "email" => {
            processor(Integration::Email)?;
            email::EmailConfig::from_settings(settings, false)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        "slack" => {
            processor(Integration::Slack)?;
            slack::SlackSink::from_settings(settings, false, http)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        "notify" => {
            processor(Integration::Notify)?;
            notify::NotifySink::from_settings(settings, false, http)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        other => panic!("no loader known for function binary {other}"),
    }
}

/// Names that must only ever come from the secret.
const SECRET_NAMES: &[&str] = &[
    "NEXTPHONE_WEBHOOK_SECRETS",
    "NEXTPHONE_API_KEY",
    "CRM_API_TOKEN",
    "SMTP_PASSWORD",
    "SLACK_WEBHOOK_URL",
    "NOTIFY_SIGNING_SECRET",
];

#[tokio::test]
async fn given_the_template_then_every_function_gets_exactly_the_config_its_code_reads() {
    let template = template();
    let moto = Moto::start("template").await;
    let secrets = aws_sdk_secretsmanager::Client::new(&moto.aws);
    let keys = secret_keys(&template);
    for name in SECRET_NAMES {
        assert!(
            keys.iter().any(|k| k == name),
            "the stack's secret lacks {name}"
        );
    }
    let secret: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| (k.clone(), secret_value(k).into()))
        .collect();
    let arn = secrets
        .create_secret()
        .name(format!("nphooks-template-{}", std::process::id()))
        .secret_string(serde_json::Value::Object(secret).to_string())
        .send()
        .await
        .expect("create secret")
        .arn
        .expect("arn");

    let parameter_sets: [&[(&str, &str)]; 2] = [
        &[],
        &[
            ("EmailTransport", "smtp"),
            ("SmtpHost", "smtp.example.com"),
            ("EmailReplyTo", "sales@example.com"),
            (
                "Routes",
                r#"[{"name":"all","events":["call.ended"],"integrations":["crm","email","slack","notify"]}]"#,
            ),
            ("CrmProvider", "hubspot"),
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
            env.insert("APP_SECRET_ARN".into(), arn.clone());

            let settings =
                nphooks_core::aws::with_app_secret(Settings::from_pairs(env.clone()), &moto.aws)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            load(&binary, &settings).unwrap_or_else(|e| {
                panic!("{name} ({parameters:?}): a required name is missing: {e}")
            });
            let read = settings.names_read();
            let unread: Vec<_> = env.keys().filter(|k| !read.contains(*k)).collect();
            assert!(
                unread.is_empty(),
                "{name} ({parameters:?}) gets variables its code never reads: {unread:?}"
            );
            checked.insert(binary);
        }
    }
    assert_eq!(
        checked,
        ["crm", "email", "notify", "receiver", "slack"]
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
                .any(|word| parameter.contains(word) && parameter != "existingsecretarn"),
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
    assert_eq!(processors, 4, "four processors");
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
        "expires_at"
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
        if body.iter().any(|l| l.contains('*')) {
            assert!(
                lines[i - 1].trim_start().starts_with('#'),
                "the inline statement at line {} grants a wildcard with no comment",
                i + 1
            );
        }
    }
    assert!(
        statements > 0,
        "the template has its one inline statement (SES)"
    );
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
