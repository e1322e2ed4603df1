//! The receiver through its real handler, against SQS and DynamoDB in a moto server.

mod common;

use std::time::SystemTime;

use common::{moto_deps, moto_deps_with_queues, signed, status_and_json};
use futures::future::join_all;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_samples::{Delivery, WEBHOOK_PATH, api_gateway_event};
use nphooks_testkit::{Moto, text};

/// When this test process "sent" its webhooks: two minutes ago, well inside the window.
static SENT_AT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    nphooks_core::rfc3339(SystemTime::now() - std::time::Duration::from_secs(120))
});

fn demo_request(call_id: &str) -> String {
    let sent_at = SENT_AT.as_str();
    format!(
        r#"{{"event":"call.ended","timestamp":"{sent_at}","data":{{"call_id":"{call_id}","call_type":"demo_request","caller":{{"name":"Dana","phone":"+15551234567"}},"vendor_extra":{{"kept":[1,2]}}}}}}"#
    )
}

fn now() -> u64 {
    nphooks_core::epoch_seconds(SystemTime::now())
}

fn all_one() -> Vec<(Integration, usize)> {
    Integration::ALL.into_iter().map(|i| (i, 1)).collect()
}

#[tokio::test]
async fn given_a_demo_request_when_accepted_then_each_queue_has_the_envelope_and_one_record_the_route()
 {
    let moto = Moto::start("accepted").await;
    let deps = moto_deps(&moto);
    let body = demo_request("call_accept_1");

    let (status, answer) = status_and_json(receiver::handle(&deps, signed(&body)).await);

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "accepted");
    assert_eq!(answer["delivery_key"], "call.ended#call_accept_1");
    assert_eq!(
        answer["queues"],
        serde_json::json!(["crm", "email", "slack", "notify", "callback"])
    );
    for (integration, url) in &moto.queue_urls {
        let messages = moto.drain(url).await;
        assert_eq!(messages.len(), 1, "{integration}");
        let message = &messages[0];
        let envelope = Envelope::decode(message.body().expect("body")).expect("a valid envelope");
        assert_eq!(envelope.delivery_key.as_str(), "call.ended#call_accept_1");
        assert_eq!(
            envelope.webhook.raw(),
            body,
            "the sender's JSON as received"
        );
        let attributes = message.message_attributes().expect("attributes");
        assert_eq!(attributes["event"].string_value(), Some("call.ended"));
        assert_eq!(attributes["call_type"].string_value(), Some("demo_request"));
    }
    let record = moto
        .item("call.ended#call_accept_1")
        .await
        .expect("a dedup record");
    // One write: the record holds the route and the envelope, deflated
    assert_eq!(text(&record, "state"), "received");
    let queues: Vec<&str> = record["queues"]
        .as_l()
        .expect("list")
        .iter()
        .filter_map(|q| q.as_s().ok())
        .map(String::as_str)
        .collect();
    assert_eq!(queues, ["crm", "email", "slack", "notify", "callback"]);
    assert!(record["envelope"].as_b().is_ok(), "deflated bytes");
    let expires: u64 = record["expires_at"]
        .as_n()
        .expect("number")
        .parse()
        .expect("integer");
    assert!(expires >= now() + 24 * 3600, "kept at least 24 h");
}

#[tokio::test]
async fn given_an_accepted_body_when_sent_again_three_times_and_ten_times_concurrently_then_nothing_new_is_enqueued()
 {
    let moto = Moto::start("dupes").await;
    let deps = moto_deps(&moto);

    // Sequential repeats within the record's lease: told to retry later.
    let body = demo_request("call_dupe_seq");
    let (first, _) = status_and_json(receiver::handle(&deps, signed(&body)).await);
    assert_eq!(first, 200);
    for _ in 0..3 {
        let (status, answer) = status_and_json(receiver::handle(&deps, signed(&body)).await);
        assert_eq!(
            (status, answer["error"].as_str()),
            (409, Some("in_progress")),
            "{answer}"
        );
    }
    assert_eq!(
        moto.counts().await.into_iter().collect::<Vec<_>>(),
        all_one()
    );

    // Ten at once: exactly one is accepted; the others are duplicates or told to retry.
    // (moto takes conditional writes in turn, as DynamoDB does: scripts/lib/moto_server.py.)
    let body = demo_request("call_dupe_concurrent");
    let answers = join_all((0..10).map(|_| receiver::handle(&deps, signed(&body)))).await;
    let outcomes: Vec<(u16, String)> = answers
        .into_iter()
        .map(status_and_json)
        .map(|(s, a)| {
            (
                s,
                a["status"]
                    .as_str()
                    .or(a["error"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outcomes.iter().filter(|(_, o)| o == "accepted").count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().all(|(s, o)| o == "accepted"
            || (*s == 200 && o == "duplicate")
            || (*s == 409 && o == "in_progress")),
        "{outcomes:?}"
    );
    assert_eq!(
        moto.counts().await.into_iter().collect::<Vec<_>>(),
        all_one()
    );
}

#[tokio::test]
async fn given_call_answered_then_call_ended_of_one_call_then_they_are_two_deliveries() {
    let moto = Moto::start("two-events").await;
    let deps = moto_deps(&moto);

    let answered = r#"{"event":"call.answered","data":{"call_id":"call_two"}}"#;
    let (status, answer) = status_and_json(receiver::handle(&deps, signed(answered)).await);
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("ignored")),
        "no route by default: {answer}"
    );
    let (status, answer) =
        status_and_json(receiver::handle(&deps, signed(&demo_request("call_two"))).await);
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("accepted")),
        "{answer}"
    );

    assert!(moto.item("call.answered#call_two").await.is_some());
    assert!(moto.item("call.ended#call_two").await.is_some());
    assert_eq!(
        moto.counts().await.into_iter().collect::<Vec<_>>(),
        all_one()
    );
}

#[tokio::test]
async fn given_a_queue_that_fails_when_the_fault_clears_then_the_retry_is_accepted_not_duplicate() {
    let moto = Moto::start("queue-fault").await;
    // GIVEN a CRM queue that does not exist yet
    let missing_name = format!("crm-late-{}", std::process::id());
    let existing = &moto.queue_urls[&Integration::Email];
    let late_url = format!(
        "{}/{missing_name}",
        existing.rsplit_once('/').expect("url").0
    );
    let mut urls = moto.queue_urls.clone();
    urls.insert(Integration::Crm, late_url.clone());
    let deps = moto_deps_with_queues(&moto, &urls);
    let body = demo_request("call_fault");

    // WHEN the webhook arrives THEN it is refused with a 5xx naming the queue
    let (status, answer) = status_and_json(receiver::handle(&deps, signed(&body)).await);
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("crm")),
        "{answer}"
    );
    assert!(
        moto.item("call.ended#call_fault").await.is_none(),
        "the record is released for the retry"
    );

    // WHEN the fault clears and the sender retries THEN it is accepted and enqueued
    assert_eq!(moto.create_queue(&missing_name).await, late_url);
    let (status, answer) = status_and_json(receiver::handle(&deps, signed(&body)).await);
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("accepted")),
        "{answer}"
    );
    assert_eq!(moto.drain(&late_url).await.len(), 1);
    assert_eq!(
        text(
            &moto.item("call.ended#call_fault").await.expect("record"),
            "state"
        ),
        "received"
    );
}

#[path = "moto_receiver/records.rs"]
mod records;

#[tokio::test]
async fn given_bad_auth_then_401_and_the_table_and_queues_are_untouched() {
    let moto = Moto::start("bad-auth").await;
    let deps = moto_deps(&moto);
    let event = api_gateway_event(
        "POST",
        WEBHOOK_PATH,
        &demo_request("call_forged"),
        Delivery::BadSignature,
    );

    let (status, answer) =
        status_and_json(receiver::handle(&deps, common::request_from_event(&event)).await);

    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("unauthorized")),
        "{answer}"
    );
    assert_eq!(moto.item_count().await, 0);
    assert!(moto.counts().await.values().all(|n| *n == 0));
}

#[tokio::test]
async fn given_the_same_key_with_a_different_payload_then_nothing_new_is_accepted_and_it_is_counted()
 {
    let moto = Moto::start("conflict").await;
    let deps = moto_deps(&moto);
    let (status, _) =
        status_and_json(receiver::handle(&deps, signed(&demo_request("call_conflict"))).await);
    assert_eq!(status, 200);

    let altered = demo_request("call_conflict").replace("Dana", "Mallory");
    let (status, answer) = status_and_json(receiver::handle(&deps, signed(&altered)).await);

    assert_eq!(
        (status, answer["error"].as_str()),
        (409, Some("in_progress")),
        "{answer}"
    );
    assert_eq!(
        deps.metrics
            .payload_conflicts
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        moto.counts().await.into_iter().collect::<Vec<_>>(),
        all_one()
    );
}

#[tokio::test]
async fn given_the_idempotency_table_is_down_then_the_webhook_is_still_enqueued_fail_open() {
    let moto = Moto::start("table-down").await;
    moto.dynamodb
        .delete_table()
        .table_name(&moto.table)
        .send()
        .await
        .expect("delete table");
    let deps = moto_deps(&moto);

    let (status, answer) =
        status_and_json(receiver::handle(&deps, signed(&demo_request("call_table_down"))).await);

    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("accepted")),
        "{answer}"
    );
    assert_eq!(answer["deduplicated"], false);
    assert_eq!(
        deps.metrics
            .dedup_unavailable
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        moto.counts().await.into_iter().collect::<Vec<_>>(),
        all_one()
    );
}

#[tokio::test]
async fn given_app_secret_arn_then_the_secret_from_secrets_manager_configures_the_receiver() {
    let moto = Moto::start("secret").await;
    // The set-up creates the secret; reading it and what follows is the receiver's own
    // doing, signed as the receiver's role (the IAM check holds it against that role).
    let aws = moto.aws_for(nphooks_testkit::RECEIVER_FUNCTION);
    let secrets = aws_sdk_secretsmanager::Client::new(&moto.aws);
    let secret = serde_json::json!({
        "NEXTPHONE_WEBHOOK_SECRETS": nphooks_samples::TEST_WEBHOOK_SECRET,
        "NEXTPHONE_API_KEY": nphooks_samples::TEST_API_KEY,
    });
    let arn = secrets
        .create_secret()
        .name(format!("ReceiverSecret-test-{}", std::process::id()))
        .secret_string(secret.to_string())
        .send()
        .await
        .expect("create secret")
        .arn
        .expect("arn");
    let mut pairs: Vec<(String, String)> = vec![
        ("APP_SECRET_ARN".into(), arn),
        ("IDEMPOTENCY_TABLE".into(), moto.table.clone()),
        ("NPHOOKS_ALLOW_HTTP".into(), "1".into()),
    ];
    for (integration, url) in &moto.queue_urls {
        pairs.push((integration.queue_url_var().into(), url.clone()));
    }

    let settings =
        nphooks_core::aws::with_app_secret(nphooks_core::config::Settings::from_pairs(pairs), &aws)
            .await
            .expect("the secret loads");
    let config =
        nphooks_core::config::ReceiverConfig::from_settings(&settings).expect("complete config");
    let deps = receiver::Deps::new(
        config,
        nphooks_core::ledger::DynamoLedger::connect(&aws, &moto.table),
        nphooks_core::queue::SqsQueue::connect(&aws),
    );

    let (status, answer) =
        status_and_json(receiver::handle(&deps, signed(&demo_request("call_secret"))).await);
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("accepted")),
        "{answer}"
    );

    let missing = nphooks_core::aws::with_app_secret(
        nphooks_core::config::Settings::from_pairs([(
            "APP_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:absent",
        )]),
        // A misconfiguration, not a call the role must allow: made as the set-up.
        &moto.aws,
    )
    .await
    .expect_err("absent secret");
    assert!(missing.to_string().contains("APP_SECRET_ARN"), "{missing}");
}
