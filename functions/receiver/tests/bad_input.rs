//! Table-driven bad input: each request gets its documented status, and a rejected one
//! touches neither the idempotency store nor any queue.

mod common;

use base64::Engine;
use common::{memory_deps, request_from_event, status_and_json};
use nphooks_core::signature::sign;
use nphooks_samples::{Delivery, TEST_WEBHOOK_SECRET, WEBHOOK_PATH, api_gateway_event};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    event: Value,
    status: u16,
    /// Expected `error` code (or `status` for 200 answers).
    outcome: &'static str,
    /// A fragment the answer's message must contain (names the problem).
    mentions: &'static str,
    /// Whether the request may leave an effect (store record and queue messages).
    effect: bool,
}

fn post(body: &str) -> Value {
    api_gateway_event("POST", WEBHOOK_PATH, body, Delivery::Signed)
}

fn rejected(
    name: &'static str,
    body: &str,
    status: u16,
    outcome: &'static str,
    mentions: &'static str,
) -> Case {
    Case {
        name,
        event: post(body),
        status,
        outcome,
        mentions,
        effect: false,
    }
}

fn bad_request(name: &'static str, body: &str, mentions: &'static str) -> Case {
    rejected(name, body, 400, "bad_request", mentions)
}

/// A body whose bytes are not UTF-8, delivered base64-encoded as API Gateway would.
fn binary_body(bytes: &[u8]) -> Value {
    let mut event = post("");
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    event["isBase64Encoded"] = json!(true);
    event["headers"]["x-nextphone-signature"] = json!(sign(TEST_WEBHOOK_SECRET, bytes));
    event
}

/// A demo request whose `data` holds `fields`, one of them drifted: accepted and routed.
fn drifted(name: &'static str, fields: &str) -> Case {
    Case {
        name,
        event: post(&format!(
            r#"{{"event":"call.ended","data":{{"call_type":"demo_request",{fields}}}}}"#
        )),
        status: 200,
        outcome: "accepted",
        mentions: "",
        effect: true,
    }
}

fn cases() -> Vec<Case> {
    let ok = |call: &str| {
        format!(
            r#"{{"event":"call.ended","data":{{"call_id":"{call}","call_type":"demo_request"}}}}"#
        )
    };
    let deep = format!(
        r#"{{"event":"call.ended","data":{{"call_id":"c","custom_fields":{{"x":{}{}}}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let huge = format!(
        r#"{{"event":"call.ended","data":{{"call_id":"c","transcript":"{}"}}}}"#,
        "a".repeat(256 * 1024)
    );
    let mut unsigned = post(&ok("c"));
    unsigned["headers"]
        .as_object_mut()
        .expect("headers")
        .remove("x-nextphone-signature");
    let mut wrong_key = post(&ok("c"));
    wrong_key["headers"]["authorization"] = json!("Bearer np_live_someone_else");
    let mut no_key = post(&ok("c"));
    no_key["headers"]
        .as_object_mut()
        .expect("headers")
        .remove("authorization");
    let mut upper_headers = post(&ok("call_upper_headers"));
    let headers = upper_headers["headers"].as_object_mut().expect("headers");
    let signature = headers.remove("x-nextphone-signature").expect("signed");
    headers.insert("X-NextPhone-Signature".into(), signature);

    vec![
        bad_request("empty body", "", "body is empty"),
        bad_request("whitespace body", " \n\t ", "body is empty"),
        bad_request(
            "truncated JSON",
            r#"{"event":"call.ended","data":{"call_id":"c""#,
            "malformed JSON",
        ),
        bad_request(
            "trailing garbage",
            &format!("{} x", ok("c")),
            "trailing characters",
        ),
        bad_request(
            "JSON array",
            "[1,2]",
            "expected a JSON object, found an array",
        ),
        bad_request("JSON string", r#""call.ended""#, "found a string"),
        bad_request(
            "missing event",
            r#"{"data":{"call_id":"c"}}"#,
            "missing required field `event`",
        ),
        bad_request(
            "null event",
            r#"{"event":null,"data":{"call_id":"c"}}"#,
            "missing required field `event`",
        ),
        bad_request(
            "empty event",
            r#"{"event":"","data":{"call_id":"c"}}"#,
            "missing required field `event`",
        ),
        bad_request(
            "numeric event",
            r#"{"event":7,"data":{"call_id":"c"}}"#,
            "field `event` must be a string",
        ),
        bad_request(
            "missing data",
            r#"{"event":"call.ended"}"#,
            "missing required field `data.call_id`",
        ),
        bad_request(
            "data is a string",
            r#"{"event":"call.ended","data":"c"}"#,
            "field `data` must be an object",
        ),
        bad_request(
            "missing call_id",
            r#"{"event":"call.ended","data":{}}"#,
            "missing required field `data.call_id`",
        ),
        bad_request(
            "blank call_id",
            r#"{"event":"call.ended","data":{"call_id":"  "}}"#,
            "missing required field `data.call_id`",
        ),
        bad_request(
            "call_id is an array",
            r#"{"event":"call.ended","data":{"call_id":["c"]}}"#,
            "field `data.call_id` must be a string",
        ),
        bad_request(
            "nesting beyond the parser's limit",
            &deep,
            "recursion limit exceeded",
        ),
        Case {
            name: "body not UTF-8",
            event: binary_body(b"{\"event\":\"call.ended\xff\"}"),
            status: 400,
            outcome: "bad_request",
            mentions: "not UTF-8",
            effect: false,
        },
        rejected(
            "body over 256 KiB",
            &huge,
            413,
            "payload_too_large",
            "the limit is 262144",
        ),
        Case {
            name: "GET",
            event: api_gateway_event("GET", WEBHOOK_PATH, "", Delivery::Signed),
            status: 405,
            outcome: "method_not_allowed",
            mentions: "method GET is not allowed",
            effect: false,
        },
        Case {
            name: "PUT",
            event: api_gateway_event("PUT", WEBHOOK_PATH, &ok("c"), Delivery::Signed),
            status: 405,
            outcome: "method_not_allowed",
            mentions: "use POST",
            effect: false,
        },
        Case {
            name: "wrong path",
            event: api_gateway_event("POST", "/webhook/other", &ok("c"), Delivery::Signed),
            status: 404,
            outcome: "not_found",
            mentions: "no route for /webhook/other",
            effect: false,
        },
        Case {
            name: "no signature",
            event: unsigned,
            status: 401,
            outcome: "unauthorized",
            mentions: "missing X-NextPhone-Signature",
            effect: false,
        },
        Case {
            name: "wrong secret",
            event: api_gateway_event("POST", WEBHOOK_PATH, &ok("c"), Delivery::BadSignature),
            status: 401,
            outcome: "unauthorized",
            mentions: "does not match the body",
            effect: false,
        },
        Case {
            name: "wrong API key",
            event: wrong_key,
            status: 401,
            outcome: "unauthorized",
            mentions: "not the configured one",
            effect: false,
        },
        Case {
            name: "no API key",
            event: no_key,
            status: 401,
            outcome: "unauthorized",
            mentions: "missing `Authorization: Bearer`",
            effect: false,
        },
        Case {
            name: "unknown event",
            event: post(r#"{"event":"call.teleported","data":{"call_id":"c"}}"#),
            status: 200,
            outcome: "ignored",
            mentions: "unknown event \"call.teleported\"",
            effect: false,
        },
        Case {
            name: "timestamp older than the replay window",
            event: post(
                r#"{"event":"call.ended","timestamp":"2020-01-02T15:30:00Z","data":{"call_id":"c","call_type":"demo_request"}}"#,
            ),
            status: 200,
            outcome: "ignored",
            mentions: "stale",
            effect: false,
        },
        // Valid inputs that look unusual are accepted; optional fields of an unexpected
        // type (once 400) are read tolerantly: absent, or coerced when lossless.
        drifted("numeric call_id", r#""call_id":42"#),
        drifted("caller is a string", r#""call_id":"c","caller":"Bob""#),
        drifted(
            "numeric caller name",
            r#""call_id":"c","caller":{"name":5}"#,
        ),
        drifted(
            "duration as text",
            r#""call_id":"c","duration_seconds":"180""#,
        ),
        drifted(
            "negative duration",
            r#""call_id":"c","duration_seconds":-1"#,
        ),
        drifted("custom_fields array", r#""call_id":"c","custom_fields":[]"#),
        drifted(
            "unparseable timestamp",
            r#""call_id":"c"},"timestamp":{"at":"noon""#,
        ),
        Case {
            name: "unicode and emoji name",
            event: post(
                r#"{"event":"call.ended","data":{"call_id":"call_ünï","call_type":"demo_request","caller":{"name":"Zoë 🚀 Ålvarez-李"}}}"#,
            ),
            status: 200,
            outcome: "accepted",
            mentions: "",
            effect: true,
        },
        Case {
            name: "pretty-printed JSON signed over its raw bytes",
            event: post(
                "{\n  \"event\": \"call.ended\",\n  \"data\": {\n    \"call_id\": \"call_pretty\",\n    \"call_type\": \"demo_request\"\n  }\n}\n",
            ),
            status: 200,
            outcome: "accepted",
            mentions: "",
            effect: true,
        },
        Case {
            name: "base64-encoded body",
            event: api_gateway_event(
                "POST",
                WEBHOOK_PATH,
                &ok("call_b64"),
                Delivery::SignedBase64,
            ),
            status: 200,
            outcome: "accepted",
            mentions: "",
            effect: true,
        },
        Case {
            name: "header names in mixed case",
            event: upper_headers,
            status: 200,
            outcome: "accepted",
            mentions: "",
            effect: true,
        },
    ]
}

#[tokio::test]
async fn given_each_bad_or_odd_input_when_received_then_the_answer_is_documented_and_side_effects_match()
 {
    let cases = cases();
    assert!(cases.iter().filter(|c| c.status != 200).count() >= 20);
    for case in cases {
        // GIVEN a fresh receiver
        let deps = memory_deps();
        // WHEN the request arrives
        let (status, body) =
            status_and_json(receiver::handle(&deps, request_from_event(&case.event)).await);
        // THEN it gets the documented answer, naming the problem
        let name = case.name;
        assert_eq!(status, case.status, "{name}: {body}");
        let outcome = if status == 200 {
            &body["status"]
        } else {
            &body["error"]
        };
        assert_eq!(outcome, case.outcome, "{name}: {body}");
        let text = body.to_string();
        assert!(
            text.contains(&case.mentions.replace('"', "\\\"")),
            "{name}: {text} should mention {:?}",
            case.mentions
        );
        // AND side effects happen only where documented
        if case.effect {
            assert_eq!(deps.ledger.len(), 1, "{name}");
            assert_eq!(deps.queue.total(), 5, "{name}");
        } else {
            assert_eq!(
                deps.ledger.operations(),
                0,
                "{name}: no store read or write"
            );
            assert_eq!(deps.queue.total(), 0, "{name}: nothing enqueued");
        }
    }
}
