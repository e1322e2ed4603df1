//! Test support: a moto server through the real AWS SDK, and SQS events as Lambda
//! delivers them. The moto server is started by `scripts/test.sh` (`AWS_ENDPOINT_URL`).
//!
//! Every call is signed with an access key id that names who makes it, so the IAM check
//! (`scripts/iam/check_iam.py`) can hold each function's calls against the role `sam
//! deploy` generates for it: the receiver's adapters sign as `ReceiverFunction`, a
//! processor's as its template logical id (`CrmFunction`, …), and the testkit's own set-up
//! and inspection as [`SETUP_IDENTITY`], which the check skips.

pub mod chaos;
pub mod child_clock;
pub mod event_source;
pub mod fault_proxy;
mod fixtures;
pub mod logs;
pub mod stand_ins;
pub mod suite;

pub use fixtures::{
    demo_request, demo_request_at, envelope_at, envelope_for, rendered_demo_request, sqs_event,
    sqs_event_on, sqs_message, text,
};

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_dynamodb::types::AttributeValue;
use nphooks_core::aws::{Timeouts, sdk_config};
use nphooks_core::claims::DynamoClaims;
use nphooks_core::clock::Clock;
use nphooks_core::ledger::DynamoLedger;
use nphooks_core::queue::SqsQueue;
use nphooks_core::rate_limit::DynamoRateLimiter;
use nphooks_core::routing::Integration;
use nphooks_core::table;
use nphooks_processor::{ProcessorConfig, ProcessorDeps};

/// The access key id of the testkit's own set-up and inspection calls (not a function's).
pub const SETUP_IDENTITY: &str = "testkit";

/// The receiver's template logical id, and the identity its calls are signed with.
pub const RECEIVER_FUNCTION: &str = "ReceiverFunction";

/// Largest SQS message in bytes: every queue and DLQ's `MaximumMessageSize` in
/// template.yaml (`MaxMessageBytes` there), and of every queue the testkit creates.
pub const MAX_MESSAGE_SIZE: u32 = 1_048_576;

/// A processor's template logical id, and the identity its calls are signed with.
pub fn function_id(integration: Integration) -> &'static str {
    match integration {
        Integration::Crm => "CrmFunction",
        Integration::Email => "EmailFunction",
        Integration::Slack => "SlackFunction",
        Integration::Notify => "NotifyFunction",
        Integration::Callback => "CallbackFunction",
    }
}

/// `aws` signing with static credentials whose access key id is `identity`.
fn signed_as(aws: &SdkConfig, identity: &str) -> SdkConfig {
    use aws_sdk_sqs::config::{Credentials, SharedCredentialsProvider};
    let credentials = Credentials::new(identity, "testing", None, None, "nphooks-testkit");
    aws.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

/// A moto server with a fresh table and one queue (plus DLQ) per integration for one test.
#[derive(Debug)]
pub struct Moto {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub table: String,
    pub queue_urls: BTreeMap<Integration, String>,
    pub dlq_urls: BTreeMap<Integration, String>,
    /// The testkit's own identity ([`SETUP_IDENTITY`]): set-up and inspection only.
    pub aws: SdkConfig,
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

impl Moto {
    pub async fn start(test: &str) -> Moto {
        logs::keep_for_leak_scan();
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            "AWS_ENDPOINT_URL is not set: run the tests with scripts/test.sh, which starts a moto server"
        );
        let aws = signed_as(
            &sdk_config(Timeouts {
                connect: Duration::from_secs(2),
                attempt: Duration::from_secs(5),
                operation: Duration::from_secs(10),
            })
            .await,
            SETUP_IDENTITY,
        );
        let unique = format!(
            "{test}-{}-{}",
            std::process::id(),
            UNIQUE.fetch_add(1, Ordering::SeqCst)
        );
        let mut moto = Moto {
            dynamodb: aws_sdk_dynamodb::Client::new(&aws),
            sqs: aws_sdk_sqs::Client::new(&aws),
            table: format!("idem-{unique}"),
            queue_urls: BTreeMap::new(),
            dlq_urls: BTreeMap::new(),
            aws,
        };
        moto.create_table().await;
        for integration in Integration::ALL {
            let queue = moto.create_queue(&format!("{integration}-{unique}")).await;
            let dlq = moto
                .create_queue(&format!("{integration}-dlq-{unique}"))
                .await;
            moto.queue_urls.insert(integration, queue);
            moto.dlq_urls.insert(integration, dlq);
        }
        moto
    }

    async fn create_table(&self) {
        table::create(&self.dynamodb, &self.table)
            .await
            .expect("create table in moto");
    }

    /// A queue with the template's `MaximumMessageSize`.
    pub async fn create_queue(&self, name: &str) -> String {
        self.sqs
            .create_queue()
            .queue_name(name)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize,
                MAX_MESSAGE_SIZE.to_string(),
            )
            .send()
            .await
            .expect("create queue in moto")
            .queue_url()
            .expect("queue url")
            .to_owned()
    }

    /// The receiver's settings for this moto's table and queues, signed with the test
    /// secret and API key of `nphooks_samples`.
    pub fn receiver_settings(&self) -> Vec<(String, String)> {
        use nphooks_samples::{TEST_API_KEY, TEST_WEBHOOK_SECRET};
        let mut pairs = vec![
            (
                "NEXTPHONE_WEBHOOK_SECRETS".to_owned(),
                TEST_WEBHOOK_SECRET.to_owned(),
            ),
            ("NEXTPHONE_API_KEY".to_owned(), TEST_API_KEY.to_owned()),
            ("IDEMPOTENCY_TABLE".to_owned(), self.table.clone()),
            // Local mode: the repository's test-only secrets are accepted.
            ("NPHOOKS_ALLOW_HTTP".to_owned(), "1".to_owned()),
        ];
        for (integration, url) in &self.queue_urls {
            pairs.push((integration.queue_url_var().to_owned(), url.clone()));
        }
        pairs
    }

    /// The SDK config of a function's code: its calls are signed as `function`, a
    /// template logical id (`ReceiverFunction`, `CrmFunction`, …).
    pub fn aws_for(&self, function: &str) -> SdkConfig {
        signed_as(&self.aws, function)
    }

    /// The receiver's delivery ledger.
    pub fn ledger(&self) -> DynamoLedger {
        DynamoLedger::connect(&self.aws_for(RECEIVER_FUNCTION), &self.table)
    }

    /// The receiver's queue client.
    pub fn queue(&self) -> SqsQueue {
        SqsQueue::connect(&self.aws_for(RECEIVER_FUNCTION))
    }

    /// Processor deps on the real adapters, pointed at moto, signing as that processor.
    pub fn processor_deps<K>(
        &self,
        integration: Integration,
        sink: K,
    ) -> ProcessorDeps<DynamoClaims, SqsQueue, K, DynamoRateLimiter> {
        let aws = self.aws_for(function_id(integration));
        ProcessorDeps {
            config: ProcessorConfig::local(
                integration,
                &self.table,
                &self.queue_urls[&integration],
                &self.dlq_urls[&integration],
            ),
            claims: DynamoClaims::connect(&aws, &self.table),
            queue: SqsQueue::connect(&aws),
            sink,
            limiter: DynamoRateLimiter::connect(&aws, &self.table),
            clock: Clock::system(),
        }
    }

    /// Verifies `domain` as an SES identity in moto (SES v1 query API over plain HTTP, so
    /// the testkit needs no SES SDK), as the set-up identity.
    pub fn verify_ses_domain(&self, domain: &str) {
        use std::io::{Read, Write};
        let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
        let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
        let body = format!("Action=VerifyDomainIdentity&Version=2010-12-01&Domain={domain}");
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential={SETUP_IDENTITY}/20261126/us-east-1/ses/aws4_request, SignedHeaders=host, Signature=0\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = std::net::TcpStream::connect(host).expect("moto (plain http on loopback)");
        stream.write_all(request.as_bytes()).expect("send to moto");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("moto answers");
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "moto refused VerifyDomainIdentity: {answer}"
        );
    }

    /// Every message in a queue (received with a 60 s visibility, so each is seen once).
    pub async fn drain(&self, queue_url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        self.receive_all(queue_url, 60).await
    }

    /// Every visible message in a queue, with its attributes, hidden for `visibility` s.
    pub async fn receive_all(
        &self,
        queue_url: &str,
        visibility: i32,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(visibility)
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

    /// Sends `body` to `queue_url`, as the receiver would (with no attributes).
    pub async fn send(&self, queue_url: &str, body: &str) {
        self.sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send to moto");
    }

    /// Sends every body to `queue_url`, ten to a batch.
    pub async fn send_all(&self, queue_url: &str, bodies: &[String]) {
        for chunk in bodies.chunks(10) {
            let entries = chunk.iter().enumerate().map(|(i, body)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .expect("complete entry")
            });
            self.sqs
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries.collect()))
                .send()
                .await
                .expect("send batch to moto");
        }
    }

    /// Sends `body` to `queue_url` and receives it back, as the event source would.
    pub async fn send_and_receive(
        &self,
        queue_url: &str,
        body: &str,
        visibility: i32,
    ) -> SqsMessage {
        self.send(queue_url, body).await;
        let received = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .visibility_timeout(visibility)
            .send()
            .await
            .expect("receive from moto");
        let message = received
            .messages
            .unwrap_or_default()
            .into_iter()
            .next()
            .expect("the message just sent");
        let mut record = sqs_message(message.message_id().unwrap_or_default(), body);
        record.receipt_handle = message.receipt_handle;
        record
    }

    /// How many messages each integration's queue holds (drained).
    pub async fn counts(&self) -> BTreeMap<Integration, usize> {
        let mut counts = BTreeMap::new();
        for (integration, url) in &self.queue_urls {
            counts.insert(*integration, self.drain(url).await.len());
        }
        counts
    }

    pub async fn item(&self, key: &str) -> Option<HashMap<String, AttributeValue>> {
        self.dynamodb
            .get_item()
            .table_name(&self.table)
            .key(table::KEY, AttributeValue::S(key.to_owned()))
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
