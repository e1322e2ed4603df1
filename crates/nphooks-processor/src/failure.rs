//! Why a sink failed: a classified reason and a status, never text parsed back, never a
//! peer's answer body (it may echo the caller's data we sent).

use std::time::Duration;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkError {
    pub reason: FailureReason,
    /// The peer's status: HTTP, or an SMTP reply code.
    pub status: Option<u16>,
    pub retryable: bool,
    /// The peer asked us to wait this long (429/503 `Retry-After`).
    pub retry_after: Option<Duration>,
    /// Our own words: which field, which setting. Never caller or peer data.
    pub detail: Option<&'static str>,
}

impl SinkError {
    /// A failure worth retrying.
    pub fn transient(reason: FailureReason) -> Self {
        SinkError {
            reason,
            status: None,
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

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_retry_after(mut self, delay: Option<Duration>) -> Self {
        self.retry_after = delay;
        self
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
            write!(f, " ({status})")?;
        }
        if let Some(detail) = self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SinkError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_classified_failure_then_display_names_reason_status_and_detail_only() {
        let error = SinkError::permanent(FailureReason::InvalidPayload)
            .with_status(422)
            .with_detail("field LastName");
        assert_eq!(error.to_string(), "invalid_payload (422): field LastName");
        assert!(!error.retryable);
        let limited = SinkError::transient(FailureReason::RateLimited)
            .with_status(429)
            .with_retry_after(Some(Duration::from_secs(1)));
        assert!(limited.retryable && limited.is_rate_limited());
        assert!(!SinkError::transient(FailureReason::ServerError).is_rate_limited());
    }
}
