//! The NextPhone webhook: a typed view of the known fields, plus the sender's JSON kept
//! byte-for-byte so unknown fields reach the processors untouched.

mod read;

use serde_json::{Map, Value};

use self::read::{Reader, read_timestamp};
use crate::ParseError;
use crate::delivery::canonical_digest;

/// Where the receiver listens: the URL path registered in the NextPhone dashboard.
pub const WEBHOOK_PATH: &str = "/webhook/nextphone";

/// The six events NextPhone documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    CallAnswered,
    CallEnded,
    CallTransferred,
    MessageCollected,
    DataCollected,
    TranscriptReady,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::CallAnswered,
        EventKind::CallEnded,
        EventKind::CallTransferred,
        EventKind::MessageCollected,
        EventKind::DataCollected,
        EventKind::TranscriptReady,
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CallAnswered => "call.answered",
            EventKind::CallEnded => "call.ended",
            EventKind::CallTransferred => "call.transferred",
            EventKind::MessageCollected => "message.collected",
            EventKind::DataCollected => "data.collected",
            EventKind::TranscriptReady => "transcript.ready",
        }
    }

    /// Events that can legitimately arrive several times within one call, each with
    /// different data: their delivery key includes a hash of `data`.
    pub fn repeats_within_call(self) -> bool {
        matches!(self, EventKind::MessageCollected | EventKind::DataCollected)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The event named by a webhook: one NextPhone documents, or one it does not (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Known(EventKind),
    Unknown(String),
}

impl Event {
    pub fn name(&self) -> &str {
        match self {
            Event::Known(kind) => kind.as_str(),
            Event::Unknown(name) => name,
        }
    }
}

/// Who called. Every field may be missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Caller {
    pub phone: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// The typed view of `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct CallData {
    pub call_id: String,
    pub caller: Caller,
    pub call_type: Option<String>,
    pub duration_seconds: Option<f64>,
    pub transcript: Option<String>,
    pub ai_summary: Option<String>,
    /// The number that received the call, when the sender includes it (`data.to_number`).
    pub to_number: Option<String>,
    pub custom_fields: Map<String, Value>,
}

/// A parsed NextPhone webhook, read tolerantly (see [`Webhook::parse`]).
#[derive(Debug, Clone)]
pub struct Webhook {
    pub event: Event,
    /// `timestamp` when it is an RFC 3339 date-time; otherwise absent (and counted as drift).
    pub timestamp: Option<String>,
    pub data: CallData,
    /// SHA-256 of `data` in canonical form (unknown fields included), for the events
    /// whose delivery key includes it ([`EventKind::repeats_within_call`]).
    data_digest: Option<[u8; 32]>,
    /// The body as received, surrounding whitespace trimmed.
    raw: String,
    /// Paths of optional fields whose type was unexpected (read as absent or coerced).
    drift: Vec<&'static str>,
    /// `timestamp` in seconds since the Unix epoch.
    sent_at: Option<u64>,
}

impl Webhook {
    /// Parses a body as a tolerant reader. Refused only when the body is not a JSON
    /// object, or has no usable `event` (a non-empty string) or `data.call_id` (a
    /// non-empty string, or a number read as its decimal text). Every other known field
    /// of an unexpected type is read as absent, or coerced when that loses nothing (a
    /// number for a string field, `"180"` for `duration_seconds`, `[]` for
    /// `custom_fields`), and its path is listed in [`Webhook::drift`]. The body itself
    /// is kept byte-for-byte whatever was read from it.
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(body)
            .map_err(|e| ParseError::MalformedJson(format!("body is not UTF-8: {e}")))?
            .trim_matches(|c: char| c.is_ascii_whitespace());
        if text.is_empty() {
            return Err(ParseError::MalformedJson("body is empty".into()));
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| ParseError::MalformedJson(e.to_string()))?;
        let Value::Object(mut root) = value else {
            return Err(ParseError::MalformedJson(format!(
                "expected a JSON object, found {}",
                type_name(&value)
            )));
        };

        let event = match root.get("event") {
            None | Some(Value::Null) => return Err(ParseError::MissingField("event")),
            Some(Value::String(s)) if s.is_empty() => {
                return Err(ParseError::MissingField("event"));
            }
            Some(Value::String(s)) => {
                EventKind::from_name(s).map_or_else(|| Event::Unknown(s.clone()), Event::Known)
            }
            Some(_) => return Err(wrong("event", "a string")),
        };
        let data = match root.remove("data") {
            None | Some(Value::Null) => return Err(ParseError::MissingField("data.call_id")),
            Some(Value::Object(data)) => data,
            Some(_) => return Err(wrong("data", "an object")),
        };
        let data_digest = match event {
            Event::Known(kind) if kind.repeats_within_call() => Some(canonical_digest(&data)),
            _ => None,
        };
        let mut drift = Vec::new();
        let (timestamp, sent_at) = read_timestamp(root.get("timestamp"), &mut drift);
        // The typed view takes its fields out of the parsed `data`: nothing is copied.
        let data = CallData::from_object(data, &mut drift)?;

        Ok(Webhook {
            event,
            timestamp,
            data,
            data_digest,
            raw: text.to_owned(),
            drift,
            sent_at,
        })
    }

    /// SHA-256 of `data` in canonical form (keys sorted, compact), for an event that can
    /// repeat within one call; none for the others.
    pub fn data_digest(&self) -> Option<&[u8; 32]> {
        self.data_digest.as_ref()
    }

    /// The body as received (trimmed), valid JSON.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The paths of the fields read as absent or coerced (`data.duration_seconds`, …).
    /// Never their values.
    pub fn drift(&self) -> &[&'static str] {
        &self.drift
    }

    /// When the sender says it sent the webhook, in seconds since the Unix epoch.
    pub fn sent_at(&self) -> Option<u64> {
        self.sent_at
    }
}

impl CallData {
    fn from_object(
        mut data: Map<String, Value>,
        drift: &mut Vec<&'static str>,
    ) -> Result<Self, ParseError> {
        let call_id = match data.remove("call_id") {
            None | Some(Value::Null) => return Err(ParseError::MissingField("data.call_id")),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(ParseError::MissingField("data.call_id"));
            }
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => {
                drift.push("data.call_id");
                n.to_string()
            }
            Some(_) => return Err(wrong("data.call_id", "a string")),
        };
        let mut read = Reader { drift };
        let caller = match data.remove("caller") {
            None | Some(Value::Null) => Caller::default(),
            Some(Value::Object(mut c)) => Caller {
                phone: read.string(&mut c, "phone", "data.caller.phone"),
                name: read.string(&mut c, "name", "data.caller.name"),
                email: read.string(&mut c, "email", "data.caller.email"),
            },
            Some(_) => {
                read.drifted("data.caller");
                Caller::default()
            }
        };
        let duration_seconds = read.duration(data.get("duration_seconds"));
        let custom_fields = match data.remove("custom_fields") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(fields)) => fields,
            Some(_) => {
                read.drifted("data.custom_fields");
                Map::new()
            }
        };
        Ok(CallData {
            call_id,
            caller,
            call_type: read.string(&mut data, "call_type", "data.call_type"),
            duration_seconds,
            transcript: read.string(&mut data, "transcript", "data.transcript"),
            ai_summary: read.string(&mut data, "ai_summary", "data.ai_summary"),
            to_number: read.string(&mut data, "to_number", "data.to_number"),
            custom_fields,
        })
    }
}

fn wrong(field: &'static str, expected: &'static str) -> ParseError {
    ParseError::WrongType { field, expected }
}

/// How an error names a JSON value's type: "a string", "an array", "null", …
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_tutorial_payload_when_parsed_then_known_fields_are_typed() {
        let body = br#"{"event":"call.ended","timestamp":"2026-01-02T15:30:00Z","data":{"call_id":"call_abc123","caller":{"phone":"+15551234567","name":"John Doe","email":"john@example.com"},"call_type":"quote_request","duration_seconds":180,"custom_fields":{"service_type":"remodeling"},"extra":{"kept":true}}}"#;
        let hook = Webhook::parse(body).expect("valid");
        assert_eq!(hook.event, Event::Known(EventKind::CallEnded));
        assert_eq!(hook.data.call_id, "call_abc123");
        assert_eq!(hook.data.caller.name.as_deref(), Some("John Doe"));
        assert_eq!(hook.data.duration_seconds, Some(180.0));
        assert_eq!(hook.data.custom_fields["service_type"], "remodeling");
        assert_eq!(hook.raw().as_bytes(), body);
    }

    #[test]
    fn given_nulls_for_optional_fields_when_parsed_then_they_are_none() {
        let hook = Webhook::parse(
            br#"{"event":"call.answered","timestamp":null,"data":{"call_id":"c1","caller":null,"call_type":null,"custom_fields":null}}"#,
        )
        .expect("valid");
        assert_eq!(hook.data.caller, Caller::default());
        assert!(hook.data.call_type.is_none());
        assert!(hook.timestamp.is_none());
    }

    #[test]
    fn given_an_unknown_event_when_parsed_then_it_is_kept_by_name() {
        let hook = Webhook::parse(br#"{"event":"call.teleported","data":{"call_id":"c1"}}"#)
            .expect("valid");
        assert_eq!(hook.event, Event::Unknown("call.teleported".into()));
    }

    #[test]
    fn given_drifted_optional_fields_when_parsed_then_they_are_coerced_or_absent_and_listed() {
        let body = br#"{"event":"call.ended","timestamp":"yesterday","data":{"call_id":12345,"caller":{"name":42,"phone":true,"email":"a@b.example"},"call_type":["x"],"duration_seconds":"180","custom_fields":[],"ai_summary":{"a":1}}}"#;
        let hook = Webhook::parse(body).expect("read tolerantly");
        assert_eq!(hook.data.call_id, "12345");
        assert_eq!(hook.data.caller.name.as_deref(), Some("42"));
        assert_eq!(hook.data.caller.phone, None);
        assert_eq!(hook.data.caller.email.as_deref(), Some("a@b.example"));
        assert_eq!(hook.data.call_type, None);
        assert_eq!(hook.data.duration_seconds, Some(180.0));
        assert!(hook.data.custom_fields.is_empty());
        assert_eq!(hook.data.ai_summary, None);
        assert_eq!((hook.timestamp.as_deref(), hook.sent_at()), (None, None));
        let mut drift = hook.drift().to_vec();
        drift.sort_unstable();
        assert_eq!(
            drift,
            [
                "data.ai_summary",
                "data.call_id",
                "data.call_type",
                "data.caller.name",
                "data.caller.phone",
                "data.custom_fields",
                "data.duration_seconds",
                "timestamp"
            ]
        );
        assert_eq!(hook.raw().as_bytes(), body);
    }

    #[test]
    fn given_well_typed_fields_when_parsed_then_no_drift_and_the_timestamp_is_read() {
        let hook = Webhook::parse(
            br#"{"event":"call.ended","timestamp":"2026-11-26T15:30:00Z","data":{"call_id":"c1","duration_seconds":0}}"#,
        )
        .expect("valid");
        assert!(hook.drift().is_empty(), "{:?}", hook.drift());
        assert_eq!(hook.sent_at(), Some(1_795_707_000));
    }

    #[test]
    fn given_no_usable_event_or_call_id_when_parsed_then_the_error_names_the_field() {
        let cases = [
            (r#"[1]"#, "expected a JSON object"),
            (r#"{"event":5,"data":{"call_id":"c"}}"#, "`event`"),
            (r#"{"event":"","data":{"call_id":"c"}}"#, "`event`"),
            (r#"{"event":"call.ended","data":[]}"#, "`data`"),
            (
                r#"{"event":"call.ended","data":{"call_id":[]}}"#,
                "`data.call_id`",
            ),
            (
                r#"{"event":"call.ended","data":{"call_id":" "}}"#,
                "`data.call_id`",
            ),
        ];
        for (body, expected) in cases {
            let message = Webhook::parse(body.as_bytes()).expect_err(body).to_string();
            assert!(message.contains(expected), "{body}: {message}");
        }
    }
}
