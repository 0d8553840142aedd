//! Kafka headers: tenant (consumed and produced), W3C trace context and the
//! `ENVIRONMENT` header (echoed, W3).

use super::error::DecodeError;
use super::ids::{Tenant, TenantId, Uuid};

pub const TENANT_ID: &str = "TENANT_ID";
pub const REGION: &str = "REGION";
pub const MAJOR_VERSION: &str = "MAJOR_VERSION";
pub const MINOR_VERSION: &str = "MINOR_VERSION";
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
pub const ENVIRONMENT: &str = "ENVIRONMENT";

/// Trace context to write on outputs. The app may replace `traceparent` by
/// its own span's context; the domain only carries bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceHeaders {
    pub traceparent: Option<Vec<u8>>,
    pub tracestate: Option<Vec<u8>>,
}

/// Everything we read from the headers of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundHeaders {
    pub tenant: Tenant,
    pub trace: TraceHeaders,
    /// Non-empty `ENVIRONMENT` value, echoed on every output (W3).
    pub environment: Option<Vec<u8>>,
}

/// Read the headers of a consumed record. Header names are case-sensitive;
/// when a name repeats, the last occurrence wins (as a Go map built from the
/// header list would).
///
/// Rules:
/// * `TENANT_ID` absent, not exactly 36 bytes, not a canonical UUID, or the
///   nil UUID -> `missing_tenant` (W5).
/// * `REGION` absent -> `""` (as the original); present but not UTF-8 ->
///   `bad_header` (it is echoed as text and compared with `GMS`/`JMS`).
/// * `MAJOR_VERSION`/`MINOR_VERSION` absent -> 0 (as the original); present
///   but not exactly 2 bytes -> `bad_header`. The original silently used 0,
///   which for GMS >= 87 changes the gender default: a message we cannot
///   interpret faithfully is dead-lettered rather than guessed.
pub fn parse_headers<'a, I>(headers: I) -> Result<InboundHeaders, DecodeError>
where
    I: IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
{
    let mut tenant_id: Option<&[u8]> = None;
    let mut region: Option<&[u8]> = None;
    let mut major: Option<&[u8]> = None;
    let mut minor: Option<&[u8]> = None;
    let mut trace = TraceHeaders::default();
    let mut environment = None;
    for (name, value) in headers {
        let v = value.unwrap_or_default();
        match name {
            TENANT_ID => tenant_id = Some(v),
            REGION => region = Some(v),
            MAJOR_VERSION => major = Some(v),
            MINOR_VERSION => minor = Some(v),
            TRACEPARENT => trace.traceparent = Some(v.to_vec()),
            TRACESTATE => trace.tracestate = Some(v.to_vec()),
            ENVIRONMENT => environment = Some(v.to_vec()),
            _ => {}
        }
    }
    let tenant = tenant_from(tenant_id, region, major, minor)?;
    Ok(InboundHeaders {
        tenant,
        trace,
        environment: environment.filter(|e| !e.is_empty()),
    })
}

/// Only the tenant part of [`parse_headers`].
pub fn parse_tenant<'a, I>(headers: I) -> Result<Tenant, DecodeError>
where
    I: IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
{
    parse_headers(headers).map(|h| h.tenant)
}

fn tenant_from(
    id: Option<&[u8]>,
    region: Option<&[u8]>,
    major: Option<&[u8]>,
    minor: Option<&[u8]>,
) -> Result<Tenant, DecodeError> {
    let id = id.ok_or(DecodeError::MissingTenant("absent"))?;
    if id.len() != 36 {
        return Err(DecodeError::MissingTenant("not 36 bytes"));
    }
    let uuid = Uuid::parse_canonical(id).ok_or(DecodeError::MissingTenant("not a UUID"))?;
    if uuid.is_nil() {
        return Err(DecodeError::MissingTenant("nil UUID"));
    }
    let region = match region {
        None => String::new(),
        Some(r) => std::str::from_utf8(r)
            .map_err(|_| DecodeError::BadHeader {
                name: REGION,
                problem: "not UTF-8",
            })?
            .to_string(),
    };
    Ok(Tenant {
        id: TenantId(uuid),
        region,
        major: version(MAJOR_VERSION, major)?,
        minor: version(MINOR_VERSION, minor)?,
    })
}

fn version(name: &'static str, v: Option<&[u8]>) -> Result<u16, DecodeError> {
    match v {
        None => Ok(0),
        Some([hi, lo]) => Ok(u16::from_be_bytes([*hi, *lo])),
        Some(_) => Err(DecodeError::BadHeader {
            name,
            problem: "not exactly 2 bytes (big-endian uint16)",
        }),
    }
}

/// The headers of a produced message, in the original's group order: trace,
/// tenant, `ENVIRONMENT`. Within the trace and tenant groups the original's
/// order was random; we fix `traceparent, tracestate` and
/// `TENANT_ID, REGION, MAJOR_VERSION, MINOR_VERSION`.
pub fn outbound_headers(
    tenant: &Tenant,
    trace: &TraceHeaders,
    environment: Option<&[u8]>,
) -> Vec<(String, Vec<u8>)> {
    let mut h = Vec::with_capacity(7);
    if let Some(tp) = trace.traceparent.as_ref().filter(|t| !t.is_empty()) {
        h.push((TRACEPARENT.to_string(), tp.clone()));
        if let Some(ts) = trace.tracestate.as_ref().filter(|t| !t.is_empty()) {
            h.push((TRACESTATE.to_string(), ts.clone()));
        }
    }
    h.push((TENANT_ID.to_string(), tenant.id.0.to_bytes36().to_vec()));
    h.push((REGION.to_string(), tenant.region.as_bytes().to_vec()));
    h.push((
        MAJOR_VERSION.to_string(),
        tenant.major.to_be_bytes().to_vec(),
    ));
    h.push((
        MINOR_VERSION.to_string(),
        tenant.minor.to_be_bytes().to_vec(),
    ));
    if let Some(env) = environment.filter(|e| !e.is_empty()) {
        h.push((ENVIRONMENT.to_string(), env.to_vec()));
    }
    h
}
