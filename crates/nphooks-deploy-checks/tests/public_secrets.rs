//! No secret written in this repository is accepted outside local mode (issue 9): every
//! secret-looking token in the tracked files is refused, and each function refuses
//! placeholders and repository values at start-up, naming the variable.

use std::path::Path;
use std::process::Command;

use nphooks_core::config::Settings;
use nphooks_core::secrets::public_secret_problem;
use nphooks_processor::HttpSink;
use nphooks_processor::http::client;

/// Where secret-looking tokens start, and the characters that continue them.
const TOKEN_STARTS: &[&str] = &[
    "whsec_",
    "np_live_",
    "https://hooks.slack.com/services/",
    "http://hooks.slack.com/services/",
];

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '/' | '=')
}

/// Every secret-looking token in `text`.
fn tokens(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for start in TOKEN_STARTS {
        let mut from = 0;
        while let Some(at) = text[from..].find(start) {
            let begin = from + at;
            let rest = &text[begin + start.len()..];
            let len = rest.find(|c: char| !token_char(c)).unwrap_or(rest.len());
            found.push(text[begin..begin + start.len() + len].to_owned());
            from = begin + start.len();
        }
    }
    found
}

fn tracked_text_files() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["ls-files", "-z"])
        .output()
        .expect("git runs (the scan reads the tracked files)");
    assert!(output.status.success(), "git ls-files failed");
    String::from_utf8(output.stdout)
        .expect("UTF-8 paths")
        .split('\0')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let text = std::fs::read_to_string(root.join(p)).ok()?;
            Some((p.to_owned(), text))
        })
        .collect()
}

#[test]
fn given_the_repository_then_every_secret_looking_token_in_it_is_refused() {
    // GIVEN every tracked text file
    let files = tracked_text_files();
    assert!(files.len() > 50, "the scan sees the repository");
    let mut seen = 0;
    let mut accepted = Vec::new();
    for (path, text) in &files {
        for token in tokens(text) {
            seen += 1;
            // THEN a deployment (not local mode) refuses each one
            if public_secret_problem(&token, false).is_none() {
                accepted.push(format!("{path}: {token}"));
            }
        }
    }
    assert!(seen > 20, "tokens found: {seen}");
    assert!(
        accepted.is_empty(),
        "secret-looking values written in the repository would be accepted; add them to nphooks_core::secrets::PUBLIC_SECRETS:\n{}",
        accepted.join("\n")
    );
    // AND the sender's tutorial example, kept outside the repository, too
    assert!(public_secret_problem("np_live_abc123def456ghi789jkl012mno345", false).is_some());
}

#[test]
fn given_the_scanner_then_it_finds_tokens_where_they_are_and_nothing_else() {
    let text = "key `np_live_key` and https://hooks.slack.com/services/T0/B0/secret, \
                not whsec; whsec_c2VjcmV0LWZvci1zb21lb25lLWVsc2U=.";
    let mut found = tokens(text);
    found.sort();
    assert_eq!(
        found,
        [
            "https://hooks.slack.com/services/T0/B0/secret",
            "np_live_key",
            "whsec_c2VjcmV0LWZvci1zb21lb25lLWVsc2U="
        ]
    );
}

/// The error a processor's start-up gives for `pairs`, outside local mode.
fn processor_error(function: &str, pairs: &[(&str, &str)]) -> String {
    let settings = Settings::from_pairs(pairs.iter().map(|(k, v)| (*k, *v)));
    let http = client().expect("client");
    let result = match function {
        "crm" => crm::CrmSink::from_settings(&settings, false, http)
            .map(drop)
            .map_err(|e| e.to_string()),
        "email" => email::EmailConfig::from_settings(&settings, false)
            .map(drop)
            .map_err(|e| e.to_string()),
        "slack" => slack::SlackSink::from_settings(&settings, false, http)
            .map(drop)
            .map_err(|e| e.to_string()),
        "notify" => notify::NotifySink::from_settings(&settings, false, http)
            .map(drop)
            .map_err(|e| e.to_string()),
        other => panic!("no loader for {other}"),
    };
    match result {
        Ok(_) => panic!("{function} started with a public secret"),
        Err(message) => message,
    }
}

/// The other settings a function needs to get as far as its secret.
type Others = &'static [(&'static str, &'static str)];

#[test]
fn given_placeholder_or_repository_secrets_then_each_processor_refuses_to_start_naming_the_variable()
 {
    let cases: [(&str, &str, &str, Others); 6] = [
        (
            "crm",
            "CRM_API_TOKEN",
            "REPLACE_ME",
            &[("CRM_API_URL", "https://crm.example/leads")],
        ),
        (
            "email",
            "SMTP_PASSWORD",
            "<your-smtp-password>",
            &[
                ("SMTP_HOST", "smtp.example"),
                ("SMTP_USERNAME", "mailer"),
                ("EMAIL_FROM", "hello@acme.example"),
                ("EMAIL_BUSINESS_NAME", "Acme"),
            ],
        ),
        (
            "slack",
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T0/B0/secret",
            &[],
        ),
        (
            "slack",
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/XXXX",
            &[],
        ),
        (
            "notify",
            "NOTIFY_SIGNING_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            &[("NOTIFY_URL", "https://sales.example/hook")],
        ),
        (
            "notify",
            "NOTIFY_SIGNING_SECRET",
            "whsec_REPLACE_ME",
            &[("NOTIFY_URL", "https://sales.example/hook")],
        ),
    ];
    for (function, name, value, others) in cases {
        // GIVEN a deployment whose secret is a placeholder or a repository value
        let mut pairs = others.to_vec();
        pairs.push((name, value));
        // WHEN the function starts, THEN it stops naming the variable, not the value
        let message = processor_error(function, &pairs);
        assert!(message.contains(name), "{function}: {message}");
        assert!(message.contains("Secrets Manager"), "{function}: {message}");
        assert!(!message.contains(value), "{function}: {message}");
    }
}

#[test]
fn given_the_placeholders_template_yaml_puts_in_the_secret_then_none_is_accepted_even_locally() {
    // GIVEN the functions' secrets as `sam deploy` creates them
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("template.yaml")).expect("template.yaml");
    let template: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut filled = 0;
    for (name, resource) in resources {
        if resource["Type"] != "AWS::SecretsManager::Secret" {
            continue;
        }
        let properties = &resource["Properties"];
        let Some(secret) = properties["SecretString"]
            .as_str()
            .or_else(|| properties["GenerateSecretString"]["SecretStringTemplate"].as_str())
        else {
            panic!("{name:?}: no SecretString or SecretStringTemplate");
        };
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(secret).expect("a JSON object");
        // THEN every value it pre-fills is refused as a placeholder, so nothing starts on it
        for (key, value) in &object {
            let value = value.as_str().expect("string");
            if value.is_empty() {
                continue;
            }
            filled += 1;
            assert!(
                public_secret_problem(value, true).is_some(),
                "{name:?} {key}"
            );
        }
    }
    assert!(filled >= 3, "the template pre-fills {filled} values");
}
