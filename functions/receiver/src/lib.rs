//! The receiver Lambda: `authenticate → parse → dedupe → route → enqueue → answer`.

mod answer;
pub mod handler;

pub use handler::{Deps, Metrics, handle};
