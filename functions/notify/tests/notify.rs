//! The notify processor against a local sales-team endpoint (wiremock): the body
//! (snapshot), Standard Webhooks signatures checked by the independent `standardwebhooks`
//! crate, stable ids across retries, error classification and configuration.

use std::time::Duration;

use notify::{NotifySink, notification};
use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_processor::http::client;
use nphooks_processor::{Delivered, HttpSink, RetryAfter, Sink};
use nphooks_testkit::{demo_request, envelope_at, envelope_for, rendered_demo_request};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const HOOK_PATH: &str = "/hooks/sales";

fn settings(url: &str, secret: Option<&str>) -> Settings {
    let mut pairs = vec![("NOTIFY_URL", url.to_owned())];
    if let Some(secret) = secret {
        pairs.push(("NOTIFY_SIGNING_SECRET", secret.to_owned()));
    }
    Settings::from_pairs(pairs)
}

fn sink_for(server: &MockServer) -> NotifySink {
    NotifySink::from_settings(
        &settings(&format!("{}{HOOK_PATH}", server.uri()), Some(SECRET)),
        true,
        client().expect("client"),
    )
    .expect("valid config")
}

fn envelope(call_id: &str, name: &str) -> Envelope {
    Envelope::decode(&envelope_for(&demo_request(call_id, name))).expect("valid")
}

async fn endpoint(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

async fn recorded(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect("recording is on")
}

#[test]
fn given_a_demo_request_then_the_notification_body_matches_its_snapshot() {
    insta::assert_json_snapshot!(
        "demo_request",
        notification(
            &Envelope::decode(&rendered_demo_request("call_notify", "Dana Whitfield"))
                .expect("valid")
        )
    );
}

#[test]
fn given_a_call_without_call_type_then_the_type_is_the_event_name() {
    let minimal = Envelope::decode(&envelope_at(
        r#"{"event":"message.collected","data":{"call_id":"c-min"}}"#,
        nphooks_samples::sample_times().1,
    ))
    .expect("valid");
    let body = notification(&minimal);
    assert_eq!(body["type"], "message.collected");
    insta::assert_json_snapshot!("minimal", body);
}

#[tokio::test]
async fn given_a_delivery_when_sent_then_the_standardwebhooks_crate_verifies_its_signature() {
    let server = endpoint(200).await;
    let envelope = envelope("call_sig", "Dana Whitfield");

    let result = sink_for(&server).deliver(&envelope).await;

    assert!(matches!(result, Ok(Delivered::Sent(_))), "{result:?}");
    let requests = recorded(&server).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    let sent: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON body");
    assert_eq!(sent, notification(&envelope));

    let verifier = standardwebhooks::Webhook::new(SECRET).expect("valid secret");
    verifier
        .verify(&request.body, &request.headers)
        .expect("the signature verifies over the exact body sent");

    let mut altered = request.body.clone();
    let last = altered.len() - 2; // inside the JSON, still valid UTF-8
    altered[last] ^= 0x01;
    assert!(
        verifier.verify(&altered, &request.headers).is_err(),
        "a body altered by one byte must not verify"
    );

    let other = standardwebhooks::Webhook::new("whsec_c2VjcmV0LWZvci1zb21lb25lLWVsc2U=")
        .expect("valid secret");
    assert!(
        other.verify(&request.body, &request.headers).is_err(),
        "another key must not verify"
    );
}

#[tokio::test]
async fn given_a_retried_delivery_then_the_webhook_id_is_stable_and_another_delivery_differs() {
    let server = endpoint(200).await;
    let sink = sink_for(&server);
    let first = envelope("call_retry", "Dana");
    let again = envelope("call_retry", "Dana");
    let other = envelope("call_other", "Dana");

    for e in [&first, &again, &other] {
        sink.deliver(e).await.expect("sent");
    }

    let ids: Vec<String> = recorded(&server)
        .await
        .iter()
        .map(|r| {
            r.headers
                .get("webhook-id")
                .expect("webhook-id header")
                .to_str()
                .expect("ascii")
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids[0].starts_with("msg_") && ids[0].len() == 36,
        "{}",
        ids[0]
    );
    assert_eq!(ids[0], ids[1], "retries of one delivery share an id");
    assert_ne!(
        ids[0], ids[2],
        "another delivery key gets another id ({} vs {})",
        first.delivery_key, other.delivery_key
    );
}

#[tokio::test]
async fn given_a_sent_notification_then_the_logged_outcome_holds_no_caller_details() {
    let server = endpoint(202).await;
    let outcome = sink_for(&server)
        .deliver(&envelope("call_pii", "Dana Whitfield"))
        .await;
    let Ok(Delivered::Sent(text)) = outcome else {
        panic!("expected sent, got {outcome:?}");
    };
    assert!(text.contains("202"), "{text}");
    for pii in [
        "Dana",
        "Whitfield",
        "+15551234567",
        "5551234567",
        "example.com",
    ] {
        assert!(!text.contains(pii), "{pii} in {text}");
    }
}

#[tokio::test]
async fn given_the_endpoint_answers_400_then_the_failure_is_permanent() {
    let server = endpoint(400).await;
    let result = sink_for(&server).deliver(&envelope("c400", "Dana")).await;
    assert!(
        matches!(&result, Err(e) if !e.retryable && e.status.map(|s| s.as_u16()) == Some(400)),
        "{result:?}"
    );
}

#[tokio::test]
async fn given_the_endpoint_answers_503_then_the_failure_is_transient() {
    let server = endpoint(503).await;
    let result = sink_for(&server).deliver(&envelope("c503", "Dana")).await;
    assert!(
        matches!(&result, Err(e) if e.retryable && e.status.map(|s| s.as_u16()) == Some(503)),
        "{result:?}"
    );
}

#[tokio::test]
async fn given_the_endpoint_answers_429_with_retry_after_then_it_is_transient_and_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7"))
        .mount(&server)
        .await;
    let result = sink_for(&server).deliver(&envelope("c429", "Dana")).await;
    assert_eq!(
        result.map(|_| ()).map_err(|e| {
            assert!(e.retryable, "expected transient: {e}");
            e.retry_after
        }),
        Err(Some(RetryAfter::Delay(Duration::from_secs(7))))
    );
}

#[test]
fn given_an_http_notify_url_without_allow_http_then_the_error_names_notify_url() {
    let error = NotifySink::from_settings(
        &settings("http://sales.example.com/hook", Some(SECRET)),
        false,
        client().expect("client"),
    )
    .expect_err("http:// is refused outside local mode")
    .to_string();
    assert!(error.contains("NOTIFY_URL"), "{error}");
    assert!(error.contains("https"), "{error}");
}

#[test]
fn given_no_notify_url_then_the_error_names_it() {
    let error = NotifySink::from_settings(
        &Settings::from_pairs([("NOTIFY_SIGNING_SECRET", SECRET)]),
        false,
        client().expect("client"),
    )
    .expect_err("required")
    .to_string();
    assert!(error.contains("NOTIFY_URL is not set"), "{error}");
}

#[test]
fn given_a_missing_or_invalid_signing_secret_then_the_error_names_it_and_hides_the_value() {
    let cases = [
        (None, "NOTIFY_SIGNING_SECRET is not set"),
        (Some("whsec_not base64!!"), "NOTIFY_SIGNING_SECRET must be"),
        (Some("whsec_"), "NOTIFY_SIGNING_SECRET"),
    ];
    for (secret, expected) in cases {
        let error = NotifySink::from_settings(
            &settings("https://sales.example.com/hook", secret),
            false,
            client().expect("client"),
        )
        .expect_err(expected)
        .to_string();
        assert!(error.contains(expected), "{secret:?}: {error}");
        assert!(!error.contains("not base64!!"), "{error}");
    }
}

#[test]
fn given_a_configured_sink_then_debug_does_not_show_the_secret() {
    let sink = NotifySink::from_settings(
        &settings("https://sales.example.com/hook", Some(SECRET)),
        true,
        client().expect("client"),
    )
    .expect("valid");
    let debug = format!("{sink:?}");
    assert!(debug.contains("sales.example.com"), "{debug}");
    assert!(
        !debug.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "{debug}"
    );
    // Nor the decoded key bytes (the first ones, as Debug would print a Vec<u8>).
    assert!(!debug.contains("[49, 242"), "{debug}");
}

#[tokio::test]
async fn given_moto_and_a_local_sales_endpoint_then_each_delivery_notifies_effectively_once() {
    nphooks_testkit::suite::effectively_once(
        nphooks_core::routing::Integration::Notify,
        |base: &str| {
            NotifySink::from_settings(
                &settings(&format!("{base}{HOOK_PATH}"), Some(SECRET)),
                true,
                client().expect("client"),
            )
            .expect("valid settings")
        },
    )
    .await;
}
