//! Local HTTP stand-ins that fail on cue in virtual time (wiremock responders reading the
//! test's [`Clock`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use nphooks_core::clock::Clock;
use wiremock::{Request, Respond, ResponseTemplate};

/// Answers `status` until the clock reaches `until`, then 200; counts both. Clones
/// share their counts (one goes to wiremock, the test keeps the other).
#[derive(Debug, Clone)]
pub struct DownUntil {
    pub clock: Clock,
    pub until: SystemTime,
    pub status: u16,
    pub failed: Arc<AtomicUsize>,
    pub succeeded: Arc<AtomicUsize>,
}

impl DownUntil {
    pub fn new(clock: &Clock, until: SystemTime, status: u16) -> Self {
        DownUntil {
            clock: clock.clone(),
            until,
            status,
            failed: Arc::default(),
            succeeded: Arc::default(),
        }
    }

    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }

    pub fn succeeded(&self) -> usize {
        self.succeeded.load(Ordering::SeqCst)
    }
}

impl Respond for DownUntil {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.clock.now() < self.until {
            self.failed.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(self.status).set_body_string("unavailable")
        } else {
            self.succeeded.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(200).set_body_string("ok")
        }
    }
}

/// Answers 429 `Retry-After: 1` to any request beyond `per_second` in one second of the
/// clock, else 200; remembers each accepted body and counts refusals. Clones share them.
#[derive(Debug, Clone)]
pub struct RateLimitedEndpoint {
    pub clock: Clock,
    pub per_second: usize,
    seconds: Arc<Mutex<HashMap<u64, usize>>>,
    accepted: Arc<Mutex<Vec<Vec<u8>>>>,
    refused: Arc<AtomicUsize>,
}

impl RateLimitedEndpoint {
    pub fn new(clock: &Clock, per_second: usize) -> Self {
        RateLimitedEndpoint {
            clock: clock.clone(),
            per_second,
            seconds: Arc::default(),
            accepted: Arc::default(),
            refused: Arc::default(),
        }
    }

    /// The bodies answered 200, in order.
    pub fn accepted(&self) -> Vec<Vec<u8>> {
        self.accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many requests were answered 429.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// The most requests accepted in any one second.
    pub fn busiest_second(&self) -> usize {
        let seconds = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        seconds.values().copied().max().unwrap_or(0)
    }
}

impl Respond for RateLimitedEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let second = self.clock.epoch_seconds();
        let mut seconds = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        let count = seconds.entry(second).or_insert(0);
        if *count >= self.per_second {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_string("rate_limited");
        }
        *count += 1;
        self.accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request.body.clone());
        ResponseTemplate::new(200).set_body_string("ok")
    }
}
