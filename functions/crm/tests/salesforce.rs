//! `CRM_PROVIDER=salesforce` against a local org stand-in: the token and the upsert we
//! send, a token expiring mid-run, the API limit, redeliveries (one lead per delivery), a
//! required field missing (DLQ naming it), configuration errors, and the
//! effectively-once suite on moto.

mod salesforce_org;

use std::time::Duration;

use crm::salesforce::{CLIENT_ID_VAR, CLIENT_SECRET_VAR, FIELD_MAP_VAR, LOGIN_URL_VAR};
use crm::{CRM_PROVIDER_VAR, CrmSink};
use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_processor::http::client;
use nphooks_processor::{
    Deferral, Delivered, FailureReason, HttpSink, RecordOutcome, Sink, SinkError,
};
use nphooks_testkit::event_source::drain_on_virtual_time;
use nphooks_testkit::{Moto, demo_request, envelope_for, suite};
use salesforce_org::{CLIENT_ID, CLIENT_SECRET, LEAD_PATH, Org, decode, on_virtual_time};
use serde_json::{Value, json};
use wiremock::MockServer;

fn sink_with(login: &str, extra: &[(&'static str, &str)]) -> CrmSink {
    let mut pairs = vec![
        (CRM_PROVIDER_VAR, "salesforce"),
        (LOGIN_URL_VAR, login),
        (CLIENT_ID_VAR, CLIENT_ID),
        (CLIENT_SECRET_VAR, CLIENT_SECRET),
    ];
    pairs.extend_from_slice(extra);
    let settings = Settings::from_pairs(pairs.iter().map(|(k, v)| (*k, v.to_string())));
    CrmSink::from_settings(&settings, true, client().expect("client")).expect("valid settings")
}

fn envelope(call_id: &str, edit: impl FnOnce(&mut Value)) -> Envelope {
    let mut webhook: Value =
        serde_json::from_str(&demo_request(call_id, "Dana Whitfield")).expect("json");
    edit(&mut webhook);
    Envelope::decode(&envelope_for(&webhook.to_string())).expect("valid")
}

async fn org(extra_required: &[&str]) -> (MockServer, Org) {
    let server = MockServer::start().await;
    let org = Org::mount(&server, extra_required).await;
    (server, org)
}

#[tokio::test]
async fn given_an_org_when_a_call_is_delivered_then_one_token_and_one_upsert_by_delivery_key() {
    // GIVEN an org and a sink for it
    let (server, org) = org(&[]).await;
    let sink = sink_with(&server.uri(), &[]);

    // WHEN a demo request is delivered
    let result = sink.deliver(&envelope("call_sf", |_| {})).await;

    // THEN a client-credentials token, then one PATCH keyed by the encoded delivery key
    assert!(
        matches!(&result, Ok(Delivered::Sent(s)) if s.contains("created")),
        "{result:?}"
    );
    let requests = server.received_requests().await.expect("recorded");
    let lines: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.url.path()))
        .collect();
    let upsert = format!("{LEAD_PATH}call.ended%23call_sf");
    assert_eq!(
        lines,
        [
            ("POST", "/services/oauth2/token"),
            ("PATCH", upsert.as_str())
        ]
    );
    let form = String::from_utf8_lossy(&requests[0].body).into_owned();
    assert!(form.contains("grant_type=client_credentials"), "{form}");
    let state = org.state();
    assert_eq!(state.upserts, [(state.valid_tokens[0].clone(), 201)]);
    let lead = &state.leads["call.ended#call_sf"];
    assert_eq!(lead["LastName"], "Whitfield");
    assert_eq!(lead["FirstName"], "Dana");
    assert_eq!(lead["Company"], "Whitfield Logistics");
    assert_eq!(lead["LeadSource"], "Phone Call");
    assert_eq!(lead["Phone"], "+15551234567");
    assert_eq!(lead["Email"], "dana.whitfield@example.com");
    assert!(
        lead["Description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Wants a demo"))
    );
    assert!(
        lead.get("NPHooks_Delivery_Key__c").is_none(),
        "the key travels in the path"
    );
}

#[tokio::test]
async fn given_a_caller_without_name_or_company_then_the_fallbacks_satisfy_the_required_fields() {
    // GIVEN an org requiring LastName and Company, and callers who gave neither / one name
    let (server, org) = org(&[]).await;
    let sink = sink_with(
        &server.uri(),
        &[(FIELD_MAP_VAR, r#"{"team_size":"NumberOfEmployees"}"#)],
    );
    let anonymous = envelope("call_anon", |w| {
        w["data"]["caller"] = json!({"phone": "+15550000000"});
        w["data"]["custom_fields"] = json!({"team_size": 12});
    });
    let single = envelope("call_cher", |w| {
        w["data"]["caller"]["name"] = json!(" Cher ")
    });

    // WHEN both are delivered
    for envelope in [&anonymous, &single] {
        let result = sink.deliver(envelope).await;
        assert!(matches!(result, Ok(Delivered::Sent(_))), "{result:?}");
    }

    // THEN the documented fallbacks, the mapped field, and nothing sent empty
    let state = org.state();
    let lead = &state.leads["call.ended#call_anon"];
    assert_eq!(
        (&lead["LastName"], &lead["Company"]),
        (&json!("Unknown caller"), &json!("(unknown)"))
    );
    assert_eq!(lead["NumberOfEmployees"], 12);
    assert!(lead.get("FirstName").is_none() && lead.get("Email").is_none());
    let lead = &state.leads["call.ended#call_cher"];
    assert_eq!(lead["LastName"], "Cher");
    assert!(lead.get("FirstName").is_none());
}

#[tokio::test]
async fn given_ten_records_at_once_then_they_share_one_token_request() {
    // GIVEN a cold sink
    let (server, org) = org(&[]).await;
    let sink = std::sync::Arc::new(sink_with(&server.uri(), &[]));

    // WHEN ten records are delivered concurrently
    let mut runs = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (sink, envelope) = (sink.clone(), envelope(&format!("call_{i}"), |_| {}));
        runs.spawn(async move { sink.deliver(&envelope).await });
    }
    let results = runs.join_all().await;

    // THEN one token request served all ten leads
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let state = org.state();
    assert_eq!((state.token_requests, state.creates), (1, 10));
}

/// A permanent authorization failure whose reason starts with `reason`.
fn assert_config_failure(error: &SinkError, reason: &str) {
    assert!(
        !error.retryable && error.reason == FailureReason::Unauthorized,
        "{error}"
    );
    assert!(error.to_string().starts_with(reason), "{error}");
}

#[tokio::test]
async fn given_salesforce_refuses_a_fresh_token_too_then_it_is_a_permanent_auth_failure() {
    // GIVEN an org that answers every upsert 401 (the run-as user lost API access)
    let (server, org) = org(&[]).await;
    org.state().refuse_all_tokens = true;

    // WHEN a call is delivered
    let error = sink_with(&server.uri(), &[])
        .deliver(&envelope("call_401", |_| {}))
        .await
        .expect_err("refused");

    // THEN one refresh, one retry, then permanent: a configuration problem
    assert_config_failure(&error, "unauthorized (401): Salesforce refused a fresh");
    let state = org.state();
    assert_eq!((state.token_requests, state.upserts.len()), (2, 2));
}

#[tokio::test]
async fn given_wrong_client_credentials_then_the_token_request_fails_permanently() {
    let (server, org) = org(&[]).await;
    let settings = Settings::from_pairs([
        (CRM_PROVIDER_VAR, "salesforce".to_owned()),
        (LOGIN_URL_VAR, server.uri()),
        (CLIENT_ID_VAR, CLIENT_ID.to_owned()),
        (CLIENT_SECRET_VAR, "sf-wrong-secret".to_owned()),
    ]);
    let sink = CrmSink::from_settings(&settings, true, client().expect("client")).expect("valid");

    let error = sink
        .deliver(&envelope("call_creds", |_| {}))
        .await
        .expect_err("refused");

    assert_config_failure(
        &error,
        "unauthorized (400): Salesforce refused the client credentials (SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET",
    );
    assert!(!error.to_string().contains("sf-wrong-secret"), "{error}");
    assert!(org.state().upserts.is_empty());
}

#[tokio::test]
async fn given_redeliveries_an_expiring_token_and_the_api_limit_then_one_lead_per_delivery() {
    // GIVEN an org that answers REQUEST_LIMIT_EXCEEDED once and expires its tokens
    // after the first lead, and three calls queued, one of them twice
    let moto = Moto::start("salesforce-once").await;
    let (server, org) = org(&[]).await;
    {
        let mut state = org.state();
        state.limit_next = true;
        state.expire_after_creates = Some(1);
    }
    let (deps, clock) =
        on_virtual_time(moto.processor_deps(Integration::Crm, sink_with(&server.uri(), &[])));
    let bodies: Vec<String> = ["call_a", "call_a", "call_b", "call_c"]
        .iter()
        .map(|id| envelope_for(&demo_request(id, "Dana Whitfield")))
        .collect();
    moto.send_all(&moto.queue_urls[&Integration::Crm], &bodies[..1])
        .await;

    // WHEN the event source runs until the queue is empty, then gets the rest
    let first = drain_on_virtual_time(&moto, &deps, &clock, 10, 50).await;
    moto.send_all(&moto.queue_urls[&Integration::Crm], &bodies[1..])
        .await;
    drain_on_virtual_time(&moto, &deps, &clock, 1, 50).await;

    // THEN the limit deferred the first delivery (no attempt spent) by its wait, the
    // expired token was replaced once, and each delivery made exactly one lead
    assert!(
        first.elapsed + Duration::from_millis(1) >= crm::salesforce::REQUEST_LIMIT_WAIT,
        "{:?}",
        first.elapsed
    );
    let deferred = first.count(|o| {
        matches!(
            o,
            RecordOutcome::Deferred {
                why: Deferral::RateLimited,
                ..
            }
        )
    });
    assert_eq!(deferred, 1, "{:?}", first.outcomes);
    let dead = moto.drain(&moto.dlq_urls[&Integration::Crm]).await;
    assert!(dead.is_empty());
    let state = org.state();
    let keys: Vec<&str> = state.leads.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "call.ended#call_a",
            "call.ended#call_b",
            "call.ended#call_c"
        ]
    );
    assert_eq!(state.creates, 3);
    assert_eq!(state.token_requests, 2);
    let statuses: Vec<u16> = state.upserts.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, [403, 201, 401, 201, 201]);
}

#[tokio::test]
async fn given_a_lost_answer_when_the_same_delivery_is_sent_again_then_the_lead_is_updated() {
    // GIVEN a lead already upserted for a delivery (its answer lost on the way back)
    let (server, org) = org(&[]).await;
    let sink = sink_with(&server.uri(), &[]);
    let delivery = envelope("call_lost", |_| {});
    sink.deliver(&delivery).await.expect("first upsert");

    // WHEN the same delivery is upserted again, past the processor's claim
    let again = sink.deliver(&delivery).await;

    // THEN Salesforce's upsert updates the one lead
    assert!(
        matches!(&again, Ok(Delivered::Sent(s)) if s.contains("updated")),
        "{again:?}"
    );
    let state = org.state();
    assert_eq!((state.creates, state.leads.len()), (1, 1));
}

#[tokio::test]
async fn given_a_mapped_field_the_org_requires_and_the_caller_lacks_then_the_dlq_names_it() {
    // GIVEN an org that also requires Region__c, mapped from the custom field "region",
    // and a caller who gave no region
    let moto = Moto::start("salesforce-required").await;
    let (server, org) = org(&["Region__c"]).await;
    let sink = sink_with(
        &server.uri(),
        &[(FIELD_MAP_VAR, r#"{"region":"Region__c"}"#)],
    );
    let (deps, clock) = on_virtual_time(moto.processor_deps(Integration::Crm, sink));
    let body = envelope_for(&demo_request("call_region", "Dana Whitfield"));
    moto.send(&moto.queue_urls[&Integration::Crm], &body).await;

    // WHEN the event source runs
    drain_on_virtual_time(&moto, &deps, &clock, 10, 10).await;

    // THEN one refused upsert, and the DLQ holds the body with the field named, no caller data
    let dead: Vec<_> = moto.drain(&moto.dlq_urls[&Integration::Crm]).await;
    let [letter] = dead.as_slice() else {
        panic!("one dead letter, got {}", dead.len())
    };
    assert_eq!(letter.body(), Some(body.as_str()));
    let reason = letter
        .message_attributes()
        .and_then(|a| a.get("failure_reason"))
        .and_then(|r| r.string_value());
    let expected = "invalid_payload (400): REQUIRED_FIELD_MISSING: Region__c";
    assert_eq!(reason, Some(expected));
    assert_eq!(org.state().upserts.len(), 1);
    assert!(org.state().leads.is_empty());
}

#[test]
fn given_bad_salesforce_settings_then_start_up_stops_naming_the_variable_and_debug_hides_secrets() {
    let login = "https://acme.my.salesforce.com";
    type Pairs<'a> = &'a [(&'static str, &'a str)];
    let cases: [(Pairs<'_>, &str); 6] = [
        (&[(LOGIN_URL_VAR, "")], "SALESFORCE_LOGIN_URL is not set"),
        (
            &[(LOGIN_URL_VAR, "https://login.salesforce.com")],
            "SALESFORCE_LOGIN_URL must be your org's My Domain",
        ),
        (
            &[(CLIENT_SECRET_VAR, "REPLACE_ME")],
            "SALESFORCE_CLIENT_SECRET holds a placeholder",
        ),
        (&[(CLIENT_ID_VAR, "")], "SALESFORCE_CLIENT_ID is not set"),
        (
            &[(FIELD_MAP_VAR, r#"{"region":"Region c"}"#)],
            "SALESFORCE_FIELD_MAP maps \"region\" to \"Region c\"",
        ),
        (
            &[("SALESFORCE_EXTERNAL_ID_FIELD", "Key")],
            "SALESFORCE_EXTERNAL_ID_FIELD must be",
        ),
    ];
    for (overrides, expected) in cases {
        let mut pairs: Vec<(&str, &str)> = vec![
            (CRM_PROVIDER_VAR, "salesforce"),
            (LOGIN_URL_VAR, login),
            (CLIENT_ID_VAR, CLIENT_ID),
            (CLIENT_SECRET_VAR, CLIENT_SECRET),
        ];
        pairs.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        pairs.extend_from_slice(overrides);
        let message = CrmSink::from_settings(
            &Settings::from_pairs(pairs),
            false,
            client().expect("client"),
        )
        .expect_err(expected)
        .to_string();
        assert!(message.contains(expected), "{expected}: {message}");
        assert!(!message.contains(CLIENT_SECRET), "{message}");
    }
    let sink = sink_with(login, &[]);
    let debug = format!("{sink:?}");
    assert!(debug.contains("acme.my.salesforce.com"), "{debug}");
    assert!(
        !debug.contains(CLIENT_SECRET) && !debug.contains(CLIENT_ID),
        "{debug}"
    );
}

#[tokio::test]
async fn given_moto_and_a_local_org_then_each_delivery_upserts_effectively_once() {
    // The suite's server plays the instance; this org issues tokens for it.
    let (login, org) = org(&[]).await;
    let make_sink = |instance: &str| {
        org.state().instance_url = instance.to_owned();
        sink_with(&login.uri(), &[])
    };
    suite::effectively_once(Integration::Crm, make_sink).await;
    assert!(
        org.state().token_requests >= 9,
        "a token per scenario's sink"
    );
}

#[test]
fn given_delivery_keys_then_the_path_segment_round_trips() {
    for key in ["call.ended#c1", "message.collected#a/b?c%d e", "x#é"] {
        let segment = crm::salesforce::path_segment(key);
        assert!(
            segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
        );
        assert_eq!(decode(&segment), key);
    }
}
