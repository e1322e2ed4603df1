//! The receiver Lambda: `authenticate → parse → dedupe → route → enqueue → answer`.

mod answer;
pub mod handler;

pub use answer::{Outcome, ReceiverError, answer, status};
pub use handler::{Deps, Metrics, handle, receive};
