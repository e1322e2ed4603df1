use nphooks_core::ConfigError;

/// What can go wrong setting a processor up. Each message names the variable or value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration variable is missing or invalid (an outbound URL included).
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    HttpClient(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
