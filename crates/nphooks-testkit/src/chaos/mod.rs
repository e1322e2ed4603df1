//! The seeded chaos soak on the in-memory adapters (issue 12): a fault plan drawn from
//! one seed ([`plan`]), fault-injecting wrappers of every port ([`ports`], [`sink`]),
//! crash points (a handler dropped at a port call, [`plan::unless_crashed`]), SQS's
//! event-source semantics on virtual time ([`sqs`]), a simulated NextPhone ([`sender`]),
//! and the driver that runs them and checks the ledger ([`soak`], [`report`]); the same
//! soak on the real adapters against moto, behind the fault proxy ([`moto`]).
//! The wrappers can run deliberately broken, to show the soak catches a removed guard.

pub mod moto;
pub mod moto_sqs;
pub mod plan;
pub mod ports;
pub mod report;
pub mod rng;
pub mod sender;
pub mod sink;
pub mod soak;
pub mod sqs;

pub use moto::run_on_moto;
pub use report::{SoakError, SoakReport};
pub use soak::{BrokenGuard, SoakConfig, run, run_blocking};

/// Locks a mutex, poisoned or not (a panicking test thread has already failed).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
