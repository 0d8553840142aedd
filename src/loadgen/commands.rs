//! Commands exactly as the Atlas login and channel servers write them
//! (BEHAVIOUR 2.2, 2.3, 2.8, 2.9; DECISIONS "PIN and PIC attempts").
//!
//! Written independently of the processor's `wire` module on purpose: the
//! generator stands for the external Go services, so a mistake shared by
//! both sides would otherwise go unnoticed.

use std::fmt::Write as _;

use uuid::Uuid;

/// Which input topic a command goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InputTopic {
    Account,
    Session,
}

impl InputTopic {
    pub fn token(self) -> &'static str {
        match self {
            InputTopic::Account => "COMMAND_TOPIC_ACCOUNT",
            InputTopic::Session => "COMMAND_TOPIC_ACCOUNT_SESSION",
        }
    }
}

/// Tenant identity as carried in headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: Uuid,
    pub region: String,
    pub major: u16,
    pub minor: u16,
}

/// A W3C trace context for one command (`traceparent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    pub span_id: u64,
}

impl TraceContext {
    /// `00-<trace>-<span>-01` (version 00, sampled).
    pub fn header(&self) -> String {
        format!("00-{:032x}-{:016x}-01", self.trace_id, self.span_id)
    }

    /// The trace id of a `traceparent` header value, if well formed.
    pub fn parse_trace_id(header: &[u8]) -> Option<u128> {
        let s = std::str::from_utf8(header).ok()?;
        let mut parts = s.split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        if version.len() != 2 || trace.len() != 32 {
            return None;
        }
        u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)
    }
}

/// One command ready to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub topic: InputTopic,
    /// Command type, for statistics.
    pub kind: &'static str,
    pub key: [u8; 8],
    pub value: String,
    pub headers: Vec<(&'static str, Vec<u8>)>,
    pub trace: TraceContext,
}

/// `key(n)`: uint32 little-endian, then four zero bytes.
pub fn key(n: u32) -> [u8; 8] {
    let b = n.to_le_bytes();
    [b[0], b[1], b[2], b[3], 0, 0, 0, 0]
}

/// Headers as the Go producers write them: trace, then tenant.
pub fn headers(tenant: &Tenant, trace: &TraceContext) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("traceparent", trace.header().into_bytes()),
        ("TENANT_ID", tenant.id.hyphenated().to_string().into_bytes()),
        ("REGION", tenant.region.clone().into_bytes()),
        ("MAJOR_VERSION", tenant.major.to_be_bytes().to_vec()),
        ("MINOR_VERSION", tenant.minor.to_be_bytes().to_vec()),
    ]
}

/// A JSON string as Go's `encoding/json` writes it.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    json_string(&mut out, s);
    out
}

/// Session command envelope (member order: sessionId, accountId, author, type, body).
fn session_envelope(
    session: Uuid,
    account_id: u32,
    author: &str,
    kind: &str,
    body: &str,
) -> String {
    format!(
        "{{\"sessionId\":\"{}\",\"accountId\":{},\"author\":{},\"type\":{},\"body\":{}}}",
        session.hyphenated(),
        account_id,
        q(author),
        q(kind),
        body
    )
}

/// The commands the generator can send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSpec<'a> {
    /// REST-originated account creation (BEHAVIOUR 2.7), keyed by a random number.
    CreateAccount {
        name: &'a str,
        password: &'a str,
        random_key: u32,
    },
    DeleteAccount {
        account_id: u32,
    },
    /// PIN_ATTEMPT / PIC_ATTEMPT over Kafka (DECISIONS).
    Attempt {
        pic: bool,
        account_id: u32,
        success: bool,
        ip: &'a str,
        hwid: &'a str,
    },
    /// atlas-login's login packet; `account_id` is the socket's bound id (0 before binding).
    Login {
        session: Uuid,
        account_id: u32,
        name: &'a str,
        password: &'a str,
        ip: &'a str,
        hwid: &'a str,
    },
    /// atlas-login's character selection: state 2, `{ipAddress, port, characterId}`.
    SelectCharacter {
        session: Uuid,
        account_id: u32,
        channel_ip: &'a str,
        port: u16,
        character_id: u32,
    },
    /// atlas-channel's arrival: state 1, `{characterId}`.
    ChannelArrive {
        session: Uuid,
        account_id: u32,
        character_id: u32,
    },
    /// atlas-channel's channel change / cash-shop exit: state 2, `{ipAddress, port}`.
    ChangeChannel {
        session: Uuid,
        account_id: u32,
        channel_ip: &'a str,
        port: u16,
    },
    /// A socket closed (`author` LOGIN or CHANNEL), or the REST logout (INTERNAL, nil session).
    Logout {
        session: Uuid,
        account_id: u32,
        author: &'a str,
    },
}

impl CommandSpec<'_> {
    /// Builds the record: topic, key, JSON and headers.
    pub fn build(&self, tenant: &Tenant, trace: TraceContext) -> Command {
        let (topic, kind, key, value) = match self {
            CommandSpec::CreateAccount {
                name,
                password,
                random_key,
            } => (
                InputTopic::Account,
                "CREATE",
                key(*random_key),
                format!(
                    "{{\"type\":\"CREATE\",\"body\":{{\"name\":{},\"password\":{}}}}}",
                    q(name),
                    q(password)
                ),
            ),
            CommandSpec::DeleteAccount { account_id } => (
                InputTopic::Account,
                "DELETE",
                key(*account_id),
                format!("{{\"type\":\"DELETE\",\"body\":{{\"accountId\":{account_id}}}}}"),
            ),
            CommandSpec::Attempt {
                pic,
                account_id,
                success,
                ip,
                hwid,
            } => {
                let kind = if *pic { "PIC_ATTEMPT" } else { "PIN_ATTEMPT" };
                (
                    InputTopic::Account,
                    kind,
                    key(*account_id),
                    format!(
                        "{{\"type\":\"{kind}\",\"body\":{{\"accountId\":{account_id},\"success\":{success},\"ipAddress\":{},\"hwid\":{}}}}}",
                        q(ip),
                        q(hwid)
                    ),
                )
            }
            CommandSpec::Login {
                session,
                account_id,
                name,
                password,
                ip,
                hwid,
            } => (
                InputTopic::Session,
                "CREATE",
                key(*account_id),
                session_envelope(
                    *session,
                    *account_id,
                    "LOGIN",
                    "CREATE",
                    &format!(
                        "{{\"accountName\":{},\"password\":{},\"ipAddress\":{},\"hwid\":{}}}",
                        q(name),
                        q(password),
                        q(ip),
                        q(hwid)
                    ),
                ),
            ),
            CommandSpec::SelectCharacter {
                session,
                account_id,
                channel_ip,
                port,
                character_id,
            } => (
                InputTopic::Session,
                "PROGRESS_STATE",
                key(*account_id),
                session_envelope(
                    *session,
                    *account_id,
                    "LOGIN",
                    "PROGRESS_STATE",
                    &format!(
                        "{{\"state\":2,\"params\":{{\"ipAddress\":{},\"port\":{port},\"characterId\":{character_id}}}}}",
                        q(channel_ip)
                    ),
                ),
            ),
            CommandSpec::ChannelArrive {
                session,
                account_id,
                character_id,
            } => (
                InputTopic::Session,
                "PROGRESS_STATE",
                key(*account_id),
                session_envelope(
                    *session,
                    *account_id,
                    "CHANNEL",
                    "PROGRESS_STATE",
                    &format!("{{\"state\":1,\"params\":{{\"characterId\":{character_id}}}}}"),
                ),
            ),
            CommandSpec::ChangeChannel {
                session,
                account_id,
                channel_ip,
                port,
            } => (
                InputTopic::Session,
                "PROGRESS_STATE",
                key(*account_id),
                session_envelope(
                    *session,
                    *account_id,
                    "CHANNEL",
                    "PROGRESS_STATE",
                    &format!(
                        "{{\"state\":2,\"params\":{{\"ipAddress\":{},\"port\":{port}}}}}",
                        q(channel_ip)
                    ),
                ),
            ),
            CommandSpec::Logout {
                session,
                account_id,
                author,
            } => (
                InputTopic::Session,
                "LOGOUT",
                key(*account_id),
                session_envelope(*session, *account_id, author, "LOGOUT", "{}"),
            ),
        };
        Command {
            topic,
            kind,
            key,
            value,
            headers: headers(tenant, &trace),
            trace,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S1: &str = "a0000000-0000-4000-8000-000000000001";

    fn t1() -> Tenant {
        Tenant {
            id: Uuid::parse_str("0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f").unwrap(),
            region: "GMS".into(),
            major: 83,
            minor: 1,
        }
    }

    fn trace() -> TraceContext {
        TraceContext {
            trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736,
            span_id: 0x00f067aa0ba902b7,
        }
    }

    fn s1() -> Uuid {
        Uuid::parse_str(S1).unwrap()
    }

    fn build(spec: CommandSpec<'_>) -> Command {
        spec.build(&t1(), trace())
    }

    #[test]
    fn headers_are_tenant_and_traceparent_bytes() {
        let c = build(CommandSpec::DeleteAccount { account_id: 7 });
        assert_eq!(
            c.headers,
            vec![
                (
                    "traceparent",
                    b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec()
                ),
                (
                    "TENANT_ID",
                    b"0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f".to_vec()
                ),
                ("REGION", b"GMS".to_vec()),
                ("MAJOR_VERSION", vec![0x00, 0x53]),
                ("MINOR_VERSION", vec![0x00, 0x01]),
            ]
        );
        assert_eq!(
            TraceContext::parse_trace_id(&c.headers[0].1),
            Some(0x4bf92f3577b34da6a3ce929d0e0e4736)
        );
        assert_eq!(TraceContext::parse_trace_id(b"garbage"), None);
    }

    #[test]
    fn account_commands() {
        let c = build(CommandSpec::CreateAccount {
            name: "alice",
            password: "secret",
            random_key: 0x1234_5678,
        });
        assert_eq!((c.topic, c.kind), (InputTopic::Account, "CREATE"));
        assert_eq!(c.key, [0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0]);
        assert_eq!(
            c.value,
            r#"{"type":"CREATE","body":{"name":"alice","password":"secret"}}"#
        );
        let c = build(CommandSpec::DeleteAccount { account_id: 7 });
        assert_eq!(c.key, [7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(c.value, r#"{"type":"DELETE","body":{"accountId":7}}"#);
        let c = build(CommandSpec::Attempt {
            pic: false,
            account_id: 7,
            success: false,
            ip: "10.0.0.5",
            hwid: "a1b2c3",
        });
        assert_eq!((c.topic, c.kind), (InputTopic::Account, "PIN_ATTEMPT"));
        assert_eq!(
            c.value,
            r#"{"type":"PIN_ATTEMPT","body":{"accountId":7,"success":false,"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#
        );
        let c = build(CommandSpec::Attempt {
            pic: true,
            account_id: 7,
            success: true,
            ip: "10.0.0.5",
            hwid: "a1b2c3",
        });
        assert_eq!(
            c.value,
            r#"{"type":"PIC_ATTEMPT","body":{"accountId":7,"success":true,"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#
        );
    }

    #[test]
    fn session_commands_match_the_spec_examples() {
        let c = build(CommandSpec::Login {
            session: s1(),
            account_id: 0,
            name: "alice",
            password: "secret",
            ip: "10.0.0.5",
            hwid: "a1b2c3",
        });
        assert_eq!(
            (c.topic, c.kind, c.key),
            (InputTopic::Session, "CREATE", [0; 8])
        );
        assert_eq!(
            c.value,
            format!(
                r#"{{"sessionId":"{S1}","accountId":0,"author":"LOGIN","type":"CREATE","body":{{"accountName":"alice","password":"secret","ipAddress":"10.0.0.5","hwid":"a1b2c3"}}}}"#
            )
        );
        let c = build(CommandSpec::SelectCharacter {
            session: s1(),
            account_id: 7,
            channel_ip: "10.0.0.20",
            port: 7575,
            character_id: 1001,
        });
        assert_eq!(c.key, [7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            c.value,
            format!(
                r#"{{"sessionId":"{S1}","accountId":7,"author":"LOGIN","type":"PROGRESS_STATE","body":{{"state":2,"params":{{"ipAddress":"10.0.0.20","port":7575,"characterId":1001}}}}}}"#
            )
        );
        let c = build(CommandSpec::ChannelArrive {
            session: s1(),
            account_id: 7,
            character_id: 1001,
        });
        assert_eq!(
            c.value,
            format!(
                r#"{{"sessionId":"{S1}","accountId":7,"author":"CHANNEL","type":"PROGRESS_STATE","body":{{"state":1,"params":{{"characterId":1001}}}}}}"#
            )
        );
        let c = build(CommandSpec::ChangeChannel {
            session: s1(),
            account_id: 7,
            channel_ip: "10.0.0.21",
            port: 7576,
        });
        assert_eq!(
            c.value,
            format!(
                r#"{{"sessionId":"{S1}","accountId":7,"author":"CHANNEL","type":"PROGRESS_STATE","body":{{"state":2,"params":{{"ipAddress":"10.0.0.21","port":7576}}}}}}"#
            )
        );
        let c = build(CommandSpec::Logout {
            session: Uuid::nil(),
            account_id: 7,
            author: "INTERNAL",
        });
        assert_eq!((c.kind, c.key), ("LOGOUT", [7, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(
            c.value,
            r#"{"sessionId":"00000000-0000-0000-0000-000000000000","accountId":7,"author":"INTERNAL","type":"LOGOUT","body":{}}"#
        );
    }

    #[test]
    fn strings_are_escaped_as_go_does() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c<d>&e\u{2028}\n\u{1}\u{8}é");
        assert_eq!(out, r#""a\"b\\c\u003cd\u003e\u0026e\u2028\n\u0001\bé""#);
    }
}
