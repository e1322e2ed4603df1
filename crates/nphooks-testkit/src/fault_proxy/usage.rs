//! What the calls through the proxy cost: per service and operation, the requests, their
//! bytes, SQS's billed requests (one per started 64 KB of payload) and DynamoDB's write
//! and read units, computed from item sizes by DynamoDB's rules: a write costs one unit
//! per started KB of the larger of the item before and after it (at least 1, a failed
//! conditional write too, by the item it met); a strongly consistent read one unit per
//! started 4 KB. Item sizes are the attribute names' bytes plus each value's
//! (string: its UTF-8 bytes, binary: its bytes, number: about one byte per two digits plus
//! one, list and map: 3 bytes plus one per element, boolean and null: 1). The item a write
//! met is the last one the proxy saw written under its key (all of the bill's items are
//! written through it); the item after an `UpdateItem` is its answer, which the proxy
//! asks for (`ReturnValues: ALL_NEW`) when the caller did not.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use serde_json::Value;

/// What the calls of one operation cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpUsage {
    /// Calls that reached the proxy (SDK retries included).
    pub requests: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// SQS: billed requests, one per started 64 KB of each request's payload.
    pub billed_requests: u64,
    /// DynamoDB: write units (on-demand: write request units).
    pub write_units: u64,
    /// DynamoDB: strongly consistent read units.
    pub read_units: u64,
}

/// Usage by (service, operation), e.g. `("DynamoDB_20120810", "PutItem")`.
pub type Usage = BTreeMap<(String, String), OpUsage>;

/// The proxy's running account.
#[derive(Debug, Default)]
pub(super) struct Meter {
    pub usage: Usage,
    /// Last size seen per `table#key`.
    sizes: HashMap<String, u64>,
}

pub(super) const DYNAMODB: &str = "DynamoDB_20120810";

/// The request as forwarded: an `UpdateItem` asks for the item after it.
pub(super) fn prepare(service: &str, operation: &str, body: &[u8]) -> Option<Vec<u8>> {
    if service != DYNAMODB || operation != "UpdateItem" {
        return None;
    }
    let mut json: Value = serde_json::from_slice(body).ok()?;
    let object = json.as_object_mut()?;
    if object.get("ReturnValues").and_then(Value::as_str) == Some("ALL_NEW") {
        return None;
    }
    object.insert("ReturnValues".into(), Value::from("ALL_NEW"));
    serde_json::to_vec(&json).ok()
}

impl Meter {
    pub fn record(
        &mut self,
        (service, operation): (&str, &str),
        request: &[u8],
        answer: Option<(u16, &[u8])>,
    ) {
        let mut cost = OpUsage {
            requests: 1,
            request_bytes: len(request.len()),
            ..OpUsage::default()
        };
        if service == "AmazonSQS" {
            cost.billed_requests = len(request.len()).div_ceil(64 * 1024).max(1);
        }
        if let Some((status, body)) = answer {
            cost.response_bytes = len(body.len());
            if service == DYNAMODB {
                self.dynamodb(operation, request, status, body, &mut cost);
            }
        }
        let entry = self
            .usage
            .entry((service.to_owned(), operation.to_owned()))
            .or_default();
        entry.requests += cost.requests;
        entry.request_bytes += cost.request_bytes;
        entry.response_bytes += cost.response_bytes;
        entry.billed_requests += cost.billed_requests;
        entry.write_units += cost.write_units;
        entry.read_units += cost.read_units;
    }

    fn dynamodb(
        &mut self,
        operation: &str,
        request: &[u8],
        status: u16,
        body: &[u8],
        cost: &mut OpUsage,
    ) {
        let Ok(request) = serde_json::from_slice::<Value>(request) else {
            return;
        };
        let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let Some(key) = item_key(&request) else {
            return;
        };
        let old = self.sizes.get(&key).copied().unwrap_or(0);
        let failed_condition = status == 400
            && answer["__type"]
                .as_str()
                .is_some_and(|t| t.ends_with("ConditionalCheckFailedException"));
        let units = |bytes: u64| bytes.div_ceil(1024).max(1);
        match (operation, status) {
            ("PutItem", 200) => {
                let new = item_size(&request["Item"]);
                cost.write_units = units(old.max(new));
                self.sizes.insert(key, new);
            }
            ("UpdateItem", 200) => {
                let new = item_size(&answer["Attributes"]);
                cost.write_units = units(old.max(new));
                self.sizes.insert(key, new);
            }
            ("DeleteItem", 200) => {
                cost.write_units = units(old);
                self.sizes.remove(&key);
            }
            ("PutItem" | "UpdateItem" | "DeleteItem", _) if failed_condition => {
                cost.write_units = units(old);
            }
            ("GetItem", 200) => {
                cost.read_units = item_size(&answer["Item"]).div_ceil(4096).max(1);
            }
            _ => {}
        }
    }
}

fn len(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// `table#pk` of the item a request names.
fn item_key(request: &Value) -> Option<String> {
    let table = request["TableName"].as_str()?;
    let key = request
        .get("Key")
        .or_else(|| request.get("Item"))?
        .get(nphooks_core::table::KEY)?
        .get("S")?
        .as_str()?;
    Some(format!("{table}#{key}"))
}

/// The item's size by DynamoDB's rules (see the module doc); 0 for no item.
pub fn item_size(item: &Value) -> u64 {
    item.as_object().map_or(0, |attributes| {
        attributes
            .iter()
            .map(|(name, value)| len(name.len()) + value_size(value))
            .sum()
    })
}

fn value_size(value: &Value) -> u64 {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match (kind.as_str(), inner) {
        ("S", Value::String(s)) => len(s.len()),
        ("N", Value::String(n)) => len(n.trim_start_matches('-').len()).div_ceil(2) + 1,
        ("B", Value::String(b64)) => len(base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_or(b64.len(), |b| b.len())),
        ("L", Value::Array(items)) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<u64>(),
        ("M", Value::Object(_)) => {
            3 + item_size(inner) + len(inner.as_object().map_or(0, |m| m.len()))
        }
        ("SS" | "NS" | "BS", Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or(0, |s| len(s.len())))
            .sum(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn given_an_item_then_its_size_counts_names_and_values_as_dynamodb_does() {
        let item = json!({"pk": {"S": "abc"}, "n": {"N": "1234"}, "b": {"B": "AAEC"}, "l": {"L": [{"S": "crm"}]}});
        // pk 2+3, n 1+3, b 1+3, l 1+(3+1+3)
        assert_eq!(item_size(&item), 5 + 4 + 4 + 8);
    }

    #[test]
    fn given_writes_of_one_key_then_each_costs_the_larger_item_in_started_kb() {
        let mut meter = Meter::default();
        let big = "x".repeat(1500);
        let put = json!({"TableName": "t", "Item": {"pk": {"S": "k"}, "e": {"S": big}}});
        let put = serde_json::to_vec(&put).expect("json");
        meter.record((DYNAMODB, "PutItem"), &put, Some((200, b"{}")));
        let delete = serde_json::to_vec(&json!({"TableName": "t", "Key": {"pk": {"S": "k"}}}))
            .expect("json");
        meter.record((DYNAMODB, "DeleteItem"), &delete, Some((200, b"{}")));
        meter.record((DYNAMODB, "DeleteItem"), &delete, Some((200, b"{}")));
        let puts = meter.usage[&(DYNAMODB.to_owned(), "PutItem".to_owned())];
        let deletes = meter.usage[&(DYNAMODB.to_owned(), "DeleteItem".to_owned())];
        assert_eq!((puts.requests, puts.write_units), (1, 2));
        assert_eq!((deletes.requests, deletes.write_units), (2, 2 + 1));
    }

    #[test]
    fn given_an_sqs_request_of_100_kb_then_it_bills_two_requests() {
        let mut meter = Meter::default();
        meter.record(("AmazonSQS", "SendMessage"), &vec![b'x'; 100 * 1024], None);
        let sends = meter.usage[&("AmazonSQS".to_owned(), "SendMessage".to_owned())];
        assert_eq!((sends.requests, sends.billed_requests), (1, 2));
    }
}
