//! The body `nphooks send` sends: a sample event by name, a webhook body file, or the
//! body of an `events/receiver/` API Gateway event, with `--set` overrides applied.

use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use nphooks_core::webhook::{EventKind, type_name};
use nphooks_samples as samples;
use serde_json::{Map, Value};

/// Builds the body: `source` is a path to a JSON file (either a webhook body, or an API
/// Gateway v2 event file from `events/receiver/` whose `"body"` field holds the webhook,
/// base64-decoded when `"isBase64Encoded"`) or an event name: one of the six NextPhone
/// events (e.g. `call.ended`), optionally `call.ended:<call_type>` (e.g.
/// `call.ended:quote_request`). Then applies each `--set path=value` (dot path into the
/// JSON, creating objects as needed; the value is parsed as JSON when it parses, else
/// taken as a plain string).
///
/// Without `--set`, a file's body is returned byte-for-byte; with `--set` (and for event
/// names) the JSON is pretty-printed.
pub fn build_body(source: &str, sets: &[String]) -> anyhow::Result<String> {
    let body = load_source(source)?;
    if sets.is_empty() {
        return Ok(body);
    }
    let mut value: Value = serde_json::from_str(&body).map_err(|e| {
        anyhow!(
            "cannot apply --set: the body from `{source}` is not JSON ({e}); fix the file or drop --set"
        )
    })?;
    for set in sets {
        apply_set(&mut value, set)?;
    }
    Ok(serde_json::to_string_pretty(&value).expect("a JSON value serialises"))
}

/// The body named by `source`, before any `--set`.
fn load_source(source: &str) -> anyhow::Result<String> {
    if let Some((name, call_type)) = source.split_once(':')
        && let Some(kind) = EventKind::from_name(name)
    {
        if kind != EventKind::CallEnded {
            bail!(
                "`{source}`: a call type can only follow `call.ended` (e.g. `call.ended:quote_request`); use `{name}` alone"
            );
        }
        if call_type.is_empty() {
            bail!("`{source}` needs a call type after the colon, e.g. `call.ended:quote_request`");
        }
        let mut body = samples::webhook_body(EventKind::CallEnded);
        body["data"] = samples::call_ended_data(call_type);
        return Ok(pretty(&body));
    }
    if let Some(kind) = EventKind::from_name(source) {
        return Ok(pretty(&samples::webhook_body(kind)));
    }
    let path = Path::new(source);
    if !path.exists() && !looks_like_path(source) {
        let names: Vec<&str> = EventKind::ALL.iter().map(|kind| kind.as_str()).collect();
        bail!(
            "unknown event `{source}`: use one of {} (or `call.ended:<call_type>`), or the path to a JSON file",
            names.join(", ")
        );
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow!(
            "cannot read `{source}` ({e}): pass a readable JSON file (a webhook body or an events/receiver/*.json event) or an event name such as `call.ended`"
        )
    })?;
    body_of_file(source, text)
}

/// A webhook body file is sent as it is; an API Gateway event file sends its `body`.
fn body_of_file(source: &str, text: String) -> anyhow::Result<String> {
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(&text) else {
        return Ok(text);
    };
    if root.contains_key("event") || !root.contains_key("body") {
        return Ok(text);
    }
    let Some(Value::String(body)) = root.get("body") else {
        bail!(
            "`{source}` looks like an API Gateway event but its \"body\" is not a string; pass an events/receiver/*.json file or a webhook body"
        );
    };
    if root.get("isBase64Encoded") != Some(&Value::Bool(true)) {
        return Ok(body.clone());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .with_context(|| {
            format!("the \"body\" of `{source}` is marked isBase64Encoded but is not valid base64")
        })?;
    String::from_utf8(bytes).map_err(|_| {
        anyhow!("the decoded \"body\" of `{source}` is not UTF-8 text; a webhook body is JSON")
    })
}

fn looks_like_path(source: &str) -> bool {
    source.contains('/') || source.contains('\\') || source.ends_with(".json")
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("a JSON value serialises")
}

/// Applies one `path=value`.
fn apply_set(root: &mut Value, set: &str) -> anyhow::Result<()> {
    let usage = "expected `path=value`, e.g. `--set data.caller.name=Bob` or `--set data.duration_seconds=42`";
    let Some((path, raw)) = set.split_once('=') else {
        bail!("bad --set `{set}`: {usage}");
    };
    let path = path.trim();
    let segments: Vec<&str> = path.split('.').collect();
    if path.is_empty() || segments.iter().any(|segment| segment.is_empty()) {
        bail!("bad --set `{set}`: the path is empty or has an empty segment; {usage}");
    }
    let value =
        serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    let (last, parents) = segments.split_last().expect("at least one segment");
    let mut node = root;
    for (depth, segment) in parents.iter().enumerate() {
        if node.is_null() {
            *node = Value::Object(Map::new());
        }
        let here = segments[..depth].join(".");
        node = match node {
            Value::Object(map) => map
                .entry(*segment)
                .or_insert_with(|| Value::Object(Map::new())),
            Value::Array(items) => {
                let index = array_index(set, &here, segment, items.len())?;
                &mut items[index]
            }
            other => bail!(
                "bad --set `{set}`: `{}` is {}, not an object; set `{}` itself instead",
                display_path(&here),
                type_name(other),
                display_path(&here)
            ),
        };
    }
    let here = parents.join(".");
    if node.is_null() {
        *node = Value::Object(Map::new());
    }
    match node {
        Value::Object(map) => {
            map.insert((*last).to_owned(), value);
        }
        Value::Array(items) => {
            let index = array_index(set, &here, last, items.len())?;
            items[index] = value;
        }
        other => bail!(
            "bad --set `{set}`: `{}` is {}, not an object; set `{}` itself instead",
            display_path(&here),
            type_name(other),
            display_path(&here)
        ),
    }
    Ok(())
}

fn array_index(set: &str, here: &str, segment: &str, len: usize) -> anyhow::Result<usize> {
    match segment.parse::<usize>() {
        Ok(index) if index < len => Ok(index),
        _ => bail!(
            "bad --set `{set}`: `{}` is an array of {len}, so `{segment}` must be an index below {len}",
            display_path(here)
        ),
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "the body" } else { path }
}
