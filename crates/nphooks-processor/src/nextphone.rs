//! The NextPhone API client every caller of the API uses: base URL `NEXTPHONE_API_URL`
//! (default the public one), Bearer key `NEXTPHONE_API_KEY` (a secret), and the account's
//! rate limit (`NEXTPHONE_RATE_LIMIT`, default 1,000 per hour, `NEXTPHONE_BURST`, default
//! 50 at once), which the runtime holds across every concurrent Lambda with the shared
//! limiter (see `nphooks_core::rate_limit`). A 429 is a rate-limited [`SinkError`]
//! carrying the server's `Retry-After`, so the message waits without spending an attempt.

use std::time::Duration;

use nphooks_core::ConfigError;
use nphooks_core::config::Settings;
use nphooks_core::rate_limit::RateLimit;
use nphooks_core::secret::Secret;
use serde_json::json;

use crate::http::{self, OutboundUrl, Reply};
use crate::{Result, SinkError};

pub const NEXTPHONE_API_URL_VAR: &str = "NEXTPHONE_API_URL";
pub const NEXTPHONE_API_KEY_VAR: &str = "NEXTPHONE_API_KEY";
pub const NEXTPHONE_RATE_LIMIT_VAR: &str = "NEXTPHONE_RATE_LIMIT";
pub const NEXTPHONE_BURST_VAR: &str = "NEXTPHONE_BURST";
/// The public API.
pub const DEFAULT_API_URL: &str = "https://api.getnextphone.com";
/// 1,000 requests per hour per key, bursts to 50 per second.
pub const ACCOUNT_LIMIT: RateLimit = RateLimit::new(1000, Duration::from_secs(3600)).with_burst(50);

/// A phone number in E.164: `+`, a non-zero digit, 7 to 14 more digits. Spaces, dashes,
/// dots and parentheses between digits are dropped; anything else is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E164(String);

impl E164 {
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.trim().strip_prefix('+')?;
        let mut digits = String::from("+");
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return None,
            }
        }
        let count = digits.len() - 1;
        (digits.as_bytes().get(1) != Some(&b'0') && (8..=15).contains(&count))
            .then_some(E164(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The NextPhone API.
#[derive(Debug, Clone)]
pub struct NextPhoneApi {
    base: OutboundUrl,
    key: Secret,
    client: reqwest::Client,
    limit: RateLimit,
}

impl NextPhoneApi {
    pub fn new(base: OutboundUrl, key: Secret, client: reqwest::Client) -> Self {
        NextPhoneApi {
            base,
            key,
            client,
            limit: ACCOUNT_LIMIT,
        }
    }

    /// The same client under another limit (a scaled-down one in tests).
    pub fn with_limit(self, limit: RateLimit) -> Self {
        NextPhoneApi { limit, ..self }
    }

    /// Reads the URL, the key (from the secret) and the limit; errors name the variable.
    pub fn from_settings(
        settings: &Settings,
        allow_http: bool,
        client: reqwest::Client,
    ) -> Result<Self> {
        let url = settings
            .optional(NEXTPHONE_API_URL_VAR)
            .unwrap_or(DEFAULT_API_URL);
        let base = OutboundUrl::parse(NEXTPHONE_API_URL_VAR, url, allow_http, false)?;
        let key = settings.required_secret(NEXTPHONE_API_KEY_VAR, allow_http)?;
        if !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ConfigError::new(
                NEXTPHONE_API_KEY_VAR,
                "must be printable ASCII without spaces",
            )
            .into());
        }
        let api = Self::new(base, Secret::new(key), client);
        Ok(api.with_limit(limit_from(settings)?))
    }

    /// The account's limit, held across every caller.
    pub fn rate_limit(&self) -> RateLimit {
        self.limit
    }

    /// `POST /v1/calls`: asks NextPhone to call `to` and speak `script`. The idempotency
    /// key (the delivery key) lets the API drop a repeat of the same request.
    pub fn call_request(
        &self,
        to: &E164,
        script: &str,
        idempotency_key: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .post(self.base.join("/v1/calls"))
            .bearer_auth(self.key.expose())
            .header("Idempotency-Key", http::idempotency_key(idempotency_key))
            .json(&json!({"to": to.as_str(), "script": script}))
    }

    /// Sends [`NextPhoneApi::call_request`], classified by [`http::send`].
    pub async fn place_call(
        &self,
        to: &E164,
        script: &str,
        idempotency_key: &str,
    ) -> std::result::Result<Reply, SinkError> {
        http::send(self.call_request(to, script, idempotency_key)).await
    }
}

/// `NEXTPHONE_RATE_LIMIT` (`N/Ts`, default `1000/3600s`) with `NEXTPHONE_BURST` (default
/// 50) requests at once. A burst must fit in the budget, and the spacing after it must be
/// at least a second, so no second ever holds more than the burst.
pub fn limit_from(settings: &Settings) -> Result<RateLimit> {
    let budget = match settings.optional(NEXTPHONE_RATE_LIMIT_VAR) {
        None => ACCOUNT_LIMIT,
        Some(text) => RateLimit::parse(NEXTPHONE_RATE_LIMIT_VAR, text)?.ok_or_else(|| {
            ConfigError::new(
                NEXTPHONE_RATE_LIMIT_VAR,
                "cannot be `none`: the API has a limit",
            )
        })?,
    };
    let burst = match settings.optional(NEXTPHONE_BURST_VAR) {
        None => ACCOUNT_LIMIT.burst,
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|b| *b >= 1)
            .ok_or_else(|| {
                ConfigError::new(
                    NEXTPHONE_BURST_VAR,
                    format!("must be a whole number from 1; got {text:?}"),
                )
            })?,
    };
    let limit = budget.with_burst(burst);
    if limit.burst != burst || limit.interval() < Duration::from_secs(1) {
        return Err(ConfigError::new(
            NEXTPHONE_BURST_VAR,
            format!(
                "{burst} leaves less than a second between requests after a burst under {budget}"
            ),
        )
        .into());
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_phone_texts_then_only_e164_numbers_parse() {
        let parsed = |text: &str| E164::parse(text).map(|p| p.as_str().to_owned());
        assert_eq!(parsed("+15550101234").as_deref(), Some("+15550101234"));
        assert_eq!(
            parsed(" +1 (555) 010-1234 ").as_deref(),
            Some("+15550101234")
        );
        assert_eq!(parsed("+44.20.7946.0958").as_deref(), Some("+442079460958"));
        for bad in [
            "",
            "5550101234",
            "+",
            "+0555010123",
            "+1555",
            "+1234567890123456",
            "+1555x0101",
            "tel:+15550101234",
        ] {
            assert_eq!(parsed(bad), None, "{bad}");
        }
    }

    #[test]
    fn given_limit_settings_then_they_load_or_name_the_variable() {
        let load = |pairs: Vec<(&str, &str)>| limit_from(&Settings::from_pairs(pairs));
        assert_eq!(load(vec![]).ok(), Some(ACCOUNT_LIMIT));
        let scaled = load(vec![
            (NEXTPHONE_RATE_LIMIT_VAR, "40/60s"),
            (NEXTPHONE_BURST_VAR, "10"),
        ]);
        assert_eq!(
            scaled.ok(),
            Some(RateLimit::new(40, Duration::from_secs(60)).with_burst(10))
        );
        for (name, pairs) in [
            (
                NEXTPHONE_RATE_LIMIT_VAR,
                vec![(NEXTPHONE_RATE_LIMIT_VAR, "none")],
            ),
            (
                NEXTPHONE_RATE_LIMIT_VAR,
                vec![(NEXTPHONE_RATE_LIMIT_VAR, "1000/h")],
            ),
            (NEXTPHONE_BURST_VAR, vec![(NEXTPHONE_BURST_VAR, "0")]),
            (NEXTPHONE_BURST_VAR, vec![(NEXTPHONE_BURST_VAR, "1001")]),
            (
                NEXTPHONE_BURST_VAR,
                vec![
                    (NEXTPHONE_RATE_LIMIT_VAR, "100/60s"),
                    (NEXTPHONE_BURST_VAR, "10"),
                ],
            ),
        ] {
            let message = load(pairs).expect_err(name).to_string();
            assert!(message.contains(name), "{message}");
        }
    }
}
