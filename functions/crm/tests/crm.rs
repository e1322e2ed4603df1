//! The CRM processor: the lead (names, fields), the generic endpoint's request and its
//! answers, HubSpot's upsert flows against a local stand-in, configuration errors, and the
//! effectively-once suite against moto.

use std::time::Duration;

use crm::{CRM_API_TOKEN_VAR, CRM_API_URL_VAR, CRM_PROVIDER_VAR, CrmLead, CrmSink, split_name};
use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_processor::http::client;
use nphooks_processor::{Delivered, FailureReason, HttpSink, RetryAfter, Sink, SinkError};
use nphooks_testkit::{demo_request, envelope_for, rendered_demo_request, suite};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "pat-na1-crm-test-token";
const LEADS_PATH: &str = "/api/leads";

fn settings(pairs: &[(&'static str, &str)]) -> Settings {
    Settings::from_pairs(pairs.iter().map(|(k, v)| (*k, v.to_string())))
}

fn generic_sink(base: &str) -> CrmSink {
    CrmSink::from_settings(
        &settings(&[
            (CRM_API_URL_VAR, &format!("{base}{LEADS_PATH}")),
            (CRM_API_TOKEN_VAR, TOKEN),
        ]),
        true,
        client().expect("client"),
    )
    .expect("valid settings")
}

fn hubspot_sink(base: &str) -> CrmSink {
    CrmSink::from_settings(
        &settings(&[
            (CRM_PROVIDER_VAR, "hubspot"),
            (CRM_API_URL_VAR, base),
            (CRM_API_TOKEN_VAR, TOKEN),
        ]),
        true,
        client().expect("client"),
    )
    .expect("valid settings")
}

fn envelope(call_id: &str, name: &str) -> Envelope {
    Envelope::decode(&envelope_for(&demo_request(call_id, name))).expect("valid")
}

/// The demo request for `call_id`, with its JSON edited first.
fn envelope_with(call_id: &str, edit: impl FnOnce(&mut Value)) -> Envelope {
    let mut webhook: Value =
        serde_json::from_str(&demo_request(call_id, "Dana Whitfield")).expect("json");
    edit(&mut webhook);
    Envelope::decode(&envelope_for(&webhook.to_string())).expect("valid")
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("recording is on")
}

fn header(request: &Request, name: &str) -> String {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn json_body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

// ---- the lead ----

#[test]
fn given_caller_names_when_split_then_first_word_is_first_name_and_the_rest_last() {
    let cases: [(Option<&str>, Option<&str>, Option<&str>); 9] = [
        (Some("Dana"), Some("Dana"), None),
        (Some("Dana Whitfield"), Some("Dana"), Some("Whitfield")),
        (
            Some("Mary Ann van der Berg"),
            Some("Mary"),
            Some("Ann van der Berg"),
        ),
        (
            Some("  Mary \t Ann\n  van der   Berg  "),
            Some("Mary"),
            Some("Ann van der Berg"),
        ),
        (
            Some("\u{a0}José\u{a0}García\u{a0}"),
            Some("José"),
            Some("García"),
        ),
        (Some("   Cher   "), Some("Cher"), None),
        (Some(""), None, None),
        (Some(" \t\n "), None, None),
        (None, None, None),
    ];
    for (name, first, last) in cases {
        let (got_first, got_last) = split_name(name);
        assert_eq!(
            (got_first.as_deref(), got_last.as_deref()),
            (first, last),
            "{name:?}"
        );
    }
}

#[test]
fn given_a_demo_request_when_made_a_lead_then_every_field_comes_from_the_webhook() {
    let lead = CrmLead::from_envelope(&envelope("call_lead", "  Dana   Whitfield "));
    assert_eq!(lead.first_name.as_deref(), Some("Dana"));
    assert_eq!(lead.last_name.as_deref(), Some("Whitfield"));
    assert_eq!(lead.phone.as_deref(), Some("+15551234567"));
    assert_eq!(lead.email.as_deref(), Some("dana.whitfield@example.com"));
    assert_eq!(lead.source, "Phone Call");
    assert_eq!(
        lead.notes.as_deref(),
        Some("Wants a demo for a 40-person dispatch team; prefers Tuesday afternoon.")
    );
    assert_eq!(
        Value::Object(lead.custom_fields.clone()),
        json!({"company": "Whitfield Logistics", "team_size": "40"})
    );
    assert_eq!(lead.call_id, "call_lead");
    assert_eq!(lead.call_type.as_deref(), Some("demo_request"));
}

#[test]
fn given_a_call_with_nothing_but_a_call_id_then_the_generic_body_has_nulls_not_gaps() {
    let minimal = Envelope::decode(&envelope_for(
        r#"{"event":"call.ended","data":{"call_id":"c-min","caller":{"name":"  ","email":""}}}"#,
    ))
    .expect("valid");
    insta::assert_json_snapshot!("generic_minimal", crm::generic_body(&minimal));
}

// ---- generic provider ----

#[tokio::test]
async fn given_the_generic_provider_when_delivered_then_the_lead_is_posted_with_bearer_and_idempotency_key()
 {
    // GIVEN a CRM endpoint that accepts leads
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(LEADS_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"id":"lead_1"}"#))
        .mount(&server)
        .await;
    let envelope = envelope("call_generic", "Dana Whitfield");

    // WHEN the lead is delivered
    let result = generic_sink(&server.uri()).deliver(&envelope).await;

    // THEN one POST carried the token, the delivery key and the lead
    assert!(matches!(result, Ok(Delivered::Sent(_))), "{result:?}");
    let requests = received(&server).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), LEADS_PATH);
    assert_eq!(header(request, "authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(
        header(request, "idempotency-key"),
        "call.ended#call_generic"
    );
    assert_eq!(
        header(request, "idempotency-key"),
        envelope.delivery_key.as_str()
    );
    assert!(header(request, "content-type").starts_with("application/json"));
    insta::assert_json_snapshot!("generic_demo_request", json_body(request));
}

#[tokio::test]
async fn given_crm_answers_400_503_and_429_then_they_are_permanent_transient_and_deferred() {
    let cases: [(u16, Option<&str>, &str, Option<RetryAfter>); 3] = [
        (400, None, "permanent", None),
        (503, None, "transient", None),
        (
            429,
            Some("7"),
            "transient",
            Some(RetryAfter::Delay(Duration::from_secs(7))),
        ),
    ];
    for (status, retry_after, expected, expected_delay) in cases {
        // GIVEN a CRM that answers `status`, echoing the caller's email in its body
        let server = MockServer::start().await;
        let mut response = ResponseTemplate::new(status)
            .set_body_string(r#"{"error":"dana.whitfield@example.com is not allowed"}"#);
        if let Some(seconds) = retry_after {
            response = response.insert_header("Retry-After", seconds);
        }
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&server)
            .await;

        // WHEN a lead is delivered
        let result = generic_sink(&server.uri())
            .deliver(&envelope("call_fail", "Dana Whitfield"))
            .await;

        // THEN it is classified, Retry-After is kept, and the echoed email is not in the reason
        let (kind, reason, delay) = match result {
            Err(e) if e.retryable => ("transient", e.to_string(), e.retry_after),
            Err(e) => ("permanent", e.to_string(), e.retry_after),
            Ok(delivered) => panic!("{status}: delivered {delivered:?}"),
        };
        assert_eq!(kind, expected, "{status}: {reason}");
        assert_eq!(delay, expected_delay, "{status}");
        assert!(reason.contains(&status.to_string()), "{reason}");
        assert!(!reason.contains("dana.whitfield"), "{reason}");
        assert_eq!(received(&server).await.len(), 1, "{status}");
    }
}

// ---- HubSpot ----

#[path = "crm/hubspot.rs"]
mod hubspot;

// ---- configuration ----

type Pairs<'a> = &'a [(&'static str, &'a str)];

fn config_error(pairs: Pairs<'_>, allow_http: bool) -> String {
    CrmSink::from_settings(&settings(pairs), allow_http, client().expect("client"))
        .expect_err("invalid settings")
        .to_string()
}

#[test]
fn given_bad_configuration_then_start_up_stops_naming_the_variable() {
    let cases: [(Pairs<'_>, bool, &str); 6] = [
        (
            &[
                (CRM_API_URL_VAR, "http://crm.example.com/leads"),
                (CRM_API_TOKEN_VAR, TOKEN),
            ],
            false,
            "CRM_API_URL must be an https:// URL",
        ),
        (
            &[
                (CRM_PROVIDER_VAR, "hubspot"),
                (CRM_API_URL_VAR, "http://127.0.0.1:9"),
                (CRM_API_TOKEN_VAR, TOKEN),
            ],
            false,
            "CRM_API_URL must be an https:// URL",
        ),
        (
            &[
                (CRM_PROVIDER_VAR, "zoho"),
                (CRM_API_URL_VAR, "https://crm.example.com/leads"),
                (CRM_API_TOKEN_VAR, TOKEN),
            ],
            true,
            "CRM_PROVIDER must be generic, hubspot or salesforce, got \"zoho\"",
        ),
        (
            &[(CRM_API_URL_VAR, "https://crm.example.com/leads")],
            true,
            "CRM_API_TOKEN is not set",
        ),
        (
            &[(CRM_API_TOKEN_VAR, TOKEN)],
            true,
            "CRM_API_URL is not set",
        ),
        (
            &[
                (CRM_API_URL_VAR, "https://crm.example.com/leads"),
                (CRM_API_TOKEN_VAR, "secret with spaces"),
            ],
            true,
            "CRM_API_TOKEN must be printable ASCII",
        ),
    ];
    for (pairs, allow_http, expected) in cases {
        let message = config_error(pairs, allow_http);
        assert!(message.contains(expected), "{expected}: {message}");
        assert!(!message.contains("secret with spaces"), "{message}");
    }
}

#[test]
fn given_hubspot_without_a_url_then_the_public_api_is_used_and_debug_hides_the_token() {
    let sink = CrmSink::from_settings(
        &settings(&[(CRM_PROVIDER_VAR, "HubSpot"), (CRM_API_TOKEN_VAR, TOKEN)]),
        false,
        client().expect("client"),
    )
    .expect("valid");
    assert_eq!(sink.provider(), crm::CrmProvider::HubSpot);
    let debug = format!("{sink:?}");
    assert!(debug.contains("https://api.hubapi.com"), "{debug}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(!debug.contains("pat-na1"), "{debug}");

    let generic = generic_sink("https://crm.example.com");
    assert_eq!(generic.provider(), crm::CrmProvider::Generic);
    assert!(!format!("{generic:?}").contains(TOKEN));
}

// ---- the processor runtime ----

#[tokio::test]
async fn given_moto_and_a_local_crm_then_each_delivery_creates_one_lead() {
    suite::effectively_once(Integration::Crm, generic_sink).await;
}
