//! The OAuth 2.0 client-credentials flow against the org's My Domain: one access token
//! per cold start, shared by every concurrent record behind one lock, replaced when
//! Salesforce answers 401 (at most once per delivery: see `Salesforce::deliver`).

use std::sync::Arc;

use nphooks_core::secret::Secret;
use nphooks_processor::http::{self, OutboundUrl};
use nphooks_processor::{FailureReason, SinkError};
use serde_json::Value;
use tokio::sync::Mutex;

use super::LOGIN_URL_VAR;

pub const TOKEN_PATH: &str = "services/oauth2/token";

/// An access token and the org's `instance_url` it works against. `Debug` hides the token.
#[derive(Debug)]
pub struct Session {
    pub instance: OutboundUrl,
    pub token: Secret,
}

/// The connected app's credentials, and the session they got, if any.
#[derive(Debug)]
pub struct Tokens {
    pub login: OutboundUrl,
    pub client_id: Secret,
    pub client_secret: Secret,
    pub allow_http: bool,
    current: Mutex<Option<Arc<Session>>>,
}

impl Tokens {
    pub fn new(
        login: OutboundUrl,
        client_id: Secret,
        client_secret: Secret,
        allow_http: bool,
    ) -> Self {
        Tokens {
            login,
            client_id,
            client_secret,
            allow_http,
            current: Mutex::default(),
        }
    }

    /// Starts with `session` already held (the preview: no token request is made).
    pub fn with_session(self, session: Session) -> Self {
        Tokens {
            current: Mutex::new(Some(Arc::new(session))),
            ..self
        }
    }

    /// The session held, or a new one. Concurrent callers wait for one request.
    pub async fn current(&self, client: &reqwest::Client) -> Result<Arc<Session>, SinkError> {
        let mut current = self.current.lock().await;
        if let Some(session) = current.as_ref() {
            return Ok(session.clone());
        }
        let session = Arc::new(self.request(client).await?);
        *current = Some(session.clone());
        Ok(session)
    }

    /// A new session in place of `refused`, unless another record already replaced it.
    pub async fn replace(
        &self,
        refused: &Arc<Session>,
        client: &reqwest::Client,
    ) -> Result<Arc<Session>, SinkError> {
        let mut current = self.current.lock().await;
        if let Some(session) = current.as_ref().filter(|s| !Arc::ptr_eq(s, refused)) {
            return Ok(session.clone());
        }
        *current = None;
        let session = Arc::new(self.request(client).await?);
        *current = Some(session.clone());
        Ok(session)
    }

    /// `POST /services/oauth2/token` with `grant_type=client_credentials`.
    async fn request(&self, client: &reqwest::Client) -> Result<Session, SinkError> {
        const STEP: &str = "Salesforce token request";
        let request = client.post(self.login.join(TOKEN_PATH)).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.expose()),
            ("client_secret", self.client_secret.expose()),
        ]);
        let response = request
            .send()
            .await
            .map_err(|e| http::transport_error(e).with_detail(STEP))?;
        let status = response.status();
        let retry_after = http::retry_after(response.headers());
        if matches!(status.as_u16(), 400 | 401 | 403) {
            // invalid_client, invalid_grant, no run-as user: configuration, not chance.
            return Err(SinkError::permanent(FailureReason::Unauthorized)
                .with_status(status)
                .with_detail("Salesforce refused the client credentials (SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, the connected app's client credentials flow and run-as user)"));
        }
        http::classify(status, retry_after).map_err(|e| e.with_detail(STEP))?;
        let body = http::read_capped(response).await;
        self.session(&body).ok_or_else(|| {
            SinkError::permanent(FailureReason::BadResponse)
                .with_status(status)
                .with_detail(
                    "Salesforce token answer: no usable access_token and https instance_url",
                )
        })
    }

    fn session(&self, body: &str) -> Option<Session> {
        let answer: Value = serde_json::from_str(body).ok()?;
        let token = answer.get("access_token")?.as_str()?;
        if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
            return None;
        }
        let instance = answer.get("instance_url")?.as_str()?;
        let instance = OutboundUrl::parse(LOGIN_URL_VAR, instance, self.allow_http, false).ok()?;
        Some(Session {
            instance,
            token: Secret::new(token),
        })
    }
}
