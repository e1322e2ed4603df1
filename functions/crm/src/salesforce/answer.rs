//! Salesforce's answers, classified. Its REST errors are a JSON array of
//! `{"errorCode", "message", "fields"}`; the message is never read (it quotes the values
//! we sent), only the code and the field API names, which are the org's configuration.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use nphooks_processor::{FailureReason, RetryAfter, SinkError, StatusCode, http};
use serde_json::Value;

use super::fields::is_api_name;

/// How long a delivery waits after `REQUEST_LIMIT_EXCEEDED` (the org's rolling 24-hour
/// API allowance is spent) unless Salesforce says `Retry-After`.
pub const REQUEST_LIMIT_WAIT: Duration = Duration::from_secs(15 * 60);
/// The most distinct failure details kept for a cold start (see [`intern`]).
const MAX_DETAILS: usize = 128;
/// The most field names a detail lists.
const MAX_FIELDS: usize = 5;

/// The first error of a Salesforce error answer: its code (an identifier in capitals,
/// else `None`) and its field API names (those shaped like one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiError {
    pub code: Option<String>,
    pub fields: Vec<String>,
}

impl ApiError {
    pub fn parse(body: &str) -> Self {
        let value: Value = serde_json::from_str(body).unwrap_or_default();
        let first = value.get(0).unwrap_or(&value);
        let code = first
            .get("errorCode")
            .and_then(Value::as_str)
            .filter(|c| {
                (1..=64).contains(&c.len()) && c.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            })
            .map(str::to_owned);
        let fields = first
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|f| is_api_name(f))
            .take(MAX_FIELDS)
            .map(str::to_owned)
            .collect();
        ApiError { code, fields }
    }

    /// `CODE` or `CODE: Field, Field`, kept once per cold start.
    fn detail(&self) -> &'static str {
        let code = self.code.as_deref().unwrap_or("UNKNOWN_ERROR");
        if self.fields.is_empty() {
            return intern(code.to_owned());
        }
        intern(format!("{code}: {}", self.fields.join(", ")))
    }
}

/// Classifies an answer that was not a success. 401 stays `Unauthorized` (the caller
/// refreshes the token once); `REQUEST_LIMIT_EXCEEDED` is a rate limit; 400s name the
/// error code and the fields; 300 (the delivery key matches several leads) is a conflict.
pub fn classify(status: StatusCode, retry_after: Option<RetryAfter>, body: &str) -> SinkError {
    let error = ApiError::parse(body);
    let refused = |reason| SinkError::permanent(reason).with_status(status);
    match (status.as_u16(), error.code.as_deref()) {
        (403, Some("REQUEST_LIMIT_EXCEEDED")) => SinkError::transient(FailureReason::RateLimited)
            .with_status(status)
            .with_retry(Some(
                retry_after.unwrap_or(RetryAfter::Delay(REQUEST_LIMIT_WAIT)),
            ))
            .with_detail("REQUEST_LIMIT_EXCEEDED"),
        (300, _) => refused(FailureReason::Conflict).with_detail(
            "several leads hold this delivery key; make SALESFORCE_EXTERNAL_ID_FIELD Unique",
        ),
        (401, _) => refused(FailureReason::Unauthorized).with_detail(error.detail()),
        (404, _) => refused(FailureReason::NotFound).with_detail(
            "the Lead object or SALESFORCE_EXTERNAL_ID_FIELD is missing or not accessible",
        ),
        (400 | 403 | 409 | 422, Some(_)) => {
            let reason = match status.as_u16() {
                403 => FailureReason::Forbidden,
                409 => FailureReason::Conflict,
                _ => FailureReason::InvalidPayload,
            };
            refused(reason).with_detail(error.detail())
        }
        _ => match http::classify(status, retry_after) {
            Err(e) => e,
            Ok(()) => refused(FailureReason::UnexpectedStatus),
        },
    }
}

/// `detail` as a `&'static str`, leaked once per distinct value and cold start; past
/// [`MAX_DETAILS`] distinct values a fixed text stands in, so memory stays bounded.
fn intern(detail: String) -> &'static str {
    static KEPT: Mutex<Option<HashMap<String, &'static str>>> = Mutex::new(None);
    let mut kept = KEPT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let kept = kept.get_or_insert_with(HashMap::new);
    if let Some(found) = kept.get(&detail) {
        return found;
    }
    if kept.len() >= MAX_DETAILS {
        return "Salesforce refused the lead (too many distinct errors to name)";
    }
    let leaked: &'static str = Box::leak(detail.clone().into_boxed_str());
    kept.insert(detail, leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).expect("valid")
    }

    #[test]
    fn given_salesforce_errors_then_reasons_name_code_and_fields_never_the_message() {
        let missing = r#"[{"message":"Required fields are missing: [Dana]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Region__c","bad name"]}]"#;
        let error = classify(status(400), None, missing);
        assert!(!error.retryable);
        assert_eq!(
            error.to_string(),
            "invalid_payload (400): REQUIRED_FIELD_MISSING: Region__c"
        );
        let picklist = r#"[{"message":"x","errorCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","fields":["Status"]}]"#;
        assert_eq!(
            classify(status(400), None, picklist).to_string(),
            "invalid_payload (400): INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: Status"
        );
        let hostile = r#"[{"message":"m","errorCode":"dana@example.com","fields":[]}]"#;
        assert_eq!(
            classify(status(400), None, hostile).to_string(),
            "invalid_payload (400)"
        );
    }

    #[test]
    fn given_limits_and_outages_then_they_are_deferred_or_transient() {
        let limit =
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        let error = classify(status(403), None, limit);
        assert!(error.retryable && error.is_rate_limited());
        assert_eq!(
            error.retry_after,
            Some(RetryAfter::Delay(REQUEST_LIMIT_WAIT))
        );
        let unavailable = r#"[{"message":"down","errorCode":"SERVER_UNAVAILABLE"}]"#;
        let error = classify(
            status(503),
            Some(RetryAfter::Delay(Duration::from_secs(3))),
            unavailable,
        );
        assert!(error.retryable && error.reason == FailureReason::ServerError);
        let denied = r#"[{"message":"m","errorCode":"INSUFFICIENT_ACCESS_OR_READONLY"}]"#;
        let error = classify(status(403), None, denied);
        assert!(!error.retryable && error.reason == FailureReason::Forbidden);
        assert_eq!(
            classify(status(300), None, "[]").reason,
            FailureReason::Conflict
        );
        assert_eq!(
            classify(status(404), None, "[]").reason,
            FailureReason::NotFound
        );
    }
}
