//! The tolerant reader's field rules: what an optional field of an unexpected type
//! becomes (absent, or coerced when nothing is lost), each one noted as drift.

use serde_json::{Map, Value};

pub(super) fn read_timestamp(
    value: Option<&Value>,
    drift: &mut Vec<&'static str>,
) -> (Option<String>, Option<u64>) {
    match value {
        None | Some(Value::Null) => (None, None),
        Some(Value::String(text)) => {
            match aws_smithy_types::DateTime::from_str(
                text,
                aws_smithy_types::date_time::Format::DateTime,
            ) {
                Ok(at) => (
                    Some(text.clone()),
                    Some(u64::try_from(at.secs()).unwrap_or(0)),
                ),
                Err(_) => {
                    drift.push("timestamp");
                    (None, None)
                }
            }
        }
        Some(_) => {
            drift.push("timestamp");
            (None, None)
        }
    }
}

/// Reads optional fields, noting each one whose type was unexpected.
pub(super) struct Reader<'a> {
    pub(super) drift: &'a mut Vec<&'static str>,
}

impl Reader<'_> {
    pub(super) fn drifted(&mut self, path: &'static str) {
        self.drift.push(path);
    }

    /// A string, taken out of `object`; a number becomes its decimal text; anything
    /// else is absent.
    pub(super) fn string(
        &mut self,
        object: &mut Map<String, Value>,
        key: &str,
        path: &'static str,
    ) -> Option<String> {
        match object.remove(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => {
                self.drifted(path);
                Some(n.to_string())
            }
            Some(_) => {
                self.drifted(path);
                None
            }
        }
    }

    /// A non-negative number, or a string holding one (`"180"`); anything else is absent.
    pub(super) fn duration(&mut self, value: Option<&Value>) -> Option<f64> {
        let seconds = match value {
            None | Some(Value::Null) => return None,
            Some(Value::Number(n)) => n.as_f64().filter(|s| *s >= 0.0),
            Some(Value::String(s)) => {
                self.drifted("data.duration_seconds");
                return s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0);
            }
            Some(_) => None,
        };
        if seconds.is_none() {
            self.drifted("data.duration_seconds");
        }
        seconds
    }
}
