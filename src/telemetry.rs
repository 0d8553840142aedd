//! Logging setup and trace-context continuation (docs/adr/0003-tracing.md).
//!
//! Each command is processed inside a `tracing` span that continues the
//! command's W3C trace: the span keeps the incoming trace id, gets its own
//! span id, and that span id is the parent written in the `traceparent` of
//! every output of the command. Log lines emitted while the command is
//! processed carry the span's fields (trace id, tenant, account id, session
//! id), in JSON with `LOG_FORMAT=json`.
//!
//! Spans are not exported: OTLP export would pull the OpenTelemetry SDK and
//! a gRPC/HTTP stack into every build, so the default build only propagates
//! the context (and says so at startup when `TRACE_ENDPOINT` is set).

use std::hash::{BuildHasher, Hash};
use std::sync::OnceLock;

use crate::settings::LogFormat;
use crate::wire::headers::TraceHeaders;

/// Installs the global subscriber: env-filter syntax, stderr, text or JSON.
/// JSON lines carry the current span's fields under `span`.
pub fn init_logging(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// Says once, at startup, that `TRACE_ENDPOINT` has no effect in this build.
pub fn warn_if_trace_endpoint_set(endpoint: Option<&str>) {
    if let Some(endpoint) = endpoint {
        tracing::warn!(
            endpoint,
            "TRACE_ENDPOINT is set, but OTLP span export is not compiled into this build; \
             spans are not exported (trace context is still continued on every output's \
             traceparent and in the logs)"
        );
    }
}

/// The trace context of one command's processing span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingTrace {
    /// 32 lowercase hex digits: the command's, or a new one if it had none.
    pub trace_id: String,
    /// 16 lowercase hex digits: this processing span.
    pub span_id: String,
    /// The command's span (16 hex digits), if it carried a valid traceparent.
    pub parent_span_id: Option<String>,
    /// Trace flags (2 hex digits), kept from the command; `01` for a new trace.
    pub flags: String,
    /// Kept only when the command's traceparent was valid (W3C).
    pub tracestate: Option<Vec<u8>>,
}

impl ProcessingTrace {
    /// Continues the command's trace for the record at `partition`/`offset`.
    ///
    /// The span id is derived from the record's position (with a per-process
    /// random key), not drawn per call: a command that waits for slow work is
    /// handled twice (`process`, then `resume`) and both halves must log and
    /// write the same span.
    pub fn continue_from(incoming: &TraceHeaders, partition: u32, offset: i64) -> Self {
        let parsed = incoming
            .traceparent
            .as_deref()
            .and_then(|tp| std::str::from_utf8(tp).ok())
            .and_then(parse_traceparent);
        match parsed {
            Some(parent) => ProcessingTrace {
                span_id: hex64(span_hash(&(parent.trace_id, partition, offset))),
                trace_id: parent.trace_id.to_string(),
                parent_span_id: Some(parent.span_id.to_string()),
                flags: parent.flags.to_string(),
                tracestate: incoming.tracestate.clone().filter(|s| !s.is_empty()),
            },
            None => {
                let hi = span_hash(&("trace-hi", partition, offset));
                let lo = span_hash(&("trace-lo", partition, offset));
                ProcessingTrace {
                    trace_id: format!("{}{}", hex64(hi), hex64(lo)),
                    span_id: hex64(span_hash(&("span", partition, offset))),
                    parent_span_id: None,
                    flags: "01".to_string(),
                    tracestate: None,
                }
            }
        }
    }

    /// `00-<trace id>-<span id>-<flags>`.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }

    /// The trace headers of the command's outputs.
    pub fn headers(&self) -> TraceHeaders {
        TraceHeaders {
            traceparent: Some(self.traceparent().into_bytes()),
            tracestate: self.tracestate.clone(),
        }
    }
}

/// What the processing span records about a command (never a secret).
#[derive(Debug, Clone)]
pub struct CommandFields<'a> {
    /// From `COMMAND_TOPIC_ACCOUNT_SESSION` (else `COMMAND_TOPIC_ACCOUNT`).
    pub session_topic: bool,
    pub command_type: &'static str,
    pub account_id: Option<u32>,
    pub account_name: Option<&'a str>,
    pub session_id: Option<String>,
}

/// The span a command is processed in, named after the consumer as the
/// original's (`account_command`, `account_session_command`).
pub fn command_span(
    trace: &ProcessingTrace,
    tenant: &crate::wire::ids::Tenant,
    fields: CommandFields<'_>,
) -> tracing::Span {
    use tracing::field::Empty;
    macro_rules! span {
        ($name:literal) => {
            tracing::info_span!(
                $name,
                trace_id = %trace.trace_id,
                span_id = %trace.span_id,
                parent_span_id = trace.parent_span_id.as_deref(),
                tenant = %tenant.id,
                region = %tenant.region,
                command = fields.command_type,
                account_id = Empty,
                account_name = Empty,
                session_id = Empty,
            )
        };
    }
    let span = if fields.session_topic {
        span!("account_session_command")
    } else {
        span!("account_command")
    };
    if let Some(id) = fields.account_id {
        span.record("account_id", id);
    }
    if let Some(name) = fields.account_name {
        span.record("account_name", name);
    }
    if let Some(session) = &fields.session_id {
        span.record("session_id", session.as_str());
    }
    span
}

struct Traceparent<'a> {
    trace_id: &'a str,
    span_id: &'a str,
    flags: &'a str,
}

/// W3C Trace Context `traceparent`: version (not `ff`), 32-hex trace id and
/// 16-hex parent id, neither all zeros, 2-hex flags; version `00` has exactly
/// four fields, later versions may append more.
fn parse_traceparent(s: &str) -> Option<Traceparent<'_>> {
    let parts: Vec<&str> = s.trim().split('-').collect();
    let [version, trace_id, span_id, flags, rest @ ..] = parts.as_slice() else {
        return None;
    };
    let lower_hex = |p: &str, len: usize| {
        p.len() == len && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let ok = lower_hex(version, 2)
        && *version != "ff"
        && (*version != "00" || rest.is_empty())
        && lower_hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && lower_hex(span_id, 16)
        && span_id.bytes().any(|b| b != b'0')
        && lower_hex(flags, 2);
    ok.then_some(Traceparent {
        trace_id,
        span_id,
        flags,
    })
}

/// A non-zero 64-bit id; stable within this process for the same input.
fn span_hash(value: &impl Hash) -> u64 {
    static KEYS: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    KEYS.get_or_init(Default::default).hash_one(value).max(1)
}

fn hex64(v: u64) -> String {
    format!("{v:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn incoming(tp: &[u8], state: Option<&[u8]>) -> TraceHeaders {
        TraceHeaders {
            traceparent: Some(tp.to_vec()),
            tracestate: state.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_a_new_span() {
        let t = ProcessingTrace::continue_from(&incoming(TP, Some(b"k=v")), 2, 40);
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_ne!(t.span_id, "00f067aa0ba902b7");
        assert_eq!(t.span_id.len(), 16);
        assert_eq!(t.flags, "01");
        let h = t.headers();
        let tp = String::from_utf8(h.traceparent.unwrap()).unwrap();
        assert_eq!(
            tp,
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", t.span_id)
        );
        assert_eq!(h.tracestate.as_deref(), Some(&b"k=v"[..]));
    }

    #[test]
    fn the_span_is_the_same_for_process_and_resume_and_differs_per_record() {
        let a = ProcessingTrace::continue_from(&incoming(TP, None), 2, 40);
        assert_eq!(
            a,
            ProcessingTrace::continue_from(&incoming(TP, None), 2, 40)
        );
        let b = ProcessingTrace::continue_from(&incoming(TP, None), 2, 41);
        assert_eq!(a.trace_id, b.trace_id);
        assert_ne!(a.span_id, b.span_id);
    }

    #[test]
    fn flags_are_kept() {
        let t = ProcessingTrace::continue_from(
            &incoming(
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                None,
            ),
            0,
            1,
        );
        assert_eq!(t.flags, "00");
    }

    #[test]
    fn a_missing_or_invalid_traceparent_starts_a_new_trace_without_tracestate() {
        for bad in [
            &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"[..],
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            b"garbage",
            b"",
        ] {
            let t = ProcessingTrace::continue_from(&incoming(bad, Some(b"k=v")), 1, 7);
            assert_ne!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(t.trace_id.len(), 32);
            assert!(t.trace_id.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(t.parent_span_id, None);
            assert_eq!(t.tracestate, None);
            assert_eq!(t.traceparent().len(), 55);
        }
        let none = ProcessingTrace::continue_from(&TraceHeaders::default(), 1, 7);
        assert_eq!(none.parent_span_id, None);
        // A later version may carry extra fields.
        let v1 = ProcessingTrace::continue_from(
            &incoming(
                b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                None,
            ),
            1,
            7,
        );
        assert_eq!(v1.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    }
}
