//! The Slack processor: escaping (snapshot), Slack's error answers, and the
//! effectively-once suite against moto and a local HTTP server.

use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_processor::http::{OutboundUrl, client};
use nphooks_processor::{Delivered, HttpSink, Sink};
use nphooks_testkit::{demo_request, envelope_for, suite};
use slack::{SlackSink, slack_message};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HOOK_PATH: &str = "/services/T000/B000/XXXXSECRET";

fn sink_for(base: &str) -> SlackSink {
    let url = OutboundUrl::parse(
        "SLACK_WEBHOOK_URL",
        &format!("{base}{HOOK_PATH}"),
        true,
        true,
    )
    .expect("valid");
    SlackSink::new(url, client().expect("client"))
}

fn envelope(name: &str) -> Envelope {
    Envelope::decode(&envelope_for(&demo_request("call_slack", name))).expect("valid")
}

#[test]
fn given_a_hostile_caller_name_then_the_slack_payload_escapes_it() {
    let message = slack_message(&envelope("<!channel> <@U024BE7LH> *Bob* & <script>"));
    let text = message.to_string();
    assert!(!text.contains("<!channel>"), "{text}");
    assert!(!text.contains("<@U024BE7LH>"), "{text}");
    assert!(!text.contains("<script>"), "{text}");
    insta::assert_json_snapshot!("hostile_caller", message);
}

#[test]
fn given_a_demo_request_then_the_block_kit_message_matches_its_snapshot() {
    insta::assert_json_snapshot!("demo_request", slack_message(&envelope("Dana Whitfield")));
}

#[test]
fn given_a_caller_with_nothing_but_a_call_id_then_the_message_still_renders() {
    let minimal = Envelope::decode(&envelope_for(
        r#"{"event":"message.collected","data":{"call_id":"c-min"}}"#,
    ))
    .expect("valid");
    insta::assert_json_snapshot!("minimal", slack_message(&minimal));
}

#[tokio::test]
async fn given_slack_answers_then_each_is_classified_as_slack_documents_it() {
    let cases = [
        (200, "ok", "sent"),
        (400, "invalid_payload", "permanent invalid_payload"),
        (403, "invalid_token", "permanent forbidden"),
        (404, "no_service", "permanent not_found"),
        (410, "channel_is_archived", "permanent not_found"),
        (429, "rate_limited", "transient"),
        (500, "rollup_error", "transient"),
    ];
    for (status, body, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(HOOK_PATH))
            .respond_with(ResponseTemplate::new(status).set_body_string(body))
            .mount(&server)
            .await;
        let result = sink_for(&server.uri()).deliver(&envelope("Dana")).await;
        let kind = match &result {
            Ok(Delivered::Sent(_)) => "sent".to_owned(),
            Ok(Delivered::Skipped(_)) => "skipped".to_owned(),
            Err(e) if e.retryable => "transient".to_owned(),
            Err(e) => {
                let reason = e.to_string();
                assert_eq!(e.status.map(|s| s.as_u16()), Some(status), "{reason}");
                assert!(
                    !reason.contains("XXXXSECRET"),
                    "the webhook URL is a secret: {reason}"
                );
                format!("permanent {}", e.reason)
            }
        };
        assert_eq!(kind, expected, "{status} {body}");
    }
}

#[test]
fn given_an_http_webhook_url_without_local_mode_then_start_up_names_the_variable() {
    let settings =
        Settings::from_pairs([("SLACK_WEBHOOK_URL", "http://hooks.slack.com/services/T/B/x")]);
    let error = SlackSink::from_settings(&settings, false, client().expect("client"))
        .expect_err("http refused");
    let message = error.to_string();
    assert!(message.contains("SLACK_WEBHOOK_URL"), "{message}");
    assert!(message.contains("https://"), "{message}");
    let missing = SlackSink::from_settings(&Settings::default(), false, client().expect("client"))
        .expect_err("required");
    assert!(
        missing.to_string().contains("SLACK_WEBHOOK_URL is not set"),
        "{missing}"
    );
}

#[tokio::test]
async fn given_moto_and_a_local_slack_then_each_delivery_posts_effectively_once() {
    suite::effectively_once(Integration::Slack, sink_for).await;
}
