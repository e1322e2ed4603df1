//! The handler called directly, as the Lambda runtime calls it: a `lambda_http` request
//! carrying a Lambda context, on the in-memory adapters. `receive` says how each request
//! ended as a typed `Outcome` or `ReceiverError`; `answer` turns that into the response.

mod common;

use common::{memory_deps, queue_url, request_from_event, signed};
use std::time::{Duration, SystemTime};

use lambda_http::http::{StatusCode, header};
use lambda_http::{Context, Request, RequestExt};
use nphooks_core::ParseError;
use nphooks_core::clock::Clock;
use nphooks_core::routing::Integration;
use nphooks_core::signature::AuthFailure;
use nphooks_samples::{Delivery, WEBHOOK_PATH, api_gateway_event};
use receiver::{Outcome, ReceiverError, answer, receive, status};

const DEMO: &str =
    r#"{"event":"call.ended","data":{"call_id":"call_handler_1","call_type":"demo_request"}}"#;

/// `request` as the runtime hands it over: with the invocation's Lambda context.
fn invoked(request: Request) -> Request {
    request.with_lambda_context(Context::default())
}

fn event(method: &str, body: &str, delivery: Delivery) -> Request {
    invoked(request_from_event(&api_gateway_event(
        method,
        WEBHOOK_PATH,
        body,
        delivery,
    )))
}

#[tokio::test]
async fn given_a_demo_request_twice_then_accepted_into_every_queue_then_in_progress() {
    let clock = Clock::manual(SystemTime::now());
    let deps = memory_deps().with_clock(clock.clone());

    let first = receive(&deps, &invoked(signed(DEMO))).await;
    let Ok(Outcome::Accepted {
        key,
        queues,
        deduplicated,
    }) = &first
    else {
        panic!("accepted: {first:?}");
    };
    assert_eq!(key.as_str(), "call.ended#call_handler_1");
    assert_eq!(queues.iter().copied().collect::<Vec<_>>(), Integration::ALL);
    assert!(deduplicated);
    for integration in Integration::ALL {
        assert_eq!(deps.queue.messages(&queue_url(integration)).len(), 1);
    }

    // WHEN it comes again within the record's lease THEN 409, nothing enqueued
    let second = receive(&deps, &invoked(signed(DEMO))).await;
    assert!(
        matches!(&second, Err(ReceiverError::InProgress(k)) if k == key),
        "{second:?}"
    );
    for integration in Integration::ALL {
        assert_eq!(deps.queue.messages(&queue_url(integration)).len(), 1);
    }

    // WHEN the sender retries 5 minutes later (its answer was lost): the record's lease
    // is over and cannot tell a finished delivery from a crashed one
    clock.advance(Duration::from_secs(300));
    let retry = receive(&deps, &invoked(signed(DEMO))).await;
    // THEN it is enqueued again; the processors' claims make it one effect
    assert!(matches!(retry, Ok(Outcome::Accepted { .. })), "{retry:?}");
    for integration in Integration::ALL {
        assert_eq!(deps.queue.messages(&queue_url(integration)).len(), 2);
    }
    assert_eq!(
        (status(&first), status(&second)),
        (StatusCode::OK, StatusCode::CONFLICT)
    );
}

#[tokio::test]
async fn given_another_body_past_the_lease_then_it_takes_over_and_is_counted() {
    // GIVEN a delivery accepted, its 30 s lease over
    let clock = Clock::manual(SystemTime::now());
    let deps = memory_deps().with_clock(clock.clone());
    let first = receive(&deps, &invoked(signed(DEMO))).await;
    assert!(matches!(first, Ok(Outcome::Accepted { .. })), "{first:?}");
    clock.advance(Duration::from_secs(60));
    let conflicts = || {
        let counter = &deps.metrics.payload_conflicts;
        counter.load(std::sync::atomic::Ordering::Relaxed)
    };
    // WHEN the same key comes with another body, then that body again
    let altered = DEMO.replace("demo_request", "quote_request");
    let other = receive(&deps, &invoked(signed(&altered))).await;
    clock.advance(Duration::from_secs(60));
    let again = receive(&deps, &invoked(signed(&altered))).await;
    // THEN both are enqueued, and only the change of body is counted
    assert!(matches!(other, Ok(Outcome::Accepted { .. })), "{other:?}");
    assert!(matches!(again, Ok(Outcome::Accepted { .. })), "{again:?}");
    assert_eq!(conflicts(), 1);
}

#[tokio::test]
async fn given_an_unknown_event_when_received_then_it_is_ignored_without_a_key() {
    let deps = memory_deps();
    let body = r#"{"event":"call.teleported","data":{"call_id":"c"}}"#;

    let result = receive(&deps, &invoked(signed(body))).await;

    assert_eq!(
        result.as_ref().ok(),
        Some(&Outcome::Ignored {
            key: None,
            reason: "unknown event \"call.teleported\"".into()
        })
    );
    for integration in Integration::ALL {
        assert!(deps.queue.messages(&queue_url(integration)).is_empty());
    }
}

#[tokio::test]
async fn given_requests_that_end_badly_then_the_error_is_typed_and_answer_gives_its_status() {
    let deps = memory_deps();

    let forged = receive(&deps, &event("POST", DEMO, Delivery::BadSignature)).await;
    assert!(
        matches!(
            forged,
            Err(ReceiverError::Unauthorized(AuthFailure::SignatureMismatch))
        ),
        "{forged:?}"
    );
    assert_eq!(answer(&forged).status(), StatusCode::UNAUTHORIZED);

    let not_an_object = receive(&deps, &invoked(signed("[1]"))).await;
    assert!(
        matches!(
            not_an_object,
            Err(ReceiverError::BadRequest(ParseError::MalformedJson(_)))
        ),
        "{not_an_object:?}"
    );
    assert_eq!(answer(&not_an_object).status(), StatusCode::BAD_REQUEST);

    let get = receive(&deps, &event("GET", "", Delivery::Signed)).await;
    assert!(
        matches!(get, Err(ReceiverError::MethodNotAllowed(_))),
        "{get:?}"
    );
    let response = answer(&get);
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "POST");

    for integration in Integration::ALL {
        assert!(deps.queue.messages(&queue_url(integration)).is_empty());
    }
}

#[tokio::test]
async fn given_a_request_when_handled_then_the_response_is_the_answer_to_its_outcome() {
    let deps = memory_deps();

    let response = receiver::handle(&deps, invoked(signed(DEMO))).await;
    let again = receiver::handle(&deps, invoked(signed(DEMO))).await;

    let json = |response: &lambda_http::Response<lambda_http::Body>| -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).expect("JSON")
    };
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(&response)["status"], "accepted");
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(json(&again)["error"], "in_progress");
    let message = json(&again)["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("call.ended#call_handler_1"), "{message}");
}
