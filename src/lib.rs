//! The Atlas account and login-session service as a stream processor.
//!
//! `wire` is the byte-exact contract with the login server, channel servers
//! and the ban service; `domain` holds the pure rules; the rest wires them
//! onto the `topology` runtime.

pub mod config;
pub mod domain;
pub mod wire;

pub mod app;

// Service: process settings, operations HTTP, metrics, ban-check client, load generator.
pub mod bancheck;
pub mod http;
pub mod loadgen;
pub mod metrics;
pub mod settings;
pub mod telemetry;
