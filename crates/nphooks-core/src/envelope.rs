//! The versioned queue message, receiver → processors:
//! `{"v":1,"delivery_key","event","received_at","webhook":{…the sender's JSON as received…}}`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ParseError;
use crate::delivery::DeliveryKey;
use crate::signature::VerifiedWebhook;
use crate::webhook::Webhook;

pub const ENVELOPE_VERSION: u32 = 1;
/// The longest message attribute value written, in characters. SQS counts attributes
/// against the message size; these only label the message.
pub const MAX_ATTRIBUTE_CHARS: usize = 256;
/// `failure_reason` may be longer, to stay readable.
pub const MAX_REASON_CHARS: usize = 1000;

#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    v: u32,
    delivery_key: String,
    event: String,
    received_at: String,
    webhook: Box<RawValue>,
}

/// A message ready for a queue: the envelope JSON plus its `event` and `call_type`
/// attributes. Only a [`VerifiedWebhook`] can become one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    body: String,
    attributes: Vec<(&'static str, String)>,
}

impl QueueMessage {
    pub fn for_delivery(
        webhook: &VerifiedWebhook,
        delivery_key: &DeliveryKey,
        received_at: &str,
    ) -> Self {
        let wire = Wire {
            v: ENVELOPE_VERSION,
            delivery_key: delivery_key.as_str().to_owned(),
            event: webhook.event.name().to_owned(),
            received_at: received_at.to_owned(),
            webhook: RawValue::from_string(webhook.raw().to_owned())
                .expect("a parsed webhook's raw text is valid JSON"),
        };
        let body = serde_json::to_string(&wire).expect("an envelope always serialises");
        let attributes = [
            ("event", Some(wire.event.as_str())),
            ("call_type", webhook.data.call_type.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, attribute_value(value?, MAX_ATTRIBUTE_CHARS)?)))
        .collect();
        QueueMessage { body, attributes }
    }

    /// A message bound for a dead-letter queue: the original body untouched, with why it
    /// failed as attributes (`integration`, `failure_reason`, `source_message_id`).
    pub fn dead_letter(
        original_body: &str,
        integration: &str,
        reason: &str,
        source_message_id: &str,
    ) -> Self {
        let attributes = [
            ("integration", integration, MAX_ATTRIBUTE_CHARS),
            ("failure_reason", reason, MAX_REASON_CHARS),
            ("source_message_id", source_message_id, MAX_ATTRIBUTE_CHARS),
        ]
        .into_iter()
        .filter_map(|(name, value, cap)| Some((name, attribute_value(value, cap)?)))
        .collect();
        QueueMessage {
            body: original_body.to_owned(),
            attributes,
        }
    }

    /// A received message sent on again (a retry): the body untouched, with `attributes`.
    pub fn resent(body: &str, attributes: Vec<(&'static str, String)>) -> Self {
        QueueMessage {
            body: body.to_owned(),
            attributes,
        }
    }

    /// This message with one more string attribute.
    pub fn with_attribute(mut self, name: &'static str, value: String) -> Self {
        self.attributes.push((name, value));
        self
    }

    pub fn body(&self) -> &str {
        &self.body
    }

    /// String message attributes (`event`, and `call_type` when the webhook has one; or
    /// the dead-letter attributes).
    pub fn attributes(&self) -> &[(&'static str, String)] {
        &self.attributes
    }
}

/// `value` as SQS accepts it in a message attribute: characters outside #x9, #xA, #xD,
/// #x20–#xD7FF, #xE000–#xFFFD and #x10000–#x10FFFF removed, at most `cap` characters;
/// `None` when nothing is left (an empty attribute value is refused too).
pub fn attribute_value(value: &str, cap: usize) -> Option<String> {
    let clean: String = value
        .chars()
        .filter(|c| {
            matches!(*c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        })
        .take(cap)
        .collect();
    (!clean.trim().is_empty()).then_some(clean)
}

/// A queue message read back by a processor: envelope checked, webhook parsed with the
/// receiver's tolerant reader (its drift was counted once, at the receiver).
#[derive(Debug, Clone)]
pub struct Envelope {
    pub delivery_key: DeliveryKey,
    pub received_at: String,
    pub webhook: Webhook,
}

impl Envelope {
    pub fn decode(body: &str) -> Result<Self, ParseError> {
        let wire: Wire =
            serde_json::from_str(body).map_err(|e| ParseError::Envelope(e.to_string()))?;
        if wire.v != ENVELOPE_VERSION {
            return Err(ParseError::Envelope(format!(
                "unsupported version {} (this build reads {ENVELOPE_VERSION})",
                wire.v
            )));
        }
        let webhook = Webhook::parse(wire.webhook.get().as_bytes())?;
        if webhook.event.name() != wire.event {
            return Err(ParseError::Envelope(format!(
                "event {:?} does not match the webhook's {:?}",
                wire.event,
                webhook.event.name()
            )));
        }
        Ok(Envelope {
            delivery_key: DeliveryKey::from_stored(wire.delivery_key),
            received_at: wire.received_at,
            webhook,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::signature::{WebhookAuth, sign};

    /// `body` signed, verified, parsed and enveloped, as the receiver does it.
    fn enveloped(body: &[u8]) -> (QueueMessage, DeliveryKey) {
        let auth = WebhookAuth::new(vec![Secret::new("s")], None);
        let verified = auth
            .verify(Some(sign("s", body).as_bytes()), None, body)
            .expect("signed")
            .parse()
            .expect("valid");
        let key = DeliveryKey::for_webhook(&verified);
        let message = QueueMessage::for_delivery(&verified, &key, "2026-11-26T00:00:00Z");
        (message, key)
    }

    #[test]
    fn given_a_verified_webhook_when_enveloped_and_decoded_then_unknown_fields_survive_byte_for_byte()
     {
        let body = br#"{"event":"call.ended","data":{"call_id":"c1","call_type":"demo_request","zz_unknown":{"b":2,"a":[1,"x"]}},"sender_extra":1.50}"#;
        let (message, key) = enveloped(body);

        assert!(
            message
                .body()
                .contains(std::str::from_utf8(body).expect("utf-8"))
        );
        assert_eq!(
            message.attributes(),
            &[
                ("event", "call.ended".to_owned()),
                ("call_type", "demo_request".to_owned())
            ]
        );
        let decoded = Envelope::decode(message.body()).expect("decodes");
        assert_eq!(decoded.delivery_key, key);
        assert_eq!(decoded.webhook.raw().as_bytes(), body);
    }

    #[test]
    fn given_attribute_values_sqs_refuses_then_they_are_cleaned_or_dropped_and_the_body_kept() {
        let body = "{\"event\":\"call.ended\",\"data\":{\"call_id\":\"c1\",\"call_type\":\"demo\\u0000\\uffffrequest\"}}";
        let (message, _) = enveloped(body.as_bytes());
        assert_eq!(
            message.attributes(),
            &[
                ("event", "call.ended".to_owned()),
                ("call_type", "demorequest".to_owned())
            ]
        );
        assert!(message.body().contains(body), "{}", message.body());
        assert_eq!(attribute_value("\u{1}\u{2}", 10), None);
        assert_eq!(
            attribute_value(&"x".repeat(5000), 256).map(|v| v.len()),
            Some(256)
        );
        let dead = QueueMessage::dead_letter("{}", "crm", &"r".repeat(3000), "\u{0}");
        assert_eq!(dead.attributes().len(), 2);
        assert_eq!(dead.attributes()[1].1.len(), MAX_REASON_CHARS);
    }

    #[test]
    fn given_bad_envelopes_when_decoded_then_the_error_says_why() {
        let cases = [
            ("not json", "invalid queue envelope"),
            (
                r#"{"v":2,"delivery_key":"k","event":"call.ended","received_at":"t","webhook":{}}"#,
                "unsupported version 2",
            ),
            (
                r#"{"v":1,"delivery_key":"k","event":"call.ended","received_at":"t","webhook":{"event":"call.ended","data":{}}}"#,
                "data.call_id",
            ),
            (
                r#"{"v":1,"delivery_key":"k","event":"call.answered","received_at":"t","webhook":{"event":"call.ended","data":{"call_id":"c"}}}"#,
                "does not match",
            ),
        ];
        for (body, expected) in cases {
            let message = Envelope::decode(body).expect_err(body).to_string();
            assert!(message.contains(expected), "{body}: {message}");
        }
    }
}
