//! Which rate limiter a processor Lambda runs with: `NPHOOKS_MAX_CONCURRENCY` (set in
//! `template.yaml` next to the event source's `ScalingConfig.MaximumConcurrency`) bounds
//! how many instances run at once, so each holds its share of the limit in memory and no
//! post writes to DynamoDB; without it, the one slot item every instance shares.
//! `NPHOOKS_RATE_LIMIT_SCOPE=shared` takes the slot item even with a bound: for a limit
//! that is an account's (NextPhone's API key, with bursts), not split per instance.

use nphooks_core::ConfigError;
use nphooks_core::config::Settings;
use nphooks_core::rate_limit::{
    DynamoRateLimiter, INSTANCES, InstanceRateLimiter, ProcessRateLimiter,
};

/// The most instances of this function that run at once (2 to 1000; unset: unbounded).
pub const MAX_CONCURRENCY_VAR: &str = "NPHOOKS_MAX_CONCURRENCY";

/// `shared` or `instance` (the default): see the module.
pub const RATE_LIMIT_SCOPE_VAR: &str = "NPHOOKS_RATE_LIMIT_SCOPE";

/// Reads `NPHOOKS_RATE_LIMIT_SCOPE`: whether every instance reserves from the slot item.
pub fn shared_scope(settings: &Settings) -> crate::Result<bool> {
    match settings.optional(RATE_LIMIT_SCOPE_VAR) {
        None | Some("instance") => Ok(false),
        Some("shared") => Ok(true),
        Some(other) => Err(ConfigError::new(
            RATE_LIMIT_SCOPE_VAR,
            format!("must be `shared` or `instance`; got {other:?}"),
        )
        .into()),
    }
}

/// Reads `NPHOOKS_MAX_CONCURRENCY`: unset, or a whole number from 2 to 1000.
pub fn max_concurrency(settings: &Settings) -> crate::Result<Option<u32>> {
    let Some(text) = settings.optional(MAX_CONCURRENCY_VAR) else {
        return Ok(None);
    };
    match text.trim().parse::<u32>() {
        Ok(n) if INSTANCES.contains(&n) => Ok(Some(n)),
        _ => Err(ConfigError::new(
            MAX_CONCURRENCY_VAR,
            format!(
                "must be the event source's MaximumConcurrency, a whole number from {} to {}; got {text:?}",
                INSTANCES.start(),
                INSTANCES.end()
            ),
        )
        .into()),
    }
}

/// The instance's share in memory when `NPHOOKS_MAX_CONCURRENCY` is set (and the scope
/// is not `shared`), else the shared item in `table`.
pub fn limiter(
    settings: &Settings,
    aws: &aws_config::SdkConfig,
    table: &str,
) -> crate::Result<ProcessRateLimiter> {
    let shared = shared_scope(settings)?;
    Ok(match max_concurrency(settings)? {
        Some(instances) if !shared => {
            ProcessRateLimiter::Instance(InstanceRateLimiter::new(instances))
        }
        _ => ProcessRateLimiter::Shared(DynamoRateLimiter::connect(aws, table)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_max_concurrency_texts_then_they_load_or_name_the_variable() {
        let read = |text: &'static str| {
            max_concurrency(&Settings::from_pairs(vec![(MAX_CONCURRENCY_VAR, text)]))
        };
        assert_eq!(
            max_concurrency(&Settings::from_pairs(Vec::<(String, String)>::new())).ok(),
            Some(None)
        );
        assert_eq!(read("2").ok(), Some(Some(2)));
        assert_eq!(read("1000").ok(), Some(Some(1000)));
        for bad in ["1", "0", "1001", "two", "-2"] {
            let message = read(bad).expect_err(bad).to_string();
            assert!(message.contains(MAX_CONCURRENCY_VAR), "{message}");
        }
    }

    #[test]
    fn given_rate_limit_scope_texts_then_they_load_or_name_the_variable() {
        let read = |text: &'static str| {
            shared_scope(&Settings::from_pairs(vec![(RATE_LIMIT_SCOPE_VAR, text)])).ok()
        };
        assert_eq!(read("shared"), Some(true));
        assert_eq!(read("instance"), Some(false));
        assert_eq!(read(" "), Some(false), "blank is unset");
        let error = shared_scope(&Settings::from_pairs(vec![(RATE_LIMIT_SCOPE_VAR, "all")]));
        let message = error.expect_err("refused").to_string();
        assert!(message.contains(RATE_LIMIT_SCOPE_VAR), "{message}");
    }
}
