//! The dashboard over HTTP (no browser) on moto through the real SDK: pages show the
//! stored deliveries, claims and dead letters; foreign or token-less POSTs are refused
//! and change nothing; a guarded redrive moves the letter back to its queue; a replay
//! finds a stack's generated queue names.

#[path = "dashboard/stand.rs"]
mod stand;

use aws_sdk_sqs::types::QueueAttributeName;
use nphooks_cli::dashboard::{self, DashboardOptions};
use nphooks_cli::ops;
use nphooks_cli::serve::{dlq_name, queue_name};
use nphooks_core::claims::PendingRetry;
use nphooks_core::config::Settings;
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::routing::Integration;
use nphooks_core::webhook::EventKind;
use nphooks_processor::RecordOutcome;
use reqwest::StatusCode;
use reqwest::header::{HOST, ORIGIN};
use stand::*;

#[tokio::test]
async fn given_a_retrying_claim_then_its_badge_and_detail_show_the_next_attempt() {
    // GIVEN a delivery whose CRM run failed twice transiently, due again at 17:46:40 UTC
    let stand = stand().await;
    let (key, _) = stand.delivery("dash-retry-1", &[Integration::Crm]).await;
    let retry = PendingRetry {
        attempts: 2,
        next_attempt_at: Some(1_900_000_000),
        reason: "server_error (503)",
    };
    stand.retrying(Integration::Crm, &key, retry).await;
    let dashboard = stand.dashboard().await;

    // THEN its badge says retrying, and when
    let page = get(&dashboard, "/").await;
    let badge = format!(
        "{}>crm · retrying · next 17:46:40</span>",
        badge("crm", "retrying")
    );
    assert!(row(&page, &key).contains(&badge), "{page}");
    let api = get(&dashboard, "/api/deliveries").await;
    assert!(
        api.contains(r#""next_attempt":"2030-03-17 17:46:40""#),
        "{api}"
    );
    // THEN its detail page shows the attempts, the reason and the next attempt
    let href = format!("/deliveries/{}", key.as_str().replace('#', "%23"));
    let detail = get(&dashboard, &href).await;
    for cell in [
        "<td class=\"attempts\">2</td>",
        "<td class=\"reason\">server_error (503)</td>",
        "<td class=\"next-attempt\">2030-03-17 17:46:40</td>",
    ] {
        assert!(detail.contains(cell), "{cell} in {detail}");
    }
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
        detail.contains("<td class=\"attempts\">1</td>"),
        "each claim stores its attempt: {detail}"
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

#[tokio::test]
async fn given_generated_queue_names_when_a_failing_delivery_is_replayed_then_the_stacks_dlq_gets_it()
 {
    // GIVEN Notify's queue and DLQ under generated names (NOTIFY_QUEUE_URL), a refusing sink
    let stand = stand().await;
    let sqs = aws_sdk_sqs::Client::new(&stand.aws);
    let create = |name: &'static str, redrive: Option<String>| {
        let request = sqs.create_queue().queue_name(name);
        let request = request
            .set_attributes(redrive.map(|r| [(QueueAttributeName::RedrivePolicy, r)].into()));
        async move {
            request
                .send()
                .await
                .expect("created")
                .queue_url
                .expect("a URL")
        }
    };
    let dlq = create("Stack-NotifyDLQ-1A2B", None).await;
    let arn = "arn:aws:sqs:us-east-1:123456789012:Stack-NotifyDLQ-1A2B";
    let policy = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"5"}}"#);
    let queue = create("Stack-NotifyQueue-1A2B", Some(policy)).await;
    let sales = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(400))
        .mount(&sales)
        .await;
    let settings = Settings::from_pairs([
        ("NOTIFY_QUEUE_URL", queue),
        ("NOTIFY_URL", format!("{}/hooks/sales", sales.uri())),
        (
            "NOTIFY_SIGNING_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        ),
        ("NPHOOKS_ALLOW_HTTP", "1".to_owned()),
    ]);
    let (key, _) = stand.delivery("dash-stack-1", &[Integration::Notify]).await;

    // WHEN the dashboard's replay (nphooks replay's code path) runs it
    let outcomes = ops::replay(&stand.aws, &settings, key.as_str(), None, false).await;

    // THEN it is dead-lettered to the stack's DLQ, not to the default-named one
    let outcomes = outcomes.expect("replayed");
    assert!(matches!(
        outcomes[..],
        [(Integration::Notify, RecordOutcome::DeadLettered(_))]
    ));
    assert_eq!(stand.count_at(&dlq).await, 1);
    assert_eq!(stand.count(&dlq_name(Integration::Notify)).await, 0);
}
