//! Golden round trips: the original's JSON for every message type decodes,
//! and encodes back to the identical bytes. Plus Go decoding tolerance.

use account_streams::wire::commands::{
    decode_account_command, decode_session_command, encode_account_command, encode_session_command,
    AccountCommand, Issuer, SessionCommandBody,
};
use account_streams::wire::events::{
    decode_account_status, decode_ban, decode_session_status, encode_account_status, encode_ban,
    encode_session_status, AccountStatus, ErrorCode, SessionStatusBody,
};
use account_streams::wire::ids::{AccountId, SessionId, Uuid};
use account_streams::wire::{parse_headers, DecodeError, TimeEncoding};

fn s(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap()
}

const S1: &str = "a0000000-0000-4000-8000-000000000001";

#[test]
fn account_commands_round_trip() {
    for golden in [
        r#"{"type":"CREATE","body":{"name":"alice","password":"secret"}}"#,
        r#"{"type":"DELETE","body":{"accountId":7}}"#,
        r#"{"type":"DELETE","body":{"accountId":4294967295}}"#,
        r#"{"type":"PIN_ATTEMPT","body":{"accountId":7,"success":false,"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#,
        r#"{"type":"PIC_ATTEMPT","body":{"accountId":7,"success":true,"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#,
        r#"{"type":"CREATE","body":{"name":"\u003cb\u003e\u0026\u2028","password":"p\"\\\n"}}"#,
    ] {
        let cmd = decode_account_command(golden.as_bytes()).unwrap();
        assert_eq!(s(encode_account_command(&cmd)), golden);
    }
    let AccountCommand::Create(c) =
        decode_account_command(br#"{"type":"CREATE","body":{"name":"alice","password":"secret"}}"#)
            .unwrap()
    else {
        panic!()
    };
    assert_eq!((c.name.as_str(), c.password.expose()), ("alice", "secret"));
    assert_eq!(
        format!("{c:?}"),
        r#"CreateAccount { name: "alice", password: Password(***) }"#
    );
}

#[test]
fn session_commands_round_trip() {
    for golden in [
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":0,"author":"LOGIN","type":"CREATE","body":{"accountName":"alice","password":"secret","ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#,
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":7,"author":"LOGIN","type":"PROGRESS_STATE","body":{"state":2,"params":{"ipAddress":"10.0.0.20","port":7575,"characterId":1001}}}"#,
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000002","accountId":7,"author":"CHANNEL","type":"PROGRESS_STATE","body":{"state":1,"params":{"characterId":1001}}}"#,
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000002","accountId":7,"author":"CHANNEL","type":"PROGRESS_STATE","body":{"state":0,"params":null}}"#,
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000002","accountId":7,"author":"CHANNEL","type":"LOGOUT","body":{}}"#,
        r#"{"sessionId":"00000000-0000-0000-0000-000000000000","accountId":7,"author":"INTERNAL","type":"LOGOUT","body":{}}"#,
    ] {
        let cmd = decode_session_command(golden.as_bytes()).unwrap();
        assert_eq!(s(encode_session_command(&cmd)), golden);
    }
}

#[test]
fn session_command_fields_and_params_normalisation() {
    let cmd = decode_session_command(
        br#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":7,"author":"Channel","type":"PROGRESS_STATE","body":{"state":2,"params":{"port":7575.0,"ipAddress":"10.0.0.20","big":1e21,"small":1e-7,"x":12345678901234567890,"html":"<&>"}}}"#,
    )
    .unwrap();
    assert_eq!(
        cmd.session_id,
        SessionId(Uuid::parse(S1.as_bytes()).unwrap())
    );
    assert_eq!(cmd.account_id, AccountId(7));
    assert_eq!(cmd.issuer(), Issuer::Channel);
    let SessionCommandBody::ProgressState {
        state, normalised, ..
    } = &cmd.body
    else {
        panic!()
    };
    assert_eq!(*state, 2);
    assert_eq!(
        normalised.as_str(),
        r#"{"big":1e+21,"html":"\u003c\u0026\u003e","ipAddress":"10.0.0.20","port":7575,"small":1e-7,"x":12345678901234567000}"#
    );
}

#[test]
fn account_status_round_trips() {
    for golden in [
        r#"{"account_id":7,"name":"alice","status":"CREATED"}"#,
        r#"{"account_id":7,"name":"alice","status":"LOGGED_IN"}"#,
        r#"{"account_id":7,"name":"alice","status":"LOGGED_OUT"}"#,
        r#"{"account_id":7,"name":"alice","status":"DELETED"}"#,
    ] {
        let e = decode_account_status(golden.as_bytes()).unwrap();
        assert_eq!(s(encode_account_status(&e)), golden);
    }
    let e = decode_account_status(br#"{"ACCOUNT_ID":7,"name":"a","status":"DELETED"}"#).unwrap();
    assert_eq!(
        (e.account_id, e.status),
        (AccountId(7), AccountStatus::Deleted)
    );
}

#[test]
fn session_status_round_trips_in_both_time_encodings() {
    let millis = [
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":7,"accountName":"alice","type":"CREATED","body":{"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#,
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":7,"accountName":"alice","type":"REQUEST_LICENSE_AGREEMENT","body":null}"#,
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":7,"accountName":"alice","type":"STATE_CHANGED","body":{"state":2,"params":{"characterId":1001,"ipAddress":"10.0.0.20","port":7575}}}"#,
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":7,"accountName":"alice","type":"STATE_CHANGED","body":{"state":0,"params":null}}"#,
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":0,"accountName":"","type":"ERROR","body":{"code":"NOT_REGISTERED","reason":0,"until":0,"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#,
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":7,"accountName":"alice","type":"ERROR","body":{"code":"DELETED_OR_BLOCKED","reason":3,"until":1893456000000,"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#,
    ];
    for golden in millis {
        let e = decode_session_status(golden.as_bytes()).unwrap();
        assert_eq!(
            s(encode_session_status(&e, TimeEncoding::UnixMillis)),
            golden
        );
    }
    let rfc = [
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":0,"accountName":"","type":"ERROR","body":{"code":"NOT_REGISTERED","reason":0,"until":"0001-01-01T00:00:00Z","ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#,
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":7,"accountName":"alice","type":"ERROR","body":{"code":"DELETED_OR_BLOCKED","reason":3,"until":"2030-01-01T00:00:00Z","ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#,
    ];
    for (golden, ms) in rfc.iter().zip([millis[4], millis[5]]) {
        let e = decode_session_status(golden.as_bytes()).unwrap();
        assert_eq!(s(encode_session_status(&e, TimeEncoding::Rfc3339)), *golden);
        assert_eq!(s(encode_session_status(&e, TimeEncoding::UnixMillis)), ms);
    }
    let e = decode_session_status(millis[5].as_bytes()).unwrap();
    let SessionStatusBody::Error(err) = e.body else {
        panic!()
    };
    assert_eq!(
        (err.code, err.reason, err.until),
        (ErrorCode::DeletedOrBlocked, 3, 1_893_456_000_000)
    );
}

#[test]
fn ban_command_round_trips() {
    let millis = r#"{"type":"CREATE","body":{"banType":2,"value":"7","reason":"Exceeded maximum PIN attempts (5)","reasonCode":99,"permanent":false,"expiresAt":1787480100123,"issuedBy":"atlas-account"}}"#;
    let b = decode_ban(millis.as_bytes()).unwrap();
    assert_eq!(s(encode_ban(&b, TimeEncoding::UnixMillis)), millis);
    assert_eq!(b.expires_at, 1_787_480_100_123);
    // Our rfc3339 form has millisecond precision.
    let rfc = r#"{"type":"CREATE","body":{"banType":2,"value":"7","reason":"Exceeded maximum PIN attempts (5)","reasonCode":99,"permanent":false,"expiresAt":"2026-08-23T10:15:00.123Z","issuedBy":"atlas-account"}}"#;
    assert_eq!(s(encode_ban(&b, TimeEncoding::Rfc3339)), rfc);
    // The original's nanosecond form decodes to the same instant.
    let go = r#"{"type":"CREATE","body":{"banType":2,"value":"7","reason":"Exceeded maximum PIN attempts (5)","reasonCode":99,"permanent":false,"expiresAt":"2026-08-23T10:15:00.123456789Z","issuedBy":"atlas-account"}}"#;
    assert_eq!(decode_ban(go.as_bytes()).unwrap(), b);
}

#[test]
fn decoding_is_as_tolerant_as_go() {
    // Case-insensitive names, unknown members ignored, last duplicate wins.
    let cmd = decode_session_command(
        br#"{"SESSIONID":"{a0000000-0000-4000-8000-000000000001}","AccountId":7,"Author":"login","TYPE":"LOGOUT","extra":[1,2],"body":null,"accountId":8}"#,
    )
    .unwrap();
    assert_eq!(
        cmd.session_id,
        SessionId(Uuid::parse(S1.as_bytes()).unwrap())
    );
    assert_eq!(
        (cmd.account_id, cmd.author.as_str(), cmd.issuer()),
        (AccountId(8), "login", Issuer::Login)
    );
    assert_eq!(cmd.body, SessionCommandBody::Logout);
    // "issuer" is not the wire name of the issuer.
    let cmd =
        decode_session_command(br#"{"sessionId":null,"issuer":"LOGIN","type":"LOGOUT"}"#).unwrap();
    assert_eq!((cmd.author.as_str(), cmd.session_id), ("", SessionId::NIL));
    // UUID forms.
    for form in [
        "urn:uuid:a0000000-0000-4000-8000-000000000001",
        "A0000000000040008000000000000001",
    ] {
        let json = format!(r#"{{"sessionId":"{form}","type":"LOGOUT","body":{{}}}}"#);
        assert_eq!(
            decode_session_command(json.as_bytes())
                .unwrap()
                .session_id
                .to_string(),
            S1
        );
    }
    // Repeated bodies merge field by field, as Go decodes into one struct.
    let AccountCommand::Create(c) = decode_account_command(
        br#"{"type":"CREATE","body":{"name":"a"},"body":{"password":"b"},"body":null}"#,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!((c.name.as_str(), c.password.expose()), ("a", "b"));
    // null leaves a string alone.
    let AccountCommand::Create(c) =
        decode_account_command(br#"{"type":"CREATE","body":{"name":"a","name":null}}"#).unwrap()
    else {
        panic!()
    };
    assert_eq!(c.name, "a");
    // Invalid UTF-8 becomes U+FFFD per byte.
    let AccountCommand::Create(c) =
        decode_account_command(b"{\"type\":\"CREATE\",\"body\":{\"name\":\"a\xffb\"}}").unwrap()
    else {
        panic!()
    };
    assert_eq!(c.name, "a\u{FFFD}b");
}

#[test]
fn type_errors_are_bad_json() {
    let cases: [&[u8]; 12] = [
        br#"{"type":"DELETE","body":{"accountId":-1}}"#,
        br#"{"type":"DELETE","body":{"accountId":4294967296}}"#,
        br#"{"type":"DELETE","body":{"accountId":1.0}}"#,
        br#"{"type":"DELETE","body":{"accountId":"7"}}"#,
        br#"{"type":"CREATE","body":{"name":"x","password":123}}"#,
        br#"{"type":"CREATE","body":[]}"#,
        br#"{"type":5}"#,
        br#"[]"#,
        br#"{"type":"PIN_ATTEMPT","body":{"accountId":7,"success":"false"}}"#,
        br#"{"sessionId":"","type":"LOGOUT"}"#,
        br#"{"sessionId":"a0000000-0000-4000-8000-000000000001","type":"PROGRESS_STATE","body":{"state":1,"params":[1e400]}}"#,
        br#"{"sessionId":"a0000000-0000-4000-8000-000000000001","type":"LOGOUT","body":"x"}"#,
    ];
    for (i, c) in cases.iter().enumerate() {
        let r = if i < 9 {
            decode_account_command(c).map(|_| ())
        } else {
            decode_session_command(c).map(|_| ())
        };
        let err = r.unwrap_err();
        assert_eq!(err.reason(), "bad_json", "case {i}: {err}");
    }
    let err = decode_account_command(br#"{"type":"CREATE","body":{"password":123}}"#).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Type {
            field: "body.password",
            problem: "expected a string"
        }
    );
}

#[test]
fn tenant_headers() {
    let h = |pairs: &[(&'static str, &'static [u8])]| {
        parse_headers(pairs.iter().map(|(k, v)| (*k, Some(*v))))
    };
    let ok = h(&[
        ("TENANT_ID", b"0F7A6C1E-8D2B-4C3A-9E5F-1A2B3C4D5E6F"),
        ("REGION", b"GMS"),
        ("MAJOR_VERSION", &[0x00, 0x57]),
        ("MINOR_VERSION", &[0x00, 0x01]),
        ("tracestate", b"k=v"),
        ("ENVIRONMENT", b""),
    ])
    .unwrap();
    assert_eq!(
        ok.tenant.id.to_string(),
        "0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f"
    );
    assert_eq!(
        (ok.tenant.region.as_str(), ok.tenant.major, ok.tenant.minor),
        ("GMS", 87, 1)
    );
    assert_eq!(ok.trace.tracestate.as_deref(), Some(&b"k=v"[..]));
    assert_eq!(ok.environment, None);
    let bare = h(&[("TENANT_ID", b"0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f")]).unwrap();
    assert_eq!(
        (
            bare.tenant.region.as_str(),
            bare.tenant.major,
            bare.tenant.minor
        ),
        ("", 0, 0)
    );
    let err = h(&[
        ("TENANT_ID", b"0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f"),
        ("MAJOR_VERSION", b"830"),
    ])
    .unwrap_err();
    assert_eq!(err.reason(), "bad_header");
    let err = h(&[
        ("TENANT_ID", b"0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f"),
        ("REGION", b"\xff"),
    ])
    .unwrap_err();
    assert_eq!(err.reason(), "bad_header");
    let err = h(&[("tenant_id", b"0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f")]).unwrap_err();
    assert_eq!(err.reason(), "missing_tenant");
    let err = h(&[("TENANT_ID", b"{0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6}")]).unwrap_err();
    assert_eq!(err.reason(), "missing_tenant");
}

#[test]
fn error_messages_never_echo_values() {
    let secret = "hunter2-secret";
    let nested =
        format!(r#"{{"type":"CREATE","body":{{"name":"x","password":{{"{secret}":1}}}}}}"#);
    assert_eq!(
        decode_account_command(nested.as_bytes())
            .unwrap_err()
            .to_string(),
        "body.password: expected a string"
    );
    let truncated = format!(r#"{{"type":"CREATE","body":{{"name":"x","password":"{secret}"#);
    let err = decode_account_command(truncated.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("malformed JSON: unexpected end of JSON input at byte"),
        "{err}"
    );
    assert!(!err.contains(secret));
    // The unknown `type` text itself is kept (at most 64 bytes) for diagnosis.
    let long_type = format!(r#"{{"type":"{}","body":{{}}}}"#, "X".repeat(100));
    assert_eq!(
        decode_account_command(long_type.as_bytes()).unwrap_err(),
        DecodeError::UnknownType("X".repeat(64))
    );
}

#[test]
fn route_keys() {
    use account_streams::wire::commands::RouteKey;
    let c = decode_session_command(
        br#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":5,"author":"LOGIN","type":"CREATE","body":{"accountName":"alice"}}"#,
    )
    .unwrap();
    assert_eq!(c.route_key(), RouteKey::Name("alice".into()));
    let c = decode_session_command(br#"{"accountId":5,"type":"LOGOUT"}"#).unwrap();
    assert_eq!(c.route_key(), RouteKey::Id(AccountId(5)));
    let c = decode_account_command(br#"{"type":"CREATE","body":{"name":"bob","password":"x"}}"#)
        .unwrap();
    assert_eq!(c.route_key(), RouteKey::Name("bob".into()));
    let c = decode_account_command(br#"{"type":"PIC_ATTEMPT","body":{"accountId":9}}"#).unwrap();
    assert_eq!(c.route_key(), RouteKey::Id(AccountId(9)));
}
