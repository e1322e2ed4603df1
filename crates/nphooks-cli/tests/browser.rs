//! The dashboard in headless Chromium (WebDriver through chromedriver): `nphooks serve` on
//! moto with the dashboard on, its Slack and CRM sinks local stand-ins that fail on cue.
//! Three signed calls; the deliveries page shows their badges, the dead-letters page the
//! Slack letter and its reason; forged POSTs (another origin, a rebound host name) are
//! refused and change nothing; a click on redrive, with Slack fixed, takes effect once.
//! Screenshots of each page go to `target/dashboard-screenshots/`.

#[path = "browser/chrome.rs"]
mod chrome;
#[path = "browser/stand_ins.rs"]
mod stand_ins;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use chrome::{Browser, REBOUND_HOST, free_port};
use nphooks_cli::body::build_body;
use nphooks_cli::send::{RetrySchedule, SendOptions, send, verdict};
use nphooks_samples::TEST_WEBHOOK_SECRET;
use serde_json::{Value, json};
use stand_ins::FailOnCue;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BIN: &str = env!("CARGO_BIN_EXE_nphooks");
const PATIENCE: Duration = Duration::from_secs(60);
/// The three calls: Slack refuses the first for good (until fixed), the CRM answers 503
/// twice to the second, the third goes through.
const SLACK_FAILS: &str = "callslackrefused";
const CRM_RETRIES: &str = "callcrmunavailable";
const CLEAN: &str = "callallwell";
const ROUTED: [&str; 4] = ["crm", "email", "slack", "notify"];

fn key(call: &str) -> String {
    format!("call.ended#{call}")
}

/// `nphooks` on the test's moto server, under a table and queue prefix of its own.
struct Stand {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Stand {
    fn new() -> Stand {
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .expect("AWS_ENDPOINT_URL: run through the test runner (it starts moto)");
        let dir = std::env::temp_dir().join(format!("nphooks-browser-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let env = [
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            (
                "NPHOOKS_LOCAL_PREFIX",
                &format!("browser{}", std::process::id()),
            ),
        ];
        let env = env.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec();
        Stand { dir, env }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().cloned())
            .args(args);
        nphooks_testkit::child_clock::same_clock(&mut command);
        command
    }

    fn log(&self) -> PathBuf {
        self.dir.join("serve.log")
    }
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for_port(port: u16, log: &Path) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let output = std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not listen on {port}: {output}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `init-local`, then `serve --aws` with the dashboard, Slack and CRM pointed at the
/// stand-ins (retries a second apart), and sends the three calls; returns the dashboard's port.
async fn start_serve(stand: &Stand, slack: &MockServer, crm: &MockServer) -> (Serve, u16) {
    let mut init = stand.command(&["init-local"]);
    let init = tokio::task::spawn_blocking(move || init.output().expect("init-local runs"))
        .await
        .expect("joined");
    assert!(init.status.success(), "init-local: {init:?}");
    let (port, dashboard) = (free_port(), free_port());
    let log = std::fs::File::create(stand.log()).expect("serve log");
    let (port_arg, dashboard_arg) = (port.to_string(), dashboard.to_string());
    let mut serve = stand.command(&["serve", "--aws", "--port", &port_arg, "--visibility", "2"]);
    serve
        .args(["--dashboard-port", &dashboard_arg])
        .env(
            "SLACK_WEBHOOK_URL",
            format!("{}/services/T0/B0/x", slack.uri()),
        )
        .env("CRM_API_URL", format!("{}/leads", crm.uri()))
        .env("CRM_API_TOKEN", "crm-test-token")
        .env("NPHOOKS_ALLOW_HTTP", "1")
        .env("NPHOOKS_RETRY_BASE_SECONDS", "1")
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log);
    let serve = Serve(serve.spawn().expect("serve starts"));
    wait_for_port(port, &stand.log()).await;
    wait_for_port(dashboard, &stand.log()).await;
    let url = format!("http://127.0.0.1:{port}/webhook/nextphone");
    for call in [SLACK_FAILS, CRM_RETRIES, CLEAN] {
        let body = build_body("call.ended:demo_request", &[format!("data.call_id={call}")])
            .expect("a sample body");
        let options = SendOptions {
            url: url.clone(),
            secret: TEST_WEBHOOK_SECRET.to_owned(),
            api_key: None,
            retries: RetrySchedule::None,
        };
        assert_eq!(verdict(&send(&options, &body).await), (0, None), "{call}");
    }
    (serve, dashboard)
}

/// Each delivery row's badges: `{key: {integration: state}}`.
const BADGES: &str = r#"const rows = {};
for (const row of document.querySelectorAll('#deliveries tr.delivery')) {
  const badges = {};
  for (const b of row.querySelectorAll('span.badge')) badges[b.dataset.integration] = b.dataset.state;
  rows[row.dataset.deliveryKey] = badges;
}
return rows;"#;

/// Each dead-letter section: `{integration: {count, reasons}}`.
const DEAD_LETTERS: &str = r#"const dlqs = {};
for (const s of document.querySelectorAll('section.dlq')) {
  dlqs[s.dataset.integration] = {count: s.dataset.count,
    reasons: Array.from(s.querySelectorAll('li.reason'), li => li.dataset.reason)};
}
return dlqs;"#;

fn badges(states: [&str; 4]) -> Value {
    ROUTED
        .into_iter()
        .zip(states)
        .map(|(integration, state)| (integration.to_owned(), json!(state)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn slack_letters(dead: &Value) -> String {
    dead["slack"]["count"].as_str().unwrap_or("0").to_owned()
}

/// A page on another loopback origin whose form, once clicked, POSTs `fields` to `action`
/// (the dashboard's own redrive form, copied with its CSRF token: only the origin differs).
async fn forge(attacker: &MockServer, page: &str, action: &str, fields: &Value) -> String {
    let inputs: String = fields
        .as_array()
        .expect("form fields")
        .iter()
        .map(|pair| {
            let attribute = |v: &Value| v.as_str().unwrap_or_default().replace('"', "&quot;");
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                attribute(&pair[0]),
                attribute(&pair[1])
            )
        })
        .collect();
    let html = format!(
        r#"<!doctype html><form method="post" action="{action}">{inputs}<button id="go">win a prize</button></form>"#
    );
    Mock::given(method("GET"))
        .and(path(format!("/{page}")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(html, "text/html"))
        .mount(attacker)
        .await;
    format!("{}/{page}", attacker.uri())
}

#[tokio::test(flavor = "multi_thread")]
async fn given_three_calls_when_browsed_then_badges_letters_and_redrive_hold() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let stand = Stand::new();
    let slack = FailOnCue::until_fixed(SLACK_FAILS, 400);
    let crm = FailOnCue::times(CRM_RETRIES, 503, 2);
    let (slack_server, crm_server) = (slack.serve().await, crm.serve().await);
    let (_serve, dashboard) = start_serve(&stand, &slack_server, &crm_server).await;
    let origin = format!("http://127.0.0.1:{dashboard}");

    // THEN the deliveries page shows three rows, each with its badges.
    browser.goto(&format!("{origin}/")).await;
    let expected = json!({
        key(SLACK_FAILS): badges(["done", "done", "dead-lettered", "done"]),
        key(CRM_RETRIES): badges(["done", "done", "done", "done"]),
        key(CLEAN): badges(["done", "done", "done", "done"]),
    });
    browser
        .wait_until("the three rows' badges", PATIENCE, BADGES, |rows| {
            *rows == expected
        })
        .await;
    assert_eq!(slack.failed(), 1, "a permanent failure is not retried");
    assert_eq!(crm.failed(), 2, "the CRM answered 503 twice");
    assert_eq!(crm.succeeded(), (1, 3), "then took each lead once");
    browser.screenshot("deliveries").await;

    // The detail page: Slack dead-lettered with its reason; the caller's phone masked.
    let row = format!(r#"tr.delivery[data-delivery-key="{}"] a"#, key(SLACK_FAILS));
    browser.click(&row).await;
    let detail = browser
        .wait_until("the detail page", PATIENCE, DETAIL, |d| !d.is_null())
        .await;
    assert_eq!(detail["slack"]["state"], "dead-lettered", "{detail}");
    let reason = detail["slack"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("invalid_payload"), "{detail}");
    assert!(
        !detail["phone"]
            .as_str()
            .unwrap_or_default()
            .contains("5551234567")
    );
    browser.screenshot("detail").await;
    browser.click(r#"span.masked[data-field="phone"]"#).await;
    let revealed = browser
        .wait_until("the phone revealed", PATIENCE, DETAIL, |d| {
            d["phone"]
                .as_str()
                .is_some_and(|p| p.contains("5551234567"))
        })
        .await;
    assert!(!revealed.is_null());

    // THEN the CRM's detail counts the two failed attempts and the one that took
    browser
        .goto(&format!("{origin}/deliveries/call.ended%23{CRM_RETRIES}"))
        .await;
    let detail = browser
        .wait_until("the CRM detail", PATIENCE, DETAIL, |d| !d.is_null())
        .await;
    assert_eq!(detail["crm"]["state"], "done", "{detail}");
    assert_eq!(detail["crm"]["attempts"], "3", "{detail}");

    // THEN the dead-letters page shows the Slack letter and its reason.
    browser.goto(&format!("{origin}/dead-letters")).await;
    let dead = browser.js(DEAD_LETTERS).await;
    assert_eq!(slack_letters(&dead), "1", "{dead}");
    assert_eq!(
        dead["slack"]["reasons"],
        json!(["invalid_payload"]),
        "{dead}"
    );
    for other in ["crm", "email", "notify"] {
        assert_eq!(dead[other]["count"].as_str().unwrap_or("0"), "0", "{dead}");
    }
    browser.screenshot("dead-letters").await;

    // WHEN Slack is fixed and forged redrives arrive from another origin and a rebound host
    slack.fix();
    let form = browser.js(REDRIVE_ALL_FORM).await;
    let attacker = MockServer::start().await;
    let rebound = form["action"]
        .as_str()
        .expect("the form's action")
        .replace("127.0.0.1", REBOUND_HOST);
    for (page, action, refused) in [
        (
            "cross-origin",
            form["action"].as_str().unwrap_or_default(),
            "Origin",
        ),
        ("rebound", &rebound, "Host"),
    ] {
        browser
            .goto(&forge(&attacker, page, action, &form["fields"]).await)
            .await;
        browser.click("#go").await;
        browser
            .wait_until(
                "the forged POST's answer",
                PATIENCE,
                "return location.href;",
                |href| {
                    href.as_str()
                        .is_some_and(|h| !h.starts_with(&attacker.uri()))
                },
            )
            .await;
        // THEN each is refused and nothing moved
        assert_eq!(browser.status().await, 403, "{page}");
        let answer = browser.js("return document.body.innerText;").await;
        assert!(
            answer.as_str().is_some_and(|a| a.contains(refused)),
            "{page}: {answer}"
        );
        browser.goto(&format!("{origin}/dead-letters")).await;
        assert_eq!(
            slack_letters(&browser.js(DEAD_LETTERS).await),
            "1",
            "{page}"
        );
    }
    browser
        .goto(&format!("http://{REBOUND_HOST}:{dashboard}/"))
        .await;
    assert_eq!(browser.status().await, 403, "a foreign Host is refused");
    assert_eq!(slack.succeeded().0, 0, "no forged redrive reached Slack");

    // WHEN the Slack letter is selected and redriven with a click
    browser.goto(&format!("{origin}/dead-letters")).await;
    browser
        .click(r#"section.dlq[data-integration="slack"] input[name="letter"]"#)
        .await;
    browser.js("window.beforeRedrive = true;").await;
    browser
        .click(r#"button[data-action="redrive"][data-integration="slack"]"#)
        .await;
    browser
        .wait_until("the redrive's answer", PATIENCE, AFTER_REDRIVE, |p| {
            p == "/dead-letters"
        })
        .await;
    assert_eq!(browser.status().await, 200, "redirected back to the page");

    // THEN its badge turns done and Slack received exactly one post for that call
    browser.goto(&format!("{origin}/")).await;
    let slack_badge = format!(
        r#"const b = document.querySelector('tr.delivery[data-delivery-key="{}"] span.badge[data-integration="slack"]'); return b && b.dataset.state;"#,
        key(SLACK_FAILS)
    );
    browser
        .wait_until("the redriven badge done", PATIENCE, &slack_badge, |s| {
            s == "done"
        })
        .await;
    browser.goto(&format!("{origin}/dead-letters")).await;
    assert_eq!(slack_letters(&browser.js(DEAD_LETTERS).await), "0");
    browser.goto(&format!("{origin}/health")).await;
    let health = browser
        .wait_until("the health chart", PATIENCE, HEALTH, |found| {
            found["chart"].as_bool() == Some(true)
        })
        .await;
    // (the day's column: Slack delivered all three, the redriven one included)
    assert_eq!(health["slack"], json!(["3", "0", "3", "0"]), "{health}");
    browser.screenshot("health").await;
    assert_eq!(slack.succeeded(), (1, 3), "one post for the redriven call");
    assert_eq!(slack.failed(), 1);
    browser.close().await;
}

/// On the detail page: each integration's state, reason and attempts, and the phone as
/// shown.
const DETAIL: &str = r#"if (!document.querySelector('#envelope')) return null;
const d = {phone: (document.querySelector('span.masked[data-field="phone"]') || {}).textContent};
for (const tr of document.querySelectorAll('tr.integration')) {
  d[tr.dataset.integration] = {state: tr.dataset.state,
    reason: (tr.querySelector('td.reason') || {}).textContent || '',
    attempts: (tr.querySelector('td.attempts') || {}).textContent || ''};
}
return d;"#;

/// The Slack redrive-all form: its action and every field it would submit (CSRF included).
const REDRIVE_ALL_FORM: &str = r#"const button = document.querySelector('button[data-action="redrive-all"][data-integration="slack"]');
return {action: button.form.action, fields: Array.from(new FormData(button.form, button))};"#;

/// The chart's presence, and per integration its delivered and dead-lettered counts
/// (hour, then day).
const HEALTH: &str = r#"const h = {chart: document.querySelector('svg#health-chart') !== null};
for (const tr of document.querySelectorAll('tr.health')) {
  const cells = Array.from(tr.querySelectorAll('td.delivered, td.dead-lettered'));
  h[tr.dataset.integration] = cells.map(td => td.textContent.trim());
}
return h;"#;

/// The page's path once a new page replaced the one the redrive was clicked on.
const AFTER_REDRIVE: &str = "return window.beforeRedrive ? null : location.pathname;";
