//! The dashboard tests' stand: moto through the real SDK, deliveries, claims and letters
//! recorded as the pipeline records them, and HTTP helpers.

use aws_sdk_sqs::types::QueueAttributeName;
use nphooks_cli::dashboard::{self, AwsSource, DashboardOptions, RunningDashboard};
use nphooks_cli::ops;
use nphooks_cli::serve::{dlq_name, queue_url};
use nphooks_core::claims::{DynamoClaims, EffectClaim, EffectClaims, PendingRetry};
use nphooks_core::config::Settings;
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::envelope::{Envelope, QueueMessage};
use nphooks_core::ledger::{DeliveryLedger, DynamoLedger, NewDelivery};
use nphooks_core::queue::{Queue, SqsQueue};
use nphooks_core::routing::Integration;
use nphooks_core::webhook::EventKind;
use nphooks_core::window::ReplayWindow;
use reqwest::StatusCode;
use std::sync::Arc;

pub struct Stand {
    pub aws: aws_config::SdkConfig,
    pub table: String,
}

pub async fn stand() -> Stand {
    let aws = nphooks_core::aws::sdk_config(nphooks_processor::AWS_TIMEOUTS).await;
    ops::init_local(&aws, &settings())
        .await
        .expect("moto is up");
    Stand {
        aws,
        table: nphooks_cli::serve::default_table(),
    }
}

pub fn settings() -> Settings {
    Settings::from_pairs(Vec::<(String, String)>::new())
}

pub fn now() -> u64 {
    nphooks_core::epoch_seconds(std::time::SystemTime::now())
}

impl Stand {
    /// A delivery of call `call_id` routed to `routes`, recorded as the receiver does.
    pub async fn delivery(&self, call_id: &str, routes: &[Integration]) -> (DeliveryKey, String) {
        let mut body = nphooks_samples::webhook_body(EventKind::CallEnded);
        body["data"]["call_id"] = call_id.into();
        let message =
            nphooks_samples::queue_message(&body.to_string(), std::time::SystemTime::now());
        let envelope = message.body().to_owned();
        let key = Envelope::decode(&envelope)
            .expect("an envelope")
            .delivery_key;
        let delivery = NewDelivery {
            payload_hash: "hash",
            queues: routes,
            envelope: Some(&envelope),
        };
        DynamoLedger::connect(&self.aws, &self.table)
            .begin(&key, delivery, now(), ReplayWindow::DEFAULT)
            .await
            .expect("recorded");
        (key, envelope)
    }

    /// A claim, completed or failed with `reason` as the processor stores it.
    pub async fn claim(&self, integration: Integration, key: &DeliveryKey, failed: Option<&str>) {
        let (claims, claim, at) = self.claimed(integration, key).await;
        match failed {
            Some(reason) => claims.fail(&claim, reason, at).await,
            None => claims.complete(&claim, at).await,
        }
        .expect("settled");
    }

    /// A claim a run gave up after a transient failure, as the processor records it.
    pub async fn retrying(
        &self,
        integration: Integration,
        key: &DeliveryKey,
        retry: PendingRetry<'_>,
    ) {
        let (claims, claim, at) = self.claimed(integration, key).await;
        claims.release(&claim, &retry, at).await.expect("released");
    }

    /// A claim a run holds now, and when it took it.
    async fn claimed(
        &self,
        integration: Integration,
        key: &DeliveryKey,
    ) -> (DynamoClaims, EffectClaim, u64) {
        let claims = DynamoClaims::connect(&self.aws, &self.table);
        let claim = EffectClaim::new(integration, key, "test-run");
        let at = now();
        claims
            .claim(&claim, at + 60, at, ReplayWindow::DEFAULT)
            .await
            .expect("claimed");
        (claims, claim, at)
    }

    /// The letter the processor dead-letters.
    pub async fn dead_letter(&self, integration: Integration, envelope: &str, reason: &str) {
        let sqs = aws_sdk_sqs::Client::new(&self.aws);
        let dlq = queue_url(&sqs, &dlq_name(integration)).await.expect("dlq");
        let letter = QueueMessage::dead_letter(envelope, integration.as_str(), reason, "m-1");
        SqsQueue::connect(&self.aws)
            .send(&dlq, &letter)
            .await
            .expect("sent");
    }

    pub async fn count(&self, queue: &str) -> usize {
        let sqs = aws_sdk_sqs::Client::new(&self.aws);
        self.count_at(&queue_url(&sqs, queue).await.expect("queue"))
            .await
    }

    pub async fn count_at(&self, url: &str) -> usize {
        let attributes = aws_sdk_sqs::Client::new(&self.aws)
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("attributes");
        attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok())
            .expect("a count")
    }

    pub async fn claim_state(&self, integration: Integration, key: &DeliveryKey) -> Option<String> {
        let item = aws_sdk_dynamodb::Client::new(&self.aws)
            .get_item()
            .table_name(&self.table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("{integration}#{key}")),
            )
            .send()
            .await
            .expect("read")
            .item?;
        item.get("state")?.as_s().ok().cloned()
    }

    pub async fn dashboard(&self) -> RunningDashboard {
        let source = Arc::new(AwsSource::new(self.aws.clone(), settings()));
        dashboard::start(source, DashboardOptions::default())
            .await
            .expect("started")
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub async fn get(dashboard: &RunningDashboard, path: &str) -> String {
    let response = client()
        .get(format!("http://{}{path}", dashboard.addr))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.text().await.expect("a body")
}

/// The `<tr>` of a delivery on the deliveries page.
pub fn row<'a>(page: &'a str, key: &DeliveryKey) -> &'a str {
    let start = page
        .find(&format!("data-delivery-key=\"{key}\""))
        .unwrap_or_else(|| panic!("no row for {key} in {page}"));
    let end = page[start..].find("</tr>").expect("a closed row");
    &page[start..start + end]
}

/// The session's CSRF token, from a page's form.
pub fn csrf(page: &str) -> String {
    let rest = page.split("name=\"csrf\" value=\"").nth(1);
    let token = rest.and_then(|rest| rest.split('"').next());
    token.expect("a CSRF token in a form").to_owned()
}

pub fn badge(integration: &str, state: &str) -> String {
    format!("class=\"badge\" data-integration=\"{integration}\" data-state=\"{state}\"")
}
