//! `nphooks send`: a NextPhone-like webhook sender. It builds a body (a sample event, a
//! file, or an `events/receiver/` API Gateway event), signs it exactly as NextPhone does
//! (`X-NextPhone-Signature: sha256=<hex HMAC-SHA256(secret, body)>`, `Authorization:
//! Bearer <api key>`), POSTs it, and retries a failed delivery on NextPhone's schedule.
//! Neither the secret nor the API key is ever printed.

use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::time::Duration;

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
