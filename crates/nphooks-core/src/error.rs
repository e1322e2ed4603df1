//! The shared crate's errors, one type per concern, so each signature says what can
//! fail. Each message names what was wrong.

/// A configuration variable is missing or invalid; start-up stops on it. The one
/// configuration error of every nphooks crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration variable {name} {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(name: &'static str, problem: impl Into<String>) -> Self {
        ConfigError {
            name,
            problem: problem.into(),
        }
    }

    /// `name` is required and not set.
    pub fn not_set(name: &'static str) -> Self {
        Self::new(name, "is not set")
    }
}

/// A webhook body or a queue message that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON, or not a JSON object.
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),

    /// A required field is absent or null.
    #[error("missing required field `{0}`")]
    MissingField(&'static str),

    /// A field is present with the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },

    /// A queue message is not a valid envelope.
    #[error("invalid queue envelope: {0}")]
    Envelope(String),
}

/// A message could not be sent to a queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue {queue}: {message}")]
pub struct QueueError {
    pub queue: String,
    pub message: String,
}
