//! Delivery keys: what makes two webhooks "the same delivery".
//!
//! `event#call_id`, plus `#` and 16 hex digits of SHA-256 over `data` in canonical form
//! for events that can repeat within one call (`message.collected`, `data.collected`).
//! The key never depends on the body's bytes, so a retry that re-serialises the same
//! data still deduplicates.
//!
//! A key longer than [`MAX_DELIVERY_KEY_BYTES`] (a `call_id` can be any length) is
//! stored as its first [`HASHED_KEY_PREFIX_BYTES`] bytes, kept readable for logs, then
//! `#sha256:` and the SHA-256 of the whole key: no key exceeds 256 bytes, so
//! `integration#delivery_key` stays far inside DynamoDB's 2,048-byte partition key and
//! the envelope far inside SQS's message size.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::webhook::Webhook;

/// The longest delivery key stored as it is.
pub const MAX_DELIVERY_KEY_BYTES: usize = 256;
/// How much of a longer key is kept, readable, before its hash.
pub const HASHED_KEY_PREFIX_BYTES: usize = 160;

/// Identifies one delivery of one webhook event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryKey(String);

impl DeliveryKey {
    pub fn for_webhook(webhook: &Webhook) -> Self {
        let event = webhook.event.name();
        let call_id = &webhook.data.call_id;
        // The parse keeps a digest of `data` exactly for the events that can repeat
        // within one call (`EventKind::repeats_within_call`).
        let full = match webhook.data_digest() {
            Some(digest) => format!("{event}#{call_id}#{}", hex::encode(&digest[..8])),
            None => format!("{event}#{call_id}"),
        };
        DeliveryKey(bounded(full))
    }

    /// Whether the key is a prefix plus the hash of a longer one.
    pub fn is_hashed(&self) -> bool {
        self.0.len() > HASHED_KEY_PREFIX_BYTES && self.0.contains("#sha256:")
    }

    /// A key read back from storage or an envelope.
    pub fn from_stored(key: String) -> Self {
        DeliveryKey(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DeliveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `key` itself when short enough, else its readable prefix and the SHA-256 of all of it.
fn bounded(key: String) -> String {
    if key.len() <= MAX_DELIVERY_KEY_BYTES {
        return key;
    }
    let mut cut = HASHED_KEY_PREFIX_BYTES;
    while !key.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}#sha256:{}",
        &key[..cut],
        hex::encode(Sha256::digest(key.as_bytes()))
    )
}

/// SHA-256 of the body as received, hex: tells a true retry from a different payload
/// that happens to share a delivery key.
pub fn payload_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// SHA-256 of `data` as compact JSON with object keys sorted, whatever order they
/// arrived in: what a repeatable event's delivery key includes.
pub(crate) fn canonical_digest(data: &Map<String, Value>) -> [u8; 32] {
    let mut out = Vec::new();
    write_object(data, &mut out);
    Sha256::digest(&out).into()
}

fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend(serde_json::to_vec(key).unwrap_or_default());
        out.push(b':');
        write_value(item, out);
    }
    out.push(b'}');
}

/// Compact JSON with object keys sorted.
fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(body: &str) -> String {
        DeliveryKey::for_webhook(&Webhook::parse(body.as_bytes()).expect("valid")).0
    }

    #[test]
    fn given_call_answered_and_call_ended_of_one_call_then_keys_differ() {
        assert_eq!(
            key(r#"{"event":"call.answered","data":{"call_id":"c1"}}"#),
            "call.answered#c1"
        );
        assert_eq!(
            key(r#"{"event":"call.ended","data":{"call_id":"c1"}}"#),
            "call.ended#c1"
        );
    }

    #[test]
    fn given_repeating_events_then_the_key_depends_on_data_but_not_on_its_key_order() {
        let a = key(
            r#"{"event":"data.collected","data":{"call_id":"c1","custom_fields":{"budget":"10k","when":"May"}}}"#,
        );
        let reordered = key(
            r#"{"event":"data.collected","data":{"custom_fields":{"when":"May","budget":"10k"},"call_id":"c1"}}"#,
        );
        let other = key(
            r#"{"event":"data.collected","data":{"call_id":"c1","custom_fields":{"budget":"20k"}}}"#,
        );
        assert!(a.starts_with("data.collected#c1#"), "{a}");
        assert_eq!(a.len(), "data.collected#c1#".len() + 16);
        assert_eq!(a, reordered);
        assert_ne!(a, other);
    }

    #[test]
    fn given_a_repeating_event_then_its_key_is_the_one_already_stored() {
        // Keys already in tables and queues must not change: this one is SHA-256 of the
        // sorted compact JSON, computed outside Rust (Python's json.dumps, sort_keys).
        let body = r#"{"event":"message.collected","data":{"tags":["b","a"],"n":3,"message":"Call me back","caller":{"phone":"+15550100","name":"Ann"},"call_id":"c9"}}"#;
        assert_eq!(key(body), "message.collected#c9#39505f4825c0c3a8");
    }

    #[test]
    fn given_a_3000_character_call_id_then_the_key_is_bounded_readable_and_still_distinct() {
        let long = |last: char| {
            let call_id = format!("{}{last}", "é".repeat(1500));
            key(&format!(
                r#"{{"event":"call.ended","data":{{"call_id":"{call_id}"}}}}"#
            ))
        };
        let (a, b) = (long('a'), long('b'));
        assert!(
            a.len() <= HASHED_KEY_PREFIX_BYTES + "#sha256:".len() + 64,
            "{}",
            a.len()
        );
        assert!(a.starts_with("call.ended#éé"), "{a}");
        assert_ne!(a, b, "keys differing only at the end stay distinct");
        assert_eq!(a, long('a'));
        assert!(DeliveryKey(a).is_hashed());
        let short = key(r#"{"event":"call.ended","data":{"call_id":"c1"}}"#);
        assert!(!DeliveryKey(short).is_hashed());
    }

    #[test]
    fn given_non_repeating_events_then_data_changes_do_not_change_the_key() {
        assert_eq!(
            key(r#"{"event":"call.ended","data":{"call_id":"c1","ai_summary":"a"}}"#),
            key(r#"{"event":"call.ended","data":{"call_id":"c1","ai_summary":"b"}}"#)
        );
    }
}
