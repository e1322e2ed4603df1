/// What can go wrong setting a processor up. Each message names the variable or value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] nphooks_core::Error),

    /// An outbound URL is not acceptable.
    #[error("configuration variable {name} {problem}")]
    Url { name: &'static str, problem: String },

    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    HttpClient(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
