//! Turn a domain [`Output`] into the bytes of one Kafka record.

use super::events::{encode_account_status, encode_ban, encode_session_status};
use super::headers::{outbound_headers, TraceHeaders};
use super::ids::Tenant;
use super::key::message_key;
use super::time::TimeEncoding;
use crate::domain::effects::Output;

/// Output topics by their environment-variable token (the real name is the
/// variable's value, or the token itself when unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputTopic {
    AccountStatus,
    SessionStatus,
    Ban,
}

impl OutputTopic {
    pub fn env_token(self) -> &'static str {
        match self {
            OutputTopic::AccountStatus => "EVENT_TOPIC_ACCOUNT_STATUS",
            OutputTopic::SessionStatus => "EVENT_TOPIC_ACCOUNT_SESSION_STATUS",
            OutputTopic::Ban => "COMMAND_TOPIC_BAN",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireMessage {
    pub topic: OutputTopic,
    pub key: [u8; 8],
    pub headers: Vec<(String, Vec<u8>)>,
    pub value: Vec<u8>,
}

/// What is echoed from the command onto its outputs (W3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundContext {
    pub tenant: Tenant,
    pub trace: TraceHeaders,
    pub environment: Option<Vec<u8>>,
}

impl OutboundContext {
    /// Expiry outputs: the registry's tenant, no trace, no environment.
    pub fn tenant_only(tenant: Tenant) -> OutboundContext {
        OutboundContext {
            tenant,
            trace: TraceHeaders::default(),
            environment: None,
        }
    }
}

pub fn render(output: &Output, ctx: &OutboundContext, enc: TimeEncoding) -> WireMessage {
    let (topic, value) = match output {
        Output::AccountStatus(e) => (OutputTopic::AccountStatus, encode_account_status(e)),
        Output::SessionStatus(e) => (OutputTopic::SessionStatus, encode_session_status(e, enc)),
        Output::Ban { command, .. } => (OutputTopic::Ban, encode_ban(command, enc)),
    };
    WireMessage {
        topic,
        key: message_key(output.key_id().0),
        headers: outbound_headers(&ctx.tenant, &ctx.trace, ctx.environment.as_deref()),
        value,
    }
}
