//! The dashboard over HTTP (no browser) on moto through the real SDK: pages show the
//! stored deliveries, claims and dead letters; foreign or token-less POSTs are refused
//! and change nothing; a guarded redrive moves the letter back to its queue.

use std::sync::Arc;

use aws_sdk_sqs::types::QueueAttributeName;
use nphooks_cli::dashboard::{self, AwsSource, DashboardOptions, RunningDashboard};
use nphooks_cli::ops;
use nphooks_cli::serve::{dlq_name, queue_name, queue_url};
use nphooks_core::claims::{DynamoClaims, EffectClaim, EffectClaims};
use nphooks_core::config::Settings;
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::envelope::{Envelope, QueueMessage};
use nphooks_core::ledger::{DeliveryLedger, DynamoLedger, NewDelivery};
use nphooks_core::queue::{Queue, SqsQueue};
use nphooks_core::routing::Integration;
use nphooks_core::webhook::EventKind;
use nphooks_core::window::ReplayWindow;
use reqwest::StatusCode;
use reqwest::header::{HOST, ORIGIN};

struct Stand {
    aws: aws_config::SdkConfig,
    table: String,
}

async fn stand() -> Stand {
    let aws = nphooks_core::aws::sdk_config(nphooks_processor::AWS_TIMEOUTS).await;
    ops::init_local(&aws, &settings())
        .await
        .expect("moto is up");
    Stand {
        aws,
        table: nphooks_cli::serve::default_table(),
    }
}

fn settings() -> Settings {
    Settings::from_pairs(Vec::<(String, String)>::new())
}

fn now() -> u64 {
    nphooks_core::epoch_seconds(std::time::SystemTime::now())
}

impl Stand {
    /// A delivery of call `call_id` routed to `routes`, recorded as the receiver does.
    async fn delivery(&self, call_id: &str, routes: &[Integration]) -> (DeliveryKey, String) {
        let mut body = nphooks_samples::webhook_body(EventKind::CallEnded);
        body["data"]["call_id"] = call_id.into();
        let message = nphooks_samples::queue_message(&body.to_string());
        let envelope = message.body().to_owned();
        let key = Envelope::decode(&envelope)
            .expect("an envelope")
            .delivery_key;
        let delivery = NewDelivery {
            payload_hash: "hash",
            queues: routes,
            envelope: Some(&envelope),
        };
        DynamoLedger::connect(&self.aws, &self.table)
            .begin(&key, delivery, now(), ReplayWindow::DEFAULT)
            .await
            .expect("recorded");
        (key, envelope)
    }

    /// A claim, completed or failed with `reason` as the processor stores it.
    async fn claim(&self, integration: Integration, key: &DeliveryKey, failed: Option<&str>) {
        let claims = DynamoClaims::connect(&self.aws, &self.table);
        let claim = EffectClaim::new(integration, key, "test-run");
        let at = now();
        claims
            .claim(&claim, at + 60, at, ReplayWindow::DEFAULT)
            .await
            .expect("claimed");
        match failed {
            Some(reason) => claims.fail(&claim, reason, at).await,
            None => claims.complete(&claim, at).await,
        }
        .expect("settled");
    }

    /// The letter the processor dead-letters.
    async fn dead_letter(&self, integration: Integration, envelope: &str, reason: &str) {
        let sqs = aws_sdk_sqs::Client::new(&self.aws);
        let dlq = queue_url(&sqs, &dlq_name(integration)).await.expect("dlq");
        let letter = QueueMessage::dead_letter(envelope, integration.as_str(), reason, "m-1");
        SqsQueue::connect(&self.aws)
            .send(&dlq, &letter)
            .await
            .expect("sent");
    }

    async fn count(&self, queue: &str) -> usize {
        let sqs = aws_sdk_sqs::Client::new(&self.aws);
        let url = queue_url(&sqs, queue).await.expect("queue");
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("attributes");
        attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok())
            .expect("a count")
    }

    async fn claim_state(&self, integration: Integration, key: &DeliveryKey) -> Option<String> {
        let item = aws_sdk_dynamodb::Client::new(&self.aws)
            .get_item()
            .table_name(&self.table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("{integration}#{key}")),
            )
            .send()
            .await
            .expect("read")
            .item?;
        item.get("state")?.as_s().ok().cloned()
    }

    async fn dashboard(&self) -> RunningDashboard {
        let source = Arc::new(AwsSource::new(self.aws.clone(), settings()));
        dashboard::start(source, DashboardOptions::default())
            .await
            .expect("started")
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn get(dashboard: &RunningDashboard, path: &str) -> String {
    let response = client()
        .get(format!("http://{}{path}", dashboard.addr))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.text().await.expect("a body")
}

/// The `<tr>` of a delivery on the deliveries page.
fn row<'a>(page: &'a str, key: &DeliveryKey) -> &'a str {
    let start = page
        .find(&format!("data-delivery-key=\"{key}\""))
        .unwrap_or_else(|| panic!("no row for {key} in {page}"));
    let end = page[start..].find("</tr>").expect("a closed row");
    &page[start..start + end]
}

/// The session's CSRF token, from a page's form.
fn csrf(page: &str) -> String {
    let rest = page.split("name=\"csrf\" value=\"").nth(1);
    let token = rest.and_then(|rest| rest.split('"').next());
    token.expect("a CSRF token in a form").to_owned()
}

fn badge(integration: &str, state: &str) -> String {
    format!("class=\"badge\" data-integration=\"{integration}\" data-state=\"{state}\"")
}

#[tokio::test]
async fn given_stored_deliveries_when_pages_are_fetched_then_badges_and_reasons_show() {
    // GIVEN one delivery done on CRM and dead-lettered on Slack, one still queued
    let stand = stand().await;
    let (dead, envelope) = stand
        .delivery("dash-pages-1", &[Integration::Crm, Integration::Slack])
        .await;
    stand.claim(Integration::Crm, &dead, None).await;
    stand
        .claim(Integration::Slack, &dead, Some("not_found (404)"))
        .await;
    stand
        .dead_letter(Integration::Slack, &envelope, "not_found (404)")
        .await;
    let (queued, _) = stand.delivery("dash-pages-2", &[Integration::Email]).await;
    let dashboard = stand.dashboard().await;

    // WHEN the deliveries page is fetched THEN each row has its badges
    let page = get(&dashboard, "/").await;
    assert!(page.contains("<table id=\"deliveries\""), "{page}");
    let first = row(&page, &dead);
    assert!(first.contains(&badge("crm", "done")), "{first}");
    assert!(first.contains(&badge("slack", "dead-lettered")), "{first}");
    assert!(
        first.contains("<td class=\"event\">call.ended</td>"),
        "{first}"
    );
    assert!(
        first.contains("<td class=\"call-type\">demo_request</td>"),
        "{first}"
    );
    assert!(row(&page, &queued).contains(&badge("email", "queued")));
    let filtered = get(&dashboard, "/?status=dead-lettered").await;
    assert!(filtered.contains(&format!("data-delivery-key=\"{dead}\"")));
    assert!(!filtered.contains(&format!("data-delivery-key=\"{queued}\"")));
    let api = get(&dashboard, "/api/deliveries").await;
    assert!(api.contains("\"state\":\"dead-lettered\""), "{api}");

    // THEN the dead letters page groups the Slack letter under its reason
    let letters = get(&dashboard, "/dead-letters").await;
    assert!(
        letters.contains(r#"class="dlq" data-integration="slack" data-count="1""#),
        "{letters}"
    );
    assert!(
        letters.contains(r#"class="reason" data-reason="not_found""#),
        "{letters}"
    );

    // THEN the detail page shows the reason and masks the caller
    let href = format!("/deliveries/{}", dead.as_str().replace('#', "%23"));
    let detail = get(&dashboard, &href).await;
    let slack = r#"class="integration" data-integration="slack" data-state="dead-lettered""#;
    assert!(detail.contains(slack), "{detail}");
    assert!(
        detail.contains("<td class=\"reason\">not_found (404)</td>"),
        "{detail}"
    );
    assert!(
        detail.contains(r#"class="masked" data-field="phone""#),
        "{detail}"
    );
    assert!(!detail.contains("Dana Whitfield") && !detail.contains("+15551234567"));
    assert!(!api.contains("Dana Whitfield") && !api.contains("+15551234567"));

    // THEN a reveal needs the page's token and the browser's own site; no CORS opens it
    let reveal = |token: &str, site: &str| {
        let form = [("key", dead.as_str()), ("field", "name"), ("csrf", token)];
        let url = format!("http://{}/api/reveal", dashboard.addr);
        client()
            .post(url)
            .header("sec-fetch-site", site)
            .form(&form)
            .send()
    };
    let token = csrf(&detail);
    for (token, site) in [("", "same-origin"), (token.as_str(), "cross-site")] {
        let refused = reveal(token, site).await.expect("answered");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{site}");
    }
    let revealed = reveal(&token, "same-origin").await.expect("answered");
    assert!(
        revealed
            .headers()
            .keys()
            .all(|h| !h.as_str().starts_with("access-control-"))
    );
    assert_eq!(revealed.text().await.expect("a body"), "\"Dana Whitfield\"");

    // THEN the health page draws its chart
    let health = get(&dashboard, "/health").await;
    assert!(health.contains("<svg id=\"health-chart\""), "{health}");
}

#[tokio::test]
async fn given_a_letter_when_posts_are_foreign_or_tokenless_then_403_and_only_a_guarded_redrive_moves_it()
 {
    // GIVEN a CRM letter and its failed claim
    let stand = stand().await;
    let (key, envelope) = stand.delivery("dash-guard-1", &[Integration::Crm]).await;
    stand
        .claim(Integration::Crm, &key, Some("server_error (503)"))
        .await;
    stand
        .dead_letter(Integration::Crm, &envelope, "server_error (503)")
        .await;
    let dashboard = stand.dashboard().await;
    let page = get(&dashboard, "/dead-letters").await;
    let csrf = csrf(&page);
    let letter = ops::dlq_list(&stand.aws, Integration::Crm)
        .await
        .expect("listed")
        .into_iter()
        .find(|l| l.delivery_key == key.as_str())
        .expect("the letter")
        .message_id;
    let url = |path: &str| format!("http://{}{path}", dashboard.addr);
    let own = format!("http://{}", dashboard.addr);
    let redrive = |token: &str| {
        vec![
            ("csrf", token.to_owned()),
            ("integration", "crm".to_owned()),
            ("letter", letter.clone()),
            ("scope", "selected".to_owned()),
        ]
    };

    // WHEN POSTs come from another origin, another host, or without the right token
    let refused = [
        client()
            .post(url("/actions/redrive"))
            .header(ORIGIN, "http://evil.example")
            .form(&redrive(&csrf)),
        client()
            .post(url("/actions/redrive"))
            .header(HOST, "evil.example")
            .form(&redrive(&csrf)),
        client()
            .post(url("/actions/redrive"))
            .header(ORIGIN, &own)
            .form(&redrive("wrong")),
        client().post(url("/actions/redrive")).form(&redrive("")),
        client()
            .post(url("/actions/redrive"))
            .header("sec-fetch-site", "cross-site")
            .form(&redrive(&csrf)),
        client()
            .post(url("/actions/replay"))
            .header(ORIGIN, "http://evil.example")
            .form(&[("csrf", csrf.as_str()), ("key", key.as_str())]),
    ];
    for request in refused {
        let response = request.send().await.expect("answered");
        // THEN each is refused and nothing changed
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(stand.count(&dlq_name(Integration::Crm)).await, 1);
        assert_eq!(stand.count(&queue_name(Integration::Crm)).await, 0);
        assert_eq!(
            stand.claim_state(Integration::Crm, &key).await.as_deref(),
            Some("failed")
        );
    }
    for path in ["/", "/assets/dashboard.js", "/no-such-page"] {
        let foreign_get = client().get(url(path)).header(HOST, "rebound.example:80");
        let status = foreign_get.send().await.expect("answered").status();
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }

    // WHEN the redrive comes from the page with its token
    let response = client()
        .post(url("/actions/redrive"))
        .header(ORIGIN, &own)
        .form(&redrive(&csrf))
        .send()
        .await
        .expect("answered");

    // THEN it is answered 303 and the letter is back on its queue
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(stand.count(&dlq_name(Integration::Crm)).await, 0);
    assert_eq!(stand.count(&queue_name(Integration::Crm)).await, 1);
}

#[tokio::test]
async fn given_serve_in_memory_when_a_call_is_sent_then_its_dashboard_shows_the_row() {
    // GIVEN `serve` offline (previews) with its dashboard
    use nphooks_cli::send::{RetrySchedule, SendOptions};
    use nphooks_cli::serve::{self, ServeOptions};
    let outbox = std::env::temp_dir().join(format!("nphooks-dash-{}", std::process::id()));
    let settings = serve::with_local_defaults(&settings(), false);
    let options = ServeOptions {
        port: 0,
        outbox,
        ..ServeOptions::default()
    };
    let running = serve::start(settings.clone(), &options)
        .await
        .expect("serving");
    let source = running.dashboard_source(settings, stand().await.aws);
    let dashboard = dashboard::start(source, DashboardOptions::default())
        .await
        .expect("started");

    // WHEN a signed call is sent and handled
    let url = format!("http://{}{}", running.addr, nphooks_samples::WEBHOOK_PATH);
    let body = nphooks_samples::webhook_body(EventKind::CallEnded).to_string();
    let options = SendOptions {
        url,
        secret: nphooks_samples::TEST_WEBHOOK_SECRET.to_owned(),
        api_key: None,
        retries: RetrySchedule::None,
    };
    let answer = nphooks_cli::send::send(&options, &body).await;
    let answer: serde_json::Value = serde_json::from_str(&answer[0].body).expect("json");
    let key = answer["delivery_key"].as_str().expect("a key").to_owned();
    let done = running
        .tracker
        .wait(&key, std::time::Duration::from_secs(20))
        .await;
    assert!(done.is_some_and(|p| p.complete()), "not handled");

    // THEN the deliveries page shows it done on every routed integration
    let page = get(&dashboard, "/").await;
    let row = row(&page, &DeliveryKey::from_stored(key));
    for integration in ["crm", "email", "slack", "notify"] {
        assert!(row.contains(&badge(integration, "done")), "{row}");
    }
}
