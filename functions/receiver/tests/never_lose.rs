//! Issue 10 at the receiver, against SQS and DynamoDB in a moto server: a verified
//! webhook is never refused for its shape, replays past the window are ignored, any
//! `call_id` deduplicates, and attribute values SQS refuses never block an enqueue.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use common::{moto_deps, settings, signed, status_and_json};
use nphooks_core::clock::Clock;
use nphooks_core::config::ReceiverConfig;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_testkit::Moto;

const DAY: u64 = 24 * 3600;

/// The receiver's "now" in these tests, and a body's `timestamp` so many seconds before it.
fn clock_and_sent(ago: u64) -> (Clock, String) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_707_000);
    let sent = nphooks_core::rfc3339(now - Duration::from_secs(ago));
    (Clock::fixed(now), sent)
}

#[tokio::test]
async fn given_drifted_optional_fields_when_received_then_accepted_routed_and_counted() {
    // GIVEN a demo request whose duration is text, custom_fields an array, name a number
    let moto = Moto::start("drift").await;
    let deps = moto_deps(&moto);
    let body = r#"{"event":"call.ended","data":{"call_id":"call_drift_1","call_type":"demo_request","duration_seconds":"180","custom_fields":[],"caller":{"name":42,"phone":"+15551234567"}}}"#;

    // WHEN it arrives
    let (status, answer) = status_and_json(receiver::handle(&deps, signed(body)).await);

    // THEN it is accepted into every routed queue, raw body intact, and the drift counted
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "accepted", "{answer}");
    assert_eq!(deps.metrics.schema_drift.load(Ordering::Relaxed), 3);
    for (integration, url) in &moto.queue_urls {
        let messages = moto.drain(url).await;
        assert_eq!(messages.len(), 1, "{integration}");
        let envelope = Envelope::decode(messages[0].body().expect("body")).expect("decodes");
        assert_eq!(envelope.webhook.raw(), body, "{integration}");
        assert_eq!(envelope.webhook.data.duration_seconds, Some(180.0));
        assert_eq!(envelope.webhook.data.caller.name.as_deref(), Some("42"));
    }
}

#[tokio::test]
async fn given_a_40_day_old_timestamp_then_ignored_as_stale_but_a_2_hour_old_one_is_accepted() {
    // GIVEN the default 7-day window and a clock the test sets
    let moto = Moto::start("stale").await;
    let (clock, old) = clock_and_sent(40 * DAY);
    let (_, retry) = clock_and_sent(2 * 3600);
    let deps = moto_deps(&moto).with_clock(clock);
    let body = |sent: &str, call: &str| {
        format!(
            r#"{{"event":"call.ended","timestamp":"{sent}","data":{{"call_id":"{call}","call_type":"demo_request"}}}}"#
        )
    };

    // WHEN a signed body sent 40 days ago arrives
    let (status, answer) =
        status_and_json(receiver::handle(&deps, signed(&body(&old, "call_old"))).await);

    // THEN it is ignored as stale: nothing recorded, nothing enqueued, counted
    assert_eq!(
        (status, answer["status"].as_str(), answer["reason"].as_str()),
        (200, Some("ignored"), Some("stale")),
        "{answer}"
    );
    assert_eq!(deps.metrics.stale_webhooks.load(Ordering::Relaxed), 1);
    assert_eq!(moto.item_count().await, 0);
    assert!(moto.counts().await.values().all(|n| *n == 0));

    // WHEN a sender retry sent 2 hours ago arrives, THEN it is accepted
    let (status, answer) =
        status_and_json(receiver::handle(&deps, signed(&body(&retry, "call_retry"))).await);
    assert_eq!((status, answer["status"].as_str()), (200, Some("accepted")));
    assert!(moto.counts().await.values().all(|n| *n == 1));
    assert_eq!(deps.metrics.stale_webhooks.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn given_a_3000_character_call_id_sent_twice_then_one_enqueue_per_queue_then_409() {
    // GIVEN a call_id longer than DynamoDB's 2,048-byte key
    let moto = Moto::start("longkey").await;
    let deps = moto_deps(&moto);
    let call_id = format!("call_{}", "x7".repeat(1500));
    let body = format!(
        r#"{{"event":"call.ended","data":{{"call_id":"{call_id}","call_type":"demo_request"}}}}"#
    );

    // WHEN it is sent twice
    let (first, answer) = status_and_json(receiver::handle(&deps, signed(&body)).await);
    let (second, again) = status_and_json(receiver::handle(&deps, signed(&body)).await);

    // THEN the first is recorded under a bounded key and enqueued once per queue
    assert_eq!((first, answer["status"].as_str()), (200, Some("accepted")));
    assert_eq!(answer["deduplicated"], true, "{answer}");
    let key = answer["delivery_key"].as_str().expect("key");
    assert!(key.len() <= 256 && key.contains("#sha256:"), "{key}");
    assert!(
        moto.item(key).await.is_some(),
        "recorded under the bounded key"
    );
    assert!(moto.counts().await.values().all(|n| *n == 1));
    // AND the second, within the record's lease, is told to retry later
    assert_eq!(
        (second, again["error"].as_str()),
        (409, Some("in_progress"))
    );
    assert_eq!(deps.metrics.dedup_unavailable.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn given_a_call_type_sqs_refuses_in_attributes_then_it_is_enqueued_with_it_cleaned() {
    // GIVEN a message left whose call_type holds characters SQS refuses in attributes
    let moto = Moto::start("attrs").await;
    let deps = moto_deps(&moto);
    let body = r#"{"event":"message.collected","data":{"call_id":"call_attr_1","call_type":"voice\u0001mail\uffff"}}"#;

    // WHEN it arrives
    let (status, answer) = status_and_json(receiver::handle(&deps, signed(body)).await);

    // THEN it is accepted and enqueued, the attribute cleaned and the body untouched
    assert_eq!((status, answer["status"].as_str()), (200, Some("accepted")));
    for integration in [Integration::Slack, Integration::Notify] {
        let messages = moto.drain(&moto.queue_urls[&integration]).await;
        assert_eq!(messages.len(), 1, "{integration}");
        let attributes = messages[0].message_attributes().expect("attributes");
        assert_eq!(attributes["call_type"].string_value(), Some("voicemail"));
        let envelope = Envelope::decode(messages[0].body().expect("body")).expect("decodes");
        assert_eq!(envelope.webhook.raw(), body);
    }
}

#[tokio::test]
async fn given_a_forged_request_then_401_is_counted_for_the_alarm() {
    let moto = Moto::start("unauth").await;
    let deps = moto_deps(&moto);
    let forged = nphooks_samples::api_gateway_event(
        "POST",
        nphooks_samples::WEBHOOK_PATH,
        r#"{"event":"call.ended","data":{"call_id":"c"}}"#,
        nphooks_samples::Delivery::BadSignature,
    );
    let (status, _) =
        status_and_json(receiver::handle(&deps, common::request_from_event(&forged)).await);
    assert_eq!(status, 401);
    assert_eq!(deps.metrics.unauthorized.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn given_a_table_that_refuses_the_record_as_invalid_then_500_not_fail_open() {
    // GIVEN a table whose key is not the one the receiver writes (ValidationException)
    let moto = Moto::start("invalid").await;
    let table = format!("{}-wrongkey", moto.table);
    let key = |name: &str| {
        (
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .expect("complete"),
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .expect("complete"),
        )
    };
    let (definition, schema) = key("id");
    moto.dynamodb
        .create_table()
        .table_name(&table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(definition)
        .key_schema(schema)
        .send()
        .await
        .expect("create table");
    let config = ReceiverConfig::from_settings(&settings(&moto.queue_urls, &table)).expect("valid");
    let deps = receiver::Deps::new(
        config,
        nphooks_core::ledger::DynamoLedger::connect(&moto.aws, &table),
        moto.queue(),
    );

    // WHEN a webhook arrives
    let body = r#"{"event":"call.ended","data":{"call_id":"c","call_type":"demo_request"}}"#;
    let (status, answer) = status_and_json(receiver::handle(&deps, signed(body)).await);

    // THEN the sender is told to retry, nothing is enqueued, and it is not "table down"
    assert_eq!(
        (status, answer["error"].as_str()),
        (500, Some("store_rejected")),
        "{answer}"
    );
    assert!(moto.counts().await.values().all(|n| *n == 0));
    assert_eq!(deps.metrics.dedup_unavailable.load(Ordering::Relaxed), 0);
}
