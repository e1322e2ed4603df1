//! The runtime every processor Lambda shares.
//!
//! For each SQS record, on its own: decode the envelope (only a parsed, validated message
//! reaches a [`Sink`]), wait for its not-before time and a rate-limit slot, claim
//! `integration#delivery_key`, deliver within a deadline, then complete, retry later
//! (re-sent to its own queue with a delay, within a budget measured in time), or
//! dead-letter (its DLQ, body intact, with a classified reason). One bad message never
//! blocks the others: each record is acknowledged or reported on its own.

pub mod config;
mod error;
pub mod failure;
pub mod http;
mod lambda;
pub mod limiter;
pub mod metrics;
pub mod nextphone;
pub mod retry;
mod runtime;
mod settle;

pub use config::ProcessorConfig;
pub use error::{Error, Result};
pub use failure::{FailureReason, RetryAfter, SinkError, SmtpCode, StatusCode};
pub use lambda::{AWS_TIMEOUTS, FromSetup, HttpSink, SinkSetup, Startup, run, run_lambda};
pub use runtime::{Delivered, ProcessorDeps, RecordOutcome, Sink, process_batch, process_records};
pub use settle::Deferral;
