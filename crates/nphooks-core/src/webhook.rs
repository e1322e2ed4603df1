//! The NextPhone webhook: a typed view of the known fields, plus the sender's JSON kept
//! byte-for-byte so unknown fields reach the processors untouched.

use serde_json::{Map, Value};

use crate::{Error, Result};

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

/// A parsed, validated NextPhone webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub event: Event,
    pub timestamp: Option<String>,
    pub data: CallData,
    /// `data` exactly as parsed (unknown fields included), for hashing and routing.
    data_value: Value,
    /// The body as received, surrounding whitespace trimmed.
    raw: String,
}

impl Webhook {
    /// Parses and validates a body: JSON object, `event` a non-empty string, `data` an
    /// object whose `call_id` is a non-empty string, every other known field absent,
    /// null or of its documented type.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(body)
            .map_err(|e| Error::MalformedJson(format!("body is not UTF-8: {e}")))?
            .trim_matches(|c: char| c.is_ascii_whitespace());
        if text.is_empty() {
            return Err(Error::MalformedJson("body is empty".into()));
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| Error::MalformedJson(e.to_string()))?;
        let Value::Object(mut root) = value else {
            return Err(Error::MalformedJson(format!(
                "expected a JSON object, found {}",
                type_name(&value)
            )));
        };

        let event = match root.get("event") {
            None | Some(Value::Null) => return Err(Error::MissingField("event")),
            Some(Value::String(s)) if s.is_empty() => return Err(Error::MissingField("event")),
            Some(Value::String(s)) => {
                EventKind::from_name(s).map_or_else(|| Event::Unknown(s.clone()), Event::Known)
            }
            Some(_) => return Err(wrong("event", "a string")),
        };
        let timestamp = opt_string(&root, "timestamp", "timestamp")?;
        let data_value = match root.remove("data") {
            None | Some(Value::Null) => return Err(Error::MissingField("data.call_id")),
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(wrong("data", "an object")),
        };
        let data = CallData::from_value(&data_value)?;

        Ok(Webhook {
            event,
            timestamp,
            data,
            data_value,
            raw: text.to_owned(),
        })
    }

    /// `data` as received, for hashing and matching on fields the typed view lacks.
    pub fn data_value(&self) -> &Value {
        &self.data_value
    }

    /// The body as received (trimmed), valid JSON.
    pub fn raw(&self) -> &str {
        &self.raw
    }
}

impl CallData {
    fn from_value(value: &Value) -> Result<Self> {
        let Value::Object(data) = value else {
            return Err(wrong("data", "an object"));
        };
        let call_id = match data.get("call_id") {
            None | Some(Value::Null) => return Err(Error::MissingField("data.call_id")),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(Error::MissingField("data.call_id"));
            }
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(wrong("data.call_id", "a string")),
        };
        let caller = match data.get("caller") {
            None | Some(Value::Null) => Caller::default(),
            Some(Value::Object(c)) => Caller {
                phone: opt_string(c, "phone", "data.caller.phone")?,
                name: opt_string(c, "name", "data.caller.name")?,
                email: opt_string(c, "email", "data.caller.email")?,
            },
            Some(_) => return Err(wrong("data.caller", "an object")),
        };
        let duration_seconds = match data.get("duration_seconds") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(secs) if secs >= 0.0 => Some(secs),
                _ => return Err(wrong("data.duration_seconds", "a non-negative number")),
            },
            Some(_) => return Err(wrong("data.duration_seconds", "a non-negative number")),
        };
        let custom_fields = match data.get("custom_fields") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(fields)) => fields.clone(),
            Some(_) => return Err(wrong("data.custom_fields", "an object")),
        };
        Ok(CallData {
            call_id,
            caller,
            call_type: opt_string(data, "call_type", "data.call_type")?,
            duration_seconds,
            transcript: opt_string(data, "transcript", "data.transcript")?,
            ai_summary: opt_string(data, "ai_summary", "data.ai_summary")?,
            to_number: opt_string(data, "to_number", "data.to_number")?,
            custom_fields,
        })
    }
}

fn opt_string(
    object: &Map<String, Value>,
    key: &str,
    path: &'static str,
) -> Result<Option<String>> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrong(path, "a string")),
    }
}

fn wrong(field: &'static str, expected: &'static str) -> Error {
    Error::WrongType { field, expected }
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
        assert_eq!(hook.data_value()["extra"]["kept"], true);
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
}
