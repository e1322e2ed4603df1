//! What a function writes to stdout as deployed, counted in bytes: its tracing lines
//! (JSON at INFO, the subscriber `nphooks_core::logging::init` installs in Lambda) and
//! its EMF metric lines (printed directly, [`nphooks_core::metrics`]). Both are counted
//! on this thread, where `nphooks bill` runs the handlers.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nphooks_core::metrics::Capture;

/// The bytes a function logged over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Logged {
    /// Its tracing lines.
    pub tracing_bytes: u64,
    /// Its EMF metric lines, and their bytes (each with its newline).
    pub metric_lines: u64,
    pub metric_bytes: u64,
}

impl Logged {
    /// Every byte it wrote: what CloudWatch Logs ingests.
    pub fn bytes(&self) -> u64 {
        self.tracing_bytes + self.metric_bytes
    }
}

/// Tracing lines counted in bytes.
#[derive(Debug, Clone, Default)]
struct Bytes(Arc<AtomicU64>);

impl Write for Bytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        self.0.fetch_add(n, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Counts what this thread logs while it lives; EMF lines are captured, not printed.
#[derive(Debug)]
pub struct Meter {
    tracing: Bytes,
    metrics: Capture,
    _subscriber: tracing::subscriber::DefaultGuard,
}

impl Meter {
    pub fn start() -> Self {
        let tracing = Bytes::default();
        let writer = tracing.clone();
        let info = tracing_subscriber::filter::LevelFilter::INFO;
        let subscriber = nphooks_core::logging::json_subscriber(move || writer.clone(), info);
        let guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        Meter {
            tracing,
            metrics: Capture::start(),
            _subscriber: guard,
        }
    }

    /// The EMF lines so far, parsed, in order.
    pub fn metric_lines(&self) -> Vec<serde_json::Value> {
        self.metrics.lines()
    }

    /// What was logged so far.
    pub fn logged(&self) -> Logged {
        Logged {
            tracing_bytes: self.tracing.0.load(Ordering::Relaxed),
            metric_lines: u64::try_from(self.metrics.lines().len()).unwrap_or(u64::MAX),
            metric_bytes: self.metrics.bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_log_line_and_a_metric_line_then_both_are_counted_in_full() {
        // GIVEN a meter
        let meter = Meter::start();
        // WHEN a function logs one line and emits one metric
        tracing::info!(outcome = "sent", "posted");
        tracing::debug!("not at INFO");
        nphooks_core::metrics::emit_count("receiver", "Accepted");
        // THEN each is counted with its newline, the debug line not at all
        let logged = meter.logged();
        let metric = meter.metric_lines()[0].to_string().len() as u64 + 1;
        let line = r#"{"level":"INFO","fields":{"message":"posted","outcome":"sent"}}"#;
        let expected = Logged {
            tracing_bytes: line.len() as u64 + 1,
            metric_lines: 1,
            metric_bytes: metric,
        };
        assert_eq!(logged, expected);
        assert_eq!(logged.bytes(), expected.tracing_bytes + metric);
    }
}
