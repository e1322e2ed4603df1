//! Captures what the code under test logs (JSON lines, every level), to check it; and,
//! when `NPHOOKS_TEST_LOG_DIR` is set (scripts/test.sh sets it), keeps every log line of
//! nphooks' own code in every test process for the suite-wide leak scan
//! (`scripts/leak_scan.py`).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The variable naming the directory every test process appends its log lines to.
pub const LOG_DIR_VAR: &str = "NPHOOKS_TEST_LOG_DIR";

/// This process's file in `NPHOOKS_TEST_LOG_DIR`, if the variable is set.
fn suite_log() -> Option<&'static Mutex<std::fs::File>> {
    static FILE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::path::PathBuf::from(std::env::var_os(LOG_DIR_VAR)?);
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join(format!("{}.jsonl", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()?;
        Some(Mutex::new(file))
    })
    .as_ref()
}

/// The targets whose lines the leak scan reads: nphooks' own crates.
fn own_code() -> Targets {
    [
        "receiver",
        "crm",
        "email",
        "slack",
        "notify",
        "nphooks_core",
        "nphooks_processor",
        "nphooks_cli",
        "nphooks",
    ]
    .into_iter()
    .fold(Targets::new(), |targets, crate_name| {
        targets.with_target(crate_name, tracing::Level::TRACE)
    })
}

/// Sends every log line of nphooks' code in this process to `NPHOOKS_TEST_LOG_DIR` (once;
/// a no-op when the variable is unset). Tests that capture logs themselves tee them there.
pub fn keep_for_leak_scan() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        if suite_log().is_none() {
            return;
        }
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(|| SuiteLog)
            .with_filter(own_code());
        let _ = tracing_subscriber::registry().with(layer).try_init();
    });
}

/// A writer appending to this process's file in `NPHOOKS_TEST_LOG_DIR`.
struct SuiteLog;

impl Write for SuiteLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(file) = suite_log() {
            file.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged while its guard lives.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::fmt::Debug for CapturedLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CapturedLogs({} bytes)",
            self.0.lock().map_or(0, |b| b.len())
        )
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SuiteLog.write(buf)?;
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// Starts capturing on this thread (use a current-thread runtime: `#[tokio::test]`).
    pub fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = CapturedLogs::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        (captured, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}
