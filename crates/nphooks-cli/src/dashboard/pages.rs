//! The pages, rendered from the template files under `templates/dashboard/` by
//! minijinja with HTML escaping on (every value is escaped unless marked safe: only the
//! server-made SVG chart is).

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use minijinja::{Environment, Value};
use nphooks_core::routing::Integration;
use nphooks_core::webhook::EventKind;
use serde_json::json;

use super::source::{Badge, DeliveryRow, Detail, Filter, Health, IntegrationState, Letter, Page};

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // An absent value (a call type the webhook did not give, no failure reason, an
        // unset filter) is written as nothing, not "none"; everything else is escaped.
        env.set_formatter(|out, state, value| {
            let value = if value.is_none() {
                &Value::UNDEFINED
            } else {
                value
            };
            minijinja::escape_formatter(out, state, value)
        });
        for (name, source) in [
            (
                "base.html",
                include_str!("../../templates/dashboard/base.html"),
            ),
            (
                "deliveries.html",
                include_str!("../../templates/dashboard/deliveries.html"),
            ),
            (
                "detail.html",
                include_str!("../../templates/dashboard/detail.html"),
            ),
            (
                "dead_letters.html",
                include_str!("../../templates/dashboard/dead_letters.html"),
            ),
            (
                "health.html",
                include_str!("../../templates/dashboard/health.html"),
            ),
        ] {
            env.add_template(name, source)
                .expect("the dashboard's templates parse (tests/dashboard.rs renders each)");
        }
        env
    })
}

/// The stylesheet and script, embedded.
pub const CSS: &str = include_str!("../../templates/dashboard/dashboard.css");
pub const JS: &str = include_str!("../../templates/dashboard/dashboard.js");

/// What every page needs besides its own data.
#[derive(Debug, Clone, Copy)]
pub struct Common<'a> {
    pub csrf: &'a str,
    pub read_only: bool,
}

fn render(name: &str, page: &str, title: &str, common: Common<'_>, data: Value) -> String {
    let context = minijinja::context! {
        page => page,
        title => title,
        csrf => common.csrf,
        read_only => common.read_only,
        ..data
    };
    environment()
        .get_template(name)
        .and_then(|t| t.render(context))
        .unwrap_or_else(|e| {
            // Template errors name templates and variables; the page shows none of it.
            tracing::error!(error = %e, template = name, "a dashboard page could not be rendered");
            "<!doctype html><p>This page could not be rendered: the log says why.</p>".to_owned()
        })
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of an epoch second.
pub fn time_text(epoch_seconds: u64) -> String {
    let text = nphooks_core::rfc3339(UNIX_EPOCH + Duration::from_secs(epoch_seconds));
    text.replace('T', " ").chars().take(19).collect()
}

/// A path segment with everything but unreserved characters percent-encoded.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn detail_href(key: &str) -> String {
    format!("/deliveries/{}", encode(key))
}

/// A row as the page and `/api/deliveries` show it.
pub fn row_json(row: &DeliveryRow) -> serde_json::Value {
    json!({
        "key": row.key,
        "href": detail_href(&row.key),
        "event": row.event,
        "call_type": row.call_type,
        "received": time_text(row.received_at),
        "badges": row.integrations.iter().map(|i| json!({
            "integration": i.integration.as_str(),
            "state": i.badge.as_str(),
            "label": badge_label(i),
            "next_attempt": i.next_attempt_at.map(time_text),
            "attempts": i.attempts.map_or_else(|| "–".to_owned(), |a| a.to_string()),
            "reason": i.reason,
            "updated": i.updated_at.map(time_text),
        })).collect::<Vec<_>>(),
    })
}

/// A badge's text: the integration and its state, and when a retry is due, its time
/// of day (UTC).
fn badge_label(state: &IntegrationState) -> String {
    let mut label = format!("{} · {}", state.integration, state.badge.as_str());
    if let Some(at) = state.next_attempt_at {
        let time = time_text(at);
        label.push_str(&format!(" · next {}", time.get(11..).unwrap_or(&time)));
    }
    label
}

/// The query string of `filter` (and a cursor): no caller data, only these fields.
pub fn query(filter: &Filter, cursor: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let pairs = [
        ("event", filter.event.as_deref()),
        ("call_type", filter.call_type.as_deref()),
        ("status", filter.status.map(Badge::as_str)),
        ("date", filter.date.as_deref()),
        ("cursor", cursor),
    ];
    for (name, value) in pairs {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    query.finish()
}

/// The deliveries page `page`, read from `cursor` (its live refresh reads the same page).
pub fn deliveries(
    page: &Page,
    filter: &Filter,
    cursor: Option<&str>,
    common: Common<'_>,
) -> String {
    let data = json!({
        "rows": page.rows.iter().map(row_json).collect::<Vec<_>>(),
        "next": page.next.as_deref().map(|c| format!("/?{}", query(filter, Some(c)))),
        "api": format!("/api/deliveries?{}", query(filter, cursor)),
        "filter": {
            "event": filter.event, "call_type": filter.call_type,
            "status": filter.status.map(Badge::as_str), "date": filter.date,
        },
        "filtered": *filter != Filter::default(),
        "events": EventKind::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "statuses": Badge::ALL.iter().map(|b| b.as_str()).collect::<Vec<_>>(),
    });
    render(
        "deliveries.html",
        "deliveries",
        "Deliveries",
        common,
        Value::from_serialize(&data),
    )
}

/// The caller fields the detail page offers to reveal (their values are fetched on click).
pub const CALLER_FIELDS: [&str; 3] = ["name", "phone", "email"];

pub fn detail(detail: &Detail, common: Common<'_>) -> String {
    let data = json!({
        "row": row_json(&detail.row),
        "received": detail.received_at.clone().unwrap_or_else(|| time_text(detail.row.received_at)),
        "caller": CALLER_FIELDS,
    });
    render(
        "detail.html",
        "detail",
        "Delivery",
        common,
        Value::from_serialize(&data),
    )
}

/// A reason's classified code: the failure reason's leading word (`server_error (503)` →
/// `server_error`), after a "retry budget spent:" or "expired:" prefix.
pub fn reason_code(reason: &str) -> String {
    let reason = reason.rsplit(": ").next().unwrap_or(reason);
    let code: String = reason
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
        .collect();
    if code.is_empty() {
        "max_receives".to_owned()
    } else {
        code
    }
}

fn age_text(sent_at_ms: Option<u64>, now: SystemTime) -> String {
    let Some(sent) = sent_at_ms else {
        return "unknown".to_owned();
    };
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let secs = now_ms.saturating_sub(sent) / 1000;
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    }
}

pub fn dead_letters(dlqs: &BTreeMap<Integration, Vec<Letter>>, common: Common<'_>) -> String {
    let now = SystemTime::now();
    let sections: Vec<serde_json::Value> = Integration::ALL
        .iter()
        .map(|integration| {
            let letters = dlqs.get(integration).map(Vec::as_slice).unwrap_or_default();
            let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
            for letter in letters {
                *reasons.entry(reason_code(&letter.reason)).or_default() += 1;
            }
            let oldest = letters.iter().filter_map(|l| l.sent_at_ms).min();
            json!({
                "integration": integration.as_str(),
                "count": letters.len(),
                "oldest": age_text(oldest, now),
                "reasons": reasons.iter().map(|(code, count)| json!({"code": code, "count": count})).collect::<Vec<_>>(),
                "letters": letters.iter().map(|l| json!({
                    "id": l.id,
                    "delivery_key": l.delivery_key,
                    "href": detail_href(&l.delivery_key),
                    "reason": l.reason,
                    "age": age_text(l.sent_at_ms, now),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    render(
        "dead_letters.html",
        "dead-letters",
        "Dead letters",
        common,
        Value::from_serialize(json!({"dlqs": sections})),
    )
}

pub fn health(health: &[Health], chart: String, common: Common<'_>) -> String {
    let seconds = |s: Option<u64>| s.map_or_else(|| "–".to_owned(), |s| format!("{s} s"));
    let figures = |f: &super::source::Figures| {
        json!({
            "delivered": f.delivered,
            "retried": f.retried.map_or_else(|| "–".to_owned(), |r| r.to_string()),
            "dead_lettered": f.dead_lettered,
            "p50": seconds(f.p50),
            "p95": seconds(f.p95),
        })
    };
    let rows: Vec<_> = health
        .iter()
        .map(|h| json!({"integration": h.integration.as_str(), "hour": figures(&h.hour), "day": figures(&h.day)}))
        .collect();
    let note = if health.iter().all(|h| h.day.retried.is_none()) {
        "Retries are not recorded in the table (–): the CloudWatch dashboard shows them."
    } else {
        ""
    };
    // The chart is markup this server made from numbers and integration names: the one
    // value marked safe (not escaped).
    let context = minijinja::context! {
        health => Value::from_serialize(rows),
        note => note,
        chart => Value::from_safe_string(chart),
    };
    render("health.html", "health", "Health", common, context)
}

#[cfg(test)]
mod tests;
