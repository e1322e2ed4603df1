//! Limits written down, not defaulted, and the AWS calls only these tests make as the
//! function that makes them in AWS (for the IAM check, scripts/iam/check_iam.py).

use std::time::Duration;

use nphooks_core::config::{MAX_BODY_BYTES_LIMIT, MAX_BODY_BYTES_VAR, ReceiverConfig, Settings};
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::{Integration, ROUTES_VAR};
use nphooks_deploy_checks::{Value, template};
use nphooks_processor::process_batch;
use nphooks_samples::{Delivery, WEBHOOK_PATH};
use nphooks_testkit::{
    MAX_MESSAGE_SIZE, Moto, demo_request, envelope_for, function_id, sqs_event, sqs_message, text,
};

fn max_message_bytes(template: &Value) -> u64 {
    template["Mappings"]["Limits"]["Sqs"]["MaxMessageBytes"]
        .as_u64()
        .expect("Mappings.Limits.Sqs.MaxMessageBytes")
}

#[test]
fn given_the_template_then_queue_size_body_limit_and_code_agree() {
    let template = template();
    let max_message = max_message_bytes(&template);
    // THEN the testkit's queues are the template's
    assert_eq!(
        max_message,
        u64::from(MAX_MESSAGE_SIZE),
        "testkit vs template"
    );
    // THEN every queue and DLQ takes its size from that one value
    let mut queues = 0;
    for (name, resource) in template["Resources"].as_mapping().expect("Resources") {
        if resource["Type"] != "AWS::SQS::Queue" {
            continue;
        }
        queues += 1;
        let Value::Tagged(size) = &resource["Properties"]["MaximumMessageSize"] else {
            panic!("{name:?}: MaximumMessageSize is not set from Mappings.Limits")
        };
        assert_eq!(size.tag.to_string(), "!FindInMap", "{name:?}");
        let path: Vec<_> = size.value.as_sequence().expect("path").iter().collect();
        assert_eq!(path, ["Limits", "Sqs", "MaxMessageBytes"], "{name:?}");
    }
    assert_eq!(queues, 10, "five queues, five DLQs");
    // THEN the body limit is the code's, and leaves room for the envelope
    let max_body = template["Parameters"]["MaxBodyBytes"]["MaxValue"]
        .as_u64()
        .expect("MaxBodyBytes.MaxValue");
    assert_eq!(max_body, MAX_BODY_BYTES_LIMIT as u64, "template vs code");
    assert!(max_body < max_message, "the envelope needs room");
}

/// A signed demo request of exactly `size` bytes (a custom field pads it).
fn body_of_size(call_id: &str, size: usize) -> String {
    let base = demo_request(call_id, "Dana Whitfield");
    let mut webhook: serde_json::Value = serde_json::from_str(&base).expect("json");
    webhook["data"]["custom_fields"]["notes"] = "".into();
    let empty = webhook.to_string().len();
    assert!(empty < size, "{size} is too small for a webhook");
    webhook["data"]["custom_fields"]["notes"] = "n".repeat(size - empty).into();
    let body = webhook.to_string();
    assert_eq!(body.len(), size);
    body
}

fn signed(body: &str) -> lambda_http::Request {
    let event = nphooks_samples::api_gateway_event("POST", WEBHOOK_PATH, body, Delivery::Signed);
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway v2 event")
}

#[tokio::test]
async fn given_a_body_at_the_largest_limit_then_the_receiver_puts_it_in_every_queue() {
    // GIVEN a receiver allowed the largest body the template allows, routing the call to
    // every integration, on moto queues with the template's MaximumMessageSize
    let moto = Moto::start("size-limit").await;
    let mut pairs = moto.receiver_settings();
    pairs.push((
        MAX_BODY_BYTES_VAR.to_owned(),
        MAX_BODY_BYTES_LIMIT.to_string(),
    ));
    let every: Vec<&str> = Integration::ALL.iter().map(|i| i.as_str()).collect();
    let route =
        serde_json::json!([{"name": "all", "events": ["call.ended"], "integrations": every}]);
    pairs.push((ROUTES_VAR.to_owned(), route.to_string()));
    let config = ReceiverConfig::from_settings(&Settings::from_pairs(pairs)).expect("config");
    let deps = receiver::Deps::new(config, moto.ledger(), moto.queue());

    // WHEN a webhook one byte over the limit arrives THEN it is refused, nothing enqueued
    let over = body_of_size("call_size_over", MAX_BODY_BYTES_LIMIT + 1);
    let response = receiver::handle(&deps, signed(&over)).await;
    assert_eq!(response.status().as_u16(), 413);

    // WHEN a webhook of exactly the limit arrives
    let body = body_of_size("call_size_limit", MAX_BODY_BYTES_LIMIT);
    let response = receiver::handle(&deps, signed(&body)).await;

    // THEN it is accepted and every queue holds it whole, within SQS's size
    let status = response.status().as_u16();
    let answer = String::from_utf8_lossy(response.body().as_ref()).into_owned();
    assert_eq!(status, 200, "{answer}");
    for (integration, url) in &moto.queue_urls {
        let messages = moto.drain(url).await;
        assert_eq!(
            messages.len(),
            1,
            "{integration}: only the body at the limit"
        );
        let message = &messages[0];
        let envelope = Envelope::decode(message.body().expect("body")).expect("an envelope");
        assert_eq!(
            envelope.webhook.raw(),
            body,
            "{integration}: the body intact"
        );
        // What SQS counts against MaximumMessageSize: the body and every attribute.
        let attributes: usize = message
            .message_attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| {
                name.len() + value.data_type().len() + value.string_value().unwrap_or("").len()
            })
            .sum();
        let size = message.body().unwrap_or("").len() + attributes;
        assert!(
            size <= MAX_MESSAGE_SIZE as usize,
            "{integration}: {size} bytes exceed the queue's {MAX_MESSAGE_SIZE}"
        );
    }
}

#[tokio::test]
async fn given_ses_transport_then_the_email_processor_sends_as_the_email_function() {
    // GIVEN an email processor on SES, its calls signed as EmailFunction
    let moto = Moto::start("ses-as-function").await;
    moto.verify_ses_domain("acme.example");
    let settings = Settings::from_pairs([
        ("EMAIL_TRANSPORT", "ses"),
        ("EMAIL_FROM", "Acme <hello@acme.example>"),
    ]);
    let config = email::EmailConfig::from_settings(&settings, false).expect("config");
    let function = function_id(Integration::Email);
    let sink = email::EmailSink::connect(config, &moto.aws_for(function)).expect("sink");
    let deps = moto.processor_deps(Integration::Email, sink);
    let body = envelope_for(&demo_request("call_ses_role", "Dana Whitfield"));
    let key = Envelope::decode(&body).expect("envelope").delivery_key;

    // WHEN a message arrives
    let response = process_batch(
        &deps,
        sqs_event(
            vec![sqs_message("m-ses-role", &body)],
            Duration::from_secs(20),
        ),
    )
    .await
    .expect("batch handled");

    // THEN it is sent and its claim completed, nothing dead-lettered
    assert!(response.batch_item_failures.is_empty());
    let claim = moto.item(&format!("email#{key}")).await.expect("claim");
    assert_eq!(text(&claim, "state"), "completed");
    assert!(
        moto.drain(&moto.dlq_urls[&Integration::Email])
            .await
            .is_empty()
    );
}

#[test]
fn given_a_bounded_event_source_then_the_function_knows_its_bound() {
    // GIVEN the template, as deployed with its defaults
    let template = template();
    let evaluator = nphooks_deploy_checks::Evaluator::new(&template, &[]);
    let mut bounded = 0;
    for (name, function) in nphooks_deploy_checks::functions(&template) {
        let sources = function["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten();
        for (_, source) in sources {
            let Some(bound) = source["Properties"]["ScalingConfig"]["MaximumConcurrency"].as_u64()
            else {
                continue;
            };
            bounded += 1;
            // THEN the instances' share of the rate limit is computed for that bound
            let env = evaluator.environment(function);
            let var = nphooks_processor::limiter::MAX_CONCURRENCY_VAR;
            assert_eq!(
                env.get(var).map(String::as_str),
                Some(bound.to_string().as_str()),
                "{name}: {var} is not its event source's MaximumConcurrency"
            );
            let settings = Settings::from_pairs(vec![(var, env[var].clone())]);
            let read = nphooks_processor::limiter::max_concurrency(&settings);
            assert_eq!(
                read.ok(),
                Some(Some(u32::try_from(bound).expect("u32"))),
                "{name}"
            );
        }
    }
    assert_eq!(bounded, 5, "the five processors' sources are bounded");
}
