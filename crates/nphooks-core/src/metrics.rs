//! CloudWatch Embedded Metric Format: JSON log lines, which Lambda passes through as they
//! are and CloudWatch turns into metrics (namespace [`NAMESPACE`]); locally they are just
//! log lines. The receiver counts under the dimension `Function`; the processors count
//! each batch's outcomes under the dimension `Integration` (see `nphooks_processor`).

use std::cell::RefCell;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

/// The namespace of every metric nphooks emits.
pub const NAMESPACE: &str = "nphooks";
/// The receiver's dimension: the function that counted.
pub const FUNCTION_DIMENSION: &str = "Function";

/// What the receiver counts, one per request, by how it was answered.
pub mod receiver {
    /// Answered 200 `accepted`: in every routed queue.
    pub const ACCEPTED: &str = "Accepted";
    /// Answered 200 `duplicate`.
    pub const DUPLICATE: &str = "Duplicate";
    /// Answered 4xx: unsigned, malformed, too large, in progress, wrong path or method.
    pub const REFUSED: &str = "Refused";
    /// The per-request metrics, for the dashboard's checks.
    pub const OUTCOMES: [&str; 3] = [ACCEPTED, DUPLICATE, REFUSED];
}

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One metric of a line: a single value, or up to 100 values (each a sample, so
/// CloudWatch computes percentiles over them).
#[derive(Debug, Clone, PartialEq)]
pub struct Metric<'a> {
    pub name: &'a str,
    pub unit: Unit,
    pub values: Vec<u64>,
}

/// Emits a count of 1 for `metric`.
pub fn emit_count(function: &str, metric: &str) {
    emit_metric(function, metric, 1);
}

/// [`emit_count`] with a count of `value`.
pub fn emit_metric(function: &str, metric: &str, value: u64) {
    emit_line(metric_line(function, metric, value, SystemTime::now()));
}

/// Emits one line holding `metrics` under `dimension` = `value`, stamped `at`.
pub fn emit(dimension: &str, value: &str, metrics: &[Metric<'_>], at: SystemTime) {
    emit_line(emf_line(dimension, value, metrics, at));
}

/// The EMF line for `value` of `metric`, stamped `at`.
fn metric_line(function: &str, metric: &str, value: u64, at: SystemTime) -> String {
    let count = Metric {
        name: metric,
        unit: Unit::Count,
        values: vec![value],
    };
    emf_line(FUNCTION_DIMENSION, function, &[count], at)
}

/// The EMF line for `metrics` under `dimension` = `value`, stamped `at`. A metric with
/// one value is written as a number, with more as an array.
pub fn emf_line(dimension: &str, value: &str, metrics: &[Metric<'_>], at: SystemTime) -> String {
    emf_value(dimension, value, metrics, at).to_string()
}

fn emf_value(dimension: &str, value: &str, metrics: &[Metric<'_>], at: SystemTime) -> Value {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
        .collect();
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": crate::clock::epoch_millis(at),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[dimension]],
                "Metrics": definitions
            }]
        }),
    );
    line.insert(dimension.into(), json!(value));
    for metric in metrics {
        let values = match metric.values.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        line.insert(metric.name.into(), values);
    }
    Value::Object(line)
}

thread_local! {
    static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Writes one EMF line to stdout, or to this thread's [`Capture`] while one lives.
#[allow(clippy::print_stdout)]
fn emit_line(line: String) {
    let line = CAPTURED.with(|captured| match captured.borrow_mut().as_mut() {
        Some(lines) => {
            lines.push(line);
            None
        }
        None => Some(line),
    });
    if let Some(line) = line {
        println!("{line}");
    }
}

/// The bytes `line` takes on stdout as [`emit_line`] prints it: the line and its newline.
fn printed_bytes(line: &str) -> u64 {
    u64::try_from(line.len() + 1).unwrap_or(u64::MAX)
}

/// Collects the EMF lines this thread emits, instead of printing them, until dropped
/// (for tests and `nphooks bill`; a current-thread runtime keeps a test's tasks on its thread).
#[derive(Debug)]
pub struct Capture(());

impl Capture {
    pub fn start() -> Self {
        CAPTURED.with(|captured| *captured.borrow_mut() = Some(Vec::new()));
        Capture(())
    }

    /// The lines emitted so far, parsed, in order.
    pub fn lines(&self) -> Vec<Value> {
        CAPTURED.with(|captured| {
            captured
                .borrow()
                .iter()
                .flatten()
                .map(|line| serde_json::from_str(line).expect("an EMF line is JSON"))
                .collect()
        })
    }

    /// The bytes the lines emitted so far would have taken on stdout (what CloudWatch
    /// Logs ingests of them).
    pub fn bytes(&self) -> u64 {
        CAPTURED.with(|captured| {
            let captured = captured.borrow();
            captured.iter().flatten().map(|l| printed_bytes(l)).sum()
        })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURED.with(|captured| *captured.borrow_mut() = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_707_001_000)
    }

    #[test]
    fn given_a_count_when_formatted_then_it_is_an_emf_line_cloudwatch_reads() {
        let line: Value =
            serde_json::from_str(&metric_line("receiver", "Unauthorized", 3, at())).expect("JSON");
        assert_eq!(line["Function"], "receiver");
        assert_eq!(line["Unauthorized"], 3);
        assert_eq!(line["_aws"]["Timestamp"], 1_795_707_001_000_u64);
        let metrics = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(metrics["Namespace"], "nphooks");
        assert_eq!(metrics["Dimensions"], json!([["Function"]]));
        assert_eq!(
            metrics["Metrics"],
            json!([{"Name": "Unauthorized", "Unit": "Count"}])
        );
        assert_eq!(line.as_object().expect("object").len(), 3, "{line}");
    }

    #[test]
    fn given_several_values_when_formatted_then_each_is_a_sample() {
        let metrics = [
            Metric {
                name: "Delivered",
                unit: Unit::Count,
                values: vec![2],
            },
            Metric {
                name: "EffectLatency",
                unit: Unit::Milliseconds,
                values: vec![120, 340],
            },
        ];
        let line: Value =
            serde_json::from_str(&emf_line("Integration", "crm", &metrics, at())).expect("JSON");
        assert_eq!(line["Integration"], "crm");
        assert_eq!(
            (&line["Delivered"], &line["EffectLatency"]),
            (&json!(2), &json!([120, 340]))
        );
        let definitions = &line["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert_eq!(
            definitions[1],
            json!({"Name": "EffectLatency", "Unit": "Milliseconds"})
        );
    }

    #[test]
    fn given_a_capture_when_a_count_is_emitted_then_the_capture_holds_it() {
        let capture = Capture::start();
        emit_count("receiver", receiver::ACCEPTED);
        let lines = capture.lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0][receiver::ACCEPTED], 1);
    }

    #[test]
    fn given_captured_lines_then_their_bytes_count_each_line_and_its_newline() {
        let capture = Capture::start();
        emit_count("receiver", receiver::ACCEPTED);
        emit_metric("receiver", receiver::REFUSED, 12);
        let printed: usize = capture
            .lines()
            .iter()
            .map(|l| l.to_string().len() + 1)
            .sum();
        assert_eq!(capture.bytes(), printed as u64);
    }
}
