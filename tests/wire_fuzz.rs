//! Random bytes and random JSON into every decoder: typed errors only,
//! never a panic. Successful decodes re-encode without panicking.

use account_streams::wire::commands::{
    decode_account_command, decode_session_command, encode_account_command, encode_session_command,
};
use account_streams::wire::events::{decode_account_status, decode_ban, decode_session_status};
use account_streams::wire::{parse_headers, redact_secrets};
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        "[a-zA-Z0-9 <>&\u{2028}\\\\\"é-]{0,12}".prop_map(|s| serde_json_string(&s)),
        prop_oneof![
            Just("256"),
            Just("-1"),
            Just("1.0"),
            Just("1e400"),
            Just("4294967296"),
            Just("\"\"")
        ]
        .prop_map(String::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("type"),
            Just("body"),
            Just("sessionId"),
            Just("accountId"),
            Just("author"),
            Just("state"),
            Just("params"),
            Just("password"),
            Just("name"),
            Just("accountName"),
            Just("success"),
            Just("until"),
            Just("expiresAt"),
            Just("code"),
            Just("status"),
            Just("account_id"),
            Just("x"),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key, inner), 0..6).prop_map(|m| {
                let members: Vec<String> =
                    m.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

fn serde_json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn typed_json() -> impl Strategy<Value = String> {
    let ty = prop_oneof![
        Just("CREATE"),
        Just("DELETE"),
        Just("PIN_ATTEMPT"),
        Just("PIC_ATTEMPT"),
        Just("PROGRESS_STATE"),
        Just("LOGOUT"),
        Just("STATE_CHANGED"),
        Just("ERROR"),
        Just("CREATED"),
        Just("X"),
    ];
    (ty, json_value(), json_value(), json_value()).prop_map(|(t, body, a, b)| {
        format!(r#"{{"type":"{t}","body":{body},"sessionId":{a},"accountId":{b},"status":"{t}"}}"#)
    })
}

fn all_decoders(bytes: &[u8]) {
    if let Ok(c) = decode_account_command(bytes) {
        let _ = encode_account_command(&c);
    }
    if let Ok(c) = decode_session_command(bytes) {
        let again = encode_session_command(&c);
        // What we encode, we decode again to the same command.
        assert_eq!(decode_session_command(&again).unwrap(), c);
    }
    let _ = decode_account_status(bytes);
    let _ = decode_session_status(bytes);
    let _ = decode_ban(bytes);
    let _ = redact_secrets(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        all_decoders(&bytes);
        let _ = parse_headers([("TENANT_ID", Some(bytes.as_slice())), ("MAJOR_VERSION", Some(bytes.as_slice()))]);
    }

    #[test]
    fn random_json_never_panics(doc in json_value()) {
        all_decoders(doc.as_bytes());
    }

    #[test]
    fn random_typed_json_never_panics(doc in typed_json()) {
        all_decoders(doc.as_bytes());
    }

    #[test]
    fn redaction_removes_every_password(pw in "Z[0-9]{8}", prefix in json_value()) {
        let doc = format!(r#"{{"a":{prefix},"body":{{"password":"{pw}","Pin":"{pw}","x":{{"pic":"{pw}"}}}}}}"#);
        let r = String::from_utf8(redact_secrets(doc.as_bytes())).unwrap();
        prop_assert!(!r.contains(&pw), "{}", r);
        prop_assert!(r.ends_with(r#"{"password":"***","Pin":"***","x":{"pic":"***"}}}"#), "{}", r);
    }

    #[test]
    fn truncated_values_never_show_the_password(pw in "Z[0-9]{8}", cut in 0usize..200) {
        let doc = format!(r#"{{"sessionId":"s","type":"CREATE","body":{{"accountName":"n","password":"{pw}","hwid":"h"}}}}"#);
        let cut = cut.min(doc.len());
        let r = redact_secrets(&doc.as_bytes()[..cut]);
        prop_assert!(!r.contains(&b'Z'), "{}", String::from_utf8_lossy(&r));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Go's interface{} round trip is idempotent and yields valid JSON.
    #[test]
    fn params_normalisation_is_idempotent(doc in json_value()) {
        use account_streams::wire::json::parse;
        use account_streams::wire::params::Params;
        let Ok(v) = parse(doc.as_bytes()) else { return Ok(()) };
        let Ok(p) = Params::normalise(&v) else { return Ok(()) };
        prop_assert!(serde_json::from_str::<serde_json::Value>(p.as_str()).is_ok(), "{}", p.as_str());
        let again = Params::normalise(&parse(p.as_str().as_bytes()).unwrap()).unwrap();
        prop_assert_eq!(again, p);
    }
}
