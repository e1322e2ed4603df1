//! `nphooks send`: a NextPhone-like webhook sender. It builds a body (a sample event, a
//! file, or an `events/receiver/` API Gateway event), signs it exactly as NextPhone does
//! (`X-NextPhone-Signature: sha256=<hex HMAC-SHA256(secret, body)>`, `Authorization:
//! Bearer <api key>`), POSTs it, and retries a failed delivery on NextPhone's schedule.
//! Neither the secret nor the API key is ever printed.

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use nphooks_core::webhook::{EventKind, type_name};
use nphooks_samples as samples;
use serde_json::{Map, Value};

/// The `User-Agent` every attempt carries.
pub const USER_AGENT: &str = "NextPhone-Webhooks/1.0 (nphooks send)";
/// How long one attempt waits for an answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The header the signature goes in (as NextPhone spells it).
pub const SIGNATURE_HEADER: &str = "X-NextPhone-Signature";

/// How `send` retries a failed delivery (non-2xx or connection error), like NextPhone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RetrySchedule {
    /// One attempt, no retry.
    None,
    /// NextPhone's schedule: retries after 5 min, 15 min and 1 h.
    Nextphone,
    /// NextPhone's schedule compressed 300×: retries after 1 s, 3 s and 12 s.
    Fast,
}

impl RetrySchedule {
    /// The waits before each retry, in order (one attempt more than there are delays).
    pub fn delays(self) -> Vec<Duration> {
        const NEXTPHONE_SECS: [u64; 3] = [5 * 60, 15 * 60, 60 * 60];
        match self {
            RetrySchedule::None => Vec::new(),
            RetrySchedule::Nextphone => NEXTPHONE_SECS.map(Duration::from_secs).to_vec(),
            RetrySchedule::Fast => NEXTPHONE_SECS
                .map(|secs| Duration::from_secs(secs / 300))
                .to_vec(),
        }
    }
}

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

/// The `X-NextPhone-Signature` header value for `body`.
pub fn signature_header(secret: &str, body: &[u8]) -> String {
    nphooks_core::signature::sign(secret, body)
}

/// Where and how to send.
#[derive(Clone)]
pub struct SendOptions {
    pub url: String,
    pub secret: String,
    pub api_key: Option<String>,
    pub retries: RetrySchedule,
}

impl std::fmt::Debug for SendOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendOptions")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("retries", &self.retries)
            .finish()
    }
}

/// One attempt's result: the status and body of the answer, or why there was none.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: Option<u16>,
    pub body: String,
    pub error: Option<String>,
}

impl Attempt {
    /// Whether the receiver answered 2xx.
    pub fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// A boxed wait, as returned by the `sleep` of [`send_with`].
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
/// How [`send_with`] waits between attempts.
pub type SleepFn = dyn Fn(Duration) -> SleepFuture + Sync;

/// [`send_with`], waiting with `tokio::time::sleep`.
pub async fn send(options: &SendOptions, body: &str) -> Vec<Attempt> {
    send_with(options, body, &|delay| Box::pin(tokio::time::sleep(delay))).await
}

/// POSTs `body` as NextPhone does (`Content-Type: application/json`, `Authorization:
/// Bearer <api_key>` when given, `X-NextPhone-Signature`, `User-Agent`
/// [`USER_AGENT`]) with a [`REQUEST_TIMEOUT`]; on a non-2xx answer or a connection error
/// waits the next delay of the schedule (with `sleep`) and tries again with the same body
/// and headers. Prints one line per attempt (and per wait) to stdout; returns every attempt.
pub async fn send_with(options: &SendOptions, body: &str, sleep: &SleepFn) -> Vec<Attempt> {
    let client = match reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(USER_AGENT)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            let attempt = Attempt {
                status: None,
                body: String::new(),
                error: Some(format!("could not start an HTTP client: {e}")),
            };
            say(&format!("attempt 1: {}", attempt_summary(&attempt)));
            return vec![attempt];
        }
    };
    let signature = signature_header(&options.secret, body.as_bytes());
    let mut delays = options.retries.delays().into_iter();
    let mut attempts = Vec::new();
    loop {
        let mut request = client
            .post(&options.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, &signature)
            .body(body.to_owned());
        if let Some(api_key) = &options.api_key {
            request = request.bearer_auth(api_key);
        }
        let (attempt, retryable) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                let attempt = Attempt {
                    status: Some(status),
                    body,
                    error: None,
                };
                (attempt, true)
            }
            Err(e) => {
                let (error, retryable) = describe_error(&options.url, &e);
                let attempt = Attempt {
                    status: None,
                    body: String::new(),
                    error: Some(error),
                };
                (attempt, retryable)
            }
        };
        say(&format!(
            "attempt {}: {}",
            attempts.len() + 1,
            attempt_summary(&attempt)
        ));
        let done = attempt.succeeded() || !retryable;
        attempts.push(attempt);
        if done {
            return attempts;
        }
        let Some(delay) = delays.next() else {
            return attempts;
        };
        say(&format!("retrying in {}", human_duration(delay)));
        sleep(delay).await;
    }
}

/// The exit code for a run (0 when the last attempt got a 2xx, 1 otherwise) and, for a
/// failure, one sentence saying what went wrong and what to check.
pub fn verdict(attempts: &[Attempt]) -> (i32, Option<String>) {
    let Some(last) = attempts.last() else {
        return (1, Some("nothing was sent".to_owned()));
    };
    if last.succeeded() {
        return (0, None);
    }
    let tries = match attempts.len() {
        1 => String::new(),
        n => format!(" (after {n} attempts)"),
    };
    let sentence = match (last.status, &last.error) {
        (Some(401), _) => format!(
            "the receiver rejected the signature or API key (401): check --secret / {} and --api-key / {} match the receiver's{tries}",
            nphooks_core::config::WEBHOOK_SECRETS_VAR,
            nphooks_core::config::API_KEY_VAR,
        ),
        (Some(status), _) => {
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|code| code.canonical_reason())
                .map(|reason| format!(" {reason}"))
                .unwrap_or_default();
            let body = one_line(&last.body);
            let answer = if body.is_empty() {
                String::new()
            } else {
                format!(": {body}")
            };
            format!("the receiver answered {status}{reason}{tries}{answer}")
        }
        (None, Some(error)) => format!("{error}{tries}"),
        (None, None) => format!("the delivery failed{tries}"),
    };
    (1, Some(sentence))
}

// ---------------------------------------------------------------------------------------
// Building the body.

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

// ---------------------------------------------------------------------------------------
// Sending.

/// One sentence for a request that got no answer, and whether a retry may help.
fn describe_error(url: &str, error: &reqwest::Error) -> (String, bool) {
    if error.is_builder() {
        return (
            format!(
                "`{url}` is not a valid URL ({error}); pass e.g. --url http://127.0.0.1:3000/webhook/nextphone"
            ),
            false,
        );
    }
    if error.is_connect() {
        return (
            format!("could not connect to {url} — is `nphooks serve` running?"),
            true,
        );
    }
    if error.is_timeout() {
        return (
            format!(
                "no answer from {url} within {} s (NextPhone wants a 2xx within 5 s)",
                REQUEST_TIMEOUT.as_secs()
            ),
            true,
        );
    }
    (format!("the request to {url} failed: {error}"), true)
}

fn attempt_summary(attempt: &Attempt) -> String {
    match (attempt.status, &attempt.error) {
        (Some(status), _) => {
            let body = one_line(&attempt.body);
            if body.is_empty() {
                status.to_string()
            } else {
                format!("{status} {body}")
            }
        }
        (None, Some(error)) => error.clone(),
        (None, None) => "no answer".to_owned(),
    }
}

/// A response body on one line, cut to a readable length.
fn one_line(body: &str) -> String {
    const MAX_CHARS: usize = 500;
    let joined = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= MAX_CHARS {
        joined
    } else {
        let cut: String = joined.chars().take(MAX_CHARS).collect();
        format!("{cut}…")
    }
}

/// `1s`, `3s`, `5m`, `1h`, `1m30s`, `250ms`.
fn human_duration(delay: Duration) -> String {
    let secs = delay.as_secs();
    if secs == 0 {
        return format!("{}ms", delay.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// One line to stdout (a closed pipe is not an error worth failing a delivery for).
fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_delays_when_shown_then_they_read_as_minutes_hours_seconds() {
        assert_eq!(human_duration(Duration::from_secs(300)), "5m");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(human_duration(Duration::from_secs(12)), "12s");
        assert_eq!(human_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
    }
}
