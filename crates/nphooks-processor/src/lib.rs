//! The runtime every processor Lambda shares.
//!
//! For each SQS record, on its own: decode the envelope (only a parsed, validated message
//! reaches a [`Sink`]), claim `integration#delivery_key`, deliver within a deadline, then
//! complete, release (transient failure: retried by SQS), or dead-letter (permanent
//! failure: straight to `DLQ_URL`, acknowledged). Failed records are reported through
//! `SqsBatchResponse` so one bad message never blocks the others.

pub mod config;
mod error;
pub mod http;
mod runtime;

pub use config::ProcessorConfig;
pub use error::{Error, Result};
pub use runtime::{
    AWS_TIMEOUTS, Delivered, ProcessorDeps, RecordOutcome, Sink, SinkError, Startup, process_batch,
    process_records, run_lambda,
};
