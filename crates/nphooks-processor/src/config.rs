//! Configuration every processor reads.

use nphooks_core::config::{IDEMPOTENCY_TABLE_VAR, Settings};
use nphooks_core::routing::Integration;

use crate::Result;

pub const DLQ_URL_VAR: &str = "DLQ_URL";
pub const ALLOW_HTTP_VAR: &str = "NPHOOKS_ALLOW_HTTP";

#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub integration: Integration,
    pub idempotency_table: String,
    /// Where permanent failures go, body intact.
    pub dlq_url: String,
    /// The processor's own queue (`CRM_QUEUE_URL`, …), for visibility changes on 429.
    pub source_queue_url: String,
    /// `NPHOOKS_ALLOW_HTTP=1`: `http://` and loopback outbound URLs are allowed (local runs, tests).
    pub allow_http: bool,
    /// How long effect claims live (`NPHOOKS_REPLAY_WINDOW_HOURS`, shared with the receiver).
    pub replay_window: nphooks_core::window::ReplayWindow,
}

impl ProcessorConfig {
    pub fn from_settings(settings: &Settings, integration: Integration) -> Result<Self> {
        Ok(ProcessorConfig {
            integration,
            idempotency_table: settings.required(IDEMPOTENCY_TABLE_VAR)?.to_owned(),
            dlq_url: settings.required(DLQ_URL_VAR)?.to_owned(),
            source_queue_url: settings.required(integration.queue_url_var())?.to_owned(),
            allow_http: allow_http(settings)?,
            replay_window: nphooks_core::window::ReplayWindow::from_settings(settings)?,
        })
    }
}

/// Reads `NPHOOKS_ALLOW_HTTP`: unset, `0` or `1`.
pub fn allow_http(settings: &Settings) -> Result<bool> {
    match settings.optional(ALLOW_HTTP_VAR) {
        None | Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(other) => Err(nphooks_core::Error::Config {
            name: ALLOW_HTTP_VAR,
            problem: format!("must be 0 or 1, got {other:?}"),
        }
        .into()),
    }
}
