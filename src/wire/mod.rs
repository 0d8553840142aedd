//! Everything that crosses Kafka: message keys, headers, JSON bodies.
//! Decoding follows Go's `encoding/json` (tolerant); encoding is byte-exact
//! with the original service.

pub mod bancheck;
pub mod commands;
pub mod error;
pub mod events;
mod fields;
pub mod gojson;
pub mod headers;
pub mod ids;
pub mod json;
pub mod key;
pub mod params;
pub mod redact;
pub mod render;
pub mod time;

pub use commands::{
    decode_account_command, decode_session_command, AccountCommand, SessionCommand,
};
pub use error::{DecodeError, MAX_COMMAND_BYTES};
pub use headers::{parse_headers, parse_tenant, InboundHeaders, TraceHeaders};
pub use redact::redact_secrets;
pub use render::{render, OutboundContext, OutputTopic, WireMessage};
pub use time::TimeEncoding;
