//! A recording sink per integration: it counts effects per delivery and fails on cue
//! through the fault plan, with every `FailureReason` class a real sink returns.
//!
//! How repeats are judged. An effect repeated after the claim was durably marked
//! `completed` (the claims wrapper reports that) is **doubled**: a guard failed. A repeat
//! whose earlier completion was never recorded (the sink acted, then its answer was lost
//! or the Lambda died before `complete`) cannot be told from a first attempt by anyone:
//! a sink with an idempotency key (CRM `Idempotency-Key`, notify's stable `webhook-id`)
//! absorbs it (`absorbed`), one without (Slack, SMTP) really posts twice
//! (`ambiguous_resends`). Neither is a violation.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use super::lock;
use nphooks_core::claims::ClaimKey;
use nphooks_core::envelope::Envelope;
use nphooks_core::routing::Integration;
use nphooks_processor::{Delivered, FailureReason, Sink, SinkError, SmtpCode, StatusCode};

use super::plan::{Fault, FaultPlan, Port, STALL};

#[derive(Debug, Default, Clone, Copy)]
struct Effect {
    count: u32,
    /// The claim was marked completed after the last effect.
    confirmed: bool,
}

/// What the sinks did, per `integration#delivery_key`.
#[derive(Debug, Default)]
pub struct EffectLog {
    effects: Mutex<HashMap<String, Effect>>,
    tallies: Mutex<Tallies>,
}

/// Repeats, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tallies {
    /// Effects, each delivery's first only.
    pub effects: u64,
    /// Repeats after a recorded completion: violations.
    pub doubled: u64,
    /// Repeats of an unrecorded completion by a sink without an idempotency key.
    pub ambiguous_resends: u64,
    /// Repeats of an unrecorded completion absorbed by the destination's idempotency key.
    pub absorbed: u64,
}

impl EffectLog {
    /// The claim at `key` reached `completed` in the table.
    pub fn confirm(&self, key: &ClaimKey) {
        if let Some(effect) = lock(&self.effects).get_mut(key.as_str()) {
            effect.confirmed = true;
        }
    }

    fn act(&self, key: &ClaimKey, idempotent: bool) {
        let mut effects = lock(&self.effects);
        let effect = effects.entry(key.as_str().to_owned()).or_default();
        let mut tallies = lock(&self.tallies);
        match (effect.count, effect.confirmed) {
            (0, _) => tallies.effects += 1,
            (_, true) => tallies.doubled += 1,
            _ if idempotent => tallies.absorbed += 1,
            _ => tallies.ambiguous_resends += 1,
        }
        effect.count += 1;
        effect.confirmed = false;
    }

    /// Whether `integration` acted on `delivery_key`.
    pub fn acted(&self, integration: Integration, delivery_key: &str) -> bool {
        lock(&self.effects).contains_key(&format!("{integration}#{delivery_key}"))
    }

    pub fn tallies(&self) -> Tallies {
        *lock(&self.tallies)
    }
}

/// One integration's stand-in: acts by recording, fails as the plan says.
#[derive(Debug)]
pub struct RecordingSink {
    pub integration: Integration,
    pub plan: Arc<FaultPlan>,
    pub log: Arc<EffectLog>,
}

/// The sinks' timeout (the processors' default).
pub const SINK_TIMEOUT: Duration = Duration::from_secs(8);

const TRANSIENT: [FailureReason; 6] = [
    FailureReason::Timeout,
    FailureReason::ConnectFailed,
    FailureReason::RequestFailed,
    FailureReason::ServerError,
    FailureReason::RequestTimeout,
    FailureReason::MailDeferred,
];
const PERMANENT: [FailureReason; 6] = [
    FailureReason::InvalidPayload,
    FailureReason::Unauthorized,
    FailureReason::Forbidden,
    FailureReason::NotFound,
    FailureReason::MailRejected,
    FailureReason::UnusableData,
];

impl RecordingSink {
    /// CRM, notify and callback send an idempotency key; Slack and SMTP cannot.
    fn idempotent(&self) -> bool {
        matches!(
            self.integration,
            Integration::Crm | Integration::Notify | Integration::Callback
        )
    }

    fn act(&self, envelope: &Envelope) {
        let key = ClaimKey::new(self.integration, &envelope.delivery_key);
        self.log.act(&key, self.idempotent());
    }

    /// One error of a class a real sink returns: mostly transient, some 429s, a few
    /// permanent (those end in the DLQ); the email sink's are its mailer's.
    fn error(&self) -> SinkError {
        if self.integration == Integration::Email {
            return self.mail_error();
        }
        let roll = self.plan.below(100);
        let pick = |list: &[FailureReason]| list[self.plan.below(list.len() as u64) as usize];
        if roll < 15 {
            self.plan.count("sink_rate_limited");
            let wait = Duration::from_secs(1 + self.plan.below(60));
            SinkError::transient(FailureReason::RateLimited)
                .with_status(StatusCode::TOO_MANY_REQUESTS)
                .with_retry_after(Some(wait))
        } else if roll < 85 {
            self.plan.count("sink_transient");
            SinkError::transient(pick(&TRANSIENT))
        } else {
            self.plan.count("sink_permanent");
            SinkError::permanent(pick(&PERMANENT))
        }
    }
}

/// SMTP reply codes a mail server defers (4xx) or rejects (5xx) with.
const SMTP_4XX: [u16; 4] = [421, 450, 451, 452];
const SMTP_5XX: [u16; 5] = [550, 551, 552, 553, 554];

impl RecordingSink {
    /// An error as the email sink's mailer returns it (`functions/email/src/mailer.rs`):
    /// SMTP 4xx deferred (transient), 5xx rejected (permanent), a timeout or a refused
    /// connection (transient); SES throttled, 5xx (transient), or 4xx (permanent).
    fn mail_error(&self) -> SinkError {
        let code = |codes: &[u16]| {
            let code = codes[self.plan.below(codes.len() as u64) as usize];
            SmtpCode::new(code).unwrap_or_else(|| unreachable!("{code} is an SMTP code"))
        };
        match self.plan.below(100) {
            0..40 => {
                self.plan.count("mail_4xx");
                SinkError::transient(FailureReason::MailDeferred).with_smtp_code(code(&SMTP_4XX))
            }
            40..55 => {
                self.plan.count("mail_5xx");
                SinkError::permanent(FailureReason::MailRejected).with_smtp_code(code(&SMTP_5XX))
            }
            55..75 => {
                self.plan.count("mail_timeout");
                SinkError::transient(FailureReason::Timeout)
            }
            75..85 => {
                self.plan.count("sink_transient");
                SinkError::transient(FailureReason::ConnectFailed)
            }
            85..92 => {
                self.plan.count("sink_rate_limited");
                SinkError::transient(FailureReason::RateLimited)
                    .with_status(StatusCode::TOO_MANY_REQUESTS)
            }
            _ => {
                self.plan.count("sink_transient");
                SinkError::transient(FailureReason::ServerError)
                    .with_status(StatusCode::SERVICE_UNAVAILABLE)
            }
        }
    }
}

impl Sink for RecordingSink {
    fn timeout(&self) -> Duration {
        SINK_TIMEOUT
    }

    async fn deliver(&self, envelope: &Envelope) -> Result<Delivered, SinkError> {
        let sent = || Ok(Delivered::Sent("recorded".to_owned()));
        match self.plan.draw(Port::Sink) {
            Fault::None => {}
            Fault::Error => return Err(self.error()),
            Fault::Ambiguous => {
                self.act(envelope);
                return Err(SinkError::transient(FailureReason::RequestFailed));
            }
            Fault::Latency(by) => self.plan.sleep(by).await,
            Fault::Stall(acted) => {
                if acted {
                    self.act(envelope);
                }
                // Past the runtime's own timeout, which answers `timeout` first.
                self.plan.sleep(SINK_TIMEOUT + STALL).await;
                return Err(SinkError::transient(FailureReason::Timeout));
            }
            Fault::CrashBefore => return self.plan.crash().await,
            Fault::CrashAfter => {
                self.act(envelope);
                return self.plan.crash().await;
            }
        }
        self.act(envelope);
        sent()
    }
}
