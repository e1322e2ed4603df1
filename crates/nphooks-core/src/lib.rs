//! What the nphooks receiver and processors share.
//!
//! - [`webhook`]: the NextPhone event model (typed view + the raw JSON kept whole);
//! - [`signature`]: HMAC-SHA256 and Bearer verification, the only way to a [`signature::VerifiedBody`];
//! - [`delivery`]: delivery keys and payload hashes;
//! - [`routing`]: the declarative routing table;
//! - [`envelope`]: the versioned queue message;
//! - [`config`]: typed configuration read once at start; [`secrets`]: secret values,
//!   refusing placeholders and values published in the repository;
//! - [`window`]: the replay window (record lifetimes, stale webhooks) and the clock seam;
//! - [`ledger`] (the receiver's delivery records), [`claims`] (the processors' effect
//!   claims) and [`queue`]: the ports, each with a real and an in-memory adapter; [`table`]:
//!   the idempotency table's attribute names; [`store_error`]: what a table call can fail with;
//! - [`clock`]: the time port; [`rate_limit`]: per-destination limits shared by every Lambda;
//! - [`samples`]: realistic, signed sample webhooks (the source of `events/`).

pub mod aws;
pub mod claims;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod envelope;
mod error;
pub mod ledger;
pub mod queue;
pub mod rate_limit;
pub mod routing;
pub mod samples;
pub mod secrets;
pub mod signature;
pub mod store_error;
pub mod table;
pub mod webhook;
pub mod window;

pub use error::{Error, Result};

/// Seconds since the Unix epoch.
pub fn epoch_seconds(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `at` as an RFC 3339 UTC timestamp (`2026-11-26T15:30:00Z`).
pub fn rfc3339(at: std::time::SystemTime) -> String {
    aws_smithy_types::DateTime::from(at)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// Emits one CloudWatch Embedded Metric Format line (namespace `nphooks`, dimension
/// `Function`): a count of 1 for `metric`. Lambda passes JSON log lines through as they
/// are, and CloudWatch turns this one into a metric; locally it is just a log line.
pub fn emit_count(function: &str, metric: &str) {
    emit_metric(function, metric, 1);
}

/// [`emit_count`] with a count of `value`.
#[allow(clippy::print_stdout)]
pub fn emit_metric(function: &str, metric: &str, value: u64) {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": "nphooks",
                "Dimensions": [["Function"]],
                "Metrics": [{"Name": metric, "Unit": "Count"}]
            }]
        },
        "Function": function,
        metric: value
    });
    println!("{line}");
}
