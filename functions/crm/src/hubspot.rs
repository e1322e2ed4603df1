//! HubSpot CRM v3: upsert the caller as a contact (keyed by email, or by phone when
//! there is no email), then attach the call's summary as a note.
//!
//! Keyed by email, `batch/upsert` is idempotent on HubSpot's side. Keyed by phone it is
//! search → PATCH the match, or create; HubSpot's search index trails writes by a few
//! seconds, so only a redelivery within that window could still create a second contact
//! (the processor's claim already stops redeliveries of a completed message). The note is
//! created once per successful delivery; it can repeat only if HubSpot stored it but its
//! answer was lost (a timeout) and the retry then creates it again.

use nphooks_processor::http;
use nphooks_processor::http::OutboundUrl;
use nphooks_processor::{Delivered, FailureReason, SinkError};
use serde_json::{Map, Value, json};

use crate::lead::CrmLead;

pub const CONTACTS_PATH: &str = "crm/v3/objects/contacts";
pub const UPSERT_PATH: &str = "crm/v3/objects/contacts/batch/upsert";
pub const SEARCH_PATH: &str = "crm/v3/objects/contacts/search";
pub const NOTES_PATH: &str = "crm/v3/objects/notes";
/// HubSpot's default association type "note to contact".
pub const NOTE_TO_CONTACT: u32 = 202;

/// The contact's properties. Values the caller did not give are left out rather than
/// sent empty, so an update never erases what the CRM already knows.
pub fn contact_properties(lead: &CrmLead) -> Map<String, Value> {
    let mut properties = Map::new();
    for (name, value) in [
        ("firstname", &lead.first_name),
        ("lastname", &lead.last_name),
        ("phone", &lead.phone),
        ("email", &lead.email),
    ] {
        if let Some(value) = value {
            properties.insert(name.into(), value.clone().into());
        }
    }
    properties.insert("hs_lead_status".into(), "NEW".into());
    properties.insert("lifecyclestage".into(), "lead".into());
    properties
}

/// `POST crm/v3/objects/contacts/batch/upsert`, keyed by email.
pub fn upsert_body(lead: &CrmLead, email: &str) -> Value {
    json!({"inputs": [{
        "idProperty": "email",
        "id": email,
        "properties": contact_properties(lead),
    }]})
}

/// `POST crm/v3/objects/contacts/search` for a contact whose phone equals `phone`.
pub fn search_body(phone: &str) -> Value {
    json!({
        "filterGroups": [{"filters": [{"propertyName": "phone", "operator": "EQ", "value": phone}]}],
        "properties": ["phone"],
        "limit": 1,
    })
}

/// `POST crm/v3/objects/contacts` or `PATCH crm/v3/objects/contacts/{id}`.
pub fn contact_body(lead: &CrmLead) -> Value {
    json!({"properties": contact_properties(lead)})
}

/// `POST crm/v3/objects/notes`, associated with the contact. The summary is escaped,
/// since HubSpot renders a note's body as HTML.
pub fn note_body(contact_id: &str, summary: &str, timestamp: &str) -> Value {
    json!({
        "properties": {"hs_note_body": escape_html(summary), "hs_timestamp": timestamp},
        "associations": [{
            "to": {"id": contact_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_CONTACT}],
        }],
    })
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HubSpot side of [`crate::CrmSink`].
pub(crate) struct HubSpot<'a> {
    pub client: &'a reqwest::Client,
    pub base: &'a OutboundUrl,
    pub token: &'a str,
}

impl HubSpot<'_> {
    pub async fn deliver(&self, lead: &CrmLead, timestamp: &str) -> Result<Delivered, SinkError> {
        let (contact_id, how) =
            match (&lead.email, &lead.phone) {
                (Some(email), _) => (self.upsert_by_email(lead, email).await?, "upserted"),
                (None, Some(phone)) => self.upsert_by_phone(lead, phone).await?,
                (None, None) => {
                    return Err(SinkError::permanent(FailureReason::UnusableData).with_detail(
                    "caller has neither email nor phone; HubSpot needs one to key the contact",
                ));
                }
            };
        tracing::info!(contact_id, how, "HubSpot contact written");
        let Some(summary) = &lead.notes else {
            return Ok(Delivered::Sent(format!(
                "HubSpot contact {contact_id} {how}; no summary to note"
            )));
        };
        let reply = self
            .call(
                self.client.post(self.base.join(NOTES_PATH)),
                &note_body(&contact_id, summary, timestamp),
                "HubSpot note create",
            )
            .await?;
        let note_id = id_of(&reply, "HubSpot note create")?;
        Ok(Delivered::Sent(format!(
            "HubSpot contact {contact_id} {how}; note {note_id} attached"
        )))
    }

    async fn upsert_by_email(&self, lead: &CrmLead, email: &str) -> Result<String, SinkError> {
        let reply = self
            .call(
                self.client.post(self.base.join(UPSERT_PATH)),
                &upsert_body(lead, email),
                "HubSpot contact upsert",
            )
            .await?;
        let first = reply
            .get("results")
            .and_then(|r| r.get(0))
            .cloned()
            .unwrap_or_default();
        id_of(&first, "HubSpot contact upsert")
    }

    /// Search by phone; update the match, or create the contact.
    async fn upsert_by_phone(
        &self,
        lead: &CrmLead,
        phone: &str,
    ) -> Result<(String, &'static str), SinkError> {
        let found = self
            .call(
                self.client.post(self.base.join(SEARCH_PATH)),
                &search_body(phone),
                "HubSpot contact search",
            )
            .await?;
        let existing = found.get("results").and_then(|r| r.get(0));
        match existing {
            Some(contact) => {
                let id = id_of(contact, "HubSpot contact search")?;
                let url = self.base.join(&format!("{CONTACTS_PATH}/{id}"));
                self.call(
                    self.client.patch(url),
                    &contact_body(lead),
                    "HubSpot contact update",
                )
                .await?;
                Ok((id, "updated"))
            }
            None => {
                let created = self
                    .call(
                        self.client.post(self.base.join(CONTACTS_PATH)),
                        &contact_body(lead),
                        "HubSpot contact create",
                    )
                    .await?;
                Ok((id_of(&created, "HubSpot contact create")?, "created"))
            }
        }
    }

    /// Sends one JSON request; the answer's JSON (or `null` for an empty body).
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        body: &Value,
        step: &'static str,
    ) -> Result<Value, SinkError> {
        let request = request.bearer_auth(self.token).json(body);
        let reply = http::send(request).await.map_err(|e| e.with_detail(step))?;
        if reply.body.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&reply.body).map_err(|_| {
            SinkError::permanent(FailureReason::BadResponse)
                .with_status(reply.status)
                .with_detail(step)
        })
    }
}

/// A HubSpot object id (`"123"` or `123`), checked to be safe in a URL path.
fn id_of(object: &Value, step: &'static str) -> Result<String, SinkError> {
    let id = match object.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        _ => String::new(),
    };
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(SinkError::permanent(FailureReason::BadResponse).with_detail(step));
    }
    Ok(id)
}
