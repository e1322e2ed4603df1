//! `nphooks send`: the body it builds, the request it makes (signed over the exact bytes
//! sent), and how it retries and judges a delivery. A `wiremock` server stands in for the
//! receiver and records every request.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nphooks_cli::body::build_body;
use nphooks_cli::send::{
    Attempt, RetrySchedule, SendOptions, SleepFuture, send, send_with, signature_header, verdict,
};
use nphooks_core::secret::Secret;
use nphooks_core::signature::{AuthFailure, WebhookAuth, sign};
use nphooks_core::webhook::{Event, EventKind, Webhook};
use nphooks_samples::{TEST_API_KEY, TEST_WEBHOOK_SECRET, WEBHOOK_PATH};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ACCEPTED: &str = r#"{"status":"accepted","delivery_key":"call.ended#call_8f14e45fceea167a","queues":["crm"],"deduplicated":true}"#;

fn options(url: String, api_key: Option<&str>, retries: RetrySchedule) -> SendOptions {
    SendOptions {
        url,
        secret: TEST_WEBHOOK_SECRET.to_owned(),
        api_key: api_key.map(str::to_owned),
        retries,
    }
}

fn webhook_url(server: &MockServer) -> String {
    format!("{}{WEBHOOK_PATH}", server.uri())
}

async fn receiver_answering(status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(WEBHOOK_PATH))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(&server)
        .await;
    server
}

async fn recorded(server: &MockServer) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .expect("request recording is on")
}

fn header<'a>(request: &'a wiremock::Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .get(name)
        .map(|value| value.to_str().expect("ASCII header"))
}

/// A sleep that returns at once and records what it was asked to wait.
fn recording_sleep() -> (
    Arc<Mutex<Vec<Duration>>>,
    impl Fn(Duration) -> SleepFuture + Sync,
) {
    let delays = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&delays);
    let sleep = move |delay: Duration| -> SleepFuture {
        record.lock().expect("not poisoned").push(delay);
        Box::pin(async {})
    };
    (delays, sleep)
}

fn parse(body: &str) -> Webhook {
    Webhook::parse(body.as_bytes()).expect("a valid webhook")
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).expect("JSON")
}

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/receiver")
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nphooks-send-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(name);
    std::fs::write(&file, contents).expect("write temp file");
    file
}

fn sets(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------
// The request.

#[tokio::test]
async fn given_an_api_key_when_sent_then_the_receiver_gets_the_exact_body_signed_and_bearer_authenticated()
 {
    let server = receiver_answering(200, ACCEPTED).await;
    let body = build_body("call.ended", &[]).expect("sample body");

    let attempts = send(
        &options(
            webhook_url(&server),
            Some(TEST_API_KEY),
            RetrySchedule::None,
        ),
        &body,
    )
    .await;

    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status, Some(200));
    assert_eq!(attempts[0].body, ACCEPTED);
    assert_eq!(verdict(&attempts), (0, None));
    let requests = recorded(&server).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.body, body.as_bytes(), "the body goes out unchanged");
    let signature = header(request, "x-nextphone-signature").expect("signature header");
    assert_eq!(signature, sign(TEST_WEBHOOK_SECRET, &request.body));
    assert_eq!(
        signature,
        signature_header(TEST_WEBHOOK_SECRET, body.as_bytes())
    );
    assert_eq!(
        header(request, "authorization"),
        Some(format!("Bearer {TEST_API_KEY}").as_str())
    );
    assert_eq!(header(request, "content-type"), Some("application/json"));
    assert_eq!(
        header(request, "user-agent"),
        Some("NextPhone-Webhooks/1.0 (nphooks send)")
    );
    let auth = WebhookAuth::new(
        vec![Secret::new(TEST_WEBHOOK_SECRET)],
        Some(&Secret::new(TEST_API_KEY)),
    );
    let verified = auth
        .verify(
            Some(signature.as_bytes()),
            header(request, "authorization").map(str::as_bytes),
            &request.body,
        )
        .expect("the receiver's check passes")
        .parse()
        .expect("a valid webhook");
    assert_eq!(verified.event, Event::Known(EventKind::CallEnded));
}

#[tokio::test]
async fn given_no_api_key_when_sent_then_there_is_no_authorization_header_and_the_signature_still_verifies()
 {
    let server = receiver_answering(200, ACCEPTED).await;
    let body = build_body("message.collected", &sets(&["data.caller.name=Bob"])).expect("body");

    let attempts = send(
        &options(webhook_url(&server), None, RetrySchedule::None),
        &body,
    )
    .await;

    assert_eq!(verdict(&attempts).0, 0);
    let requests = recorded(&server).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(header(request, "authorization"), None);
    let signature = header(request, "x-nextphone-signature").expect("signature header");
    let auth = WebhookAuth::new(vec![Secret::new(TEST_WEBHOOK_SECRET)], None);
    assert!(
        auth.verify(Some(signature.as_bytes()), None, &request.body)
            .is_ok()
    );
    let other_secret = WebhookAuth::new(vec![Secret::new("another-secret")], None);
    assert_eq!(
        other_secret
            .verify(Some(signature.as_bytes()), None, &request.body)
            .map(|_| ()),
        Err(AuthFailure::SignatureMismatch),
        "signed with the given secret, not any secret"
    );
}

#[test]
fn given_send_options_when_debug_printed_then_neither_secret_nor_api_key_shows() {
    let options = options(
        "http://127.0.0.1:1/webhook/nextphone".into(),
        Some(TEST_API_KEY),
        RetrySchedule::Fast,
    );

    let shown = format!("{options:?}");

    assert!(!shown.contains(TEST_WEBHOOK_SECRET), "{shown}");
    assert!(!shown.contains(TEST_API_KEY), "{shown}");
    assert!(shown.contains("127.0.0.1:1"), "{shown}");
}

// ---------------------------------------------------------------------------------------
// Retries and verdicts.

#[test]
fn given_each_schedule_when_asked_for_delays_then_fast_is_nextphone_compressed_300_times() {
    let secs = |schedule: RetrySchedule| -> Vec<u64> {
        schedule.delays().iter().map(Duration::as_secs).collect()
    };
    assert_eq!(secs(RetrySchedule::None), Vec::<u64>::new());
    assert_eq!(secs(RetrySchedule::Nextphone), [300, 900, 3600]);
    assert_eq!(secs(RetrySchedule::Fast), [1, 3, 12]);
    let compressed: Vec<Duration> = RetrySchedule::Nextphone
        .delays()
        .into_iter()
        .map(|delay| delay / 300)
        .collect();
    assert_eq!(RetrySchedule::Fast.delays(), compressed);
}

#[tokio::test]
async fn given_a_receiver_failing_twice_when_sent_fast_then_it_retries_after_1s_and_3s_with_the_same_request()
 {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(WEBHOOK_PATH))
        .respond_with(ResponseTemplate::new(503).set_body_string(r#"{"error":"enqueue_failed"}"#))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(WEBHOOK_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_string(ACCEPTED))
        .mount(&server)
        .await;
    let body = build_body("call.ended:quote_request", &[]).expect("body");
    let (delays, sleep) = recording_sleep();

    let attempts = send_with(
        &options(
            webhook_url(&server),
            Some(TEST_API_KEY),
            RetrySchedule::Fast,
        ),
        &body,
        &sleep,
    )
    .await;

    let statuses: Vec<Option<u16>> = attempts.iter().map(|attempt| attempt.status).collect();
    assert_eq!(statuses, [Some(503), Some(503), Some(200)]);
    assert_eq!(
        *delays.lock().expect("not poisoned"),
        [Duration::from_secs(1), Duration::from_secs(3)]
    );
    assert_eq!(verdict(&attempts), (0, None));
    let requests = recorded(&server).await;
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(
            request.body, requests[0].body,
            "a retry carries the same body"
        );
        assert_eq!(request.body, body.as_bytes());
        assert_eq!(
            header(request, "x-nextphone-signature"),
            header(&requests[0], "x-nextphone-signature")
        );
        assert_eq!(
            header(request, "authorization"),
            header(&requests[0], "authorization")
        );
    }
}

#[tokio::test]
async fn given_a_receiver_answering_401_when_sent_fast_then_it_stops_at_the_end_of_the_schedule_and_blames_the_credentials()
 {
    let server = receiver_answering(
        401,
        r#"{"error":"unauthorized","message":"X-NextPhone-Signature does not match the body"}"#,
    )
    .await;
    let (delays, sleep) = recording_sleep();

    let attempts = send_with(
        &options(
            webhook_url(&server),
            Some(TEST_API_KEY),
            RetrySchedule::Fast,
        ),
        &build_body("call.ended", &[]).expect("body"),
        &sleep,
    )
    .await;

    assert_eq!(attempts.len(), 4, "one attempt and three retries");
    assert!(attempts.iter().all(|attempt| attempt.status == Some(401)));
    assert_eq!(recorded(&server).await.len(), 4);
    assert_eq!(
        *delays.lock().expect("not poisoned"),
        RetrySchedule::Fast.delays()
    );
    let (code, message) = verdict(&attempts);
    assert_eq!(code, 1);
    let message = message.expect("an explanation");
    assert!(
        message.starts_with(
            "the receiver rejected the signature or API key (401): check --secret / NEXTPHONE_WEBHOOK_SECRETS and --api-key / NEXTPHONE_API_KEY match the receiver's"
        ),
        "{message}"
    );
    assert!(!message.contains(TEST_WEBHOOK_SECRET) && !message.contains(TEST_API_KEY));
}

#[tokio::test]
async fn given_no_retries_when_the_receiver_answers_401_then_exactly_one_request_is_made() {
    let server = receiver_answering(401, r#"{"error":"unauthorized"}"#).await;
    let (delays, sleep) = recording_sleep();

    let attempts = send_with(
        &options(webhook_url(&server), None, RetrySchedule::None),
        &build_body("call.ended", &[]).expect("body"),
        &sleep,
    )
    .await;

    assert_eq!(attempts.len(), 1);
    assert_eq!(recorded(&server).await.len(), 1);
    assert!(delays.lock().expect("not poisoned").is_empty());
    assert_eq!(verdict(&attempts).0, 1);
}

#[tokio::test]
async fn given_a_closed_port_when_sent_then_each_attempt_is_a_connection_error_naming_the_url() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let url = format!("http://127.0.0.1:{port}{WEBHOOK_PATH}");
    let (delays, sleep) = recording_sleep();

    let attempts = send_with(
        &options(url.clone(), Some(TEST_API_KEY), RetrySchedule::Fast),
        &build_body("call.ended", &[]).expect("body"),
        &sleep,
    )
    .await;

    assert_eq!(attempts.len(), 4, "connection errors are retried too");
    assert_eq!(
        *delays.lock().expect("not poisoned"),
        RetrySchedule::Fast.delays()
    );
    for attempt in &attempts {
        assert_eq!(attempt.status, None);
        let error = attempt.error.as_deref().expect("an error");
        assert!(error.contains(&url), "{error}");
    }
    let (code, message) = verdict(&attempts);
    assert_eq!(code, 1);
    let message = message.expect("an explanation");
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("nphooks serve"), "{message}");
}

#[test]
fn given_another_failing_status_when_judged_then_the_verdict_names_it_and_a_2xx_after_failures_is_success()
 {
    let answered = |status: u16, body: &str| Attempt {
        status: Some(status),
        body: body.to_owned(),
        error: None,
    };

    let (code, message) = verdict(&[answered(
        400,
        r#"{"error":"bad_request","message":"missing data.call_id"}"#,
    )]);
    assert_eq!(code, 1);
    let message = message.expect("an explanation");
    assert!(message.contains("400"), "{message}");
    assert!(message.contains("missing data.call_id"), "{message}");

    assert_eq!(
        verdict(&[answered(503, ""), answered(202, "")]),
        (0, None),
        "the last attempt decides"
    );
    assert_eq!(verdict(&[answered(200, ""), answered(503, "")]).0, 1);
    assert_eq!(verdict(&[]).0, 1);
}

// ---------------------------------------------------------------------------------------
// The body.

#[test]
fn given_each_of_the_six_event_names_when_built_then_the_body_is_a_valid_webhook_of_that_event() {
    for kind in EventKind::ALL {
        let body = build_body(kind.as_str(), &[]).expect("sample body");
        let webhook = parse(&body);
        assert_eq!(webhook.event, Event::Known(kind), "{kind}");
        assert!(!webhook.data.call_id.is_empty());
    }
}

#[test]
fn given_a_call_type_after_call_ended_when_built_then_the_body_has_that_call_type() {
    let body = build_body("call.ended:quote_request", &[]).expect("body");

    let webhook = parse(&body);

    assert_eq!(webhook.event, Event::Known(EventKind::CallEnded));
    assert_eq!(webhook.data.call_type.as_deref(), Some("quote_request"));
    assert_eq!(
        parse(&build_body("call.ended", &[]).expect("body"))
            .data
            .call_type
            .as_deref(),
        Some("demo_request")
    );
}

#[test]
fn given_sets_when_built_then_strings_numbers_json_and_new_nested_paths_are_applied() {
    let body = build_body(
        "call.ended",
        &sets(&[
            "data.caller.name=<!channel> Bob",
            "data.duration_seconds=42",
            "data.custom_fields.crm.owner.region=EU",
            "data.urgent=true",
            "data.call_type=\"emergency\"",
            "data.custom_fields.tier={\"level\":\"gold\"}",
            "data.to_number=null",
        ]),
    )
    .expect("body");

    let value = json_of(&body);
    assert_eq!(value["data"]["caller"]["name"], json!("<!channel> Bob"));
    assert_eq!(value["data"]["duration_seconds"], json!(42));
    assert_eq!(
        value["data"]["custom_fields"]["crm"],
        json!({"owner": {"region": "EU"}})
    );
    assert_eq!(value["data"]["urgent"], json!(true));
    assert_eq!(value["data"]["call_type"], json!("emergency"));
    assert_eq!(
        value["data"]["custom_fields"]["tier"],
        json!({"level": "gold"})
    );
    assert_eq!(value["data"]["to_number"], Value::Null);
    assert_eq!(
        value["data"]["custom_fields"]["company"],
        json!("Whitfield Logistics"),
        "untouched fields stay"
    );
    let webhook = parse(&body);
    assert_eq!(webhook.data.duration_seconds, Some(42.0));
    assert_eq!(webhook.data.caller.name.as_deref(), Some("<!channel> Bob"));
}

#[test]
fn given_a_quoted_json_string_when_set_then_the_quotes_are_not_part_of_the_value() {
    let body = build_body(
        "message.collected",
        &sets(&[r#"data.caller.name="<!channel> Bob""#, "data.flag=\"42\""]),
    )
    .expect("body");

    let value = json_of(&body);
    assert_eq!(value["data"]["caller"]["name"], json!("<!channel> Bob"));
    assert_eq!(
        value["data"]["flag"],
        json!("42"),
        "a quoted number stays a string"
    );
}

#[test]
fn given_an_api_gateway_event_file_when_built_then_its_exact_body_is_sent() {
    for file in ["call_ended.json", "call_ended_base64_body.json"] {
        let path = events_dir().join(file);
        let event = json_of(&std::fs::read_to_string(&path).expect("events file"));
        let signature = event["headers"]["x-nextphone-signature"]
            .as_str()
            .expect("signed event")
            .to_owned();

        let body = build_body(path.to_str().expect("UTF-8 path"), &[]).expect("body");

        assert_eq!(
            sign(TEST_WEBHOOK_SECRET, body.as_bytes()),
            signature,
            "{file}: byte-for-byte the body the event was signed over"
        );
        if event["isBase64Encoded"] == json!(false) {
            assert_eq!(Some(body.as_str()), event["body"].as_str(), "{file}");
        } else {
            assert!(!body.contains("ewog"), "{file}: decoded, not base64");
        }
        assert_eq!(parse(&body).event, Event::Known(EventKind::CallEnded));
    }
    let decoded = build_body(
        events_dir()
            .join("call_ended_base64_body.json")
            .to_str()
            .expect("UTF-8 path"),
        &[],
    )
    .expect("body");
    assert_eq!(parse(&decoded).data.call_id, "call_base64_body_77aa");
}

#[test]
fn given_an_api_gateway_event_file_and_a_set_when_built_then_the_set_applies_to_its_body() {
    let path = events_dir().join("call_ended_base64_body.json");

    let body = build_body(
        path.to_str().expect("UTF-8 path"),
        &sets(&["data.call_id=call_replayed_1"]),
    )
    .expect("body");

    let webhook = parse(&body);
    assert_eq!(webhook.data.call_id, "call_replayed_1");
    assert_eq!(webhook.data.call_type.as_deref(), Some("demo_request"));
}

#[test]
fn given_a_webhook_body_file_when_built_then_it_is_sent_byte_for_byte() {
    let contents = "{ \"event\" : \"call.ended\",\n  \"data\": {\"call_id\": \"call_file_1\", \"zz_unknown\": [1, 2.50]} }\n";
    let file = temp_file("body.json", contents);

    let body = build_body(file.to_str().expect("UTF-8 path"), &[]).expect("body");

    assert_eq!(body, contents);
}

#[test]
fn given_an_unknown_event_name_when_built_then_the_error_names_it_and_lists_the_valid_ones() {
    let error = build_body("call.ende", &[])
        .expect_err("unknown event")
        .to_string();

    assert!(error.contains("`call.ende`"), "{error}");
    for kind in EventKind::ALL {
        assert!(error.contains(kind.as_str()), "{error} lacks {kind}");
    }
}

#[test]
fn given_a_call_type_after_another_event_when_built_then_it_is_refused() {
    let error = build_body("message.collected:voicemail", &[])
        .expect_err("only call.ended takes a call type")
        .to_string();

    assert!(error.contains("call.ended"), "{error}");
    assert!(build_body("call.ended:", &[]).is_err());
}

#[test]
fn given_a_missing_file_when_built_then_the_error_names_the_path() {
    let missing = std::env::temp_dir().join("nphooks-send-test-no-such-dir/missing.json");
    let missing = missing.to_str().expect("UTF-8 path");

    let error = build_body(missing, &[])
        .expect_err("missing file")
        .to_string();

    assert!(error.contains(missing), "{error}");
}

#[test]
fn given_bad_sets_when_built_then_each_error_says_path_equals_value() {
    for bad in ["data.caller.name", "=Bob", "data..name=Bob", "data.=Bob"] {
        let error = build_body("call.ended", &sets(&[bad]))
            .expect_err(bad)
            .to_string();
        assert!(error.contains("path=value"), "{bad}: {error}");
        assert!(error.contains(bad), "{bad}: {error}");
    }
}

#[test]
fn given_a_set_through_a_non_object_when_built_then_the_error_names_the_blocking_field() {
    let error = build_body("call.ended", &sets(&["data.call_type.kind=x"]))
        .expect_err("call_type is a string")
        .to_string();

    assert!(error.contains("data.call_type"), "{error}");
    assert!(error.contains("not an object"), "{error}");
}
