//! The email processor against a real SMTP server on loopback (aiosmtpd, started by
//! scripts/test.sh), SES and SQS/DynamoDB in moto.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use email::{EmailConfig, EmailSink, SesMailer, SmtpMailer, SmtpSettings, SmtpTls};
use futures::future::join_all;
use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_processor::{Delivered, Sink, process_batch};
use nphooks_testkit::{
    Moto, envelope_at, envelope_for, sqs_event, sqs_event_on, sqs_message, text,
};
use serde_json::json;

const PLENTY: Duration = Duration::from_secs(60);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with scripts/test.sh, which starts the SMTP server"
        )
    })
}

fn smtp_port() -> u16 {
    env("NPHOOKS_TEST_SMTP_PORT").parse().expect("a port")
}

fn maildir() -> PathBuf {
    PathBuf::from(env("NPHOOKS_TEST_MAILDIR"))
}

fn config(transport: email::Transport) -> EmailConfig {
    EmailConfig {
        transport,
        from: "Acme Routing <hello@acme.example>"
            .parse()
            .expect("mailbox"),
        reply_to: Some("sales@acme.example".parse().expect("mailbox")),
        business_name: "Acme Routing".into(),
    }
}

fn smtp_settings(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        credentials: None,
    }
}

fn smtp_sink(port: u16) -> EmailSink<SmtpMailer> {
    let settings = smtp_settings(port);
    EmailSink::new(
        config(email::Transport::Smtp(settings.clone())),
        SmtpMailer::new(&settings).expect("mailer"),
    )
}

/// A webhook for `call_type` from a caller with `email` and `name`. The call id gets a
/// suffix unique to this test run, so messages an SMTP server kept from earlier runs
/// (same delivery key, same Message-ID) never count.
fn call(call_id: &str, call_type: &str, email: Option<&str>, name: &str) -> String {
    static RUN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{}-{nanos}", std::process::id())
    });
    json!({
        "event": "call.ended",
        "data": {
            "call_id": format!("{call_id}_{run}"),
            "call_type": call_type,
            "caller": {"name": name, "phone": "+15551234567", "email": email},
            "ai_summary": "Wants a demo for a 40-person dispatch team.",
            "custom_fields": {"service_type": "kitchen remodeling", "preferred_time": "Tuesday afternoon"}
        }
    })
    .to_string()
}

fn envelope(body: &str) -> Envelope {
    Envelope::decode(&envelope_for(body)).expect("valid")
}

/// Messages the SMTP server stored whose text contains `needle`.
fn received(dir: &Path, needle: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter(|m| m.contains(needle))
                .collect()
        })
        .unwrap_or_default()
}

fn headers(message: &str) -> BTreeMap<String, Vec<String>> {
    let head = message.split("\r\n\r\n").next().unwrap_or_default();
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(v) = last
                .as_ref()
                .and_then(|name| map.get_mut(name))
                .and_then(|v| v.last_mut())
            {
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            let name = name.to_ascii_lowercase();
            map.entry(name.clone())
                .or_default()
                .push(value.trim().to_owned());
            last = Some(name);
        }
    }
    map
}

fn message_id(sink: &EmailSink<SmtpMailer>, body: &str) -> String {
    let message = sink
        .compose(&envelope(body))
        .expect("composes")
        .expect("an email");
    headers(&String::from_utf8(message.formatted()).expect("utf-8"))["message-id"][0].clone()
}

#[test]
fn given_each_call_type_then_the_rendered_email_matches_its_snapshot() {
    let sink = smtp_sink(1);
    for call_type in ["demo_request", "quote_request", "emergency"] {
        let body = call(
            &format!("call_{call_type}"),
            call_type,
            Some("dana@example.com"),
            "Dana Whitfield",
        );
        let message = sink
            .compose(&envelope(&body))
            .expect("composes")
            .expect("an email");
        let text = String::from_utf8(message.formatted()).expect("utf-8");
        let h = headers(&text);
        assert_eq!(
            h["to"],
            vec!["\"Dana Whitfield\" <dana@example.com>"],
            "{call_type}"
        );
        assert!(
            h["content-type"][0].starts_with("multipart/alternative"),
            "{call_type}"
        );
        let rendered = email::Templates::new()
            .render(
                call_type,
                &email::EmailContext {
                    business_name: "Acme Routing".into(),
                    first_name: "Dana".into(),
                    service_type: Some("kitchen remodeling".into()),
                    preferred_time: Some("Tuesday afternoon".into()),
                    summary: Some("Wants a demo for a 40-person dispatch team.".into()),
                },
            )
            .expect("renders")
            .expect("has an email");
        insta::assert_snapshot!(format!("{call_type}_subject"), rendered.subject);
        insta::assert_snapshot!(format!("{call_type}_text"), rendered.text);
        insta::assert_snapshot!(format!("{call_type}_html"), rendered.html);
    }
    assert!(
        sink.compose(&envelope(&call(
            "c",
            "general_inquiry",
            Some("d@example.com"),
            "D"
        )))
        .expect("ok")
        .is_err()
    );
}

#[test]
fn given_script_and_template_syntax_from_the_caller_then_they_are_escaped_and_unevaluated() {
    let rendered = email::Templates::new()
        .render(
            "quote_request",
            &email::EmailContext {
                business_name: "Acme".into(),
                first_name: "<script>alert(1)</script>".into(),
                service_type: Some("{{ 7*7 }}".into()),
                preferred_time: None,
                summary: Some("<img src=x onerror=alert(1)> {% if true %}x{% endif %}".into()),
            },
        )
        .expect("renders")
        .expect("has an email");
    assert!(!rendered.html.contains("<script>"), "{}", rendered.html);
    assert!(
        rendered
            .html
            .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{}",
        rendered.html
    );
    assert!(!rendered.html.contains("<img"), "{}", rendered.html);
    assert!(
        rendered.html.contains("{{ 7*7 }}") && !rendered.html.contains("49"),
        "{}",
        rendered.html
    );
    assert!(
        rendered.text.contains("{% if true %}x{% endif %}"),
        "{}",
        rendered.text
    );
    insta::assert_snapshot!("hostile_html", rendered.html);
}

#[tokio::test]
async fn given_a_name_with_a_header_injection_then_no_header_is_added() {
    let sink = smtp_sink(smtp_port());
    let body = call(
        "call_inject",
        "demo_request",
        Some("inject-target@example.com"),
        "Eve\r\nBcc: attacker@evil.example",
    );
    let delivered = sink.deliver(&envelope(&body)).await.expect("sent");
    assert!(matches!(delivered, Delivered::Sent(_)));

    let id = message_id(&sink, &body);
    let messages = received(&maildir(), &id);
    assert_eq!(messages.len(), 1);
    let h = headers(&messages[0]);
    assert!(!h.contains_key("bcc"), "{h:?}");
    assert_eq!(
        h["x-envelope-to"],
        vec!["inject-target@example.com"],
        "only the caller receives it"
    );
    assert_eq!(
        h["to"],
        vec!["inject-target@example.com"],
        "the display name with a line break is dropped"
    );
}

#[tokio::test]
async fn given_a_delivery_processed_twice_and_five_times_concurrently_then_the_smtp_server_gets_one_message_each()
 {
    let moto = Moto::start("email-once").await;
    let deps = moto.processor_deps(Integration::Email, smtp_sink(smtp_port()));
    let body = call(
        "call_email_once",
        "demo_request",
        Some("dana.once@example.com"),
        "Dana Whitfield",
    );
    let queued = envelope_for(&body);

    for attempt in 0..2 {
        let response = process_batch(
            &deps,
            sqs_event(
                vec![sqs_message(&format!("seq-{attempt}"), &queued)],
                PLENTY,
            ),
        )
        .await
        .expect("ok");
        assert!(response.batch_item_failures.is_empty());
    }
    let id = message_id(&deps.sink, &body);
    let messages = received(&maildir(), &id);
    assert_eq!(messages.len(), 1, "processed twice in a row");
    let h = headers(&messages[0]);
    assert_eq!(h["x-envelope-to"], vec!["dana.once@example.com"]);
    assert_eq!(
        h["subject"],
        vec!["Your Acme Routing demo request is confirmed"]
    );
    assert_eq!(h["reply-to"], vec!["sales@acme.example"]);
    assert!(
        messages[0].contains("Content-Type: text/plain"),
        "plain part"
    );
    assert!(messages[0].contains("Content-Type: text/html"), "HTML part");

    let body = call(
        "call_email_parallel",
        "demo_request",
        Some("dana.parallel@example.com"),
        "Dana Whitfield",
    );
    let queued = envelope_for(&body);
    join_all((0..5).map(|i| {
        process_batch(
            &deps,
            sqs_event(vec![sqs_message(&format!("par-{i}"), &queued)], PLENTY),
        )
    }))
    .await;
    assert_eq!(
        received(&maildir(), &message_id(&deps.sink, &body)).len(),
        1,
        "five concurrent copies"
    );
}

struct SmtpServer(Child);

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test]
async fn given_the_smtp_server_is_down_then_it_is_retried_and_sent_when_it_returns() {
    let moto = Moto::start("email-down").await;
    let port = free_port();
    let mut deps = moto.processor_deps(Integration::Email, smtp_sink(port));
    let clock = nphooks_core::clock::Clock::manual(std::time::SystemTime::now());
    deps.clock = clock.clone();
    deps.config.retry.max_queue_delay = Duration::ZERO;
    let body = call(
        "call_email_down",
        "demo_request",
        Some("dana.down@example.com"),
        "Dana Whitfield",
    );
    let queued = envelope_at(&body, clock.now());

    // WHEN nothing listens THEN the record is acknowledged and re-sent as attempt 1
    let response = process_batch(
        &deps,
        sqs_event_on(&clock, vec![sqs_message("down-1", &queued)], PLENTY),
    )
    .await
    .expect("ok");
    assert!(response.batch_item_failures.is_empty());
    let retries = moto.drain(&moto.queue_urls[&Integration::Email]).await;
    assert_eq!(retries.len(), 1);
    let retry = nphooks_testkit::event_source::record_from(&retries[0]);
    assert_eq!(
        retry.message_attributes["retry_attempts"]
            .string_value
            .as_deref(),
        Some("1")
    );

    // WHEN the server returns THEN the retry sends it
    let dir = std::env::temp_dir().join(format!("nphooks-maildir-{port}"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/smtp_server.py");
    let _server = SmtpServer(
        Command::new(env("NPHOOKS_TEST_PYTHON"))
            .arg(script)
            .args(["--port", &port.to_string(), "--maildir"])
            .arg(&dir)
            .spawn()
            .expect("start aiosmtpd"),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    clock.advance(Duration::from_secs(3600));
    let response = process_batch(&deps, sqs_event_on(&clock, vec![retry], PLENTY))
        .await
        .expect("ok");
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(received(&dir, &message_id(&deps.sink, &body)).len(), 1);
}

#[tokio::test]
async fn given_smtp_550_then_the_message_lands_in_the_dlq() {
    let moto = Moto::start("email-550").await;
    let deps = moto.processor_deps(Integration::Email, smtp_sink(smtp_port()));
    let queued = envelope_for(&call(
        "call_email_550",
        "demo_request",
        Some("reject-550@example.com"),
        "Dana",
    ));

    let response = process_batch(
        &deps,
        sqs_event(vec![sqs_message("m-550", &queued)], PLENTY),
    )
    .await
    .expect("ok");

    assert!(response.batch_item_failures.is_empty(), "acknowledged");
    let dead = moto.drain(&moto.dlq_urls[&Integration::Email]).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some(queued.as_str()));
    let reason = dead[0].message_attributes().expect("attributes")["failure_reason"]
        .string_value()
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("550"), "{reason}");
    let key = Envelope::decode(&queued).expect("valid").delivery_key;
    assert_eq!(
        text(
            &moto.item(&format!("email#{key}")).await.expect("record"),
            "state"
        ),
        "failed"
    );
}

#[tokio::test]
async fn given_smtp_451_then_the_record_is_retried() {
    let sink = smtp_sink(smtp_port());
    let result = sink
        .deliver(&envelope(&call(
            "call_email_451",
            "demo_request",
            Some("tempfail@example.com"),
            "Dana",
        )))
        .await;
    assert!(matches!(&result, Err(e) if e.retryable), "{result:?}");
}

#[tokio::test]
async fn given_missing_and_invalid_addresses_then_completed_as_skipped_without_connecting() {
    let moto = Moto::start("email-skip").await;
    // Nothing listens on this port: any connection attempt would fail the record.
    let deps = moto.processor_deps(Integration::Email, smtp_sink(free_port()));
    let cases = [
        ("call_no_email", None),
        ("call_blank_email", Some("  ")),
        ("call_bad_email", Some("not-an-address")),
        (
            "call_injected_email",
            Some("dana@example.com\r\nBcc: x@evil.example"),
        ),
    ];
    for (call_id, address) in cases {
        let queued = envelope_for(&call(call_id, "demo_request", address, "Dana"));
        let response = process_batch(
            &deps,
            sqs_event(vec![sqs_message(call_id, &queued)], PLENTY),
        )
        .await
        .expect("ok");
        assert!(response.batch_item_failures.is_empty(), "{call_id}");
        let key = Envelope::decode(&queued).expect("valid").delivery_key;
        assert_eq!(
            text(
                &moto.item(&format!("email#{key}")).await.expect("record"),
                "state"
            ),
            "completed",
            "{call_id}"
        );
    }
    assert_eq!(deps.sink.skipped(), 4);
}

/// SES's "sent in the last 24 hours" as moto counts it (SES v1 query API; moto does not
/// check signatures).
async fn ses_sent_count() -> f64 {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("moto");
    let xml = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/ses/aws4_request, SignedHeaders=host, Signature=0")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("Action=GetSendQuota&Version=2010-12-01")
        .send()
        .await
        .expect("moto")
        .text()
        .await
        .expect("text");
    let value = xml
        .split("<SentLast24Hours>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("SentLast24Hours");
    value.parse().expect("a number")
}

#[tokio::test]
async fn given_ses_transport_then_moto_ses_receives_the_message() {
    let moto = Moto::start("email-ses").await;
    aws_sdk_sesv2::Client::new(&moto.aws)
        .create_email_identity()
        .email_identity("hello@acme.example")
        .send()
        .await
        .expect("verify identity");
    let as_email = moto.aws_for(nphooks_testkit::function_id(Integration::Email));
    let sink = EmailSink::new(
        config(email::Transport::Ses),
        SesMailer::new(aws_sdk_sesv2::Client::new(&as_email)),
    );
    let before = ses_sent_count().await;

    let delivered = sink
        .deliver(&envelope(&call(
            "call_ses",
            "demo_request",
            Some("dana.ses@example.com"),
            "Dana",
        )))
        .await
        .expect("sent through SES");

    assert!(matches!(delivered, Delivered::Sent(_)));
    assert_eq!(
        ses_sent_count().await,
        before + 1.0,
        "moto's SES counted the message"
    );
}

#[tokio::test]
async fn given_ses_rejects_an_unverified_sender_then_the_failure_is_permanent() {
    let moto = Moto::start("email-ses-unverified").await;
    let mut unverified = config(email::Transport::Ses);
    unverified.from = "Nobody <nobody@unverified.example>"
        .parse()
        .expect("mailbox");
    let sink = EmailSink::new(
        unverified,
        SesMailer::new(aws_sdk_sesv2::Client::new(
            &moto.aws_for(nphooks_testkit::function_id(Integration::Email)),
        )),
    );

    let result = sink
        .deliver(&envelope(&call(
            "call_ses_rejected",
            "demo_request",
            Some("d@example.com"),
            "Dana",
        )))
        .await;

    assert!(matches!(&result, Err(e) if !e.retryable), "{result:?}");
}

#[test]
fn given_bad_email_settings_then_start_up_names_the_variable() {
    let base = [
        ("EMAIL_FROM", "Acme <hello@acme.example>"),
        ("SMTP_HOST", "smtp.example.com"),
    ];
    let cases: [(&[(&str, &str)], &str); 7] = [
        (
            &[("EMAIL_TRANSPORT", "pigeon")],
            "EMAIL_TRANSPORT must be smtp or ses",
        ),
        (
            &[("EMAIL_FROM", "not an address")],
            "EMAIL_FROM is not an email address",
        ),
        (&[("SMTP_TLS", "none")], "SMTP_TLS is none"),
        (
            &[("SMTP_TLS", "ssl3")],
            "SMTP_TLS must be none, starttls or tls",
        ),
        (&[("SMTP_PORT", "smtp")], "SMTP_PORT must be a port number"),
        (&[("SMTP_USERNAME", "u")], "SMTP_PASSWORD is not set"),
        (
            &[("EMAIL_FROM", "hello@acme.example")],
            "EMAIL_BUSINESS_NAME is not set",
        ),
    ];
    for (overrides, expected) in cases {
        let mut pairs: BTreeMap<&str, &str> = base.into_iter().collect();
        pairs.extend(overrides.iter().copied());
        let error =
            EmailConfig::from_settings(&Settings::from_pairs(pairs), false).expect_err(expected);
        assert!(error.to_string().contains(expected), "{expected}: {error}");
    }
    let with_password = Settings::from_pairs(
        base.into_iter()
            .chain([("SMTP_USERNAME", "u"), ("SMTP_PASSWORD", "hunter2-secret")]),
    );
    let config = EmailConfig::from_settings(&with_password, false).expect("valid");
    assert!(!format!("{config:?}").contains("hunter2-secret"));
}
