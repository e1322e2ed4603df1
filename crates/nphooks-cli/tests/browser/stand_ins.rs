//! The sinks' local stand-ins: wiremock responders that fail on cue for the one call whose
//! id the request carries (in its body or a header), and count what they answered.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn mentions(request: &Request, marker: &str) -> bool {
    String::from_utf8_lossy(&request.body).contains(marker)
        || request
            .headers
            .values()
            .any(|value| value.to_str().is_ok_and(|v| v.contains(marker)))
}

/// Answers `status` to the first `failures` requests mentioning `marker` (all of them
/// while `broken`, when `failures` is `None`), else 200 `ok`. Clones share their state.
#[derive(Debug, Clone)]
pub struct FailOnCue {
    marker: String,
    status: u16,
    failures: Option<usize>,
    broken: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
    /// Every request answered 200, as whether it mentioned `marker`.
    succeeded: Arc<Mutex<Vec<bool>>>,
}

impl FailOnCue {
    /// Fails every request for `marker` with `status` until [`FailOnCue::fix`].
    pub fn until_fixed(marker: &str, status: u16) -> Self {
        Self::new(marker, status, None)
    }

    /// Fails the first `failures` requests for `marker` with `status`.
    pub fn times(marker: &str, status: u16, failures: usize) -> Self {
        Self::new(marker, status, Some(failures))
    }

    fn new(marker: &str, status: u16, failures: Option<usize>) -> Self {
        FailOnCue {
            marker: marker.to_owned(),
            status,
            failures,
            broken: Arc::new(AtomicBool::new(true)),
            failed: Arc::default(),
            succeeded: Arc::default(),
        }
    }

    pub fn fix(&self) {
        self.broken.store(false, Ordering::SeqCst);
    }

    /// Requests for `marker` answered with the failure status.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }

    /// Requests answered 200: those for `marker`, and all of them.
    pub fn succeeded(&self) -> (usize, usize) {
        let succeeded = self.succeeded.lock().unwrap_or_else(|e| e.into_inner());
        (succeeded.iter().filter(|m| **m).count(), succeeded.len())
    }

    /// A loopback server answering every POST with this responder.
    pub async fn serve(&self) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(self.clone())
            .mount(&server)
            .await;
        server
    }
}

impl Respond for FailOnCue {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let ours = mentions(request, &self.marker);
        let failing = match self.failures {
            None => self.broken.load(Ordering::SeqCst),
            Some(failures) => self.failed() < failures,
        };
        if ours && failing {
            self.failed.fetch_add(1, Ordering::SeqCst);
            // (no Retry-After: each 503 spends an attempt; serve backs off from
            // NPHOOKS_RETRY_BASE_SECONDS, 1 s here)
            let body = if self.status == 400 {
                "invalid_payload"
            } else {
                "unavailable"
            };
            return ResponseTemplate::new(self.status).set_body_string(body);
        }
        self.succeeded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ours);
        ResponseTemplate::new(200).set_body_string("ok")
    }
}
