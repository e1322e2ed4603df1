//! What `tests/template.rs` checks the template against: a valid value for each secret
//! key, the keys a template secret holds, and each function's configuration loaded the
//! way its `main` loads it.

use std::collections::BTreeSet;

use nphooks_core::config::{ReceiverConfig, Settings};
use nphooks_core::routing::Integration;
use nphooks_deploy_checks::Value;
use nphooks_processor::http::client;
use nphooks_processor::{HttpSink, ProcessorConfig};

/// A valid value for each key of the stack's secret (its placeholders are not valid).
/// Built at run time: a secret written whole in the repository is refused outside local mode.
pub fn secret_value(key: &str) -> String {
    let unique = |prefix: &str| format!("{prefix}{}", std::process::id() ^ 0x5eed_1234);
    match key {
        "NEXTPHONE_WEBHOOK_SECRETS" => format!("{0},{0}9", unique("whsec_")),
        "NEXTPHONE_API_KEY" => unique("np_live_"),
        "CRM_API_TOKEN" => "crm-token".into(),
        "SALESFORCE_CLIENT_ID" => "salesforce-client-id".into(),
        "SALESFORCE_CLIENT_SECRET" => "salesforce-client-secret".into(),
        "SMTP_USERNAME" => "mailer".into(),
        "SMTP_PASSWORD" => "mail-password".into(),
        "SLACK_WEBHOOK_URL" => format!("https://hooks.slack.com/services/{}", unique("T1/B1/")),
        // Standard Webhooks' documented key, reversed: still base64, no longer public.
        "NOTIFY_SIGNING_SECRET" => format!(
            "whsec_{}",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                .chars()
                .rev()
                .collect::<String>()
        ),
        other => panic!("the secret has a key no test value is known for: {other}"),
    }
}

/// The keys of a template secret: its `SecretString`, or the template and generated key
/// of its `GenerateSecretString`.
pub fn secret_keys(template: &Value, logical: &str) -> BTreeSet<String> {
    let properties = &template["Resources"][logical]["Properties"];
    let generate = &properties["GenerateSecretString"];
    let text = properties["SecretString"]
        .as_str()
        .or_else(|| generate["SecretStringTemplate"].as_str())
        .unwrap_or_else(|| panic!("{logical}: neither SecretString nor a template"));
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).expect("the secret is a JSON object");
    let mut keys: BTreeSet<String> = object.keys().cloned().collect();
    keys.extend(generate["GenerateStringKey"].as_str().map(str::to_owned));
    keys
}

/// The template secret a function's `APP_SECRET_ARN` names (`!Ref Secret`).
pub fn function_secret(name: &str, function: &Value) -> String {
    let Value::Tagged(reference) =
        &function["Properties"]["Environment"]["Variables"]["APP_SECRET_ARN"]
    else {
        panic!("{name}: APP_SECRET_ARN is not a !Ref to its own secret")
    };
    assert_eq!(reference.tag.to_string(), "!Ref", "{name}");
    reference.value.as_str().expect("secret name").to_owned()
}

/// Loads a function's whole configuration the way its `main` does; the settings record
/// which names were read.
pub fn load(binary: &str, settings: &Settings) -> Result<(), String> {
    // What `nphooks_processor::lambda::run_lambda` reads: its config and its limiter's bound.
    let processor = |integration| {
        ProcessorConfig::from_settings(settings, integration).map_err(|e| e.to_string())?;
        nphooks_processor::limiter::shared_scope(settings).map_err(|e| e.to_string())?;
        nphooks_processor::limiter::max_concurrency(settings)
            .map(drop)
            .map_err(|e| e.to_string())
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
        "callback" => {
            processor(Integration::Callback)?;
            callback::CallbackSink::from_settings(settings, false, http)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        other => panic!("no loader known for function binary {other}"),
    }
}

/// Names that must only ever come from the secret.
pub const SECRET_NAMES: &[&str] = &[
    "NEXTPHONE_WEBHOOK_SECRETS",
    "NEXTPHONE_API_KEY",
    "CRM_API_TOKEN",
    "SALESFORCE_CLIENT_ID",
    "SALESFORCE_CLIENT_SECRET",
    "SMTP_PASSWORD",
    "SLACK_WEBHOOK_URL",
    "NOTIFY_SIGNING_SECRET",
];
