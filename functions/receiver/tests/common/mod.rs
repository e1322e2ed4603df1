//! Test helpers: requests as API Gateway delivers them, and the real SDK against moto.
#![allow(dead_code)]

use std::collections::BTreeMap;

use lambda_http::{Body, Request, Response};
use nphooks_core::config::{ReceiverConfig, Settings};
use nphooks_core::ledger::{DynamoLedger, MemoryLedger};
use nphooks_core::queue::{MemoryQueue, SqsQueue};
use nphooks_core::routing::Integration;
use nphooks_samples::{
    Delivery, TEST_API_KEY, TEST_WEBHOOK_SECRET, WEBHOOK_PATH, api_gateway_event,
};
use nphooks_testkit::Moto;
use receiver::Deps;
use serde_json::Value;

/// Turns an API Gateway v2 event (JSON) into the request lambda_http hands the handler.
pub fn request_from_event(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

/// A signed POST of `body` to the webhook path.
pub fn signed(body: &str) -> Request {
    request_from_event(&api_gateway_event(
        "POST",
        WEBHOOK_PATH,
        body,
        Delivery::Signed,
    ))
}

pub fn status_and_json(response: Response<Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let json = serde_json::from_slice(response.body().as_ref()).expect("every answer is JSON");
    (status, json)
}

pub fn queue_url(integration: Integration) -> String {
    format!("memory://{integration}")
}

/// The default routes, with demo and quote requests also called back: in these tests a
/// demo request reaches every queue (the default calls back only messages left).
pub fn every_queue_routes() -> String {
    let mut routes: Value = serde_json::from_str(include_str!(
        "../../../../crates/nphooks-core/routes.default.json"
    ))
    .expect("the default routes");
    assert_eq!(routes[0]["name"], "demo and quote requests");
    routes[0]["integrations"] = Integration::ALL.iter().map(|i| i.as_str()).collect();
    routes.to_string()
}

pub fn settings(queue_urls: &BTreeMap<Integration, String>, table: &str) -> Settings {
    let mut pairs = vec![
        ("NPHOOKS_ROUTES".to_owned(), every_queue_routes()),
        (
            "NEXTPHONE_WEBHOOK_SECRETS".to_owned(),
            format!("rotated-out-secret,{TEST_WEBHOOK_SECRET}"),
        ),
        ("NEXTPHONE_API_KEY".to_owned(), TEST_API_KEY.to_owned()),
        ("IDEMPOTENCY_TABLE".to_owned(), table.to_owned()),
        // Local mode: the repository's test-only secrets are accepted.
        ("NPHOOKS_ALLOW_HTTP".to_owned(), "1".to_owned()),
    ];
    for (integration, url) in queue_urls {
        pairs.push((integration.queue_url_var().to_owned(), url.clone()));
    }
    Settings::from_pairs(pairs)
}

/// Receiver deps on the in-memory adapters.
pub fn memory_deps() -> Deps<MemoryLedger, MemoryQueue> {
    let urls = Integration::ALL
        .into_iter()
        .map(|i| (i, queue_url(i)))
        .collect();
    let config = ReceiverConfig::from_settings(&settings(&urls, "memory")).expect("valid config");
    Deps::new(config, MemoryLedger::new(), MemoryQueue::new())
}

/// Receiver deps on the real SDK adapters, pointed at the test's moto tables and queues.
pub fn moto_deps(moto: &Moto) -> Deps<DynamoLedger, SqsQueue> {
    moto_deps_with_queues(moto, &moto.queue_urls)
}

pub fn moto_deps_with_queues(
    moto: &Moto,
    queue_urls: &BTreeMap<Integration, String>,
) -> Deps<DynamoLedger, SqsQueue> {
    let config =
        ReceiverConfig::from_settings(&settings(queue_urls, &moto.table)).expect("valid config");
    Deps::new(config, moto.ledger(), moto.queue())
}
