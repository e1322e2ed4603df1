//! What the receiver logs names the delivery, never the caller or a secret.

mod common;

use common::{memory_deps, request_from_event, signed, status_and_json};
use nphooks_samples::{
    Delivery, TEST_API_KEY, TEST_WEBHOOK_SECRET, WEBHOOK_PATH, api_gateway_event,
};
use nphooks_testkit::logs::CapturedLogs;

#[tokio::test]
async fn given_webhooks_full_of_caller_data_then_the_log_lines_hold_none_of_it() {
    let (captured, _guard) = CapturedLogs::start();

    let body = r#"{"event":"call.ended","data":{"call_id":"call_logs_1","call_type":"demo_request",
        "caller":{"name":"Priya Raman","phone":"+15557654321","email":"priya.raman@example.com"},
        "transcript":"my card number is 4111 1111 1111 1111","ai_summary":"wants a demo",
        "custom_fields":{"budget":"$15,000"}}}"#;
    let deps = memory_deps();
    let (accepted, _) = status_and_json(receiver::handle(&deps, signed(body)).await);
    let (in_progress, _) = status_and_json(receiver::handle(&deps, signed(body)).await);
    let forged = api_gateway_event("POST", WEBHOOK_PATH, body, Delivery::BadSignature);
    let (unauthorized, _) =
        status_and_json(receiver::handle(&deps, request_from_event(&forged)).await);
    // A numeric phone is schema drift: read as text, and the log names the field only.
    let drifted =
        signed(r#"{"event":"call.ended","data":{"call_id":"c","caller":{"phone":15557654321}}}"#);
    let (tolerated, _) = status_and_json(receiver::handle(&deps, drifted).await);
    assert_eq!(
        (accepted, in_progress, unauthorized, tolerated),
        (200, 409, 401, 200)
    );

    let logs = captured.text();
    assert!(
        logs.contains("call.ended#call_logs_1"),
        "the delivery is logged: {logs}"
    );
    assert!(
        logs.contains("data.caller.phone"),
        "the drifted field is named: {logs}"
    );
    assert_eq!(
        logs.lines().filter(|l| l.contains("\"webhook\"")).count(),
        4,
        "one line per webhook: {logs}"
    );
    for secret_or_pii in [
        "Priya",
        "Raman",
        "+15557654321",
        "5557654321",
        "priya.raman@example.com",
        "4111",
        "$15,000",
        TEST_WEBHOOK_SECRET,
        TEST_API_KEY,
    ] {
        assert!(
            !logs.contains(secret_or_pii),
            "{secret_or_pii} leaked into the logs: {logs}"
        );
    }
}
