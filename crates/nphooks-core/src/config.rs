//! Configuration, read once at start into typed structs. Every error names the variable.
//! The same names serve Lambda, the local runner and the tests (see the README's table).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use crate::ConfigError;
use crate::routing::{Integration, ROUTES_VAR, RoutingTable};
use crate::secret::Secret;
use crate::signature::WebhookAuth;
use crate::window::ReplayWindow;

pub const WEBHOOK_SECRETS_VAR: &str = "NEXTPHONE_WEBHOOK_SECRETS";
pub const API_KEY_VAR: &str = "NEXTPHONE_API_KEY";
pub const IDEMPOTENCY_TABLE_VAR: &str = "IDEMPOTENCY_TABLE";
pub const MAX_BODY_BYTES_VAR: &str = "NPHOOKS_MAX_BODY_BYTES";
pub const APP_SECRET_ARN_VAR: &str = "APP_SECRET_ARN";

/// Default body limit: 256 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// The largest body that still fits an SQS message (1 MiB) once wrapped in the envelope.
pub const MAX_BODY_BYTES_LIMIT: usize = 1024 * 1024 - 8 * 1024;

/// A snapshot of configuration variables: the process environment (or given pairs), plus
/// the keys of the Secrets Manager secret in AWS. It remembers which names were read, so
/// tests can check that a deployment sets no variable its function ignores.
#[derive(Default)]
pub struct Settings {
    vars: HashMap<String, String>,
    read: Mutex<BTreeSet<String>>,
}

impl Clone for Settings {
    fn clone(&self) -> Self {
        Settings {
            vars: self.vars.clone(),
            read: Mutex::new(self.names_read()),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Settings").field("names", &names).finish()
    }
}

impl Settings {
    pub fn from_env() -> Self {
        Self::from_pairs(std::env::vars())
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Settings {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            read: Mutex::default(),
        }
    }

    /// Adds the keys of a secret (a JSON object of strings, as stored in Secrets Manager
    /// under `APP_SECRET_ARN`); they take precedence over the environment.
    pub fn with_secret_json(mut self, json: &str) -> Result<Self, ConfigError> {
        let invalid = |problem: String| ConfigError::new(APP_SECRET_ARN_VAR, problem);
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
            .map_err(|e| invalid(format!("names a secret that is not a JSON object: {e}")))?;
        for (key, value) in object {
            let serde_json::Value::String(value) = value else {
                return Err(invalid(format!(
                    "names a secret whose key {key} is not a string"
                )));
            };
            self.vars.insert(key, value);
        }
        Ok(self)
    }

    /// Every (name, value) held, for building derived settings.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every name looked up so far.
    pub fn names_read(&self) -> BTreeSet<String> {
        self.read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A set, non-blank value.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned());
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<&str, ConfigError> {
        self.optional(name).ok_or(ConfigError::not_set(name))
    }
}

/// The receiver's configuration.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub auth: WebhookAuth,
    pub idempotency_table: String,
    pub queue_urls: BTreeMap<Integration, String>,
    pub routes: RoutingTable,
    pub max_body_bytes: usize,
    /// How long delivery records live, and the oldest `timestamp` accepted.
    pub replay_window: ReplayWindow,
}

impl ReceiverConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let local_mode = settings.local_mode()?;
        let secrets = settings.secret_list(WEBHOOK_SECRETS_VAR, local_mode)?;
        let api_key = settings.secret(API_KEY_VAR, local_mode)?.map(Secret::new);

        let routes = match settings.optional(ROUTES_VAR) {
            Some(json) => RoutingTable::from_json(json)?,
            None => RoutingTable::default_table(),
        };
        // Every integration the table can route to needs its queue.
        let queue_urls = routes
            .integrations()
            .into_iter()
            .map(|integration| {
                let url = settings.required(integration.queue_url_var())?;
                Ok((integration, url.to_owned()))
            })
            .collect::<Result<_, ConfigError>>()?;

        let max_body_bytes = match settings.optional(MAX_BODY_BYTES_VAR) {
            None => DEFAULT_MAX_BODY_BYTES,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_BODY_BYTES_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ConfigError::new(
                        MAX_BODY_BYTES_VAR,
                        format!(
                            "must be a whole number of bytes from 1 to {MAX_BODY_BYTES_LIMIT} (the SQS limit less the envelope), got {text:?}"
                        ),
                    ));
                }
            },
        };

        Ok(ReceiverConfig {
            auth: WebhookAuth::new(secrets, api_key.as_ref()),
            idempotency_table: settings.required(IDEMPOTENCY_TABLE_VAR)?.to_owned(),
            queue_urls,
            routes,
            max_body_bytes,
            replay_window: ReplayWindow::from_settings(settings)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            (WEBHOOK_SECRETS_VAR, "old-secret, new-secret"),
            (API_KEY_VAR, "np_live_key"),
            (IDEMPOTENCY_TABLE_VAR, "nphooks-idempotency"),
            ("CRM_QUEUE_URL", "https://sqs/crm"),
            ("EMAIL_QUEUE_URL", "https://sqs/email"),
            ("SLACK_QUEUE_URL", "https://sqs/slack"),
            ("NOTIFY_QUEUE_URL", "https://sqs/notify"),
            ("CALLBACK_QUEUE_URL", "https://sqs/callback"),
            ("NPHOOKS_ALLOW_HTTP", "1"),
        ]
    }

    fn load(
        overrides: &[(&'static str, &'static str)],
        without: &[&str],
    ) -> Result<ReceiverConfig, ConfigError> {
        let mut pairs = base();
        pairs.retain(|(k, _)| !without.contains(k));
        pairs.extend_from_slice(overrides);
        ReceiverConfig::from_settings(&Settings::from_pairs(pairs))
    }

    #[test]
    fn given_a_complete_environment_then_the_config_loads_and_debug_hides_secrets() {
        let config = load(&[], &[]).expect("valid");
        assert_eq!(config.queue_urls.len(), 5);
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        let debug = format!("{config:?}");
        for secret in ["old-secret", "new-secret", "np_live_key"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn given_missing_or_bad_values_then_the_error_names_the_variable() {
        type Pairs = &'static [(&'static str, &'static str)];
        let cases: [(Pairs, &[&str], &str); 9] = [
            (
                &[(WEBHOOK_SECRETS_VAR, "k3Jx9PqL2mZt8VwN4rYb,REPLACE_ME")],
                &[],
                "NEXTPHONE_WEBHOOK_SECRETS entry 2 holds a placeholder",
            ),
            (
                &[],
                &["NPHOOKS_ALLOW_HTTP"],
                "NEXTPHONE_API_KEY holds a value published in the nphooks repository",
            ),
            (
                &[("NPHOOKS_REPLAY_WINDOW_HOURS", "24")],
                &[],
                "NPHOOKS_REPLAY_WINDOW_HOURS must be from 26 hours",
            ),
            (
                &[],
                &[WEBHOOK_SECRETS_VAR],
                "NEXTPHONE_WEBHOOK_SECRETS is not set",
            ),
            (
                &[(WEBHOOK_SECRETS_VAR, " , ")],
                &[],
                "NEXTPHONE_WEBHOOK_SECRETS holds no secret",
            ),
            (
                &[],
                &[IDEMPOTENCY_TABLE_VAR],
                "IDEMPOTENCY_TABLE is not set",
            ),
            (&[], &["SLACK_QUEUE_URL"], "SLACK_QUEUE_URL is not set"),
            (
                &[(MAX_BODY_BYTES_VAR, "2MB")],
                &[],
                "NPHOOKS_MAX_BODY_BYTES must be",
            ),
            (&[(ROUTES_VAR, "[]")], &[], "NPHOOKS_ROUTES has no rules"),
        ];
        for (overrides, without, expected) in cases {
            let message = load(overrides, without).expect_err(expected).to_string();
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }

    #[test]
    fn given_a_secret_json_then_its_keys_join_the_settings_and_bad_ones_name_app_secret_arn() {
        let settings = Settings::from_pairs([
            ("IDEMPOTENCY_TABLE", "t"),
            (WEBHOOK_SECRETS_VAR, "from-env"),
        ])
        .with_secret_json(r#"{"NEXTPHONE_WEBHOOK_SECRETS":"from-secret","NEXTPHONE_API_KEY":"k"}"#)
        .expect("valid");
        assert_eq!(settings.optional(WEBHOOK_SECRETS_VAR), Some("from-secret"));
        assert_eq!(settings.optional(API_KEY_VAR), Some("k"));
        assert_eq!(settings.optional(IDEMPOTENCY_TABLE_VAR), Some("t"));
        assert!(settings.names_read().contains(API_KEY_VAR));
        for bad in ["[]", r#"{"A":1}"#, "nope"] {
            let message = Settings::default()
                .with_secret_json(bad)
                .expect_err(bad)
                .to_string();
            assert!(message.contains(APP_SECRET_ARN_VAR), "{message}");
        }
    }

    #[test]
    fn given_a_table_that_never_routes_to_crm_then_no_crm_queue_is_required() {
        let config = load(
            &[(
                ROUTES_VAR,
                r#"[{"name":"m","events":["message.collected"],"integrations":["slack"]}]"#,
            )],
            &["CRM_QUEUE_URL", "EMAIL_QUEUE_URL", "NOTIFY_QUEUE_URL"],
        )
        .expect("valid");
        assert_eq!(
            config.queue_urls.keys().copied().collect::<Vec<_>>(),
            vec![Integration::Slack]
        );
    }
}
