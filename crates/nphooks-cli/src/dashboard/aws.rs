//! The dashboard over the real state: the idempotency table (DynamoDB, or moto) and the
//! integrations' DLQs (SQS). Reads only: a bounded, paginated Scan of the table, the
//! claims of the rows found by BatchGetItem, and each DLQ listed without consuming it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use futures::FutureExt;
use futures::future::BoxFuture;
use nphooks_core::claims::ClaimKey;
use nphooks_core::config::Settings;
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::envelope::Envelope;
use nphooks_core::ledger::stored;
use nphooks_core::routing::Integration;
use nphooks_core::table;
use nphooks_processor::RecordOutcome;

use super::source::{
    Badge, DashboardSource, DeliveryRow, Detail, Filter, Health, IntegrationState, Letter, Page,
    health_of,
};
use crate::ops::{self, Letters, QueuePair};
use crate::queues::aws_error;

/// Items one page's Scan reads at most (delivery records, claims and rate slots alike).
pub const SCAN_LIMIT: i32 = 200;
/// Items the health page's Scan reads at most.
pub const HEALTH_SCAN_LIMIT: usize = 2_000;

/// The table and DLQs of a stack, or of moto.
#[derive(Debug, Clone)]
pub struct AwsSource {
    aws: aws_config::SdkConfig,
    settings: Settings,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    /// Each integration's queue and DLQ, found once.
    pairs: tokio::sync::OnceCell<BTreeMap<Integration, QueuePair>>,
}

/// Items by key.
type Items = HashMap<String, HashMap<String, AttributeValue>>;

/// What one Scan call read.
struct Scanned {
    records: Vec<Record>,
    items: Items,
    next: Option<String>,
}

/// A delivery record as scanned.
struct Record {
    key: String,
    queues: Vec<Integration>,
    envelope: Option<Envelope>,
    updated_at: u64,
}

impl AwsSource {
    /// Over the table `IDEMPOTENCY_TABLE` (default `<prefix>-idempotency`) and the DLQs
    /// `serve` and `init-local` name.
    pub fn new(aws: aws_config::SdkConfig, settings: Settings) -> Self {
        let table = settings
            .optional("IDEMPOTENCY_TABLE")
            .map_or_else(crate::serve::default_table, str::to_owned);
        AwsSource {
            dynamodb: aws_sdk_dynamodb::Client::new(&aws),
            aws,
            settings,
            table,
            pairs: tokio::sync::OnceCell::new(),
        }
    }

    async fn pairs(&self) -> anyhow::Result<&BTreeMap<Integration, QueuePair>> {
        self.pairs
            .get_or_try_init(|| async {
                let sqs = aws_sdk_sqs::Client::new(&self.aws);
                let mut pairs = BTreeMap::new();
                for integration in Integration::ALL {
                    let pair = ops::resolve(&sqs, &self.settings, integration).await?;
                    pairs.insert(integration, pair);
                }
                Ok(pairs)
            })
            .await
    }

    /// One Scan call of at most `limit` items from `cursor`: the delivery records among
    /// them, every item by key (the claims among them are not read again), and the key
    /// to go on from.
    async fn scan(&self, cursor: Option<&str>, limit: i32) -> anyhow::Result<Scanned> {
        let page = self
            .dynamodb
            .scan()
            .table_name(&self.table)
            .limit(limit)
            .set_exclusive_start_key(cursor.map(|c| HashMap::from([(table::KEY.to_owned(), s(c))])))
            .send()
            .await
            .map_err(aws_error)
            .with_context(|| format!("could not scan table {}", self.table))?;
        Ok(Scanned {
            records: page.items().iter().filter_map(record).collect(),
            items: page
                .items()
                .iter()
                .filter_map(|item| Some((text(item, table::KEY)?.to_owned(), item.clone())))
                .collect(),
            next: page
                .last_evaluated_key()
                .and_then(|k| k.get(table::KEY))
                .and_then(|v| v.as_s().ok())
                .cloned(),
        })
    }

    /// The claims of `records`' routed integrations: claim key → item. Those the Scan
    /// already read are taken from `scanned`; the others are read by BatchGetItem.
    async fn claims(&self, records: &[Record], scanned: Items) -> anyhow::Result<Items> {
        let keys: Vec<String> = records
            .iter()
            .flat_map(|r| r.queues.iter().map(|&i| claim_key(i, &r.key)))
            .filter(|k| !scanned.contains_key(k))
            .collect();
        let mut found = scanned;
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(
                        chunk
                            .iter()
                            .map(|k| HashMap::from([(table::KEY.to_owned(), s(k))]))
                            .collect(),
                    ))
                    .build()?,
            );
            while let Some(request) = pending.take() {
                let answer = self
                    .dynamodb
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(aws_error)
                    .with_context(|| format!("could not read claims from {}", self.table))?;
                for item in answer
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    if let Some(key) = text(item, table::KEY) {
                        found.insert(key.to_owned(), item.clone());
                    }
                }
                pending = answer
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
            }
        }
        Ok(found)
    }

    /// The delivery keys with a letter in each integration's DLQ.
    async fn dead_keys(&self) -> anyhow::Result<BTreeSet<(Integration, String)>> {
        Ok(self
            .letters()
            .await?
            .into_iter()
            .flat_map(|(i, letters)| letters.into_iter().map(move |l| (i, l.delivery_key)))
            .collect())
    }

    async fn letters(&self) -> anyhow::Result<BTreeMap<Integration, Vec<Letter>>> {
        let sqs = aws_sdk_sqs::Client::new(&self.aws);
        let mut all = BTreeMap::new();
        for (integration, pair) in self.pairs().await? {
            let letters = ops::list(&sqs, &pair.dlq).await?;
            all.insert(
                *integration,
                letters.into_iter().map(Letter::from).collect(),
            );
        }
        Ok(all)
    }

    /// Rows of `records` with their claims and letters, newest first.
    async fn rows(&self, records: &[Record], scanned: Items) -> anyhow::Result<Vec<DeliveryRow>> {
        let claims = self.claims(records, scanned).await?;
        let dead = self.dead_keys().await?;
        let now = nphooks_core::epoch_seconds(std::time::SystemTime::now());
        let mut rows: Vec<DeliveryRow> = records
            .iter()
            .map(|r| {
                let states = r
                    .queues
                    .iter()
                    .map(|&integration| {
                        let claim = claims.get(&claim_key(integration, &r.key));
                        let stored = claim.and_then(|c| {
                            Some((text(c, table::STATE)?, number(c, table::LEASE_UNTIL)))
                        });
                        let in_dlq = dead.contains(&(integration, r.key.clone()));
                        let badge = Badge::of_claim(stored, now, in_dlq);
                        let retrying = claim.filter(|_| badge == Badge::Retrying);
                        IntegrationState {
                            integration,
                            badge,
                            attempts: claim
                                .and_then(|c| number(c, table::ATTEMPTS))
                                .and_then(|a| u32::try_from(a).ok()),
                            reason: claim
                                .and_then(|c| text(c, table::REASON))
                                .map(str::to_owned),
                            updated_at: claim.and_then(|c| number(c, table::UPDATED_AT)),
                            next_attempt_at: retrying
                                .and_then(|c| number(c, table::NEXT_ATTEMPT_AT)),
                        }
                    })
                    .collect();
                DeliveryRow::new(&r.key, r.envelope.as_ref(), r.updated_at, states)
            })
            .collect();
        rows.sort_by(|a, b| b.received_at.cmp(&a.received_at).then(a.key.cmp(&b.key)));
        Ok(rows)
    }
}

/// The table key of `integration`'s claim on the delivery `key`.
fn claim_key(integration: Integration, key: &str) -> String {
    ClaimKey::new(integration, &DeliveryKey::from_stored(key.to_owned())).to_string()
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// A delivery record (it has `queues`), or none for a claim or a rate slot.
fn record(item: &HashMap<String, AttributeValue>) -> Option<Record> {
    let queues = item.get(table::QUEUES)?.as_l().ok()?;
    let envelope = match item.get(table::ENVELOPE) {
        Some(AttributeValue::B(bytes)) => stored::unpack(bytes.as_ref()),
        Some(AttributeValue::S(text)) => Some(text.clone()),
        _ => None,
    };
    Some(Record {
        key: text(item, table::KEY)?.to_owned(),
        queues: queues
            .iter()
            .filter_map(|q| q.as_s().ok()?.parse().ok())
            .collect(),
        envelope: envelope.and_then(|e| Envelope::decode(&e).ok()),
        updated_at: number(item, table::UPDATED_AT).unwrap_or_default(),
    })
}

impl DashboardSource for AwsSource {
    fn deliveries<'a>(
        &'a self,
        filter: &'a Filter,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, anyhow::Result<Page>> {
        async move {
            let scanned = self.scan(cursor, SCAN_LIMIT).await?;
            let rows = self.rows(&scanned.records, scanned.items).await?;
            Ok(Page {
                rows: rows.into_iter().filter(|r| filter.matches(r)).collect(),
                next: scanned.next,
            })
        }
        .boxed()
    }

    fn delivery<'a>(&'a self, key: &'a str) -> BoxFuture<'a, anyhow::Result<Option<Detail>>> {
        async move {
            let item = self
                .dynamodb
                .get_item()
                .table_name(&self.table)
                .key(table::KEY, s(key))
                .send()
                .await
                .map_err(aws_error)
                .with_context(|| format!("could not read table {}", self.table))?
                .item;
            let Some(record) = item.as_ref().and_then(record) else {
                return Ok(None);
            };
            let row = self
                .rows(std::slice::from_ref(&record), Items::new())
                .await?
                .remove(0);
            Ok(Some(Detail {
                row,
                caller: record
                    .envelope
                    .as_ref()
                    .map(|e| e.webhook.data.caller.clone())
                    .unwrap_or_default(),
                received_at: record.envelope.map(|e| e.received_at),
            }))
        }
        .boxed()
    }

    fn dead_letters(&self) -> BoxFuture<'_, anyhow::Result<BTreeMap<Integration, Vec<Letter>>>> {
        self.letters().boxed()
    }

    fn health(&self) -> BoxFuture<'_, anyhow::Result<Vec<Health>>> {
        async move {
            let mut records = Vec::new();
            let mut items = Items::new();
            let mut cursor = None;
            let mut read = 0;
            loop {
                let mut scanned = self.scan(cursor.as_deref(), SCAN_LIMIT).await?;
                records.append(&mut scanned.records);
                items.extend(scanned.items);
                read += SCAN_LIMIT as usize;
                cursor = scanned.next;
                if cursor.is_none() || read >= HEALTH_SCAN_LIMIT {
                    break;
                }
            }
            let rows = self.rows(&records, items).await?;
            let now = nphooks_core::epoch_seconds(std::time::SystemTime::now());
            Ok(health_of(&rows, &BTreeMap::new(), now))
        }
        .boxed()
    }

    fn replay<'a>(
        &'a self,
        key: &'a str,
        only: Option<Integration>,
    ) -> BoxFuture<'a, anyhow::Result<Vec<(Integration, RecordOutcome)>>> {
        ops::replay(&self.aws, &self.settings, key, only, false).boxed()
    }

    fn redrive<'a>(
        &'a self,
        integration: Integration,
        letters: Letters<'a>,
    ) -> BoxFuture<'a, anyhow::Result<usize>> {
        async move {
            let pair = self
                .pairs()
                .await?
                .get(&integration)
                .with_context(|| format!("no queue for {integration}"))?;
            ops::redrive_at(&self.aws, pair, letters).await
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests;
