//! The bill as printed: requests per delivery by function, service and operation, write
//! units, and the monthly bill at [`super::prices`].

use std::fmt::Write;

use nphooks_testkit::fault_proxy::OpUsage;

use super::prices::{self, Price};
use super::{FunctionRun, Measured};

/// Every function's memory: template.yaml's `Globals` (no function overrides it; a
/// test holds the template to this).
pub const MEMORY_MB: f64 = 128.0;

/// Billed duration of one receiver invocation, stated: the issue measured 2.3 ms of CPU
/// per accepted webhook at full speed with two writes; one write less is about 0.3 ms
/// less, and a 128 MB function gets ~7 % of a vCPU (×14), about 28 ms; plus in-region
/// latency of one `PutItem` and the four concurrent sends, ~12 ms.
pub const RECEIVER_MS: f64 = 40.0;

/// Billed duration of one processor invocation (a batch of 10, records concurrent),
/// stated: the destination's answer (CRM, Slack, SMTP: 100–300 ms in the published
/// latencies of those APIs) dominates; claim and complete add ~10 ms each.
pub const PROCESSOR_BATCH_MS: f64 = 300.0;

/// Lambda's own lines per successful invocation: none, since template.yaml sets
/// `SystemLogLevel: WARN` (START and REPORT are INFO; they were 340 bytes).
pub const PLATFORM_LOG_BYTES: f64 = 0.0;

/// Deliveries a processor takes per invocation at full SQS batches.
pub const BATCH: f64 = 10.0;

fn service_name(service: &str) -> &str {
    match service {
        "DynamoDB_20120810" => "DynamoDB",
        "AmazonSQS" => "SQS",
        "secretsmanager" => "Secrets Manager",
        other => other,
    }
}

/// What one function's usage adds up to per delivery.
fn per(total: u64, deliveries: u64) -> f64 {
    total as f64 / deliveries.max(1) as f64
}

fn sum(run: &FunctionRun, field: impl Fn(&OpUsage) -> u64) -> u64 {
    run.usage.values().map(field).sum()
}

fn line(out: &mut String, cost: &mut f64, price: Price, quantity: f64, what: &str) {
    let dollars = quantity * price.dollars;
    *cost += dollars;
    let quantity = if quantity < 0.01 {
        format!("{quantity:.2e}")
    } else {
        format!("{quantity:.3}")
    };
    let _ = writeln!(
        out,
        "| {} | {quantity} {} | {what} | ${:.2} |",
        price.name,
        price.unit,
        dollars * 1e6
    );
}

/// Bytes each function wrote to stdout per delivery, log lines and EMF lines apart.
fn logs_table<'a>(
    out: &mut String,
    functions: impl Iterator<Item = (String, &'a FunctionRun)>,
    n: u64,
) {
    out.push_str("\n| function | log lines bytes / delivery | EMF lines / delivery | EMF bytes / delivery | logged bytes / delivery |\n|---|---|---|---|---|\n");
    let mut total = 0;
    for (name, function) in functions {
        let logged = function.logged;
        total += logged.bytes();
        let _ = writeln!(
            out,
            "| {name} | {:.1} | {:.2} | {:.1} | {:.1} |",
            per(logged.tracing_bytes, n),
            per(logged.metric_lines, n),
            per(logged.metric_bytes, n),
            per(logged.bytes(), n),
        );
    }
    let _ = writeln!(out, "| **all** | | | | **{:.1}** |", per(total, n));
}

/// The bill of a run, for `per_month` deliveries.
pub fn render(run: &Measured, per_month: u64) -> String {
    let n = run.deliveries;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## {n} demo deliveries, body {} bytes (call.ended demo_request → crm, email, slack, notify), counted at the endpoint\n",
        run.body_bytes
    );
    out.push_str("| function | service | operation | requests / delivery | SQS billed (64 KB) | DynamoDB WCU | bytes sent |\n|---|---|---|---|---|---|---|\n");
    let functions = std::iter::once(("receiver".to_owned(), &run.receiver))
        .chain(run.processors.iter().map(|(i, r)| (i.to_string(), r)));
    let (mut writes, mut reads, mut sqs) = (0, 0, 0);
    for (name, function) in functions.clone() {
        for ((service, operation), usage) in &function.usage {
            let _ = writeln!(
                out,
                "| {name} | {} | {operation} | {:.2} | {:.2} | {:.2} | {:.0} |",
                service_name(service),
                per(usage.requests, n),
                per(usage.billed_requests, n),
                per(usage.write_units, n),
                per(usage.request_bytes, n),
            );
        }
        writes += sum(function, |u| u.write_units);
        reads += sum(function, |u| u.read_units);
        sqs += sum(function, |u| u.billed_requests);
    }
    let receiver_writes = run
        .receiver
        .usage
        .iter()
        .filter(|((service, op), _)| service == "DynamoDB_20120810" && op != "GetItem")
        .map(|(_, u)| u.requests)
        .sum::<u64>();
    let _ = writeln!(
        out,
        "\nReceiver: {:.2} DynamoDB writes and {:.2} SQS sends per delivery. DynamoDB write units per delivery: {:.2}. SQS billed requests per delivery: {:.2}.",
        per(receiver_writes, n),
        per(
            run.receiver
                .usage
                .iter()
                .filter(|((_, op), _)| op == "SendMessage")
                .map(|(_, u)| u.requests)
                .sum(),
            n
        ),
        per(writes, n),
        per(sqs, n),
    );
    let logged: u64 = functions.clone().map(|(_, f)| f.logged.bytes()).sum();
    let busy: Vec<String> = functions
        .clone()
        .map(|(name, f)| {
            let ms = f.busy.as_secs_f64() * 1000.0 / f.invocations.max(1) as f64;
            format!("{name} {ms:.1} ms")
        })
        .collect();
    let _ = writeln!(
        out,
        "Measured here per invocation (moto on loopback, not Lambda): {}.",
        busy.join(", "),
    );
    logs_table(&mut out, functions, n);
    let processor_invocations = 4.0 / BATCH;
    let invocations = 1.0 + processor_invocations;
    let gb_seconds =
        MEMORY_MB / 1024.0 * (RECEIVER_MS + processor_invocations * PROCESSOR_BATCH_MS) / 1000.0;
    let log_gb = (per(logged, n) + invocations * PLATFORM_LOG_BYTES) / 1e9;
    let _ = writeln!(
        out,
        "\n### Per million deliveries (prices of {}), then {per_month} a month\n\n| item | per delivery | basis | $ per million |\n|---|---|---|---|",
        prices::CHECKED
    );
    let mut cost = 0.0;
    line(
        &mut out,
        &mut cost,
        prices::HTTP_API_REQUEST,
        1.0,
        "one POST under 512 KB",
    );
    line(
        &mut out,
        &mut cost,
        prices::LAMBDA_REQUEST,
        invocations,
        "receiver + 4 processors at batches of 10",
    );
    let basis = format!(
        "{MEMORY_MB} MB; receiver {RECEIVER_MS} ms, processor batch {PROCESSOR_BATCH_MS} ms (stated)"
    );
    line(
        &mut out,
        &mut cost,
        prices::LAMBDA_ARM_GB_SECOND,
        gb_seconds,
        &basis,
    );
    line(
        &mut out,
        &mut cost,
        prices::SQS_REQUEST,
        per(sqs, n),
        "counted: sends, receives, deletes",
    );
    line(
        &mut out,
        &mut cost,
        prices::DYNAMODB_WRITE_UNIT,
        per(writes, n),
        "counted, from item sizes",
    );
    line(
        &mut out,
        &mut cost,
        prices::DYNAMODB_READ_UNIT,
        per(reads, n),
        "counted",
    );
    line(
        &mut out,
        &mut cost,
        prices::LOGS_INGESTED_GB,
        log_gb,
        "measured: log and EMF lines; platform lines off (SystemLogLevel WARN)",
    );
    let _ = writeln!(
        out,
        "| **total** | | | **${:.2}** |\n\nFor {per_month} deliveries a month: ${:.2}, plus Secrets Manager's fixed ${:.2} (5 secrets) and ${:.4} per 10,000 cold starts.",
        cost * 1e6,
        cost * per_month as f64,
        5.0 * prices::SECRET_MONTH.dollars,
        10_000.0 * prices::SECRET_CALL.dollars,
    );
    out
}

/// The prices and their sources.
pub fn footnotes() -> String {
    let mut out = format!(
        "\nPrices (us-east-1, no free tier, checked {}):\n",
        prices::CHECKED
    );
    for price in prices::ALL {
        // A price of cents or more per unit (a GB, a secret-month) reads best per unit.
        let (scale, per) = if price.dollars >= 0.01 {
            (1.0, "per")
        } else {
            (1e6, "per million")
        };
        let _ = writeln!(
            out,
            "- {}: ${:.4} {per} {} ({})",
            price.name,
            price.dollars * scale,
            price.unit,
            price.source
        );
    }
    out.push_str("Not counted: the event source mapping's empty long polls of idle queues (a fixed few requests a minute per queue), data transfer, storage.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_template_then_every_function_has_the_memory_the_bill_uses() {
        let template = include_str!("../../../../template.yaml");
        let sizes: Vec<&str> = template
            .lines()
            .filter_map(|l| l.trim().strip_prefix("MemorySize:"))
            .map(str::trim)
            .collect();
        assert_eq!(sizes, [format!("{MEMORY_MB}").trim_end_matches(".0")]);
    }
}
