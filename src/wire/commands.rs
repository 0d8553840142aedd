//! Consumed commands: account commands (`COMMAND_TOPIC_ACCOUNT`) and session
//! commands (`COMMAND_TOPIC_ACCOUNT_SESSION`), decoded with Go's rules and
//! encodable back to the producers' exact bytes.

use super::error::{DecodeError, MAX_COMMAND_BYTES};
use super::fields;
use super::gojson::{write_compact, write_str, write_u64};
use super::ids::{AccountId, SessionId};
use super::json::{self, name_matches, Value};
use super::params::Params;
use std::fmt;

/// A clear-text password. Debug/Display never show it (D16).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Password {
        Password(s.into())
    }
    /// The clear text, for bcrypt and for re-encoding only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateAccount {
    pub name: String,
    pub password: Password,
}

/// A PIN or PIC attempt result (ours, DECISIONS "PIN and PIC attempts").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub account_id: AccountId,
    pub success: bool,
    pub ip_address: String,
    pub hwid: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    Create(CreateAccount),
    Delete { account_id: AccountId },
    PinAttempt(Attempt),
    PicAttempt(Attempt),
}

/// Which account state a command needs: by-name commands (account CREATE,
/// login) are owned by the name's partition, the rest by the account id's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteKey {
    Name(String),
    Id(AccountId),
}

impl AccountCommand {
    pub fn route_key(&self) -> RouteKey {
        match self {
            AccountCommand::Create(c) => RouteKey::Name(c.name.clone()),
            AccountCommand::Delete { account_id } => RouteKey::Id(*account_id),
            AccountCommand::PinAttempt(a) | AccountCommand::PicAttempt(a) => {
                RouteKey::Id(a.account_id)
            }
        }
    }

    /// The wire `type` (metric label).
    pub fn type_name(&self) -> &'static str {
        match self {
            AccountCommand::Create(_) => "CREATE",
            AccountCommand::Delete { .. } => "DELETE",
            AccountCommand::PinAttempt(_) => "PIN_ATTEMPT",
            AccountCommand::PicAttempt(_) => "PIC_ATTEMPT",
        }
    }
}

/// The issuer as the rules see it: `author` upper-cased (D8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuer {
    Login,
    Channel,
    /// `INTERNAL` or anything else: can never hold a session.
    Other(String),
}

impl Issuer {
    pub fn from_author(author: &str) -> Issuer {
        let up = author.to_uppercase();
        match up.as_str() {
            "LOGIN" => Issuer::Login,
            "CHANNEL" => Issuer::Channel,
            _ => Issuer::Other(up),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSession {
    pub account_name: String,
    pub password: Password,
    pub ip_address: String,
    pub hwid: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SessionCommandBody {
    /// A login attempt.
    Create(CreateSession),
    /// `params` keeps the producer's value as is, compacted (member order,
    /// duplicates and number text preserved) for re-encoding;
    /// `normalised` is its Go `interface{}` round trip, echoed in
    /// `STATE_CHANGED`.
    ProgressState {
        state: u8,
        params: Box<str>,
        normalised: Params,
    },
    Logout,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionCommand {
    pub session_id: SessionId,
    pub account_id: AccountId,
    /// The `author` member verbatim.
    pub author: String,
    pub body: SessionCommandBody,
}

impl SessionCommand {
    /// A login (`CREATE`) is by name: its envelope `accountId` is ignored
    /// (atlas-login sends 0).
    pub fn route_key(&self) -> RouteKey {
        match &self.body {
            SessionCommandBody::Create(c) => RouteKey::Name(c.account_name.clone()),
            _ => RouteKey::Id(self.account_id),
        }
    }

    pub fn issuer(&self) -> Issuer {
        Issuer::from_author(&self.author)
    }

    pub fn type_name(&self) -> &'static str {
        match self.body {
            SessionCommandBody::Create(_) => "CREATE",
            SessionCommandBody::ProgressState { .. } => "PROGRESS_STATE",
            SessionCommandBody::Logout => "LOGOUT",
        }
    }
}

fn parse_limited(value: &[u8]) -> Result<Value, DecodeError> {
    if value.len() > MAX_COMMAND_BYTES {
        return Err(DecodeError::TooLarge { size: value.len() });
    }
    Ok(json::parse(value)?)
}

/// The members of the top-level object; `null` is an all-zero command.
fn top_members(v: &Value) -> Result<&[(String, Value)], DecodeError> {
    match v {
        Value::Null => Ok(&[]),
        Value::Object(m) => Ok(m),
        _ => Err(DecodeError::ty("(document)", "expected an object")),
    }
}

/// Go decodes repeated `body` members into the same struct, so later members
/// only overwrite the fields they name. Apply every body in order.
fn each_body<'a>(
    bodies: &[&'a Value],
    mut apply: impl FnMut(&'a str, &'a Value) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    for b in bodies {
        if let Some(members) = fields::object(b, "body")? {
            for (k, v) in members {
                apply(k, v)?;
            }
        }
    }
    Ok(())
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

/// Decode a `COMMAND_TOPIC_ACCOUNT` value.
pub fn decode_account_command(value: &[u8]) -> Result<AccountCommand, DecodeError> {
    let doc = parse_limited(value)?;
    let mut ty = String::new();
    let mut bodies = Vec::new();
    for (k, v) in top_members(&doc)? {
        if name_matches(k, "type") {
            set(&mut ty, fields::string(v, "type")?);
        } else if name_matches(k, "body") {
            bodies.push(v);
        }
    }
    match ty.as_str() {
        "CREATE" => {
            let mut name = String::new();
            let mut password = String::new();
            each_body(&bodies, |k, v| {
                if name_matches(k, "name") {
                    set(&mut name, fields::string(v, "body.name")?);
                } else if name_matches(k, "password") {
                    set(&mut password, fields::string(v, "body.password")?);
                }
                Ok(())
            })?;
            Ok(AccountCommand::Create(CreateAccount {
                name,
                password: Password(password),
            }))
        }
        "DELETE" => {
            let mut id = 0u64;
            each_body(&bodies, |k, v| {
                if name_matches(k, "accountid") {
                    set(&mut id, fields::uint(v, "body.accountId", u32::MAX.into())?);
                }
                Ok(())
            })?;
            Ok(AccountCommand::Delete {
                account_id: AccountId(id as u32),
            })
        }
        "PIN_ATTEMPT" | "PIC_ATTEMPT" => {
            let mut a = Attempt {
                account_id: AccountId(0),
                success: false,
                ip_address: String::new(),
                hwid: String::new(),
            };
            each_body(&bodies, |k, v| {
                if name_matches(k, "accountid") {
                    if let Some(n) = fields::uint(v, "body.accountId", u32::MAX.into())? {
                        a.account_id = AccountId(n as u32);
                    }
                } else if name_matches(k, "success") {
                    set(&mut a.success, fields::boolean(v, "body.success")?);
                } else if name_matches(k, "ipaddress") {
                    set(&mut a.ip_address, fields::string(v, "body.ipAddress")?);
                } else if name_matches(k, "hwid") {
                    set(&mut a.hwid, fields::string(v, "body.hwid")?);
                }
                Ok(())
            })?;
            Ok(if ty == "PIN_ATTEMPT" {
                AccountCommand::PinAttempt(a)
            } else {
                AccountCommand::PicAttempt(a)
            })
        }
        other => Err(DecodeError::unknown_type(other)),
    }
}

/// Decode a `COMMAND_TOPIC_ACCOUNT_SESSION` value.
pub fn decode_session_command(value: &[u8]) -> Result<SessionCommand, DecodeError> {
    let doc = parse_limited(value)?;
    let mut session_id = SessionId::NIL;
    let mut account_id = 0u64;
    let mut author = String::new();
    let mut ty = String::new();
    let mut bodies = Vec::new();
    for (k, v) in top_members(&doc)? {
        if name_matches(k, "sessionid") {
            if let Some(u) = fields::uuid(v, "sessionId")? {
                session_id = SessionId(u);
            }
        } else if name_matches(k, "accountid") {
            set(
                &mut account_id,
                fields::uint(v, "accountId", u32::MAX.into())?,
            );
        } else if name_matches(k, "author") {
            set(&mut author, fields::string(v, "author")?);
        } else if name_matches(k, "type") {
            set(&mut ty, fields::string(v, "type")?);
        } else if name_matches(k, "body") {
            bodies.push(v);
        }
    }
    let body = match ty.as_str() {
        "CREATE" => {
            let mut c = CreateSession {
                account_name: String::new(),
                password: Password::default(),
                ip_address: String::new(),
                hwid: String::new(),
            };
            each_body(&bodies, |k, v| {
                if name_matches(k, "accountname") {
                    set(&mut c.account_name, fields::string(v, "body.accountName")?);
                } else if name_matches(k, "password") {
                    set(&mut c.password.0, fields::string(v, "body.password")?);
                } else if name_matches(k, "ipaddress") {
                    set(&mut c.ip_address, fields::string(v, "body.ipAddress")?);
                } else if name_matches(k, "hwid") {
                    set(&mut c.hwid, fields::string(v, "body.hwid")?);
                }
                Ok(())
            })?;
            SessionCommandBody::Create(c)
        }
        "PROGRESS_STATE" => {
            let mut state = 0u64;
            let mut params: &Value = &Value::Null;
            each_body(&bodies, |k, v| {
                if name_matches(k, "state") {
                    set(&mut state, fields::uint(v, "body.state", u8::MAX.into())?);
                } else if name_matches(k, "params") {
                    // interface{}: null does reset it, last member wins.
                    params = v;
                }
                Ok(())
            })?;
            let normalised = Params::normalise(params)
                .map_err(|_| DecodeError::ty("body.params", "number out of float64 range"))?;
            let mut raw = Vec::with_capacity(64);
            write_compact(&mut raw, params);
            let params: Box<str> = String::from_utf8_lossy(&raw).into();
            SessionCommandBody::ProgressState {
                state: state as u8,
                params,
                normalised,
            }
        }
        "LOGOUT" => {
            // The body is an empty struct: members are ignored, but a
            // non-object body is still a type error in Go.
            each_body(&bodies, |_, _| Ok(()))?;
            SessionCommandBody::Logout
        }
        other => return Err(DecodeError::unknown_type(other)),
    };
    Ok(SessionCommand {
        session_id,
        account_id: AccountId(account_id as u32),
        author,
        body,
    })
}

/// Encode an account command as the Go producers do (REST `POST /accounts`
/// for CREATE).
pub fn encode_account_command(cmd: &AccountCommand) -> Vec<u8> {
    let mut o = Vec::with_capacity(128);
    o.extend_from_slice(b"{\"type\":");
    write_str(&mut o, cmd.type_name());
    o.extend_from_slice(b",\"body\":{");
    match cmd {
        AccountCommand::Create(c) => {
            o.extend_from_slice(b"\"name\":");
            write_str(&mut o, &c.name);
            o.extend_from_slice(b",\"password\":");
            write_str(&mut o, c.password.expose());
        }
        AccountCommand::Delete { account_id } => {
            o.extend_from_slice(b"\"accountId\":");
            write_u64(&mut o, account_id.0.into());
        }
        AccountCommand::PinAttempt(a) | AccountCommand::PicAttempt(a) => {
            o.extend_from_slice(b"\"accountId\":");
            write_u64(&mut o, a.account_id.0.into());
            o.extend_from_slice(if a.success {
                b",\"success\":true"
            } else {
                b",\"success\":false"
            });
            o.extend_from_slice(b",\"ipAddress\":");
            write_str(&mut o, &a.ip_address);
            o.extend_from_slice(b",\"hwid\":");
            write_str(&mut o, &a.hwid);
        }
    }
    o.extend_from_slice(b"}}");
    o
}

/// Encode a session command as atlas-login / atlas-channel / the REST
/// `DELETE /accounts/{id}/session` handler do.
pub fn encode_session_command(cmd: &SessionCommand) -> Vec<u8> {
    let mut o = Vec::with_capacity(192);
    o.extend_from_slice(b"{\"sessionId\":\"");
    o.extend_from_slice(&cmd.session_id.0.to_bytes36());
    o.extend_from_slice(b"\",\"accountId\":");
    write_u64(&mut o, cmd.account_id.0.into());
    o.extend_from_slice(b",\"author\":");
    write_str(&mut o, &cmd.author);
    o.extend_from_slice(b",\"type\":");
    write_str(&mut o, cmd.type_name());
    o.extend_from_slice(b",\"body\":");
    match &cmd.body {
        SessionCommandBody::Create(c) => {
            o.extend_from_slice(b"{\"accountName\":");
            write_str(&mut o, &c.account_name);
            o.extend_from_slice(b",\"password\":");
            write_str(&mut o, c.password.expose());
            o.extend_from_slice(b",\"ipAddress\":");
            write_str(&mut o, &c.ip_address);
            o.extend_from_slice(b",\"hwid\":");
            write_str(&mut o, &c.hwid);
            o.push(b'}');
        }
        SessionCommandBody::ProgressState { state, params, .. } => {
            o.extend_from_slice(b"{\"state\":");
            write_u64(&mut o, (*state).into());
            o.extend_from_slice(b",\"params\":");
            o.extend_from_slice(params.as_bytes());
            o.push(b'}');
        }
        SessionCommandBody::Logout => o.extend_from_slice(b"{}"),
    }
    o.push(b'}');
    o
}
