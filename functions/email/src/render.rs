//! The confirmation emails, one set of template files per call type (`templates/`):
//! `<type>.subject.txt`, `<type>.txt` and `<type>.html`. HTML is autoescaped; caller
//! data is only ever data (`{{ 7*7 }}` in a name stays text).

use minijinja::Environment;
use serde::Serialize;

use crate::Error;

/// Call types that get a confirmation email, and their template sources.
const TEMPLATES: &[(&str, &str, &str, &str)] = &[
    (
        "demo_request",
        include_str!("../templates/demo_request.subject.txt"),
        include_str!("../templates/demo_request.txt"),
        include_str!("../templates/demo_request.html"),
    ),
    (
        "quote_request",
        include_str!("../templates/quote_request.subject.txt"),
        include_str!("../templates/quote_request.txt"),
        include_str!("../templates/quote_request.html"),
    ),
    (
        "emergency",
        include_str!("../templates/emergency.subject.txt"),
        include_str!("../templates/emergency.txt"),
        include_str!("../templates/emergency.html"),
    ),
];

/// What the templates may use. Caller-supplied values are plain strings here.
#[derive(Debug, Clone, Serialize)]
pub struct EmailContext {
    pub business_name: String,
    /// The caller's first name, or "there".
    pub first_name: String,
    pub service_type: Option<String>,
    pub preferred_time: Option<String>,
    pub summary: Option<String>,
}

/// One rendered email. The subject has been checked for CR/LF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The compiled templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        // Autoescape follows the name: `.html` is HTML-escaped, `.txt` is plain text.
        for (call_type, subject, text, html) in TEMPLATES {
            for (suffix, source) in [("subject.txt", subject), ("txt", text), ("html", html)] {
                env.add_template_owned(format!("{call_type}.{suffix}"), *source)
                    .expect("the embedded templates compile");
            }
        }
        Templates { env }
    }

    /// Whether `call_type` gets an email.
    pub fn has(call_type: &str) -> bool {
        TEMPLATES.iter().any(|(t, ..)| *t == call_type)
    }

    /// Renders the email for `call_type`, or `None` when that type gets no email.
    pub fn render(
        &self,
        call_type: &str,
        context: &EmailContext,
    ) -> Result<Option<RenderedEmail>, Error> {
        if !Self::has(call_type) {
            return Ok(None);
        }
        let render = |suffix: &str| {
            self.env
                .get_template(&format!("{call_type}.{suffix}"))
                .and_then(|t| t.render(context))
                .map_err(|e| Error::Template(e.to_string()))
        };
        let subject = render("subject.txt")?.trim().to_owned();
        if subject.contains(['\r', '\n']) {
            return Err(Error::HeaderInjection("Subject"));
        }
        Ok(Some(RenderedEmail {
            subject,
            text: render("txt")?,
            html: render("html")?,
        }))
    }
}
