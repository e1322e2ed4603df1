//! What can go wrong reading or writing the idempotency table, for both of its ports
//! ([`crate::ledger::DeliveryLedger`], [`crate::claims::EffectClaims`]) and the rate
//! limiter that shares the table.

/// A failed table call. Each message names the table.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The table could not be read or written (throttled, down, unreachable): an outage
    /// to ride out.
    #[error("idempotency table {table}: {message}")]
    Unavailable { table: String, message: String },

    /// The table refused a request as invalid (a DynamoDB `ValidationException`): a bug
    /// to fix, not an outage to ride out.
    #[error("idempotency table {table} refused the request: {message}")]
    Rejected { table: String, message: String },
}

impl StoreError {
    /// An outage of `table`: `cause` says what failed.
    pub fn unavailable(table: &str, cause: impl std::fmt::Display) -> Self {
        StoreError::Unavailable {
            table: table.to_owned(),
            message: cause.to_string(),
        }
    }

    /// `table` refused the request itself: `cause` says why.
    pub fn rejected(table: &str, cause: impl std::fmt::Display) -> Self {
        StoreError::Rejected {
            table: table.to_owned(),
            message: cause.to_string(),
        }
    }
}
