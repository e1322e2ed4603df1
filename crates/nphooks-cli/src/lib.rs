//! The `nphooks` command: `main.rs` parses arguments, [`commands`] runs them.
#![allow(clippy::print_stdout)]

pub mod bench;
pub mod bill;
pub mod body;
pub mod commands;
pub mod dashboard;
mod event_source;
pub mod http_server;
pub mod ops;
pub mod progress;
pub mod queues;
pub mod send;
pub mod serve;
pub mod sinks;
pub mod soak;
