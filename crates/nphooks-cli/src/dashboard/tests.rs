//! The server over a stub source (no AWS): empty pages, a missing delivery, a source
//! that fails, and forms that lack what they need, each answered without a panic.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use nphooks_core::routing::Integration;
use nphooks_processor::RecordOutcome;
use reqwest::StatusCode;

use super::source::{DashboardSource, DeliveryRow, Detail, Filter, Health, Letter, Page};
use super::{DashboardOptions, RunningDashboard, start};
use crate::ops::Letters;

const KEY: &str = "call.ended#stub-1";

/// No deliveries but `KEY` (with no routes), no letters, health that fails; replays
/// are recorded.
#[derive(Default)]
struct Stub {
    replays: Mutex<Vec<String>>,
}

impl DashboardSource for Stub {
    fn deliveries<'a>(
        &'a self,
        _: &'a Filter,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, anyhow::Result<Page>> {
        futures::future::ready(Ok(Page::default())).boxed()
    }

    fn delivery<'a>(&'a self, key: &'a str) -> BoxFuture<'a, anyhow::Result<Option<Detail>>> {
        let detail = (key == KEY).then(|| Detail {
            row: DeliveryRow::new(KEY, None, 0, Vec::new()),
            caller: Default::default(),
            received_at: None,
        });
        futures::future::ready(Ok(detail)).boxed()
    }

    fn dead_letters(&self) -> BoxFuture<'_, anyhow::Result<BTreeMap<Integration, Vec<Letter>>>> {
        futures::future::ready(Ok(BTreeMap::new())).boxed()
    }

    fn health(&self) -> BoxFuture<'_, anyhow::Result<Vec<Health>>> {
        futures::future::ready(Err(anyhow::anyhow!("could not scan table stub-table"))).boxed()
    }

    fn replay<'a>(
        &'a self,
        key: &'a str,
        _: Option<Integration>,
    ) -> BoxFuture<'a, anyhow::Result<Vec<(Integration, RecordOutcome)>>> {
        self.replays
            .lock()
            .expect("unpoisoned")
            .push(key.to_owned());
        futures::future::ready(Ok(Vec::new())).boxed()
    }

    fn redrive<'a>(
        &'a self,
        _: Integration,
        _: Letters<'a>,
    ) -> BoxFuture<'a, anyhow::Result<usize>> {
        futures::future::ready(Ok(0)).boxed()
    }
}

async fn dashboard(read_only: bool) -> (Arc<Stub>, RunningDashboard) {
    let stub = Arc::new(Stub::default());
    let options = DashboardOptions { port: 0, read_only };
    let running = start(stub.clone(), options).await.expect("started");
    (stub, running)
}

async fn get(running: &RunningDashboard, path: &str) -> (StatusCode, String) {
    let response = reqwest::get(format!("http://{}{path}", running.addr))
        .await
        .expect("answered");
    (response.status(), response.text().await.expect("a body"))
}

async fn replay(running: &RunningDashboard, form: &[(&str, &str)]) -> StatusCode {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let url = format!("http://{}/actions/replay", running.addr);
    let response = client.expect("client").post(url).form(form).send().await;
    response.expect("answered").status()
}

fn csrf(page: &str) -> &str {
    let rest = page.split("name=\"csrf\" value=\"").nth(1).expect("a form");
    rest.split('"').next().expect("a closed value")
}

#[tokio::test]
async fn given_an_empty_source_when_pages_are_fetched_then_each_answers_clearly() {
    let (_, running) = dashboard(false).await;
    let (status, page) = get(&running, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<tr class=\"empty\"><td colspan=\"5\">No deliveries.</td>"),
        "{page}"
    );
    let (status, api) = get(&running, "/api/deliveries?cursor=not-a-cursor").await;
    assert_eq!(
        (status, api.as_str()),
        (StatusCode::OK, r#"{"next":null,"rows":[]}"#)
    );
    for path in ["/deliveries/", "/deliveries/call.ended%23nobody", "/nope"] {
        assert_eq!(get(&running, path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, health) = get(&running, "/health").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        health.contains("could not scan table stub-table"),
        "{health}"
    );
}

#[tokio::test]
async fn given_replay_forms_when_posted_then_only_a_whole_one_replays() {
    let (stub, running) = dashboard(false).await;
    let (_, page) = get(&running, "/deliveries/call.ended%23stub-1").await;
    let token = csrf(&page).to_owned();
    let no_key = replay(&running, &[("csrf", &token)]).await;
    assert_eq!(no_key, StatusCode::BAD_REQUEST);
    let bad = replay(
        &running,
        &[("csrf", &token), ("key", KEY), ("integration", "fax")],
    )
    .await;
    assert_eq!(bad, StatusCode::BAD_REQUEST);
    assert!(stub.replays.lock().expect("unpoisoned").is_empty());
    let whole = replay(&running, &[("csrf", &token), ("key", KEY)]).await;
    assert_eq!(whole, StatusCode::SEE_OTHER);
    assert_eq!(*stub.replays.lock().expect("unpoisoned"), [KEY]);
}

#[tokio::test]
async fn given_read_only_when_a_replay_is_posted_then_403_and_nothing_replays() {
    let (stub, running) = dashboard(true).await;
    let (_, page) = get(&running, "/deliveries/call.ended%23stub-1").await;
    assert!(!page.contains("data-action=\"replay-all\""), "{page}");
    let token = page
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|r| r.split('"').next());
    let refused = replay(&running, &[("csrf", token.expect("a token")), ("key", KEY)]).await;
    assert_eq!(refused, StatusCode::FORBIDDEN);
    assert!(stub.replays.lock().expect("unpoisoned").is_empty());
}

#[tokio::test]
async fn given_a_body_over_the_limit_when_posted_then_413_and_nothing_replays() {
    let (stub, running) = dashboard(false).await;
    let (_, page) = get(&running, "/deliveries/call.ended%23stub-1").await;
    let token = csrf(&page).to_owned();
    // WHEN a whole replay form is padded past the server's body limit
    let padding = "x".repeat(crate::http_server::MAX_BODY_BYTES);
    let form = [("csrf", token.as_str()), ("key", KEY), ("pad", &padding)];
    let answer = replay(&running, &form).await;
    // THEN it is refused as too large, before any handler reads it
    assert_eq!(answer, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(stub.replays.lock().expect("unpoisoned").is_empty());
    let whole = replay(&running, &[("csrf", &token), ("key", KEY)]).await;
    assert_eq!(whole, StatusCode::SEE_OTHER, "the server still answers");
}
