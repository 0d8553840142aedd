//! Reading the processor's outputs the way the login/channel servers and
//! atlas-ban read them (BEHAVIOUR 10): by member name, tolerant of extras.

use serde_json::Value;
use uuid::Uuid;

use super::commands::TraceContext;

/// Which output topic an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutputTopic {
    AccountStatus,
    SessionStatus,
    Ban,
    DeadLetter,
}

impl OutputTopic {
    pub fn short(self) -> &'static str {
        match self {
            OutputTopic::AccountStatus => "AS",
            OutputTopic::SessionStatus => "SS",
            OutputTopic::Ban => "BAN",
            OutputTopic::DeadLetter => "DLQ",
        }
    }
}

/// One output, reduced to what the generator correlates and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputEvent {
    pub topic: OutputTopic,
    pub tenant: Option<Uuid>,
    pub account_id: u32,
    pub name: String,
    pub session: Option<Uuid>,
    /// Status (account status), type (session status, ban) or dlq reason.
    pub kind: String,
    /// ERROR code of a session status event.
    pub code: Option<String>,
    /// `reason`/`until` of an ERROR, or `reasonCode`/`expiresAt` of a ban, as JSON text.
    pub detail: Option<String>,
    pub trace_id: Option<u128>,
}

/// Decodes one output record. `None` for an undecodable value (counted by the caller).
pub fn decode(
    topic: OutputTopic,
    value: Option<&[u8]>,
    headers: &[(String, Vec<u8>)],
) -> Option<OutputEvent> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    };
    let tenant = header("TENANT_ID")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| Uuid::parse_str(s).ok());
    let trace_id = header("traceparent").and_then(TraceContext::parse_trace_id);
    let mut ev = OutputEvent {
        topic,
        tenant,
        account_id: 0,
        name: String::new(),
        session: None,
        kind: String::new(),
        code: None,
        detail: None,
        trace_id,
    };
    if topic == OutputTopic::DeadLetter {
        ev.kind = header("dlq.reason")
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        return Some(ev);
    }
    let v: Value = serde_json::from_slice(value?).ok()?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    match topic {
        OutputTopic::AccountStatus => {
            ev.account_id = u32::try_from(n(&v, "account_id")).ok()?;
            ev.name = s(&v, "name");
            ev.kind = s(&v, "status");
        }
        OutputTopic::SessionStatus => {
            ev.session = v
                .get("sessionId")
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok());
            ev.account_id = u32::try_from(n(&v, "accountId")).ok()?;
            ev.name = s(&v, "accountName");
            ev.kind = s(&v, "type");
            if ev.kind == "ERROR" {
                let body = v.get("body")?;
                ev.code = Some(s(body, "code"));
                ev.detail = Some(format!(
                    "reason={} until={}",
                    body.get("reason").unwrap_or(&Value::Null),
                    body.get("until").unwrap_or(&Value::Null)
                ));
            }
        }
        OutputTopic::Ban => {
            ev.kind = s(&v, "type");
            let body = v.get("body")?;
            ev.account_id = s(body, "value").parse().unwrap_or(0);
            ev.detail = Some(format!(
                "reasonCode={} expiresAt={}",
                body.get("reasonCode").unwrap_or(&Value::Null),
                body.get("expiresAt").unwrap_or(&Value::Null)
            ));
        }
        OutputTopic::DeadLetter => {}
    }
    Some(ev)
}

impl OutputEvent {
    /// One readable line for `--print-events`.
    pub fn line(&self) -> String {
        let tenant = self
            .tenant
            .map(|t| t.hyphenated().to_string()[..8].to_owned())
            .unwrap_or_else(|| "-".to_owned());
        let session = self
            .session
            .map(|s| s.hyphenated().to_string())
            .unwrap_or_else(|| "-".to_owned());
        let mut line = format!(
            "{:<3} tenant={} account={} session={} {}",
            self.topic.short(),
            tenant,
            self.account_id,
            session,
            self.kind
        );
        if let Some(code) = &self.code {
            line.push(' ');
            line.push_str(code);
        }
        if !self.name.is_empty() {
            line.push_str(" name=");
            line.push_str(&self.name);
        }
        if let Some(d) = &self.detail {
            line.push(' ');
            line.push_str(d);
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs() -> Vec<(String, Vec<u8>)> {
        vec![
            (
                "TENANT_ID".into(),
                b"0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f".to_vec(),
            ),
            (
                "traceparent".into(),
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01".to_vec(),
            ),
        ]
    }

    #[test]
    fn decodes_the_three_output_kinds() {
        let e = decode(
            OutputTopic::SessionStatus,
            Some(br#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":7,"accountName":"alice","type":"ERROR","body":{"code":"DELETED_OR_BLOCKED","reason":3,"until":1893456000000,"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#),
            &hdrs(),
        )
        .unwrap();
        assert_eq!(e.account_id, 7);
        assert_eq!(e.code.as_deref(), Some("DELETED_OR_BLOCKED"));
        assert_eq!(e.trace_id, Some(0x4bf92f3577b34da6a3ce929d0e0e4736));
        assert_eq!(
            e.line(),
            "SS  tenant=0f7a6c1e account=7 session=a0000000-0000-4000-8000-000000000001 ERROR DELETED_OR_BLOCKED name=alice reason=3 until=1893456000000"
        );
        let e = decode(
            OutputTopic::AccountStatus,
            Some(br#"{"account_id":7,"name":"alice","status":"LOGGED_IN"}"#),
            &hdrs(),
        )
        .unwrap();
        assert_eq!(
            (e.account_id, e.kind.as_str(), e.session),
            (7, "LOGGED_IN", None)
        );
        let e = decode(
            OutputTopic::Ban,
            Some(br#"{"type":"CREATE","body":{"banType":2,"value":"7","reason":"Exceeded maximum PIN attempts (5)","reasonCode":99,"permanent":false,"expiresAt":1787480100123,"issuedBy":"atlas-account"}}"#),
            &[],
        )
        .unwrap();
        assert_eq!(
            e.line(),
            "BAN tenant=- account=7 session=- CREATE reasonCode=99 expiresAt=1787480100123"
        );
        assert_eq!(decode(OutputTopic::AccountStatus, Some(b"{"), &[]), None);
    }
}
