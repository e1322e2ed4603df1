//! Headless Chromium driven through chromedriver on a free loopback port: start, find,
//! poll with a deadline, screenshot.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// Names `rebound.test` resolves to in the browser: a DNS-rebinding attacker's name for
/// the dashboard, so the browser sends a foreign `Host`.
pub const REBOUND_HOST: &str = "rebound.test";

const INSTALL: &str = "chromedriver was not found: install the Debian packages with \
     `apt-get install --no-install-recommends chromium chromium-driver` (scripts/test.sh does), \
     or set NPHOOKS_CHROMEDRIVER (and NPHOOKS_CHROMIUM) to their paths";

/// The chromedriver process and a session on it; both end on drop.
#[derive(Debug)]
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Drop for Browser {
    /// chromedriver runs in a process group of its own with the browser it started: the
    /// whole group goes, even when the test failed before [`Browser::close`].
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn configured(var: &str, name: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .or_else(|| on_path(name))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session. `None` (with a notice) when
    /// chromedriver is missing, unless `NPHOOKS_REQUIRE_BROWSER=1` (scripts/test.sh): then
    /// the test fails with how to install it.
    pub async fn start() -> Option<Browser> {
        let Some(chromedriver) = configured("NPHOOKS_CHROMEDRIVER", "chromedriver") else {
            assert!(
                std::env::var("NPHOOKS_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "{INSTALL}"
            );
            // (straight to stderr: libtest would hide an eprintln! of a passing test)
            let notice = format!("SKIPPED: the dashboard's browser test: {INSTALL}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), notice.as_bytes());
            return None;
        };
        let port = free_port();
        let mut driver = Command::new(&chromedriver);
        let driver = nphooks_testkit::child_clock::real_clock(&mut driver)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{} did not start: {e}", chromedriver.display()));
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut options = json!({"args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,900", "--no-first-run", "--disable-extensions",
            "--disable-breakpad", "--disable-crash-reporter",
            "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
            format!("--host-resolver-rules=MAP {REBOUND_HOST} 127.0.0.1"),
        ]});
        if let Some(chromium) = configured("NPHOOKS_CHROMIUM", "chromium") {
            options["binary"] = json!(chromium);
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a headless Chromium session");
        Some(Browser { client, driver })
    }

    /// Ends the session: chromedriver quits the browser.
    pub async fn close(mut self) {
        let client = self.client.clone();
        client.close().await.expect("the session closes");
        let _ = self.driver.kill();
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    /// Runs `script` (a function body ending in `return ...`) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed ({e}): {script}"))
    }

    /// The HTTP status the current page was answered with.
    pub async fn status(&self) -> u64 {
        let status = self
            .js("return performance.getEntriesByType('navigation')[0].responseStatus;")
            .await;
        status.as_u64().expect("a navigation status")
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Evaluates `script` every 200 ms until `done` holds for its value; fails after
    /// `timeout` with the last value seen.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        script: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            // (a page reloading under the script answers an error: not there yet)
            let value = match self.client.execute(script, Vec::new()).await {
                Ok(value) if done(&value) => return value,
                Ok(value) => value,
                Err(error) => Value::String(error.to_string()),
            };
            assert!(
                started.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}; last seen: {value}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves the page to `<target>/dashboard-screenshots/<name>.png` (CI keeps them).
    pub async fn screenshot(&self, name: &str) {
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
            PathBuf::from,
        );
        let dir = target.join("dashboard-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let png = self.client.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }
}
