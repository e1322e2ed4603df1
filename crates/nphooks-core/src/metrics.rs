//! CloudWatch Embedded Metric Format: one JSON log line per metric, which Lambda passes
//! through as it is and CloudWatch turns into a metric (namespace `nphooks`, dimension
//! `Function`); locally it is just a log line.

/// Emits a count of 1 for `metric`.
pub fn emit_count(function: &str, metric: &str) {
    emit_metric(function, metric, 1);
}

/// [`emit_count`] with a count of `value`.
#[allow(clippy::print_stdout)]
pub fn emit_metric(function: &str, metric: &str, value: u64) {
    println!(
        "{}",
        metric_line(function, metric, value, std::time::SystemTime::now())
    );
}

/// The EMF line for `value` of `metric`, stamped `at`.
fn metric_line(function: &str, metric: &str, value: u64, at: std::time::SystemTime) -> String {
    let timestamp = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    serde_json::json!({
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
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_count_when_formatted_then_it_is_an_emf_line_cloudwatch_reads() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_707_001_000);
        let line: serde_json::Value =
            serde_json::from_str(&metric_line("receiver", "Unauthorized", 3, at)).expect("JSON");
        assert_eq!(line["Function"], "receiver");
        assert_eq!(line["Unauthorized"], 3);
        assert_eq!(line["_aws"]["Timestamp"], 1_795_707_001_000_u64);
        let metrics = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(metrics["Namespace"], "nphooks");
        assert_eq!(metrics["Dimensions"], serde_json::json!([["Function"]]));
        assert_eq!(metrics["Metrics"][0]["Name"], "Unauthorized");
    }
}
