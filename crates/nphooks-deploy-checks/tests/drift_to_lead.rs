//! A verified webhook with drifted fields becomes a CRM lead: the receiver accepts it
//! into the real queue (moto), and the CRM processor, reading the envelope with the same
//! tolerant parser, posts the lead to a local CRM.

use std::sync::atomic::Ordering;
use std::time::Duration;

use nphooks_core::config::{ReceiverConfig, Settings};
use nphooks_core::ledger::DynamoLedger;
use nphooks_core::queue::SqsQueue;
use nphooks_core::routing::Integration;
use nphooks_processor::http::client;
use nphooks_processor::{Delivered, HttpSink, RecordOutcome, process_records};
use nphooks_samples::{
    Delivery, TEST_API_KEY, TEST_WEBHOOK_SECRET, WEBHOOK_PATH, api_gateway_event,
};
use nphooks_testkit::{Moto, sqs_message};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const LEADS_PATH: &str = "/api/leads";

fn receiver_deps(moto: &Moto) -> receiver::Deps<DynamoLedger, SqsQueue> {
    let mut pairs = vec![
        (
            "NEXTPHONE_WEBHOOK_SECRETS".to_owned(),
            TEST_WEBHOOK_SECRET.to_owned(),
        ),
        ("NEXTPHONE_API_KEY".to_owned(), TEST_API_KEY.to_owned()),
        ("IDEMPOTENCY_TABLE".to_owned(), moto.table.clone()),
        ("NPHOOKS_ALLOW_HTTP".to_owned(), "1".to_owned()),
    ];
    for (integration, url) in &moto.queue_urls {
        pairs.push((integration.queue_url_var().to_owned(), url.clone()));
    }
    let config = ReceiverConfig::from_settings(&Settings::from_pairs(pairs)).expect("config");
    receiver::Deps::new(config, moto.ledger(), moto.queue())
}

#[tokio::test]
async fn given_duration_as_text_custom_fields_as_array_and_a_numeric_name_then_the_crm_lead_is_created()
 {
    // GIVEN a local CRM that accepts leads, and the receiver and CRM processor on moto
    let moto = Moto::start("drift-lead").await;
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(LEADS_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"id":"lead_1"}"#))
        .mount(&crm)
        .await;
    let deps = receiver_deps(&moto);
    let body = r#"{"event":"call.ended","data":{"call_id":"call_drift_lead","call_type":"demo_request","duration_seconds":"180","custom_fields":[],"caller":{"name":42,"phone":"+15551234567"}}}"#;

    // WHEN the sender posts it
    let event = api_gateway_event("POST", WEBHOOK_PATH, body, Delivery::Signed);
    let request = lambda_http::request::from_str(&event.to_string()).expect("API Gateway event");
    let answer = receiver::handle(&deps, request).await;

    // THEN it is accepted and the drift counted
    assert_eq!(answer.status().as_u16(), 200);
    let answer: Value = serde_json::from_slice(answer.body().as_ref()).expect("JSON");
    assert_eq!(answer["status"], "accepted", "{answer}");
    assert_eq!(deps.metrics.schema_drift.load(Ordering::Relaxed), 3);

    // WHEN the CRM processor handles what its queue holds
    let messages = moto.drain(&moto.queue_urls[&Integration::Crm]).await;
    assert_eq!(messages.len(), 1);
    let record = sqs_message(
        messages[0].message_id().expect("id"),
        messages[0].body().expect("body"),
    );
    let sink = crm::CrmSink::from_settings(
        &Settings::from_pairs([
            ("CRM_API_URL", format!("{}{LEADS_PATH}", crm.uri())),
            ("CRM_API_TOKEN", "pat-drift-check-7f3a".to_owned()),
        ]),
        true,
        client().expect("client"),
    )
    .expect("crm settings");
    let processor = moto.processor_deps(Integration::Crm, sink);
    let outcomes = process_records(
        &processor,
        &[record],
        processor.clock.now() + Duration::from_secs(30),
    )
    .await;

    // THEN one lead was posted, built from the tolerant reading
    assert!(
        matches!(
            outcomes.as_slice(),
            [RecordOutcome::Done(Delivered::Sent(_))]
        ),
        "{outcomes:?}"
    );
    let requests = crm.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 1);
    let lead: Value = serde_json::from_slice(&requests[0].body).expect("JSON lead");
    assert_eq!(lead["call_id"], "call_drift_lead");
    assert_eq!(lead["first_name"], "42");
    assert_eq!(lead["phone"], "+15551234567");
    assert_eq!(lead["custom_fields"], json!({}));
}
