//! A Salesforce org stand-in (wiremock responders): issues client-credentials tokens,
//! expires them on cue, answers `REQUEST_LIMIT_EXCEEDED` on cue, requires `LastName`,
//! `Company` and any further fields (400 `REQUIRED_FIELD_MISSING` with `fields`), and
//! keeps leads by external ID, counting creates, as Salesforce's upsert does. Plus the
//! processor on virtual time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use nphooks_core::clock::Clock;
use nphooks_processor::ProcessorDeps;

use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const CLIENT_ID: &str = "sf-test-client-id";
pub const CLIENT_SECRET: &str = "sf-test-client-secret";
pub const LEAD_PATH: &str = "/services/data/v62.0/sobjects/Lead/NPHooks_Delivery_Key__c/";

#[derive(Debug, Default)]
pub struct State {
    /// The `instance_url` tokens are issued for (this server unless set).
    pub instance_url: String,
    pub required: Vec<String>,
    pub valid_tokens: Vec<String>,
    pub token_requests: usize,
    /// Every upsert seen: (token it carried, status answered).
    pub upserts: Vec<(String, u16)>,
    /// Leads by external ID (the delivery key, decoded).
    pub leads: BTreeMap<String, Value>,
    pub creates: usize,
    /// Expire every token after this many creates.
    pub expire_after_creates: Option<usize>,
    /// Answer the next upsert 403 `REQUEST_LIMIT_EXCEEDED`.
    pub limit_next: bool,
    /// Answer every upsert 401, fresh tokens included.
    pub refuse_all_tokens: bool,
}

/// The org; clones share its state.
#[derive(Debug, Clone)]
pub struct Org(Arc<Mutex<State>>);

impl Org {
    /// An org requiring `LastName`, `Company` and `extra_required`, mounted on `server`.
    pub async fn mount(server: &MockServer, extra_required: &[&str]) -> Org {
        let mut required = vec!["LastName".to_owned(), "Company".to_owned()];
        required.extend(extra_required.iter().map(|f| f.to_string()));
        let org = Org(Arc::new(Mutex::new(State {
            instance_url: server.uri(),
            required,
            ..State::default()
        })));
        Mock::given(method("POST"))
            .and(path("/services/oauth2/token"))
            .respond_with(TokenEndpoint(org.clone()))
            .mount(server)
            .await;
        Mock::given(method("PATCH"))
            .and(path_regex("^/services/data/v62.0/sobjects/Lead/"))
            .respond_with(LeadEndpoint(org.clone()))
            .mount(server)
            .await;
        org
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().expect("org state")
    }
}

struct TokenEndpoint(Org);

impl Respond for TokenEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form: BTreeMap<String, String> = String::from_utf8_lossy(&request.body)
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect();
        let mut state = self.0.state();
        state.token_requests += 1;
        let expected = [
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ];
        if expected
            .iter()
            .any(|(k, v)| form.get(*k).map(String::as_str) != Some(v))
        {
            return ResponseTemplate::new(400).set_body_json(
                json!({"error": "invalid_client", "error_description": "invalid client credentials"}),
            );
        }
        let token = format!("00Dtest!token-{}", state.token_requests);
        state.valid_tokens.push(token.clone());
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": token,
            "instance_url": state.instance_url,
            "id": "https://login.salesforce.com/id/00D/005",
            "token_type": "Bearer",
            "issued_at": "1795707001000",
            "signature": "c2lnbmF0dXJl"
        }))
    }
}

struct LeadEndpoint(Org);

fn error(status: u16, code: &str, fields: &[String]) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!([{
        "message": format!("{code}: see the fields (this text would quote your values)"),
        "errorCode": code,
        "fields": fields,
    }]))
}

impl Respond for LeadEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let token = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        let mut state = self.0.state();
        let (status, answer) = Self::answer(&mut state, &token, request);
        state.upserts.push((token, status));
        answer
    }
}

impl LeadEndpoint {
    fn answer(state: &mut State, token: &str, request: &Request) -> (u16, ResponseTemplate) {
        if state.refuse_all_tokens || !state.valid_tokens.iter().any(|t| t == token) {
            return (401, error(401, "INVALID_SESSION_ID", &[]));
        }
        if std::mem::take(&mut state.limit_next) {
            return (403, error(403, "REQUEST_LIMIT_EXCEEDED", &[]));
        }
        let Some(key) = request.url.path().strip_prefix(LEAD_PATH) else {
            return (404, error(404, "NOT_FOUND", &[]));
        };
        let key = decode(key);
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let existing = state.leads.get(&key).cloned().unwrap_or_default();
        let missing: Vec<String> = state
            .required
            .iter()
            .filter(|f| {
                let value = body.get(f.as_str()).or_else(|| existing.get(f.as_str()));
                value
                    .and_then(Value::as_str)
                    .is_none_or(|v| v.trim().is_empty())
            })
            .cloned()
            .collect();
        if !missing.is_empty() {
            return (400, error(400, "REQUIRED_FIELD_MISSING", &missing));
        }
        let id = format!("00Q{:015}", state.leads.len() + 1);
        let created = !state.leads.contains_key(&key);
        let lead = state.leads.entry(key).or_insert_with(|| json!({"Id": id}));
        for (k, v) in body.as_object().into_iter().flatten() {
            lead[k] = v.clone();
        }
        let id = lead["Id"].clone();
        if !created {
            return (
                200,
                ResponseTemplate::new(200).set_body_json(
                    json!({"id": id, "success": true, "errors": [], "created": false}),
                ),
            );
        }
        state.creates += 1;
        if state.expire_after_creates == Some(state.creates) {
            state.valid_tokens.clear();
        }
        (
            201,
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": id, "success": true, "errors": [], "created": true})),
        )
    }
}

/// Percent-decoding (and `+` as space, for forms).
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `deps` on a manual clock with re-sends visible at once (the event source holds them
/// until due), unpaced: these tests are about Salesforce, not pacing.
pub fn on_virtual_time<C, Q, K, L>(
    mut deps: ProcessorDeps<C, Q, K, L>,
) -> (ProcessorDeps<C, Q, K, L>, Clock) {
    let clock = Clock::manual(SystemTime::now());
    deps.clock = clock.clone();
    deps.config.retry.max_queue_delay = Duration::ZERO;
    deps.config.rate_limit = Some(None);
    (deps, clock)
}
