//! The functions' log lines: one JSON object per event, the fields of the span it happened
//! in written once. The Lambda runtime's default subscriber also writes every enclosing
//! span again (`spans`, the runtime's own invoke span included) and the module path,
//! which repeat what the line already says; Lambda stamps the time itself.

use tracing::Subscriber;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The level from `AWS_LAMBDA_LOG_LEVEL` (Lambda's log-level control) or `RUST_LOG` when
/// it is a plain level; else INFO.
pub fn level_from_env() -> LevelFilter {
    std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|level| level.trim().parse().ok())
        .unwrap_or(LevelFilter::INFO)
}

/// JSON lines at `level` to `writer`, as the functions write them in Lambda.
pub fn json_subscriber<W>(writer: W, level: LevelFilter) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_max_level(level)
        .with_writer(writer)
        .finish()
}

/// Installs the functions' subscriber: JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON` (the
/// template's `LoggingConfig`), else the readable text format, at [`level_from_env`].
pub fn init() {
    let level = level_from_env();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let installed = if json {
        tracing::subscriber::set_global_default(json_subscriber(std::io::stdout, level))
    } else {
        let text = tracing_subscriber::fmt()
            .with_target(false)
            .without_time()
            .with_max_level(level)
            .finish();
        tracing::subscriber::set_global_default(text)
    };
    if let Err(already) = installed {
        // A subscriber already installed (a test harness) keeps logging.
        tracing::debug!(%already, "log subscriber kept");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn given_an_event_in_nested_spans_then_its_span_fields_are_written_once() {
        // GIVEN the functions' subscriber, and an event inside the runtime's span and ours
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = json_subscriber(move || writer.clone(), LevelFilter::INFO);
        tracing::subscriber::with_default(subscriber, || {
            let invoke = tracing::info_span!("Lambda runtime invoke", requestId = "r-1");
            let _invoke = invoke.enter();
            let message = tracing::info_span!("message", delivery_key = "call.ended#c1");
            let _message = message.enter();
            // WHEN it logs the outcome
            tracing::info!(outcome = "sent", "posted");
            tracing::debug!("not at INFO");
        });
        // THEN one line, the delivery key once, no span list, no target, no time
        let text = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("utf-8");
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("json");
        assert_eq!(line["span"]["delivery_key"], "call.ended#c1", "{text}");
        assert_eq!(line["fields"]["outcome"], "sent", "{text}");
        assert_eq!(text.matches("call.ended#c1").count(), 1, "{text}");
        for absent in ["spans", "target", "timestamp"] {
            assert!(line.get(absent).is_none(), "{absent}: {text}");
        }
    }
}
