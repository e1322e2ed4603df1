//! `./outbox/` and the capture server behind HTTP previews: a preview runs a sink's own
//! code against a loopback server that records each request, then writes it out as text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_processor::{FailureReason, SinkError};

use crate::http_server;

/// A request the capture server received.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// `./outbox/` and the capture server behind HTTP previews.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    pub(super) base_url: String,
    captured: Arc<Mutex<HashMap<u64, Vec<Captured>>>>,
    next: AtomicU64,
    _server: tokio::task::JoinHandle<()>,
}

impl Outbox {
    /// Starts the capture server on a free loopback port; previews go under `dir`.
    pub async fn start(dir: PathBuf) -> anyhow::Result<Arc<Self>> {
        let listener = http_server::bind(([127, 0, 0, 1], 0).into()).await?;
        let base_url = format!("http://{}", http_server::local_addr(&listener)?);
        let captured: Arc<Mutex<HashMap<u64, Vec<Captured>>>> = Arc::default();
        let store = captured.clone();
        let server = http_server::spawn(listener, move |request| {
            let store = store.clone();
            async move {
                // Paths look like /preview/<slot>/<the sink's own path>.
                let path = request.uri().path().to_owned();
                let mut parts = path.trim_start_matches('/').splitn(3, '/');
                let slot = parts
                    .nth(1)
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                let rest = format!("/{}", parts.next().unwrap_or_default());
                let headers = request
                    .headers()
                    .iter()
                    .filter(|(name, _)| *name != hyper::header::HOST)
                    .map(|(name, value)| {
                        (
                            name.to_string(),
                            String::from_utf8_lossy(value.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                let captured = Captured {
                    method: request.method().to_string(),
                    path: rest,
                    headers,
                    body: request.into_body(),
                };
                store
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(slot)
                    .or_default()
                    .push(captured);
                hyper::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    // Enough for every sink to read a success (HubSpot's batch answer included).
                    .body(Full::new(Bytes::from_static(
                        br#"{"ok":true,"id":"preview","total":0,"results":[{"id":"preview"}]}"#,
                    )))
                    .expect("a static response")
            }
        });
        Ok(Arc::new(Outbox {
            dir,
            base_url,
            captured,
            next: AtomicU64::new(0),
            _server: server,
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn slot(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(super) fn take(&self, slot: u64) -> Vec<Captured> {
        self.captured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&slot)
            .unwrap_or_default()
    }

    /// `outbox/<delivery key, file-safe>/<integration>.<extension>`.
    pub fn path_for(
        &self,
        envelope: &Envelope,
        integration: Integration,
        extension: &str,
    ) -> PathBuf {
        let key: String = envelope
            .delivery_key
            .as_str()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir
            .join(key)
            .join(format!("{integration}.{extension}"))
    }
}

/// A captured HTTP request as text: request line, headers, blank line, body as sent.
pub fn render_http(requests: &[Captured]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\n\n");
        }
        out.extend_from_slice(format!("{} {} HTTP/1.1\n", request.method, request.path).as_bytes());
        for (name, value) in &request.headers {
            out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(&request.body);
        out.push(b'\n');
    }
    out
}

pub(super) fn write(path: &Path, contents: &[u8]) -> Result<(), SinkError> {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, contents));
    written.map_err(|e| {
        tracing::warn!(path = %path.display(), %e, "could not write the preview");
        SinkError::transient(FailureReason::RequestFailed).with_detail("writing the preview")
    })
}
