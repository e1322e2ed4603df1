//! A local NextPhone API that enforces its documented limit on the test's clock: at most
//! `burst` requests in any second and `budget` in any `per` (sliding windows); above
//! either it answers 429 with `Retry-After`. It keeps every accepted request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nphooks_core::clock::Clock;
use nphooks_core::rate_limit::RateLimit;
use wiremock::{Request, Respond, ResponseTemplate};

/// One request the stand-in accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub at_ms: u64,
    pub idempotency_key: String,
    pub body: serde_json::Value,
}

#[derive(Debug, Default)]
struct Seen {
    accepted: Vec<Accepted>,
    refused: usize,
}

#[derive(Debug, Clone)]
pub struct NextPhoneStandIn {
    clock: Clock,
    limit: RateLimit,
    seen: Arc<Mutex<Seen>>,
}

impl NextPhoneStandIn {
    pub fn new(clock: &Clock, limit: RateLimit) -> Self {
        NextPhoneStandIn {
            clock: clock.clone(),
            limit,
            seen: Arc::default(),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn accepted(&self) -> Vec<Accepted> {
        self.seen().accepted.clone()
    }

    pub fn refused(&self) -> usize {
        self.seen().refused
    }

    /// The most accepted requests in any window of `window` (half-open, sliding).
    pub fn most_within(&self, window: Duration) -> usize {
        let times: Vec<u64> = self.accepted().iter().map(|a| a.at_ms).collect();
        let width = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        times
            .iter()
            .map(|start| {
                times
                    .iter()
                    .filter(|t| (*start..start + width).contains(t))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }
}

impl Respond for NextPhoneStandIn {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let now = self.clock.epoch_millis();
        let authorized = request
            .headers
            .get("authorization")
            .is_some_and(|v| v.as_bytes().starts_with(b"Bearer "));
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
            return ResponseTemplate::new(400);
        };
        if !authorized {
            return ResponseTemplate::new(401);
        }
        let mut seen = self.seen();
        let within = |ms: u64| seen.accepted.iter().filter(|a| a.at_ms + ms > now).count();
        let per_ms = u64::try_from(self.limit.per.as_millis()).unwrap_or(u64::MAX);
        let over = within(1000) >= self.limit.burst as usize
            || within(per_ms) >= self.limit.requests as usize;
        if over {
            seen.refused += 1;
            return ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_string(r#"{"error":"rate_limited"}"#);
        }
        let idempotency_key = request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        seen.accepted.push(Accepted {
            at_ms: now,
            idempotency_key,
            body,
        });
        ResponseTemplate::new(201).set_body_string(r#"{"id":"call_out_1","status":"queued"}"#)
    }
}
