//! Records left in the table by an earlier attempt: a stale lease is taken over, a fresh
//! one is in progress, and an expired item TTL has not yet deleted counts as absent.

use aws_sdk_dynamodb::types::AttributeValue;
use nphooks_core::table;

use super::*;

async fn put_record(moto: &Moto, key: &str, state: &str, expires_at: u64, lease_until: u64) {
    moto.dynamodb
        .put_item()
        .table_name(&moto.table)
        .item(table::KEY, AttributeValue::S(key.into()))
        .item(table::STATE, AttributeValue::S(state.into()))
        .item(table::PAYLOAD_HASH, AttributeValue::S("earlier".into()))
        .item(table::EXPIRES_AT, AttributeValue::N(expires_at.to_string()))
        .item(
            table::LEASE_UNTIL,
            AttributeValue::N(lease_until.to_string()),
        )
        .send()
        .await
        .expect("put item");
}

#[tokio::test]
async fn given_a_stale_received_record_then_the_retry_takes_it_over_but_a_fresh_one_is_in_progress()
{
    let moto = Moto::start("stale").await;
    let deps = moto_deps(&moto);

    // A crash between the record and the sends, long ago.
    put_record(
        &moto,
        "call.ended#call_stale",
        "received",
        now() + 3600,
        now() - 1,
    )
    .await;
    let (status, answer) =
        status_and_json(receiver::handle(&deps, signed(&demo_request("call_stale"))).await);
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("accepted")),
        "{answer}"
    );

    // Another request enqueueing right now.
    put_record(
        &moto,
        "call.ended#call_busy",
        "received",
        now() + 3600,
        now() + 30,
    )
    .await;
    let (status, answer) =
        status_and_json(receiver::handle(&deps, signed(&demo_request("call_busy"))).await);
    assert_eq!(
        (status, answer["error"].as_str()),
        (409, Some("in_progress")),
        "{answer}"
    );

    assert_eq!(
        moto.counts().await.into_iter().collect::<Vec<_>>(),
        all_one()
    );
}

#[tokio::test]
async fn given_an_expired_record_whose_item_still_exists_then_it_is_treated_as_absent() {
    let moto = Moto::start("expired").await;
    let deps = moto_deps(&moto);
    // TTL deletion lags: the item is still there a day after it expired.
    put_record(
        &moto,
        "call.ended#call_expired",
        "enqueued",
        now() - 86_400,
        0,
    )
    .await;

    let (status, answer) =
        status_and_json(receiver::handle(&deps, signed(&demo_request("call_expired"))).await);

    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("accepted")),
        "{answer}"
    );
    assert_eq!(
        moto.counts().await.into_iter().collect::<Vec<_>>(),
        all_one()
    );
}
