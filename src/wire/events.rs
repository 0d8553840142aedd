//! Produced messages: account status events, session status events and ban
//! commands, with the original's member order and field types.

use super::error::DecodeError;
use super::fields;
use super::gojson::{write_i64, write_str, write_u64};
use super::ids::{AccountId, SessionId};
use super::json::{self, name_matches, Value};
use super::params::Params;
use super::time::{rfc3339, TimeEncoding};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Created,
    LoggedIn,
    LoggedOut,
    Deleted,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Created => "CREATED",
            AccountStatus::LoggedIn => "LOGGED_IN",
            AccountStatus::LoggedOut => "LOGGED_OUT",
            AccountStatus::Deleted => "DELETED",
        }
    }

    fn parse(s: &str) -> Option<AccountStatus> {
        Some(match s {
            "CREATED" => AccountStatus::Created,
            "LOGGED_IN" => AccountStatus::LoggedIn,
            "LOGGED_OUT" => AccountStatus::LoggedOut,
            "DELETED" => AccountStatus::Deleted,
            _ => return None,
        })
    }
}

/// `EVENT_TOPIC_ACCOUNT_STATUS`: `{"account_id","name","status"}` (snake
/// case id: every consumer decodes it so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStatusEvent {
    pub account_id: AccountId,
    pub name: String,
    pub status: AccountStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    SystemError,
    NotRegistered,
    DeletedOrBlocked,
    AlreadyLoggedIn,
    IncorrectPassword,
    TooManyAttempts,
    InvalidPin,
    InvalidPic,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::SystemError => "SYSTEM_ERROR",
            ErrorCode::NotRegistered => "NOT_REGISTERED",
            ErrorCode::DeletedOrBlocked => "DELETED_OR_BLOCKED",
            ErrorCode::AlreadyLoggedIn => "ALREADY_LOGGED_IN",
            ErrorCode::IncorrectPassword => "INCORRECT_PASSWORD",
            ErrorCode::TooManyAttempts => "TOO_MANY_ATTEMPTS",
            ErrorCode::InvalidPin => "INVALID_PIN",
            ErrorCode::InvalidPic => "INVALID_PIC",
        }
    }

    fn parse(s: &str) -> Option<ErrorCode> {
        Some(match s {
            "SYSTEM_ERROR" => ErrorCode::SystemError,
            "NOT_REGISTERED" => ErrorCode::NotRegistered,
            "DELETED_OR_BLOCKED" => ErrorCode::DeletedOrBlocked,
            "ALREADY_LOGGED_IN" => ErrorCode::AlreadyLoggedIn,
            "INCORRECT_PASSWORD" => ErrorCode::IncorrectPassword,
            "TOO_MANY_ATTEMPTS" => ErrorCode::TooManyAttempts,
            "INVALID_PIN" => ErrorCode::InvalidPin,
            "INVALID_PIC" => ErrorCode::InvalidPic,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionError {
    pub code: ErrorCode,
    pub reason: u8,
    /// Unix milliseconds, 0 = no expiry (W1, W8).
    pub until: u64,
    pub ip_address: String,
    pub hwid: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStatusBody {
    Created {
        ip_address: String,
        hwid: String,
    },
    /// Body `null`.
    RequestLicenseAgreement,
    StateChanged {
        state: u8,
        params: Params,
    },
    Error(SessionError),
}

impl SessionStatusBody {
    pub fn type_name(&self) -> &'static str {
        match self {
            SessionStatusBody::Created { .. } => "CREATED",
            SessionStatusBody::RequestLicenseAgreement => "REQUEST_LICENSE_AGREEMENT",
            SessionStatusBody::StateChanged { .. } => "STATE_CHANGED",
            SessionStatusBody::Error(_) => "ERROR",
        }
    }
}

/// `EVENT_TOPIC_ACCOUNT_SESSION_STATUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatusEvent {
    pub session_id: SessionId,
    pub account_id: AccountId,
    pub account_name: String,
    pub body: SessionStatusBody,
}

/// `COMMAND_TOPIC_BAN` `CREATE` (the only type we produce).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanCommand {
    pub ban_type: u8,
    pub value: String,
    pub reason: String,
    pub reason_code: u8,
    pub permanent: bool,
    /// Unix milliseconds (W1).
    pub expires_at: i64,
    pub issued_by: String,
}

fn write_time(o: &mut Vec<u8>, ms: i64, enc: TimeEncoding) {
    match enc {
        TimeEncoding::UnixMillis => write_i64(o, ms),
        TimeEncoding::Rfc3339 => {
            o.push(b'"');
            o.extend_from_slice(rfc3339(ms).as_bytes());
            o.push(b'"');
        }
    }
}

pub fn encode_account_status(e: &AccountStatusEvent) -> Vec<u8> {
    let mut o = Vec::with_capacity(64 + e.name.len());
    o.extend_from_slice(b"{\"account_id\":");
    write_u64(&mut o, e.account_id.0.into());
    o.extend_from_slice(b",\"name\":");
    write_str(&mut o, &e.name);
    o.extend_from_slice(b",\"status\":\"");
    o.extend_from_slice(e.status.as_str().as_bytes());
    o.extend_from_slice(b"\"}");
    o
}

pub fn encode_session_status(e: &SessionStatusEvent, enc: TimeEncoding) -> Vec<u8> {
    let mut o = Vec::with_capacity(192);
    o.extend_from_slice(b"{\"sessionId\":\"");
    o.extend_from_slice(&e.session_id.0.to_bytes36());
    o.extend_from_slice(b"\",\"accountId\":");
    write_u64(&mut o, e.account_id.0.into());
    o.extend_from_slice(b",\"accountName\":");
    write_str(&mut o, &e.account_name);
    o.extend_from_slice(b",\"type\":\"");
    o.extend_from_slice(e.body.type_name().as_bytes());
    o.extend_from_slice(b"\",\"body\":");
    match &e.body {
        SessionStatusBody::Created { ip_address, hwid } => {
            o.extend_from_slice(b"{\"ipAddress\":");
            write_str(&mut o, ip_address);
            o.extend_from_slice(b",\"hwid\":");
            write_str(&mut o, hwid);
            o.push(b'}');
        }
        SessionStatusBody::RequestLicenseAgreement => o.extend_from_slice(b"null"),
        SessionStatusBody::StateChanged { state, params } => {
            o.extend_from_slice(b"{\"state\":");
            write_u64(&mut o, (*state).into());
            o.extend_from_slice(b",\"params\":");
            o.extend_from_slice(params.as_str().as_bytes());
            o.push(b'}');
        }
        SessionStatusBody::Error(err) => {
            o.extend_from_slice(b"{\"code\":\"");
            o.extend_from_slice(err.code.as_str().as_bytes());
            o.extend_from_slice(b"\",\"reason\":");
            write_u64(&mut o, err.reason.into());
            o.extend_from_slice(b",\"until\":");
            match enc {
                TimeEncoding::UnixMillis => write_u64(&mut o, err.until),
                TimeEncoding::Rfc3339 => {
                    write_time(&mut o, i64::try_from(err.until).unwrap_or(i64::MAX), enc)
                }
            }
            o.extend_from_slice(b",\"ipAddress\":");
            write_str(&mut o, &err.ip_address);
            o.extend_from_slice(b",\"hwid\":");
            write_str(&mut o, &err.hwid);
            o.push(b'}');
        }
    }
    o.push(b'}');
    o
}

pub fn encode_ban(b: &BanCommand, enc: TimeEncoding) -> Vec<u8> {
    let mut o = Vec::with_capacity(192);
    o.extend_from_slice(b"{\"type\":\"CREATE\",\"body\":{\"banType\":");
    write_u64(&mut o, b.ban_type.into());
    o.extend_from_slice(b",\"value\":");
    write_str(&mut o, &b.value);
    o.extend_from_slice(b",\"reason\":");
    write_str(&mut o, &b.reason);
    o.extend_from_slice(b",\"reasonCode\":");
    write_u64(&mut o, b.reason_code.into());
    o.extend_from_slice(if b.permanent {
        b",\"permanent\":true"
    } else {
        b",\"permanent\":false"
    });
    o.extend_from_slice(b",\"expiresAt\":");
    write_time(&mut o, b.expires_at, enc);
    o.extend_from_slice(b",\"issuedBy\":");
    write_str(&mut o, &b.issued_by);
    o.extend_from_slice(b"}}");
    o
}

fn members(v: &Value) -> Result<&[(String, Value)], DecodeError> {
    match v {
        Value::Null => Ok(&[]),
        Value::Object(m) => Ok(m),
        _ => Err(DecodeError::ty("(document)", "expected an object")),
    }
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

/// Decode an account status event (Go-tolerant, for consumers and tests).
pub fn decode_account_status(value: &[u8]) -> Result<AccountStatusEvent, DecodeError> {
    let doc = json::parse(value)?;
    let (mut id, mut name, mut status) = (0u64, String::new(), String::new());
    for (k, v) in members(&doc)? {
        if name_matches(k, "account_id") {
            set(&mut id, fields::uint(v, "account_id", u32::MAX.into())?);
        } else if name_matches(k, "name") {
            set(&mut name, fields::string(v, "name")?);
        } else if name_matches(k, "status") {
            set(&mut status, fields::string(v, "status")?);
        }
    }
    let status = AccountStatus::parse(&status).ok_or_else(|| DecodeError::unknown_type(&status))?;
    Ok(AccountStatusEvent {
        account_id: AccountId(id as u32),
        name,
        status,
    })
}

/// Decode a session status event; `until` may be either W1 form.
pub fn decode_session_status(value: &[u8]) -> Result<SessionStatusEvent, DecodeError> {
    let doc = json::parse(value)?;
    let (mut sid, mut id, mut name, mut ty) = (SessionId::NIL, 0u64, String::new(), String::new());
    let mut bodies = Vec::new();
    for (k, v) in members(&doc)? {
        if name_matches(k, "sessionid") {
            if let Some(u) = fields::uuid(v, "sessionId")? {
                sid = SessionId(u);
            }
        } else if name_matches(k, "accountid") {
            set(&mut id, fields::uint(v, "accountId", u32::MAX.into())?);
        } else if name_matches(k, "accountname") {
            set(&mut name, fields::string(v, "accountName")?);
        } else if name_matches(k, "type") {
            set(&mut ty, fields::string(v, "type")?);
        } else if name_matches(k, "body") {
            bodies.push(v);
        }
    }
    let mut ip = String::new();
    let mut hwid = String::new();
    let body_members = |f: &mut dyn FnMut(&str, &Value) -> Result<(), DecodeError>| {
        for b in &bodies {
            if let Some(m) = fields::object(b, "body")? {
                for (k, v) in m {
                    f(k, v)?;
                }
            }
        }
        Ok::<(), DecodeError>(())
    };
    let body = match ty.as_str() {
        "CREATED" => {
            body_members(&mut |k, v| {
                if name_matches(k, "ipaddress") {
                    set(&mut ip, fields::string(v, "body.ipAddress")?);
                } else if name_matches(k, "hwid") {
                    set(&mut hwid, fields::string(v, "body.hwid")?);
                }
                Ok(())
            })?;
            SessionStatusBody::Created {
                ip_address: ip,
                hwid,
            }
        }
        "REQUEST_LICENSE_AGREEMENT" => SessionStatusBody::RequestLicenseAgreement,
        "STATE_CHANGED" => {
            let mut state = 0u64;
            let mut params = Value::Null;
            body_members(&mut |k, v| {
                if name_matches(k, "state") {
                    set(&mut state, fields::uint(v, "body.state", u8::MAX.into())?);
                } else if name_matches(k, "params") {
                    params = v.clone();
                }
                Ok(())
            })?;
            let params = Params::normalise(&params)
                .map_err(|_| DecodeError::ty("body.params", "number out of float64 range"))?;
            SessionStatusBody::StateChanged {
                state: state as u8,
                params,
            }
        }
        "ERROR" => {
            let (mut code, mut reason, mut until) = (String::new(), 0u64, 0i64);
            body_members(&mut |k, v| {
                if name_matches(k, "code") {
                    set(&mut code, fields::string(v, "body.code")?);
                } else if name_matches(k, "reason") {
                    set(&mut reason, fields::uint(v, "body.reason", u8::MAX.into())?);
                } else if name_matches(k, "until") {
                    set(&mut until, fields::time_millis(v, "body.until")?);
                } else if name_matches(k, "ipaddress") {
                    set(&mut ip, fields::string(v, "body.ipAddress")?);
                } else if name_matches(k, "hwid") {
                    set(&mut hwid, fields::string(v, "body.hwid")?);
                }
                Ok(())
            })?;
            let code = ErrorCode::parse(&code).ok_or_else(|| DecodeError::unknown_type(&code))?;
            SessionStatusBody::Error(SessionError {
                code,
                reason: reason as u8,
                until: u64::try_from(until).unwrap_or(0),
                ip_address: ip,
                hwid,
            })
        }
        other => return Err(DecodeError::unknown_type(other)),
    };
    Ok(SessionStatusEvent {
        session_id: sid,
        account_id: AccountId(id as u32),
        account_name: name,
        body,
    })
}

/// Decode a ban command; `expiresAt` may be either W1 form.
pub fn decode_ban(value: &[u8]) -> Result<BanCommand, DecodeError> {
    let doc = json::parse(value)?;
    let mut ty = String::new();
    let mut bodies = Vec::new();
    for (k, v) in members(&doc)? {
        if name_matches(k, "type") {
            set(&mut ty, fields::string(v, "type")?);
        } else if name_matches(k, "body") {
            bodies.push(v);
        }
    }
    if ty != "CREATE" {
        return Err(DecodeError::unknown_type(&ty));
    }
    let mut b = BanCommand {
        ban_type: 0,
        value: String::new(),
        reason: String::new(),
        reason_code: 0,
        permanent: false,
        expires_at: 0,
        issued_by: String::new(),
    };
    for body in bodies {
        let Some(m) = fields::object(body, "body")? else {
            continue;
        };
        for (k, v) in m {
            if name_matches(k, "bantype") {
                if let Some(n) = fields::uint(v, "body.banType", u8::MAX.into())? {
                    b.ban_type = n as u8;
                }
            } else if name_matches(k, "value") {
                set(&mut b.value, fields::string(v, "body.value")?);
            } else if name_matches(k, "reason") {
                set(&mut b.reason, fields::string(v, "body.reason")?);
            } else if name_matches(k, "reasoncode") {
                if let Some(n) = fields::uint(v, "body.reasonCode", u8::MAX.into())? {
                    b.reason_code = n as u8;
                }
            } else if name_matches(k, "permanent") {
                set(&mut b.permanent, fields::boolean(v, "body.permanent")?);
            } else if name_matches(k, "expiresat") {
                set(&mut b.expires_at, fields::time_millis(v, "body.expiresAt")?);
            } else if name_matches(k, "issuedby") {
                set(&mut b.issued_by, fields::string(v, "body.issuedBy")?);
            }
        }
    }
    Ok(b)
}
