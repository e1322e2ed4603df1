//! The sinks the local runner uses: each integration's real sink when it is configured,
//! otherwise a preview that runs the same sink code against a local capture server (or,
//! for email, a mailer that writes the MIME message) and writes what would have been
//! sent under `./outbox/`.

mod any;
mod outbox;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nphooks_core::config::Settings;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_core::secret::Secret;
use nphooks_processor::http::OutboundUrl;
use nphooks_processor::{Delivered, FailureReason, Sink, SinkError, SinkSetup};

pub use any::AnySink;
use outbox::write;
pub use outbox::{Captured, Outbox, render_http};

/// The longest one preview may take unless `NPHOOKS_SINK_TIMEOUT_SECONDS` says otherwise.
pub const PREVIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// The key previews of notifications are signed with when `NOTIFY_SIGNING_SECRET` is unset.
pub const PREVIEW_SIGNING_SECRET: &str = "whsec_cHJldmlldy1vbmx5LW5vdC1hLXNlY3JldA==";

/// What a preview runs: the integration's real sink code, pointed at the outbox.
#[derive(Debug, Clone)]
pub enum PreviewKind {
    Crm,
    /// `CRM_PROVIDER=salesforce`: the exact upsert, with the configured field map.
    Salesforce(crm::salesforce::LeadShape),
    Email(email::EmailConfig),
    Slack,
    Notify(notify::SigningKey),
    Callback,
}

/// An integration in preview mode.
#[derive(Debug)]
pub struct PreviewSink {
    integration: Integration,
    kind: PreviewKind,
    outbox: Arc<Outbox>,
    client: reqwest::Client,
    timeout: Duration,
}

impl PreviewSink {
    /// The preview for `integration`, reusing whatever of its configuration is set.
    pub fn new(
        integration: Integration,
        setup: &SinkSetup<'_>,
        outbox: Arc<Outbox>,
    ) -> anyhow::Result<Self> {
        let settings = setup.settings;
        let kind = match integration {
            Integration::Crm => match crm::CrmProvider::from_settings(settings)? {
                crm::CrmProvider::Salesforce => {
                    PreviewKind::Salesforce(crm::salesforce::LeadShape::from_settings(settings)?)
                }
                _ => PreviewKind::Crm,
            },
            Integration::Slack => PreviewKind::Slack,
            Integration::Callback => PreviewKind::Callback,
            Integration::Notify => {
                let secret = Secret::new(
                    settings
                        .optional(notify::NOTIFY_SIGNING_SECRET_VAR)
                        .unwrap_or(PREVIEW_SIGNING_SECRET),
                );
                PreviewKind::Notify(notify::SigningKey::parse(
                    notify::NOTIFY_SIGNING_SECRET_VAR,
                    &secret,
                )?)
            }
            Integration::Email => {
                let from = settings
                    .optional(email::EMAIL_FROM_VAR)
                    .unwrap_or("Acme <hello@example.com>");
                let with_defaults = Settings::from_pairs([
                    (email::EMAIL_TRANSPORT_VAR, "ses"),
                    (email::EMAIL_FROM_VAR, from),
                    (
                        email::EMAIL_BUSINESS_NAME_VAR,
                        settings
                            .optional(email::EMAIL_BUSINESS_NAME_VAR)
                            .unwrap_or("Acme"),
                    ),
                    (
                        email::EMAIL_REPLY_TO_VAR,
                        settings
                            .optional(email::EMAIL_REPLY_TO_VAR)
                            .unwrap_or_default(),
                    ),
                ]);
                PreviewKind::Email(email::EmailConfig::from_settings(&with_defaults, true)?)
            }
        };
        Ok(PreviewSink {
            integration,
            kind,
            outbox,
            client: setup.http_client()?,
            timeout: setup.timeout,
        })
    }

    async fn preview(&self, envelope: &Envelope) -> Result<Delivered, SinkError> {
        let slot = self.outbox.slot();
        let url = |path: &str| {
            OutboundUrl::parse(
                "preview",
                &format!("{}/preview/{slot}{path}", self.outbox.base_url),
                true,
                false,
            )
            .map_err(|_| SinkError::permanent(FailureReason::Misconfigured))
        };
        let client = self.client.clone();
        let (result, extension) = match &self.kind {
            PreviewKind::Crm => {
                let sink = crm::CrmSink::new(
                    crm::CrmProvider::Generic,
                    url("/leads")?,
                    Secret::new("preview-token"),
                    client,
                );
                (sink.deliver(envelope).await, "http")
            }
            PreviewKind::Salesforce(shape) => (
                salesforce_preview(shape, url("")?, client)
                    .deliver(envelope)
                    .await,
                "http",
            ),
            PreviewKind::Slack => (
                slack::SlackSink::new(url("/services/T00000000/B00000000/PREVIEW")?, client)
                    .deliver(envelope)
                    .await,
                "http",
            ),
            PreviewKind::Notify(key) => (
                notify::NotifySink::new(url("/hooks/nphooks")?, key.clone(), client)
                    .deliver(envelope)
                    .await,
                "http",
            ),
            PreviewKind::Callback => {
                let api = nphooks_processor::nextphone::NextPhoneApi::new(
                    url("")?,
                    Secret::new("preview-key"),
                    client,
                );
                let sink = callback::CallbackSink::new(api, "Acme");
                (sink.deliver(envelope).await, "http")
            }
            PreviewKind::Email(config) => {
                let path = self.outbox.path_for(envelope, self.integration, "eml");
                let sink = email::EmailSink::new(config.clone(), OutboxMailer { path });
                (sink.deliver(envelope).await, "eml")
            }
        };
        let delivered = result?;
        let path = self.outbox.path_for(envelope, self.integration, extension);
        let captured = self.outbox.take(slot);
        if !captured.is_empty() {
            write(&path, &render_http(&captured))?;
        }
        Ok(match delivered {
            Delivered::Sent(_) => Delivered::Sent(format!("preview → {}", path.display())),
            skipped @ Delivered::Skipped(_) => skipped,
        })
    }
}

/// The Salesforce sink with a session already held for `instance` (the outbox): no token
/// request, so the preview is the upsert alone, as Salesforce would receive it.
fn salesforce_preview(
    shape: &crm::salesforce::LeadShape,
    instance: OutboundUrl,
    client: reqwest::Client,
) -> crm::CrmSink {
    use crm::salesforce::{Salesforce, Session, Tokens};
    let preview = || Secret::new("preview");
    let tokens = Tokens::new(instance.clone(), preview(), preview(), true).with_session(Session {
        instance,
        token: Secret::new("preview-token"),
    });
    let shape = shape.clone();
    crm::CrmSink::salesforce(Salesforce { shape, tokens }, client)
}

/// Writes the MIME message it is given to a file instead of sending it.
#[derive(Debug)]
pub struct OutboxMailer {
    path: PathBuf,
}

impl email::Mailer for OutboxMailer {
    async fn send(&self, message: &lettre::Message) -> Result<(), SinkError> {
        write(&self.path, &message.formatted())
    }
}

#[cfg(test)]
mod tests {
    use nphooks_processor::config::SINK_TIMEOUT_VAR;

    use super::*;

    /// Every integration configured for real, plus `extra`.
    fn settings(extra: &[(&'static str, &'static str)]) -> Settings {
        let mut pairs = vec![
            (crm::CRM_API_URL_VAR, "https://crm.example.com/leads"),
            (crm::CRM_API_TOKEN_VAR, "crm-token"),
            (email::SMTP_HOST_VAR, "127.0.0.1"),
            ("SMTP_TLS", "none"),
            (email::EMAIL_FROM_VAR, "Acme <hello@example.com>"),
            (
                slack::SLACK_WEBHOOK_URL_VAR,
                "https://hooks.slack.com/services/T0/B0/secret",
            ),
            (notify::NOTIFY_URL_VAR, "https://sales.example.com/hooks"),
            (notify::NOTIFY_SIGNING_SECRET_VAR, PREVIEW_SIGNING_SECRET),
            (
                nphooks_processor::nextphone::NEXTPHONE_API_KEY_VAR,
                "callback-preview-key",
            ),
        ];
        pairs.extend_from_slice(extra);
        Settings::from_pairs(pairs)
    }

    async fn timeouts(settings: &Settings) -> Vec<(Integration, bool, Duration)> {
        let aws = aws_config::SdkConfig::builder().build();
        let outbox = Outbox::start(std::env::temp_dir()).await.expect("outbox");
        Integration::ALL
            .iter()
            .map(|&integration| {
                let sink = AnySink::for_integration(integration, settings, true, &aws, &outbox)
                    .expect("sink");
                (integration, sink.is_preview(), sink.timeout())
            })
            .collect()
    }

    #[tokio::test]
    async fn given_no_sink_timeout_then_each_sink_keeps_its_default() {
        let seconds = |s| Duration::from_secs(s);
        let expected = [(8, false), (15, false), (8, false), (8, false), (8, false)];
        for ((integration, preview, timeout), (secs, real)) in
            timeouts(&settings(&[])).await.into_iter().zip(expected)
        {
            assert_eq!((timeout, preview), (seconds(secs), real), "{integration}");
        }
        let previews = timeouts(&Settings::from_pairs([("OTHER", "x")])).await;
        assert!(previews.iter().all(|(_, p, t)| *p && *t == PREVIEW_TIMEOUT));
    }

    #[tokio::test]
    async fn given_salesforce_unconfigured_then_the_preview_is_the_exact_upsert() {
        // GIVEN CRM_PROVIDER=salesforce with a field map, and no org
        let dir = std::env::temp_dir().join(format!("nphooks-sf-preview-{}", std::process::id()));
        let settings = Settings::from_pairs([
            (crm::CRM_PROVIDER_VAR, "salesforce"),
            (crm::salesforce::FIELD_MAP_VAR, r#"{"team_size":"Size__c"}"#),
        ]);
        let aws = aws_config::SdkConfig::builder().build();
        let outbox = Outbox::start(dir.clone()).await.expect("outbox");
        let sink = AnySink::for_integration(Integration::Crm, &settings, true, &aws, &outbox)
            .expect("preview");
        let webhook = r#"{"event":"call.ended","data":{"call_id":"c 1","caller":{"name":"Dana Whitfield"},"custom_fields":{"team_size":"40"}}}"#;
        let message = nphooks_samples::queue_message(webhook, std::time::SystemTime::now());
        let envelope = Envelope::decode(message.body()).expect("envelope");

        // WHEN the call is previewed
        let delivered = sink.deliver(&envelope).await.expect("previewed");

        // THEN the file holds the PATCH alone, keyed by the encoded delivery key
        assert!(sink.is_preview() && matches!(delivered, Delivered::Sent(_)));
        let path = outbox.path_for(&envelope, Integration::Crm, "http");
        let text = std::fs::read_to_string(&path).expect("preview file");
        let line = "PATCH /services/data/v62.0/sobjects/Lead/NPHooks_Delivery_Key__c/call.ended%23c%201 HTTP/1.1\n";
        assert!(text.starts_with(line), "{text}");
        assert!(
            text.contains("\nauthorization: Bearer preview-token\n"),
            "{text}"
        );
        let lead = r#"{"Company":"(unknown)","FirstName":"Dana","LastName":"Whitfield","LeadSource":"Phone Call","Size__c":"40"}"#;
        assert!(text.ends_with(&format!("\n{lead}\n")), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn given_a_sink_timeout_then_every_sink_and_preview_takes_it() {
        let real = timeouts(&settings(&[(SINK_TIMEOUT_VAR, "3")])).await;
        let previews = timeouts(&Settings::from_pairs([(SINK_TIMEOUT_VAR, "3")])).await;
        for (integration, _, timeout) in real.into_iter().chain(previews) {
            assert_eq!(timeout, Duration::from_secs(3), "{integration}");
        }
    }
}
