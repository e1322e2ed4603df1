//! The `nphooks` command: `main.rs` parses arguments, [`commands`] runs them.
#![allow(clippy::print_stdout)]

pub mod commands;
pub mod http_server;
pub mod ops;
pub mod queues;
pub mod send;
pub mod serve;
pub mod sinks;
