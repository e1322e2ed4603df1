//! Test helpers: requests as API Gateway delivers them, and the real SDK against moto.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use lambda_http::{Body, Request, Response};
use nphooks_core::aws::{Timeouts, sdk_config};
use nphooks_core::config::{ReceiverConfig, Settings};
use nphooks_core::idempotency::{DynamoStore, MemoryStore};
use nphooks_core::queue::{MemoryQueue, SqsQueue};
use nphooks_core::routing::Integration;
use nphooks_core::samples::{
    Delivery, TEST_API_KEY, TEST_WEBHOOK_SECRET, WEBHOOK_PATH, api_gateway_event,
};
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

pub fn settings(queue_urls: &BTreeMap<Integration, String>, table: &str) -> Settings {
    let mut pairs = vec![
        (
            "NEXTPHONE_WEBHOOK_SECRETS".to_owned(),
            format!("rotated-out-secret,{TEST_WEBHOOK_SECRET}"),
        ),
        ("NEXTPHONE_API_KEY".to_owned(), TEST_API_KEY.to_owned()),
        ("IDEMPOTENCY_TABLE".to_owned(), table.to_owned()),
    ];
    for (integration, url) in queue_urls {
        pairs.push((integration.queue_url_var().to_owned(), url.clone()));
    }
    Settings::from_pairs(pairs)
}

/// Receiver deps on the in-memory adapters.
pub fn memory_deps() -> Deps<MemoryStore, MemoryQueue> {
    let urls = Integration::ALL
        .into_iter()
        .map(|i| (i, queue_url(i)))
        .collect();
    let config = ReceiverConfig::from_settings(&settings(&urls, "memory")).expect("valid config");
    Deps::new(config, MemoryStore::new(), MemoryQueue::new())
}

/// A moto server (started by scripts/test.sh) with a fresh table and queues for one test.
pub struct Moto {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub table: String,
    pub queue_urls: BTreeMap<Integration, String>,
    aws: aws_config::SdkConfig,
}

impl Moto {
    /// Creates a uniquely named table and one queue per integration.
    pub async fn start(test: &str) -> Moto {
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            "AWS_ENDPOINT_URL is not set: run the tests with scripts/test.sh, which starts a moto server"
        );
        let aws = sdk_config(Timeouts {
            connect: Duration::from_secs(2),
            attempt: Duration::from_secs(5),
            operation: Duration::from_secs(10),
        })
        .await;
        let unique = format!("{test}-{}", std::process::id());
        let moto = Moto {
            dynamodb: aws_sdk_dynamodb::Client::new(&aws),
            sqs: aws_sdk_sqs::Client::new(&aws),
            table: format!("idem-{unique}"),
            queue_urls: BTreeMap::new(),
            aws,
        };
        moto.create_table().await;
        let mut queue_urls = BTreeMap::new();
        for integration in Integration::ALL {
            queue_urls.insert(
                integration,
                moto.create_queue(&format!("{integration}-{unique}")).await,
            );
        }
        Moto { queue_urls, ..moto }
    }

    async fn create_table(&self) {
        self.dynamodb
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("complete"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("complete"),
            )
            .send()
            .await
            .expect("create table in moto");
    }

    pub async fn create_queue(&self, name: &str) -> String {
        self.sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("create queue in moto")
            .queue_url()
            .expect("queue url")
            .to_owned()
    }

    /// Receiver deps on the real SDK adapters, pointed at moto.
    pub fn deps(&self) -> Deps<DynamoStore, SqsQueue> {
        self.deps_with_queues(&self.queue_urls)
    }

    pub fn deps_with_queues(
        &self,
        queue_urls: &BTreeMap<Integration, String>,
    ) -> Deps<DynamoStore, SqsQueue> {
        let config = ReceiverConfig::from_settings(&settings(queue_urls, &self.table))
            .expect("valid config");
        Deps::new(
            config,
            DynamoStore::connect(&self.aws, &self.table),
            SqsQueue::connect(&self.aws),
        )
    }

    /// Drains a queue: every message body in it (visibility 60 s, so each is seen once).
    pub async fn drain(&self, queue_url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive from moto");
            let batch = received.messages.unwrap_or_default();
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }

    /// Number of messages in each integration's queue.
    pub async fn counts(&self) -> BTreeMap<Integration, usize> {
        let mut counts = BTreeMap::new();
        for (integration, url) in &self.queue_urls {
            counts.insert(*integration, self.drain(url).await.len());
        }
        counts
    }

    pub async fn item(
        &self,
        key: &str,
    ) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.dynamodb
            .get_item()
            .table_name(&self.table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(key.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("get item from moto")
            .item
    }

    pub async fn item_count(&self) -> usize {
        self.dynamodb
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .expect("scan moto")
            .items
            .unwrap_or_default()
            .len()
    }
}

pub fn text(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    name: &str,
) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}
