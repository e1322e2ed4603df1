//! The suite's scenarios that end in the DLQ: a sink refusing what we built, and a body
//! that is not an envelope in the middle of a batch.

use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_core::table;
use nphooks_processor::process_batch;
use nphooks_processor::retry::ATTEMPTS_ATTR;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{MakeSink, PLENTY, failed_ids, ok_server, requests, unpaced};
use crate::{Moto, demo_request, envelope_for, sqs_event, sqs_message, text};

pub(super) async fn bad_request_goes_to_the_dlq(
    integration: Integration,
    make_sink: &impl MakeSink,
) {
    // GIVEN a sink that answers 400
    let moto = Moto::start(&format!("{integration}-400")).await;
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(400).set_body_string("invalid_payload"))
        .mount(&server)
        .await;
    let deps = unpaced(moto.processor_deps(integration, make_sink(&server.uri())));
    let body = envelope_for(&demo_request("call_400", "Dana Whitfield"));

    // WHEN it is processed
    let response = process_batch(&deps, sqs_event(vec![sqs_message("m-400", &body)], PLENTY))
        .await
        .expect("batch handled");

    // THEN it is acknowledged, and the DLQ holds the body intact with the reason
    assert!(
        response.batch_item_failures.is_empty(),
        "{integration}: acknowledged, no retries burnt"
    );
    let dead = moto.drain(&moto.dlq_urls[&integration]).await;
    assert_eq!(dead.len(), 1, "{integration}: one message in the DLQ");
    assert_eq!(
        dead[0].body(),
        Some(body.as_str()),
        "{integration}: body intact"
    );
    let attributes = dead[0].message_attributes().expect("attributes");
    let reason = attributes["failure_reason"]
        .string_value()
        .unwrap_or_default();
    assert_eq!(reason, "invalid_payload (400)", "{integration}");
    assert_eq!(attributes[ATTEMPTS_ATTR].string_value(), Some("1"));
    assert_eq!(
        attributes["integration"].string_value(),
        Some(integration.as_str())
    );
    let key = Envelope::decode(&body).expect("valid").delivery_key;
    let claim = moto
        .item(&format!("{integration}#{key}"))
        .await
        .expect("effect record");
    assert_eq!(text(&claim, table::STATE), "failed", "{integration}");
}

pub(super) async fn one_bad_body_in_a_batch_of_three(
    integration: Integration,
    make_sink: &impl MakeSink,
) {
    // GIVEN a batch of three whose middle body is not JSON
    let moto = Moto::start(&format!("{integration}-batch")).await;
    let server = ok_server().await;
    let deps = unpaced(moto.processor_deps(integration, make_sink(&server.uri())));
    let records = vec![
        sqs_message(
            "m-first",
            &envelope_for(&demo_request("call_first", "Ann Lee")),
        ),
        sqs_message("m-middle", "this is not JSON"),
        sqs_message(
            "m-last",
            &envelope_for(&demo_request("call_last", "Bo Chen")),
        ),
    ];

    // WHEN it is processed
    let response = process_batch(&deps, sqs_event(records, PLENTY))
        .await
        .expect("batch handled");

    // THEN all three are acknowledged: the middle one straight to the DLQ, body intact,
    // without burning receives; the other two take effect
    assert!(
        failed_ids(&response).is_empty(),
        "{integration}: batch of three"
    );
    assert_eq!(requests(&server).await, 2, "{integration}");
    let dead = moto.drain(&moto.dlq_urls[&integration]).await;
    assert_eq!(dead.len(), 1, "{integration}");
    assert_eq!(dead[0].body(), Some("this is not JSON"));
    let reason = dead[0].message_attributes().expect("attributes")["failure_reason"]
        .string_value()
        .map(str::to_owned);
    assert_eq!(reason.as_deref(), Some("unreadable_message"));
}
