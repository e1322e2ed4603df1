//! The callback processor: the request NextPhone gets (snapshot), hostile caller data,
//! the skip without an E.164 phone, NextPhone's answers, and the effectively-once suite
//! against moto and a local API.

use callback::CallbackSink;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_core::secret::Secret;
use nphooks_processor::http::{OutboundUrl, client};
use nphooks_processor::nextphone::NextPhoneApi;
use nphooks_processor::{Delivered, RetryAfter, Sink};
use nphooks_testkit::{demo_request, envelope_for, suite};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sink_for(base: &str) -> CallbackSink {
    let url = OutboundUrl::parse("NEXTPHONE_API_URL", base, true, false).expect("valid");
    let api = NextPhoneApi::new(
        url,
        Secret::new("callback-test-key"),
        client().expect("client"),
    );
    CallbackSink::new(api, "Acme Plumbing")
}

fn envelope(webhook: &str) -> Envelope {
    Envelope::decode(&envelope_for(webhook)).expect("valid")
}

fn script(sink: &CallbackSink, webhook: &str) -> String {
    let request = sink.request_for(&envelope(webhook)).expect("renders");
    request.expect("a phone").script
}

#[test]
fn given_each_call_type_then_its_script_matches_the_snapshot() {
    let sink = sink_for("http://127.0.0.1:9");
    let voicemail = r#"{"event":"message.collected","data":{"call_id":"c1","call_type":"voicemail",
        "caller":{"phone":"+15551234567","name":"Dana Whitfield"},"custom_fields":{"service_type":"a leaking boiler"}}}"#;
    insta::assert_snapshot!("message", script(&sink, voicemail));
    insta::assert_snapshot!(
        "demo_request",
        script(&sink, &demo_request("c2", "Dana Whitfield"))
    );
    let other = r#"{"event":"call.ended","data":{"call_id":"c3","call_type":"support","caller":{"phone":"+15551234567"}}}"#;
    insta::assert_snapshot!("default", script(&sink, other));
}

#[test]
fn given_a_hostile_caller_then_the_script_speaks_only_text() {
    let sink = sink_for("http://127.0.0.1:9");
    let hostile = r#"{"event":"message.collected","data":{"call_id":"c4","caller":{"phone":"+15551234567",
        "name":"<speak><break time='9s'/>{{ 7*7 }}</speak>"},"custom_fields":{"service_type":"[x]\u0007 {% if %}"}}}"#;
    let text = script(&sink, hostile);
    for markup in ['<', '>', '{', '}', '[', ']', '\u{7}'] {
        assert!(!text.contains(markup), "{text}");
    }
    insta::assert_snapshot!("hostile_caller", text);
}

#[tokio::test]
async fn given_a_caller_without_an_e164_phone_then_it_is_skipped_and_nothing_is_sent() {
    let server = MockServer::start().await;
    let sink = sink_for(&server.uri());
    for phone in [r#""5551234567""#, r#""+1 555 CALL NOW""#, "null"] {
        let webhook = format!(
            r#"{{"event":"message.collected","data":{{"call_id":"c5","caller":{{"phone":{phone}}}}}}}"#
        );
        let delivered = sink
            .deliver(&envelope(&webhook))
            .await
            .expect("not an error");
        assert!(
            matches!(delivered, Delivered::Skipped(_)),
            "{phone}: {delivered:?}"
        );
    }
    let requests = server.received_requests().await.expect("recorded");
    assert!(requests.is_empty(), "{} requests", requests.len());
}

#[tokio::test]
async fn given_a_voicemail_then_one_call_is_requested_with_the_key_and_the_delivery_key() {
    // GIVEN a NextPhone API that wants the Bearer key and an idempotency key
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/calls"))
        .and(header("authorization", "Bearer callback-test-key"))
        .and(header("idempotency-key", "call.ended#c6"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"id":"out_1"}"#))
        .expect(1)
        .mount(&server)
        .await;
    // WHEN a demo request is delivered
    let delivered = sink_for(&server.uri())
        .deliver(&envelope(&demo_request("c6", "Dana Whitfield")))
        .await;
    // THEN the call is requested to the caller's number with the rendered script
    assert!(matches!(delivered, Ok(Delivered::Sent(_))), "{delivered:?}");
    let requests = server.received_requests().await.expect("recorded");
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).expect("JSON");
    assert_eq!(body["to"], "+15551234567");
    assert!(
        body["script"].as_str().is_some_and(|s| s.contains("Dana")),
        "{body}"
    );
}

#[tokio::test]
async fn given_nextphone_answers_then_each_is_classified() {
    let cases = [
        (201, "sent", None),
        (429, "transient", Some(30)),
        (503, "transient", None),
        (400, "permanent", None),
        (401, "permanent", None),
    ];
    for (status, expected, retry_after) in cases {
        let server = MockServer::start().await;
        let mut answer = ResponseTemplate::new(status);
        if let Some(seconds) = retry_after {
            answer = answer.insert_header("Retry-After", seconds.to_string().as_str());
        }
        Mock::given(method("POST"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let result = sink_for(&server.uri())
            .deliver(&envelope(&demo_request("c7", "Dana")))
            .await;
        let kind = match &result {
            Ok(Delivered::Sent(_)) => "sent",
            Ok(Delivered::Skipped(_)) => "skipped",
            Err(e) if e.retryable => "transient",
            Err(_) => "permanent",
        };
        assert_eq!(kind, expected, "{status}");
        let waited = result.err().and_then(|e| e.retry_after).map(|r| match r {
            RetryAfter::Delay(d) => d.as_secs(),
            RetryAfter::At(at) => panic!("{status}: a date, {at:?}"),
        });
        assert_eq!(waited, retry_after, "{status}: Retry-After honoured");
    }
}

#[tokio::test]
async fn given_moto_and_a_local_nextphone_then_each_delivery_calls_back_effectively_once() {
    suite::effectively_once(Integration::Callback, sink_for).await;
}
