//! The routing table: which webhooks go to which integrations.
//!
//! A JSON list of rules (`NPHOOKS_ROUTES`, default `routes.default.json`). A rule matches
//! when the event is one of `events` and every other condition it sets holds:
//! `call_types` (`data.call_type`), `to_numbers` (`data.to_number`, the number that
//! received the call) and `custom_field` (`data.custom_fields[name]` is one of `values`).
//! A webhook goes to the union of the integrations of every rule it matches.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use crate::ConfigError;
use crate::webhook::{Event, EventKind, Webhook};

/// The configuration name of the routing table.
pub const ROUTES_VAR: &str = "NPHOOKS_ROUTES";
const DEFAULT_ROUTES: &str = include_str!("../routes.default.json");

/// One integration, fed by its own queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Integration {
    Crm,
    Email,
    Slack,
    Notify,
    Callback,
}

impl Integration {
    pub const ALL: [Integration; 5] = [
        Integration::Crm,
        Integration::Email,
        Integration::Slack,
        Integration::Notify,
        Integration::Callback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Integration::Crm => "crm",
            Integration::Email => "email",
            Integration::Slack => "slack",
            Integration::Notify => "notify",
            Integration::Callback => "callback",
        }
    }

    /// The configuration name holding this integration's queue URL.
    pub fn queue_url_var(self) -> &'static str {
        match self {
            Integration::Crm => "CRM_QUEUE_URL",
            Integration::Email => "EMAIL_QUEUE_URL",
            Integration::Slack => "SLACK_QUEUE_URL",
            Integration::Notify => "NOTIFY_QUEUE_URL",
            Integration::Callback => "CALLBACK_QUEUE_URL",
        }
    }
}

impl std::fmt::Display for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`Integration::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown integration {0:?}: use crm, email, slack, notify or callback")]
pub struct UnknownIntegration(pub String);

impl std::str::FromStr for Integration {
    type Err = UnknownIntegration;

    /// The inverse of [`Integration::as_str`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|integration| integration.as_str() == name)
            .ok_or_else(|| UnknownIntegration(name.to_owned()))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    events: Vec<String>,
    #[serde(default)]
    call_types: Vec<String>,
    #[serde(default)]
    to_numbers: Vec<String>,
    #[serde(default)]
    custom_field: Option<CustomFieldMatch>,
    integrations: Vec<Integration>,
}

/// Matches when `custom_fields[name]` is a string (or number, compared as text) in `values`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldMatch {
    pub name: String,
    pub values: Vec<String>,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct RouteRule {
    pub name: String,
    pub events: BTreeSet<EventKind>,
    pub call_types: Vec<String>,
    pub to_numbers: Vec<String>,
    pub custom_field: Option<CustomFieldMatch>,
    pub integrations: BTreeSet<Integration>,
}

/// The validated routing table.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    rules: Vec<RouteRule>,
}

impl RoutingTable {
    /// The demo-request flow: `call.ended` demo or quote request → CRM, email, Slack and
    /// notify; emergency → Slack and notify; `message.collected` (a message left) → Slack,
    /// notify and a call back. No `call.ended` call type is called back by default: a
    /// business marks those that need one with a rule of its own.
    pub fn default_table() -> Self {
        Self::from_json(DEFAULT_ROUTES).expect("the embedded routes.default.json is valid")
    }

    /// Parses and validates a table; errors name `NPHOOKS_ROUTES` and the offending rule.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let invalid = |problem: String| ConfigError::new(ROUTES_VAR, problem);
        let specs: Vec<RuleSpec> = serde_json::from_str(json)
            .map_err(|e| invalid(format!("is not a valid routing table: {e}")))?;
        if specs.is_empty() {
            return Err(invalid("has no rules".into()));
        }
        let rules = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                let at = format!("rule {} ({:?})", i + 1, spec.name);
                if spec.events.is_empty() {
                    return Err(invalid(format!("{at} lists no events")));
                }
                if spec.integrations.is_empty() {
                    return Err(invalid(format!("{at} lists no integrations")));
                }
                let events = spec
                    .events
                    .iter()
                    .map(|name| {
                        EventKind::from_name(name)
                            .ok_or_else(|| invalid(format!("{at} names unknown event {name:?}")))
                    })
                    .collect::<Result<_, ConfigError>>()?;
                if spec
                    .custom_field
                    .as_ref()
                    .is_some_and(|c| c.values.is_empty())
                {
                    return Err(invalid(format!("{at} has a custom_field with no values")));
                }
                Ok(RouteRule {
                    name: spec.name,
                    events,
                    call_types: spec.call_types,
                    to_numbers: spec.to_numbers,
                    custom_field: spec.custom_field,
                    integrations: spec.integrations.into_iter().collect(),
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(RoutingTable { rules })
    }

    /// The integrations `webhook` goes to, in a stable order; empty when no rule matches.
    pub fn route_for(&self, webhook: &Webhook) -> BTreeSet<Integration> {
        let Event::Known(kind) = webhook.event else {
            return BTreeSet::new();
        };
        self.rules
            .iter()
            .filter(|rule| rule.matches(kind, webhook))
            .flat_map(|rule| rule.integrations.iter().copied())
            .collect()
    }

    /// Every integration some rule can route to.
    pub fn integrations(&self) -> BTreeSet<Integration> {
        self.rules
            .iter()
            .flat_map(|rule| rule.integrations.iter().copied())
            .collect()
    }
}

impl RouteRule {
    fn matches(&self, kind: EventKind, webhook: &Webhook) -> bool {
        let data = &webhook.data;
        let listed = |allowed: &[String], value: Option<&String>| {
            allowed.is_empty() || value.is_some_and(|v| allowed.contains(v))
        };
        self.events.contains(&kind)
            && listed(&self.call_types, data.call_type.as_ref())
            && listed(&self.to_numbers, data.to_number.as_ref())
            && self.custom_field.as_ref().is_none_or(|want| {
                match data.custom_fields.get(&want.name) {
                    Some(Value::String(s)) => want.values.contains(s),
                    Some(Value::Number(n)) => want.values.contains(&n.to_string()),
                    Some(Value::Bool(b)) => want.values.contains(&b.to_string()),
                    _ => false,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Integration::*;

    fn route(table: &RoutingTable, body: &str) -> Vec<Integration> {
        table
            .route_for(&Webhook::parse(body.as_bytes()).expect("valid"))
            .into_iter()
            .collect()
    }

    #[test]
    fn given_the_default_table_then_it_implements_the_demo_request_flow() {
        let table = RoutingTable::default_table();
        let call = |event: &str, call_type: &str| {
            route(
                &table,
                &format!(
                    r#"{{"event":"{event}","data":{{"call_id":"c","call_type":"{call_type}"}}}}"#
                ),
            )
        };
        assert_eq!(
            call("call.ended", "demo_request"),
            vec![Crm, Email, Slack, Notify]
        );
        assert_eq!(
            call("call.ended", "quote_request"),
            vec![Crm, Email, Slack, Notify]
        );
        assert_eq!(call("call.ended", "emergency"), vec![Slack, Notify]);
        assert_eq!(call("call.ended", "general_inquiry"), vec![]);
        assert_eq!(
            call("message.collected", "anything"),
            vec![Slack, Notify, Callback]
        );
        for event in [
            "call.answered",
            "call.transferred",
            "data.collected",
            "transcript.ready",
        ] {
            assert_eq!(call(event, "demo_request"), vec![], "{event}");
        }
        assert_eq!(
            route(&table, r#"{"event":"call.ended","data":{"call_id":"c"}}"#),
            vec![]
        );
    }

    #[test]
    fn given_rules_on_receiving_number_and_custom_field_then_both_must_hold() {
        let table = RoutingTable::from_json(
            r#"[{"name":"west office VIPs","events":["call.ended"],"to_numbers":["+15550001111"],
                 "custom_field":{"name":"tier","values":["gold","2"]},"integrations":["crm"]}]"#,
        )
        .expect("valid");
        let hook = |to: &str, tier: &str| {
            route(
                &table,
                &format!(
                    r#"{{"event":"call.ended","data":{{"call_id":"c","to_number":"{to}","custom_fields":{{"tier":{tier}}}}}}}"#
                ),
            )
        };
        assert_eq!(hook("+15550001111", r#""gold""#), vec![Crm]);
        assert_eq!(hook("+15550001111", "2"), vec![Crm]);
        assert_eq!(hook("+15550001111", r#""silver""#), vec![]);
        assert_eq!(hook("+15559999999", r#""gold""#), vec![]);
    }

    #[test]
    fn given_each_integration_name_then_it_parses_back_and_others_are_refused() {
        for integration in Integration::ALL {
            assert_eq!(integration.to_string().parse(), Ok(integration));
        }
        let refused = "fax"
            .parse::<Integration>()
            .expect_err("not an integration");
        assert_eq!(
            refused.to_string(),
            "unknown integration \"fax\": use crm, email, slack, notify or callback"
        );
        assert!("CRM".parse::<Integration>().is_err(), "names are lowercase");
    }

    #[test]
    fn given_invalid_tables_then_the_error_names_the_variable_and_the_problem() {
        let cases = [
            ("not json", "is not a valid routing table"),
            ("[]", "has no rules"),
            (
                r#"[{"name":"x","events":[],"integrations":["crm"]}]"#,
                "lists no events",
            ),
            (
                r#"[{"name":"x","events":["call.ended"],"integrations":[]}]"#,
                "lists no integrations",
            ),
            (
                r#"[{"name":"x","events":["call.ending"],"integrations":["crm"]}]"#,
                "unknown event \"call.ending\"",
            ),
            (
                r#"[{"name":"x","events":["call.ended"],"integrations":["fax"]}]"#,
                "unknown variant `fax`",
            ),
            (
                r#"[{"name":"x","events":["call.ended"],"integrations":["crm"],"colour":"red"}]"#,
                "unknown field `colour`",
            ),
        ];
        for (json, expected) in cases {
            let message = RoutingTable::from_json(json).expect_err(json).to_string();
            assert!(message.contains(ROUTES_VAR), "{message}");
            assert!(message.contains(expected), "{json}: {message}");
        }
    }
}
