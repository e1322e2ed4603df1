//! The spoken script of a call back, one template per call type (`templates/`):
//! `message.txt` for a message left, `<call_type>.txt` for a call that ended, else
//! `default.txt`. Caller data is only ever data: each value is [`speakable`] first, and
//! `{{ 7*7 }}` in a name stays text.

use minijinja::Environment;
use serde::Serialize;

const TEMPLATES: &[(&str, &str)] = &[
    ("message", include_str!("../templates/message.txt")),
    (
        "demo_request",
        include_str!("../templates/demo_request.txt"),
    ),
    (
        "quote_request",
        include_str!("../templates/quote_request.txt"),
    ),
    ("default", include_str!("../templates/default.txt")),
];

/// The longest caller value spoken, in characters.
pub const MAX_VALUE_CHARS: usize = 80;

/// What the templates may use; every caller value has been through [`speakable`].
#[derive(Debug, Clone, Serialize)]
pub struct ScriptContext {
    pub business_name: String,
    /// The caller's first name, or "there".
    pub first_name: String,
    pub service_type: Option<String>,
    pub preferred_time: Option<String>,
}

/// A template failed to render (a bug in a template file).
#[derive(Debug, thiserror::Error)]
#[error("callback script template {template} failed to render: {problem}")]
pub struct ScriptError {
    template: &'static str,
    problem: String,
}

/// A caller value made safe to speak: control characters and markup a voice engine
/// could read as instructions (`<>{}[]\`) dropped, whitespace collapsed, at most
/// [`MAX_VALUE_CHARS`] characters.
pub fn speakable(value: &str) -> String {
    let kept: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(|c| !matches!(c, '<' | '>' | '{' | '}' | '[' | ']' | '\\'))
        .collect();
    kept.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_VALUE_CHARS)
        .collect()
}

/// The compiled templates.
#[derive(Debug)]
pub struct Scripts {
    env: Environment<'static>,
}

impl Default for Scripts {
    fn default() -> Self {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("the embedded templates compile");
        }
        Scripts { env }
    }
}

impl Scripts {
    /// The template for a message left (`None`) or a call type.
    pub fn template_for(call_type: Option<&str>) -> &'static str {
        let wanted = call_type.unwrap_or("message");
        TEMPLATES
            .iter()
            .map(|(name, _)| *name)
            .find(|name| *name == wanted && *name != "default")
            .unwrap_or("default")
    }

    /// The script, one line of plain text.
    pub fn render(
        &self,
        call_type: Option<&str>,
        context: &ScriptContext,
    ) -> Result<String, ScriptError> {
        let template = Self::template_for(call_type);
        let text = self
            .env
            .get_template(template)
            .and_then(|t| t.render(context))
            .map_err(|e| ScriptError {
                template,
                problem: e.to_string(),
            })?;
        Ok(text.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_hostile_values_then_only_speakable_text_remains() {
        assert_eq!(
            speakable("  Dana\u{0}\n <speak>Whit</speak> "),
            "Dana speakWhit/speak"
        );
        assert_eq!(speakable("{{ 7*7 }} [x]"), "7*7 x");
        assert_eq!(speakable(&"a".repeat(200)).chars().count(), MAX_VALUE_CHARS);
    }

    #[test]
    fn given_call_types_then_each_has_its_template_or_the_default() {
        assert_eq!(Scripts::template_for(None), "message");
        assert_eq!(Scripts::template_for(Some("demo_request")), "demo_request");
        assert_eq!(Scripts::template_for(Some("support")), "default");
        assert_eq!(Scripts::template_for(Some("default")), "default");
    }
}
