//! Outbound HTTP: one client per cold start, timeouts on connect and total, no redirects,
//! `https://` only unless `NPHOOKS_ALLOW_HTTP=1`. Responses are classified once, here.

use std::net::IpAddr;
use std::time::Duration;

use nphooks_core::ConfigError;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use url::{Host, Url};

use crate::failure::{FailureReason, RetryAfter, SinkError};
use crate::{Error, Result};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The most of an answer's body that is read: enough for any JSON a sink parses, and a
/// peer streaming without end costs a 128 MB function nothing more. The rest is dropped
/// with the connection. Bodies are never stored nor quoted in failures.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A configured outbound URL that passed the policy. `Display` never shows a path or
/// query when the URL itself is a secret (a Slack webhook).
#[derive(Clone)]
pub struct OutboundUrl {
    url: Url,
    secret: bool,
}

impl OutboundUrl {
    /// `name` is the configuration variable, for the error message. `secret` URLs are
    /// redacted in logs and errors.
    pub fn parse(name: &'static str, value: &str, allow_http: bool, secret: bool) -> Result<Self> {
        let bad = |problem: String| Error::from(ConfigError::new(name, problem));
        let url = Url::parse(value).map_err(|e| {
            bad(if secret {
                format!("is not a valid URL ({e})")
            } else {
                format!("is not a valid URL ({e}): {value:?}")
            })
        })?;
        let host = url.host().ok_or_else(|| bad("has no host".into()))?;
        let loopback = match host {
            Host::Domain(domain) => domain.eq_ignore_ascii_case("localhost"),
            Host::Ipv4(ip) => IpAddr::V4(ip).is_loopback(),
            Host::Ipv6(ip) => IpAddr::V6(ip).is_loopback(),
        };
        match url.scheme() {
            "https" if !loopback || allow_http => {}
            "http" if allow_http => {}
            "https" => return Err(bad("points at a loopback address, allowed only with NPHOOKS_ALLOW_HTTP=1 (local runs and tests)".into())),
            "http" => return Err(bad("must be an https:// URL (http:// is allowed only with NPHOOKS_ALLOW_HTTP=1, for local runs and tests)".into())),
            other => return Err(bad(format!("must be an https:// URL, not {other}://"))),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials in the URL".into()));
        }
        Ok(OutboundUrl { url, secret })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// This URL with `path` appended (for API bases such as HubSpot's).
    pub fn join(&self, path: &str) -> Url {
        let mut url = self.url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}/{}", path.trim_start_matches('/')));
        url
    }
}

impl std::fmt::Display for OutboundUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.secret {
            write!(
                f,
                "{}://{}/<redacted>",
                self.url.scheme(),
                self.url.host_str().unwrap_or_default()
            )
        } else {
            write!(f, "{}", self.url)
        }
    }
}

impl std::fmt::Debug for OutboundUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OutboundUrl({self})")
    }
}

/// An HTTP client with the default timeouts.
pub fn client() -> Result<reqwest::Client> {
    client_within(REQUEST_TIMEOUT)
}

/// The one HTTP client of a processor: no request (connecting included) outlasts
/// `sink_timeout`, nor [`REQUEST_TIMEOUT`]; no connection attempt [`CONNECT_TIMEOUT`].
pub fn client_within(sink_timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(sink_timeout))
        .timeout(REQUEST_TIMEOUT.min(sink_timeout))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("nphooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::HttpClient(e.to_string()))
}

/// A successful response: status and body text.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
}

/// Sends a request and classifies the result: 2xx → `Ok`; 408, 429, 5xx,
/// timeouts and connection errors → transient (with `Retry-After` when given); any other
/// status (including redirects, which are not followed) → permanent. The peer's answer
/// body never becomes part of the failure: it may echo the caller's data.
pub async fn send(request: reqwest::RequestBuilder) -> Result<Reply, SinkError> {
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    let retry_after = retry_after(response.headers());
    classify(status, retry_after)?;
    Ok(Reply {
        status,
        body: read_capped(response).await,
    })
}

/// A request that got no answer: timeout, no connection, a request we could not build,
/// or a failure in transit.
pub fn transport_error(e: reqwest::Error) -> SinkError {
    if e.is_timeout() {
        SinkError::transient(FailureReason::Timeout)
    } else if e.is_connect() {
        SinkError::transient(FailureReason::ConnectFailed)
    } else if e.is_builder() {
        SinkError::permanent(FailureReason::Misconfigured)
    } else {
        SinkError::transient(FailureReason::RequestFailed)
    }
}

/// At most [`MAX_BODY_BYTES`] of the body, as text (invalid UTF-8 replaced).
pub async fn read_capped(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_BODY_BYTES {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// Classifies a status; see [`send`]. `Ok(())` for 2xx.
pub fn classify(status: StatusCode, retry_after: Option<RetryAfter>) -> Result<(), SinkError> {
    let (reason, retryable) = match status.as_u16() {
        200..=299 => return Ok(()),
        408 => (FailureReason::RequestTimeout, true),
        429 => (FailureReason::RateLimited, true),
        500..=599 => (FailureReason::ServerError, true),
        400 | 422 => (FailureReason::InvalidPayload, false),
        401 => (FailureReason::Unauthorized, false),
        403 => (FailureReason::Forbidden, false),
        404 | 410 => (FailureReason::NotFound, false),
        409 => (FailureReason::Conflict, false),
        _ => (FailureReason::UnexpectedStatus, false),
    };
    let error = if retryable {
        SinkError::transient(reason).with_retry(retry_after)
    } else {
        SinkError::permanent(reason)
    };
    Err(error.with_status(status))
}

/// The delivery key as a header value: bytes outside printable ASCII, and `%`, are
/// percent-encoded, so any call id gives a valid, distinct key.
pub fn idempotency_key(delivery_key: &str) -> String {
    let mut out = String::with_capacity(delivery_key.len());
    for byte in delivery_key.bytes() {
        if byte.is_ascii_graphic() && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `Retry-After` as delay-seconds or an HTTP date, as given: the wait is measured (and
/// capped) by the runtime, on its clock ([`RetryAfter::wait_from`]).
pub fn retry_after(headers: &HeaderMap) -> Option<RetryAfter> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    match value.parse::<u64>() {
        Ok(seconds) => Some(RetryAfter::Delay(Duration::from_secs(seconds))),
        Err(_) => httpdate::parse_http_date(value).ok().map(RetryAfter::At),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_outbound_urls_then_only_https_passes_unless_local_mode() {
        let ok = |v: &str, allow: bool| {
            OutboundUrl::parse("SLACK_WEBHOOK_URL", v, allow, true).map(|_| ())
        };
        assert!(ok("https://hooks.slack.com/services/T0/B0/secret", false).is_ok());
        for (value, expected) in [
            ("http://hooks.slack.com/x", "must be an https:// URL"),
            ("https://127.0.0.1:9/x", "loopback"),
            ("https://localhost/x", "loopback"),
            ("ftp://example.com/x", "not ftp://"),
            ("not a url", "is not a valid URL"),
            ("https://user:pw@example.com/x", "credentials"),
        ] {
            let message = ok(value, false).expect_err(value).to_string();
            assert!(
                message.starts_with("configuration variable SLACK_WEBHOOK_URL"),
                "{message}"
            );
            assert!(message.contains(expected), "{value}: {message}");
        }
        assert!(ok("http://127.0.0.1:9/x", true).is_ok());
    }

    #[test]
    fn given_a_secret_url_then_display_hides_its_path() {
        let url = OutboundUrl::parse(
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T0/B0/s3cr3t",
            false,
            true,
        )
        .expect("valid");
        assert_eq!(url.to_string(), "https://hooks.slack.com/<redacted>");
        assert!(!format!("{url:?}").contains("s3cr3t"));
    }

    #[test]
    fn given_statuses_then_they_are_classified_transient_or_permanent() {
        let kind = |status: u16| match classify(StatusCode::from_u16(status).expect("valid"), None)
        {
            Ok(()) => "ok",
            Err(e) if e.retryable => "transient",
            Err(_) => "permanent",
        };
        for (status, expected) in [
            (200, "ok"),
            (204, "ok"),
            (301, "permanent"),
            (400, "permanent"),
            (401, "permanent"),
            (404, "permanent"),
            (408, "transient"),
            (410, "permanent"),
            (429, "transient"),
            (500, "transient"),
            (503, "transient"),
        ] {
            assert_eq!(kind(status), expected, "{status}");
        }
    }

    #[test]
    fn given_retry_after_headers_then_seconds_and_dates_are_read() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let header = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, v.parse().expect("valid header"));
            retry_after(&h)
        };
        assert_eq!(header("7"), Some(RetryAfter::Delay(Duration::from_secs(7))));
        assert_eq!(
            header(&httpdate::fmt_http_date(now + Duration::from_secs(30))),
            Some(RetryAfter::At(now + Duration::from_secs(30)))
        );
        assert_eq!(header("soon"), None);
    }
}
