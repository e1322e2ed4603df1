//! Why a sink failed: a classified reason and a status, never text parsed back, never a
//! peer's answer body (it may echo the caller's data we sent).

use std::time::{Duration, SystemTime};

pub use reqwest::StatusCode;

/// The longest wait a peer's `Retry-After` is honoured for (SQS's visibility limit is
/// 12 h; a peer asking for more is treated as asking for this).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(12 * 3600);

/// When a peer asked us to come back (`Retry-After`): after a delay, or at a time of its
/// clock. A time is kept as given and measured against the processor's [`Clock`] when the
/// retry is scheduled, so no sink reads the wall clock.
///
/// [`Clock`]: nphooks_core::clock::Clock
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`, or a sink's own wait.
    Delay(Duration),
    /// `Retry-After: <HTTP-date>`.
    At(SystemTime),
}

impl RetryAfter {
    /// How long to wait from `now`: at most [`MAX_RETRY_AFTER`]; a time already past is no
    /// wait (the caller applies its floor).
    pub fn wait_from(self, now: SystemTime) -> Duration {
        let wait = match self {
            RetryAfter::Delay(delay) => delay,
            RetryAfter::At(at) => at.duration_since(now).unwrap_or_default(),
        };
        wait.min(MAX_RETRY_AFTER)
    }
}

/// A classified failure reason. Its `as_str` is what logs, claims and DLQ attributes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The call did not finish within its timeout.
    Timeout,
    /// No connection could be made (DNS, refused, TLS).
    ConnectFailed,
    /// The request failed in transit after connecting (reset, broken body).
    RequestFailed,
    /// 429, or a destination-specific "slow down".
    RateLimited,
    /// 5xx.
    ServerError,
    /// 408.
    RequestTimeout,
    /// 401: the configured credential is wrong or expired.
    Unauthorized,
    /// 403: the credential lacks a permission, or the destination refuses us.
    Forbidden,
    /// 404 / 410: the endpoint or channel does not exist (any more).
    NotFound,
    /// 400 / 422: the destination refused what we built.
    InvalidPayload,
    /// 409: the destination reports a conflicting record.
    Conflict,
    /// A 3xx (redirects are not followed) or another unexpected status.
    UnexpectedStatus,
    /// The destination's answer could not be read or was not what it documents.
    BadResponse,
    /// A mail server refused the message or recipient permanently (SMTP 5xx, SES reject).
    MailRejected,
    /// A mail server deferred the message (SMTP 4xx).
    MailDeferred,
    /// The request could not be built from our configuration.
    Misconfigured,
    /// The message's data cannot be used by this integration.
    UnusableData,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::ConnectFailed => "connect_failed",
            FailureReason::RequestFailed => "request_failed",
            FailureReason::RateLimited => "rate_limited",
            FailureReason::ServerError => "server_error",
            FailureReason::RequestTimeout => "request_timeout",
            FailureReason::Unauthorized => "unauthorized",
            FailureReason::Forbidden => "forbidden",
            FailureReason::NotFound => "not_found",
            FailureReason::InvalidPayload => "invalid_payload",
            FailureReason::Conflict => "conflict",
            FailureReason::UnexpectedStatus => "unexpected_status",
            FailureReason::BadResponse => "bad_response",
            FailureReason::MailRejected => "mail_rejected",
            FailureReason::MailDeferred => "mail_deferred",
            FailureReason::Misconfigured => "misconfigured",
            FailureReason::UnusableData => "unusable_data",
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a sink failed: its reason, the peer's status if it answered, and whether a retry
/// can help. `Display` is `reason` or `reason (status)`, plus a detail of our own
/// making (a config name, a field name), never anything the caller or peer wrote.
/// Redaction is by construction: no field can hold the peer's answer body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkError {
    pub reason: FailureReason,
    /// The HTTP status the peer answered with (SES included); `None` if it never answered.
    pub status: Option<StatusCode>,
    /// A mail server's reply code (e.g. 550); never the reply's text, which may quote
    /// the recipient.
    pub smtp_code: Option<SmtpCode>,
    pub retryable: bool,
    /// The peer asked us to wait (429/503 `Retry-After`).
    pub retry_after: Option<RetryAfter>,
    /// Our own words: which field, which setting. Never caller or peer data.
    pub detail: Option<&'static str>,
}

impl SinkError {
    /// A failure worth retrying.
    pub fn transient(reason: FailureReason) -> Self {
        SinkError {
            reason,
            status: None,
            smtp_code: None,
            retryable: true,
            retry_after: None,
            detail: None,
        }
    }

    /// A failure retrying cannot fix.
    pub fn permanent(reason: FailureReason) -> Self {
        SinkError {
            retryable: false,
            ..Self::transient(reason)
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_smtp_code(mut self, code: SmtpCode) -> Self {
        self.smtp_code = Some(code);
        self
    }

    /// The peer (or the sink, for a destination's own "slow down") asks for `delay`.
    pub fn with_retry_after(mut self, delay: Option<Duration>) -> Self {
        self.retry_after = delay.map(RetryAfter::Delay);
        self
    }

    /// The peer's `Retry-After`, as it was given.
    pub fn with_retry(mut self, retry_after: Option<RetryAfter>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// The wait the peer asked for, measured from `now`.
    pub fn retry_wait(&self, now: SystemTime) -> Option<Duration> {
        self.retry_after.map(|r| r.wait_from(now))
    }

    pub fn with_detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }

    /// A rate limit: retried later, without spending the retry budget.
    pub fn is_rate_limited(&self) -> bool {
        self.reason == FailureReason::RateLimited || self.retry_after.is_some()
    }
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason.as_str())?;
        if let Some(status) = self.status {
            write!(f, " ({})", status.as_u16())?;
        } else if let Some(code) = self.smtp_code {
            write!(f, " ({code})")?;
        }
        if let Some(detail) = self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SinkError {}

/// An SMTP reply code: three digits, the first 2 to 5 (RFC 5321 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SmtpCode(u16);

impl SmtpCode {
    /// `None` unless `code` is a valid reply code.
    pub fn new(code: u16) -> Option<Self> {
        (200..=599).contains(&code).then_some(SmtpCode(code))
    }

    pub fn as_u16(self) -> u16 {
        self.0
    }
}

impl std::fmt::Display for SmtpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_classified_failure_then_display_names_reason_status_and_detail_only() {
        let error = SinkError::permanent(FailureReason::InvalidPayload)
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .with_detail("field LastName");
        assert_eq!(error.to_string(), "invalid_payload (422): field LastName");
        assert!(!error.retryable);
        let limited = SinkError::transient(FailureReason::RateLimited)
            .with_status(StatusCode::TOO_MANY_REQUESTS)
            .with_retry_after(Some(Duration::from_secs(1)));
        assert!(limited.retryable && limited.is_rate_limited());
        assert!(!SinkError::transient(FailureReason::ServerError).is_rate_limited());
    }

    #[test]
    fn given_a_retry_after_time_then_the_wait_is_measured_from_the_callers_now_and_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = RetryAfter::At(now + Duration::from_secs(30));
        assert_eq!(at.wait_from(now), Duration::from_secs(30));
        assert_eq!(
            at.wait_from(now + Duration::from_secs(40)),
            Duration::ZERO,
            "a time already past"
        );
        assert_eq!(
            RetryAfter::At(now + 2 * MAX_RETRY_AFTER).wait_from(now),
            MAX_RETRY_AFTER
        );
        assert_eq!(
            RetryAfter::Delay(Duration::from_secs(999_999_999)).wait_from(now),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn given_an_smtp_reply_code_then_display_shows_it_and_bad_codes_are_refused() {
        let code = SmtpCode::new(550).expect("a reply code");
        let error = SinkError::permanent(FailureReason::MailRejected).with_smtp_code(code);
        assert_eq!(error.to_string(), "mail_rejected (550)");
        assert_eq!(error.status, None);
        assert_eq!(SmtpCode::new(199), None);
        assert_eq!(SmtpCode::new(600), None);
    }
}
