//! Why an input record cannot be processed; the reason becomes the
//! dead-letter reason (W7). Messages never contain field values, so they
//! can go into logs and the `dlq.error` header without leaking secrets.

use super::json::SyntaxError;

/// Largest command value we decode. The Atlas producers send a few hundred
/// bytes; anything near Kafka's 1 MB default is abuse.
pub const MAX_COMMAND_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("value of {size} bytes exceeds the limit of {MAX_COMMAND_BYTES} bytes")]
    TooLarge { size: usize },
    #[error("malformed JSON: {0}")]
    Syntax(#[from] SyntaxError),
    /// A well-formed document whose member has the wrong JSON type or range
    /// for the Go field it lands in (the original drops these).
    #[error("{field}: {problem}")]
    Type {
        field: &'static str,
        problem: &'static str,
    },
    /// The command's `type` is not one we handle. Holds at most 64 bytes of
    /// the type text for diagnosis.
    #[error("unknown type {0:?}")]
    UnknownType(String),
    #[error("missing or invalid TENANT_ID header: {0}")]
    MissingTenant(&'static str),
    #[error("invalid header {name}: {problem}")]
    BadHeader {
        name: &'static str,
        problem: &'static str,
    },
}

impl DecodeError {
    /// The dead-letter reason label (W7), also the metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Syntax(_) | DecodeError::Type { .. } => "bad_json",
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::MissingTenant(_) => "missing_tenant",
            DecodeError::BadHeader { .. } => "bad_header",
        }
    }

    pub(crate) fn unknown_type(t: &str) -> DecodeError {
        let mut end = t.len().min(64);
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        DecodeError::UnknownType(t[..end].to_string())
    }

    pub(crate) fn ty(field: &'static str, problem: &'static str) -> DecodeError {
        DecodeError::Type { field, problem }
    }
}
