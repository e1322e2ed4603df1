//! What the nphooks receiver and processors share.
//!
//! - [`webhook`]: the NextPhone event model (typed view + the raw JSON kept whole);
//! - [`signature`]: HMAC-SHA256 and Bearer verification, the only way to a [`signature::VerifiedBody`];
//! - [`delivery`]: delivery keys and payload hashes;
//! - [`routing`]: the declarative routing table;
//! - [`envelope`]: the versioned queue message;
//! - [`config`]: typed configuration read once at start; [`secret`]: the [`secret::Secret`]
//!   value type; [`secrets`]: reading secret values, refusing placeholders and values
//!   published in the repository;
//! - [`window`]: the replay window (record lifetimes, stale webhooks) and the clock seam;
//! - [`ledger`] (the receiver's delivery records), [`claims`] (the processors' effect
//!   claims) and [`queue`]: the ports, each with a real and an in-memory adapter; [`table`]:
//!   the idempotency table's attribute names; [`store_error`]: what a table call can fail with;
//! - [`clock`]: the time port; [`rate_limit`]: per-destination limits shared by every Lambda;
//! - [`metrics`]: CloudWatch Embedded Metric Format lines;
//! - errors, one type per concern: [`ConfigError`], [`ParseError`], [`QueueError`] and
//!   [`StoreError`].
//!
//! The sample webhooks (the source of `events/`) live in the `nphooks-samples` crate,
//! which no Lambda depends on.

/// Every binary that links this crate (the six Lambdas, the CLI, the tests) allocates
/// with mimalloc: the AWS SDK allocates per call, and glibc's malloc and free were 13 % of
/// the receiver's CPU. With mimalloc (and the reused compressor) a duplicate costs 38 %
/// less CPU and an accepted webhook 15 % less (docs/profile.md). Not in this crate's own
/// unit tests: one that used `nphooks-samples` would link a second copy of this crate,
/// and a program may have only one global allocator.
#[cfg(not(test))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod aws;
pub mod claims;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod envelope;
mod error;
pub mod ledger;
pub mod logging;
pub mod metrics;
pub mod queue;
pub mod rate_limit;
pub mod routing;
pub mod secret;
pub mod secrets;
pub mod signature;
pub mod store_error;
pub mod table;
pub mod webhook;
pub mod window;

pub use error::{ConfigError, ParseError, QueueError};
pub use store_error::StoreError;

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
