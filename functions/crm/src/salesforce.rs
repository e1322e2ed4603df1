//! Salesforce: each delivery upserts one Lead through the REST API,
//! `PATCH /services/data/v62.0/sobjects/Lead/<external-ID field>/<delivery key>`, so a
//! redelivery updates the lead it created instead of creating a second one.
//!
//! One-time org setup: a custom Lead field (Text(255), External ID, Unique), by default
//! `NPHooks_Delivery_Key__c` (`SALESFORCE_EXTERNAL_ID_FIELD`), writable by the connected
//! app's run-as user. Credentials: an External Client App / connected app with the client
//! credentials flow enabled; `SALESFORCE_CLIENT_ID` and `SALESFORCE_CLIENT_SECRET` come
//! from the function's secret, `SALESFORCE_LOGIN_URL` is the org's My Domain.
//!
//! The Lead: `LastName` (the caller's last name, else their only name, else
//! [`UNKNOWN_LAST_NAME`]), `FirstName` when there is a last name, `Company` (the `company`
//! custom field, else [`UNKNOWN_COMPANY`]), `LeadSource = Phone Call`, `Phone`, `Email`,
//! `Description` (the summary), then each `SALESFORCE_FIELD_MAP` entry the caller gave,
//! which wins over the above (map `company` elsewhere, or another field to `Company`).

mod answer;
pub mod fields;
mod token;

use nphooks_core::config::Settings;
use nphooks_core::secret::Secret;
use nphooks_processor::http::{self, OutboundUrl};
use nphooks_processor::{Delivered, SinkError, StatusCode};
use serde_json::{Map, Value};

use crate::config_error;
use crate::lead::CrmLead;
pub use answer::{REQUEST_LIMIT_WAIT, classify};
pub use fields::{DEFAULT_EXTERNAL_ID_FIELD, EXTERNAL_ID_FIELD_VAR, FIELD_MAP_VAR, FieldMap};
pub use token::{Session, TOKEN_PATH, Tokens};

pub const LOGIN_URL_VAR: &str = "SALESFORCE_LOGIN_URL";
pub const CLIENT_ID_VAR: &str = "SALESFORCE_CLIENT_ID";
pub const CLIENT_SECRET_VAR: &str = "SALESFORCE_CLIENT_SECRET";
/// The REST API version every request names (Winter '25; any later org serves it).
pub const API_VERSION: &str = "v62.0";
pub const UNKNOWN_LAST_NAME: &str = "Unknown caller";
pub const UNKNOWN_COMPANY: &str = "(unknown)";
/// Lead `Description` is a 32,000-character long text area.
const DESCRIPTION_MAX_CHARS: usize = 32_000;

/// How leads are written: the external-ID field and the field map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadShape {
    pub external_id_field: String,
    pub field_map: FieldMap,
}

impl LeadShape {
    /// `SALESFORCE_EXTERNAL_ID_FIELD` and `SALESFORCE_FIELD_MAP`, both optional.
    pub fn from_settings(settings: &Settings) -> nphooks_processor::Result<Self> {
        let external_id_field =
            fields::external_id_field(settings.optional(EXTERNAL_ID_FIELD_VAR))?;
        let field_map = match settings.optional(FIELD_MAP_VAR) {
            Some(json) => FieldMap::parse(json, &external_id_field)?,
            None => FieldMap::default(),
        };
        Ok(LeadShape {
            external_id_field,
            field_map,
        })
    }

    /// The Lead's fields. Absent values are left out, so an update never erases them.
    pub fn lead_body(&self, lead: &CrmLead) -> Map<String, Value> {
        let mut body = Map::new();
        let (first, last) = match (&lead.first_name, &lead.last_name) {
            (first, Some(last)) => (first.clone(), last.clone()),
            (Some(only), None) => (None, only.clone()),
            (None, None) => (None, UNKNOWN_LAST_NAME.to_owned()),
        };
        if let Some(first) = first {
            body.insert("FirstName".into(), first.into());
        }
        body.insert("LastName".into(), last.into());
        let company = lead
            .custom_fields
            .get("company")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .unwrap_or(UNKNOWN_COMPANY);
        body.insert("Company".into(), company.into());
        body.insert("LeadSource".into(), lead.source.into());
        for (name, value) in [("Phone", &lead.phone), ("Email", &lead.email)] {
            if let Some(value) = value {
                body.insert(name.into(), value.clone().into());
            }
        }
        if let Some(summary) = &lead.notes {
            let description: String = summary.chars().take(DESCRIPTION_MAX_CHARS).collect();
            body.insert("Description".into(), description.into());
        }
        for (from, to) in self.field_map.iter() {
            let value = match lead.custom_fields.get(from) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) if s.trim().is_empty() => continue,
                Some(Value::String(s)) => Value::String(s.trim().to_owned()),
                Some(other) => other.clone(),
            };
            body.insert(to.to_owned(), value);
        }
        body
    }

    /// `services/data/v62.0/sobjects/Lead/<field>/<delivery key, percent-encoded>`.
    pub fn upsert_path(&self, delivery_key: &str) -> String {
        format!(
            "services/data/{API_VERSION}/sobjects/Lead/{}/{}",
            self.external_id_field,
            path_segment(delivery_key)
        )
    }
}

/// `value` safe as one URL path segment: every byte but RFC 3986's unreserved ones
/// (`A-Z a-z 0-9 - . _ ~`) percent-encoded, so `#`, `/`, `?` and `%` stay in the value.
pub fn path_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The Salesforce side of [`crate::CrmSink`]. `Debug` hides the credentials and token.
#[derive(Debug)]
pub struct Salesforce {
    pub shape: LeadShape,
    pub tokens: Tokens,
}

impl Salesforce {
    /// Reads `SALESFORCE_LOGIN_URL` (the org's My Domain), `SALESFORCE_CLIENT_ID` and
    /// `SALESFORCE_CLIENT_SECRET` (from the secret), and the [`LeadShape`].
    pub fn from_settings(settings: &Settings, allow_http: bool) -> nphooks_processor::Result<Self> {
        let login = OutboundUrl::parse(
            LOGIN_URL_VAR,
            settings.required(LOGIN_URL_VAR)?,
            allow_http,
            false,
        )?;
        let host = login
            .url()
            .host_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if ["login.salesforce.com", "test.salesforce.com"].contains(&host.as_str()) {
            return Err(config_error(
                LOGIN_URL_VAR,
                "must be your org's My Domain (https://<domain>.my.salesforce.com): Salesforce refuses the client credentials flow on login.salesforce.com and test.salesforce.com".into(),
            ));
        }
        let client_id = Secret::new(settings.required_secret(CLIENT_ID_VAR, allow_http)?);
        let client_secret = Secret::new(settings.required_secret(CLIENT_SECRET_VAR, allow_http)?);
        Ok(Salesforce {
            shape: LeadShape::from_settings(settings)?,
            tokens: Tokens::new(login, client_id, client_secret, allow_http),
        })
    }

    /// Upserts the lead; on 401 the token is replaced and the upsert sent once more.
    pub async fn deliver(
        &self,
        client: &reqwest::Client,
        lead: &CrmLead,
        delivery_key: &str,
    ) -> Result<Delivered, SinkError> {
        let body = Value::Object(self.shape.lead_body(lead));
        let path = self.shape.upsert_path(delivery_key);
        let session = self.tokens.current(client).await?;
        let (status, answer) = match self.upsert(client, &session, &path, &body).await {
            Err(e) if e.status == Some(StatusCode::UNAUTHORIZED) => {
                tracing::info!("Salesforce refused the access token; requesting a new one");
                let fresh = self.tokens.replace(&session, client).await?;
                self.upsert(client, &fresh, &path, &body).await.map_err(|e| {
                    if e.status == Some(StatusCode::UNAUTHORIZED) {
                        e.with_detail("Salesforce refused a fresh access token (the run-as user's access)")
                    } else {
                        e
                    }
                })?
            }
            other => other?,
        };
        let how = if status == StatusCode::CREATED {
            "created"
        } else {
            "updated"
        };
        let id = serde_json::from_str::<Value>(&answer)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
            .filter(|id| id.len() <= 18 && id.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or_default();
        Ok(Delivered::Sent(format!(
            "Salesforce lead {id} {how} ({})",
            status.as_u16()
        )))
    }

    /// One `PATCH`; its status and body on success, classified otherwise.
    async fn upsert(
        &self,
        client: &reqwest::Client,
        session: &Session,
        path: &str,
        body: &Value,
    ) -> Result<(StatusCode, String), SinkError> {
        let request = client
            .patch(session.instance.join(path))
            .bearer_auth(session.token.expose())
            .json(body);
        let response = request.send().await.map_err(http::transport_error)?;
        let status = response.status();
        let retry_after = http::retry_after(response.headers());
        let text = http::read_capped(response).await;
        if status.is_success() {
            return Ok((status, text));
        }
        Err(classify(status, retry_after, &text))
    }
}
