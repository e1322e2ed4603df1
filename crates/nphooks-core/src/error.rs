use crate::signature::AuthFailure;

/// Everything that can go wrong in the shared crate. Each message names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration variable is missing or invalid; start-up stops on it.
    #[error("configuration variable {name} {problem}")]
    Config { name: &'static str, problem: String },

    /// The request failed authentication.
    #[error("unauthorized: {0}")]
    Unauthorized(AuthFailure),

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

    /// A message could not be sent to a queue.
    #[error("queue {queue}: {message}")]
    Queue { queue: String, message: String },
}

impl Error {
    /// What is wrong, without the variable's name when it is a `Config` error: for crates
    /// with their own configuration error type.
    pub fn problem(&self) -> String {
        match self {
            Error::Config { problem, .. } => problem.clone(),
            other => other.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
