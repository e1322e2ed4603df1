//! `nphooks dashboard` (and `serve --dashboard-port`): a local web app on 127.0.0.1 over
//! a [`DashboardSource`] — deliveries, one delivery, dead letters, health — with replay
//! and redrive as POSTs guarded by [`guard::Guard`]. Pages are server-rendered
//! ([`pages`]); the chart is SVG ([`chart`]).

pub mod aws;
pub mod chart;
pub mod guard;
pub mod memory;
pub mod pages;
pub mod source;
pub mod stack;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use hyper::{Method, Response, StatusCode};
use nphooks_core::routing::Integration;

pub use aws::AwsSource;
pub use source::DashboardSource;

use crate::http_server::{self, FullRequest};
use crate::ops::Letters;
use guard::Guard;
use pages::Common;
use source::{Badge, Filter};

/// How the dashboard runs.
#[derive(Debug, Clone, Default)]
pub struct DashboardOptions {
    /// Port on 127.0.0.1 (0: any free one).
    pub port: u16,
    /// Refuse every state change.
    pub read_only: bool,
}

/// The running dashboard; its server stops when this is dropped.
#[derive(Debug)]
pub struct RunningDashboard {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RunningDashboard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct App {
    source: Arc<dyn DashboardSource>,
    guard: Guard,
}

/// Binds 127.0.0.1:`options.port` and serves the dashboard over `source`.
pub async fn start(
    source: Arc<dyn DashboardSource>,
    options: DashboardOptions,
) -> anyhow::Result<RunningDashboard> {
    let listener = http_server::bind(([127, 0, 0, 1], options.port).into()).await?;
    let addr = http_server::local_addr(&listener)?;
    let app = Arc::new(App {
        source,
        guard: Guard::new(addr.port(), options.read_only)?,
    });
    let task = http_server::spawn(listener, move |request| {
        let app = app.clone();
        async move { app.handle(request).await }
    });
    Ok(RunningDashboard { addr, task })
}

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Answer {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .header(CACHE_CONTROL, "no-store")
        .header(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        )
        .header("X-Content-Type-Options", "nosniff")
        // (not `no-referrer`: with it Chromium sends `Origin: null` on the page's own form
        // POSTs, which the origin check refuses; tests/browser.rs)
        .header("Referrer-Policy", "same-origin")
        .body(Full::new(body.into()))
        .unwrap_or_default()
}

fn html(body: String) -> Answer {
    answer(StatusCode::OK, "text/html; charset=utf-8", body)
}

fn text(status: StatusCode, body: String) -> Answer {
    answer(status, "text/plain; charset=utf-8", body)
}

fn see_other(location: &str) -> Answer {
    let mut response = answer(StatusCode::SEE_OTHER, "text/plain", "");
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// Name/value pairs of a query string or a form body.
fn pairs(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, v)| n == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

fn filter_of(query: &[(String, String)]) -> Filter {
    Filter {
        event: first(query, "event").map(str::to_owned),
        call_type: first(query, "call_type").map(str::to_owned),
        status: first(query, "status").and_then(Badge::parse),
        date: first(query, "date").map(str::to_owned),
    }
}

/// A percent-encoded path segment, decoded.
fn decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("k={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn failed(error: &anyhow::Error) -> Answer {
    // Errors name tables, queues and keys, never caller data.
    tracing::error!(error = %format!("{error:#}"), "dashboard request failed");
    text(
        StatusCode::BAD_GATEWAY,
        format!("the state could not be read or changed: {error:#}"),
    )
}

impl App {
    fn common(&self) -> Common<'_> {
        Common {
            csrf: self.guard.csrf(),
            read_only: self.guard.read_only(),
        }
    }

    async fn handle(&self, request: FullRequest) -> Answer {
        if let Err(refusal) = self.guard.check_host(request.headers()) {
            return text(StatusCode::FORBIDDEN, refusal.to_string());
        }
        let path = request.uri().path().to_owned();
        let query = pairs(request.uri().query().unwrap_or_default().as_bytes());
        let result = match (request.method(), path.as_str()) {
            (&Method::GET, "/") => self.deliveries(&query, false).await,
            (&Method::GET, "/api/deliveries") => self.deliveries(&query, true).await,
            (&Method::GET, "/dead-letters") => self
                .source
                .dead_letters()
                .await
                .map(|d| html(pages::dead_letters(&d, self.common()))),
            (&Method::GET, "/health") => self
                .source
                .health()
                .await
                .map(|h| html(pages::health(&h, chart::svg(&h), self.common()))),
            (&Method::GET, "/assets/dashboard.css") => Ok(answer(
                StatusCode::OK,
                "text/css; charset=utf-8",
                pages::CSS,
            )),
            (&Method::GET, "/assets/dashboard.js") => Ok(answer(
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                pages::JS,
            )),
            (&Method::GET, p) if p.starts_with("/deliveries/") => {
                self.detail(&decode(&p["/deliveries/".len()..])).await
            }
            (&Method::POST, "/api/reveal" | "/actions/replay" | "/actions/redrive") => {
                self.change(&path, &request).await
            }
            _ => Ok(text(StatusCode::NOT_FOUND, format!("no page {path}"))),
        };
        result.unwrap_or_else(|e| failed(&e))
    }

    async fn deliveries(&self, query: &[(String, String)], api: bool) -> anyhow::Result<Answer> {
        let filter = filter_of(query);
        let page = self
            .source
            .deliveries(&filter, first(query, "cursor"))
            .await?;
        Ok(if api {
            let rows: Vec<_> = page.rows.iter().map(pages::row_json).collect();
            let body = serde_json::json!({"rows": rows, "next": page.next});
            answer(StatusCode::OK, "application/json", body.to_string())
        } else {
            let cursor = first(query, "cursor");
            html(pages::deliveries(&page, &filter, cursor, self.common()))
        })
    }

    async fn detail(&self, key: &str) -> anyhow::Result<Answer> {
        if key.is_empty() {
            return Ok(text(
                StatusCode::NOT_FOUND,
                "which delivery? (no key in the path)".to_owned(),
            ));
        }
        Ok(match self.source.delivery(key).await? {
            Some(detail) => html(pages::detail(&detail, self.common())),
            None => text(
                StatusCode::NOT_FOUND,
                format!("no delivery {key} is stored"),
            ),
        })
    }

    /// A POST: the guard first, then the action, answered 303 back to its page.
    async fn change(&self, path: &str, request: &FullRequest) -> anyhow::Result<Answer> {
        let form = pairs(request.body());
        let checked = if path == "/api/reveal" {
            self.guard
                .check_reveal(request.headers(), first(&form, "csrf"))
        } else {
            self.guard
                .check_change(request.headers(), first(&form, "csrf"))
        };
        if let Err(refusal) = checked {
            return Ok(text(StatusCode::FORBIDDEN, refusal.to_string()));
        }
        let integration = match first(&form, "integration").map(str::parse::<Integration>) {
            Some(Ok(integration)) => Some(integration),
            Some(Err(_)) => {
                return Ok(text(
                    StatusCode::BAD_REQUEST,
                    "unknown integration".to_owned(),
                ));
            }
            None => None,
        };
        let key = first(&form, "key").unwrap_or_default();
        match path {
            "/api/reveal" => {
                let detail = self.source.delivery(key).await?;
                let caller = detail.map(|d| d.caller).unwrap_or_default();
                let value = match first(&form, "field") {
                    Some("name") => caller.name,
                    Some("phone") => caller.phone,
                    Some("email") => caller.email,
                    _ => None,
                };
                Ok(answer(
                    StatusCode::OK,
                    "application/json",
                    serde_json::json!(value).to_string(),
                ))
            }
            "/actions/replay" => {
                if key.is_empty() {
                    return Ok(text(
                        StatusCode::BAD_REQUEST,
                        "which delivery? (the form has no key)".to_owned(),
                    ));
                }
                for (integration, outcome) in self.source.replay(key, integration).await? {
                    let outcome = crate::ops::outcome_text(&outcome).1;
                    tracing::info!(key, %integration, outcome, "dashboard replay");
                }
                Ok(see_other(&pages::detail_href(key)))
            }
            _ => {
                let Some(integration) = integration else {
                    return Ok(text(
                        StatusCode::BAD_REQUEST,
                        "which integration's DLQ? (the form has no integration)".to_owned(),
                    ));
                };
                let chosen: Vec<String> = form
                    .iter()
                    .filter(|(n, _)| n == "letter")
                    .map(|(_, v)| v.clone())
                    .collect();
                let letters = if first(&form, "scope") == Some("all") {
                    Letters::All
                } else {
                    Letters::Only(&chosen)
                };
                let moved = self.source.redrive(integration, letters).await?;
                tracing::info!(%integration, moved, "dashboard redrive");
                Ok(see_other("/dead-letters"))
            }
        }
    }
}
