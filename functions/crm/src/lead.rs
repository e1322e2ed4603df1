//! The lead a call becomes, whatever the CRM.

use nphooks_core::envelope::Envelope;
use serde_json::{Map, Value, json};

/// Where every lead comes from.
pub const LEAD_SOURCE: &str = "Phone Call";

/// A lead built from a validated envelope. Blank strings are `None`; `Debug` is derived,
/// so never log a `CrmLead` (it holds the caller's name, phone and email).
#[derive(Debug, Clone, PartialEq)]
pub struct CrmLead {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub source: &'static str,
    /// The call's `ai_summary`.
    pub notes: Option<String>,
    /// `data.custom_fields`, exactly as the sender gave them.
    pub custom_fields: Map<String, Value>,
    pub call_id: String,
    pub call_type: Option<String>,
}

impl CrmLead {
    pub fn from_envelope(envelope: &Envelope) -> Self {
        let data = &envelope.webhook.data;
        let (first_name, last_name) = split_name(data.caller.name.as_deref());
        CrmLead {
            first_name,
            last_name,
            phone: non_blank(data.caller.phone.as_deref()),
            email: non_blank(data.caller.email.as_deref()),
            source: LEAD_SOURCE,
            notes: non_blank(data.ai_summary.as_deref()),
            custom_fields: data.custom_fields.clone(),
            call_id: data.call_id.clone(),
            call_type: non_blank(data.call_type.as_deref()),
        }
    }

    /// The lead as the generic provider posts it. Absent values are `null`, so the
    /// receiving endpoint always sees the same keys.
    pub fn to_json(&self) -> Value {
        json!({
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone": self.phone,
            "email": self.email,
            "source": self.source,
            "notes": self.notes,
            "custom_fields": self.custom_fields,
            "call_id": self.call_id,
            "call_type": self.call_type,
        })
    }
}

/// Splits a caller's name into first and last. Whitespace (any Unicode whitespace) is
/// trimmed and collapsed. Missing or blank → `(None, None)`; one word → first name only;
/// several → the first word is the first name and the rest, single-spaced, the last name.
pub fn split_name(name: Option<&str>) -> (Option<String>, Option<String>) {
    let mut words = name.unwrap_or_default().split_whitespace();
    let first = words.next().map(str::to_owned);
    let rest: Vec<&str> = words.collect();
    let last = (!rest.is_empty()).then(|| rest.join(" "));
    (first, last)
}

fn non_blank(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}
