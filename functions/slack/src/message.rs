//! What a call's Slack message says: the webhook's fields, escaped, as a [`Card`].

use nphooks_core::envelope::Envelope;
use serde_json::Value;

use crate::blocks::{Card, Field};
use crate::text::{Mrkdwn, plain_text};

/// Longest escaped caller name, phone number and email address.
const NAME_MAX: usize = 300;
const PHONE_MAX: usize = 100;
const EMAIL_MAX: usize = 320;
/// Longest escaped call type, event name and call id in the fallback and context.
const KIND_MAX: usize = 150;
const EVENT_MAX: usize = 60;
const CALL_ID_MAX: usize = 100;

/// The Block Kit message for a call: a header, the caller, the summary, the custom
/// fields and a context line, plus a text fallback, within Slack's limits.
pub fn slack_message(envelope: &Envelope) -> Value {
    card(envelope).render()
}

fn card(envelope: &Envelope) -> Card {
    let data = &envelope.webhook.data;
    let event = envelope.webhook.event.name();
    // The call type as a person reads it, unless nothing readable is left of it.
    let title = data
        .call_type
        .as_deref()
        .map(humanise)
        .filter(|kind| !plain_text(kind, usize::MAX).trim().is_empty())
        .unwrap_or_else(|| event.to_owned());
    let kind = Mrkdwn::escape(&title, KIND_MAX);
    let name = Mrkdwn::escape(
        data.caller.name.as_deref().unwrap_or("Unknown caller"),
        NAME_MAX,
    );
    let phone = Mrkdwn::escape(data.caller.phone.as_deref().unwrap_or("—"), PHONE_MAX);
    let fallback = Mrkdwn::trusted(format!("New {kind} call from {name} ({phone})"));

    let mut caller = vec![
        Field::new(label("Caller"), name),
        Field::new(label("Phone"), phone),
    ];
    if let Some(email) = &data.caller.email {
        caller.push(Field::new(label("Email"), Mrkdwn::escape(email, EMAIL_MAX)));
    }
    if let Some(seconds) = data.duration_seconds {
        caller.push(Field::new(
            label("Duration"),
            Mrkdwn::trusted(duration(seconds)),
        ));
    }
    let custom = data
        .custom_fields
        .iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (humanise(key), text)
        })
        .collect();
    let footer = Mrkdwn::trusted(format!(
        "{} · call `{}`",
        Mrkdwn::escape(event, EVENT_MAX),
        Mrkdwn::escape(&data.call_id, CALL_ID_MAX)
    ));

    Card {
        title,
        caller,
        summary: data
            .ai_summary
            .clone()
            .filter(|summary| !summary.trim().is_empty()),
        custom,
        footer,
        fallback,
    }
}

fn label(text: &str) -> Mrkdwn {
    Mrkdwn::escape(text, text.len())
}

/// `demo_request` → `Demo request`.
fn humanise(call_type: &str) -> String {
    let spaced = call_type.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn duration(seconds: f64) -> String {
    // Whole seconds are what a person reads; the value is non-negative (validated).
    let total = seconds.round() as u64;
    match (total / 60, total % 60) {
        (0, s) => format!("{s}s"),
        (m, s) => format!("{m}m {s}s"),
    }
}
