//! The receiver Lambda: `authenticate → parse → dedupe → route → enqueue → answer`.

mod answer;
mod deps;
pub mod handler;

pub use answer::{Outcome, ReceiverError, answer, status};
pub use deps::{Deps, Metrics};
pub use handler::{handle, receive};
