//! Trace propagation, live: a command's W3C `traceparent` is continued by
//! its processing span and written on every output (same trace id, the
//! processing span as parent, flags and tracestate kept); the JSON log lines
//! of that processing carry the same trace and span ids with tenant,
//! account id and session id, and no secret.

mod ops_live_harness;

use std::time::Duration;

use ops_live_harness::*;

const TRACE_A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_A: &str = "00f067aa0ba902b7";
const TRACE_B: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_B: &str = "b7ad6b7169203331";
const TRACE_C: &str = "11111111111111112222222222222222";
const PARENT_C: &str = "3333333333333333";
const S1: &str = "a0000000-0000-4000-8000-000000000001";
const PASSWORD: &str = "tr4ce-s3cret-pw";

fn with_trace(traceparent: &str, tracestate: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let mut h = t1_headers();
    h.push(("traceparent".into(), traceparent.as_bytes().to_vec()));
    if let Some(s) = tracestate {
        h.push(("tracestate".into(), s.as_bytes().to_vec()));
    }
    h
}

/// (trace id, span id, flags) of an output's traceparent.
fn parts(o: &Output) -> (String, String, String) {
    let tp = o
        .header("traceparent")
        .unwrap_or_else(|| panic!("output without traceparent: {o:?}"));
    let p: Vec<&str> = tp.split('-').collect();
    assert_eq!(p.len(), 4, "{tp}");
    assert_eq!(p[0], "00", "{tp}");
    assert_eq!(p[1].len(), 32, "{tp}");
    assert_eq!(p[2].len(), 16, "{tp}");
    (p[1].to_string(), p[2].to_string(), p[3].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_and_logs_continue_the_command_trace() {
    let run = Run::create("trace").await;
    let mut p = run.start(&[
        ("LOG_LEVEL", "info,account_streams=debug"),
        ("TRACE_ENDPOINT", "http://127.0.0.1:4317"),
    ]);
    p.wait_ready(Duration::from_secs(60)).await;
    let producer = producer();
    let mut outputs = Outputs::new(&run.output_topics());

    // 1. An account command with trace A and a tracestate.
    let create = format!(r#"{{"type":"CREATE","body":{{"name":"tina","password":"{PASSWORD}"}}}}"#);
    send(
        &producer,
        &run.command_account,
        b"k",
        &create,
        &with_trace(&format!("00-{TRACE_A}-{PARENT_A}-01"), Some("vendor=x")),
    )
    .await;
    let created = outputs.wait_for(1, Duration::from_secs(30))[0].clone();
    let (trace, span_a, flags) = parts(&created);
    assert_eq!((trace.as_str(), flags.as_str()), (TRACE_A, "01"));
    assert_ne!(
        span_a, PARENT_A,
        "the output's parent is the processing span"
    );
    assert_eq!(created.header("tracestate"), Some("vendor=x"));
    let tina = created.value["account_id"].as_u64().expect("account id");

    // 2. A login with trace B, not sampled: two outputs, one span.
    let login = format!(
        r#"{{"sessionId":"{S1}","accountId":0,"author":"LOGIN","type":"CREATE","body":{{"accountName":"tina","password":"{PASSWORD}","ipAddress":"10.0.0.5","hwid":"a1b2c3"}}}}"#
    );
    send(
        &producer,
        &run.command_session,
        b"k",
        &login,
        &with_trace(&format!("00-{TRACE_B}-{PARENT_B}-00"), None),
    )
    .await;
    let got = outputs.wait_for(3, Duration::from_secs(30))[1..3].to_vec();
    let login_spans: Vec<(String, String, String)> = got.iter().map(parts).collect();
    assert_eq!(
        login_spans[0], login_spans[1],
        "both outputs of one command carry the same span"
    );
    let (trace, span_b, flags) = login_spans[0].clone();
    assert_eq!((trace.as_str(), flags.as_str()), (TRACE_B, "00"));
    assert_ne!(span_b, PARENT_B);
    assert!(got.iter().all(|o| o.header("tracestate").is_none()));

    // 3. A by-id command (logout) with trace C.
    let logout = format!(
        r#"{{"sessionId":"{S1}","accountId":{tina},"author":"LOGIN","type":"LOGOUT","body":{{}}}}"#
    );
    send(
        &producer,
        &run.command_session,
        b"k",
        &logout,
        &with_trace(&format!("00-{TRACE_C}-{PARENT_C}-01"), None),
    )
    .await;
    let logged_out = outputs.wait_for(4, Duration::from_secs(30))[3].clone();
    assert_eq!(logged_out.value["status"], "LOGGED_OUT");
    let (trace, span_c, _) = parts(&logged_out);
    assert_eq!(trace, TRACE_C);

    // 4. No traceparent: the output still carries one, of a new trace.
    send(
        &producer,
        &run.command_account,
        b"k",
        r#"{"type":"CREATE","body":{"name":"uma","password":"pw"}}"#,
        &t1_headers(),
    )
    .await;
    let fresh = outputs.wait_for(5, Duration::from_secs(30))[4].clone();
    let (trace, _, flags) = parts(&fresh);
    assert!(![TRACE_A, TRACE_B, TRACE_C].contains(&trace.as_str()));
    assert_ne!(trace, "0".repeat(32));
    assert_eq!(flags, "01");

    // The logs: JSON lines of each command's processing carry its span.
    p.stop();
    let log = p.log();
    assert!(
        !log.contains(PASSWORD),
        "a password reached the log:\n{log}"
    );
    let lines = read_json_lines(&p.log_path);
    assert!(
        lines.iter().any(|l| l["level"] == "WARN"
            && l["fields"]["endpoint"] == "http://127.0.0.1:4317"
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("not compiled into this build"))),
        "no TRACE_ENDPOINT warning:\n{log}"
    );
    let processed = |trace: &str| -> serde_json::Value {
        lines
            .iter()
            .find(|l| {
                l["fields"]["message"] == "command processed" && l["span"]["trace_id"] == trace
            })
            .unwrap_or_else(|| panic!("no 'command processed' line of trace {trace}:\n{log}"))
            ["span"]
            .clone()
    };
    let a = processed(TRACE_A);
    assert_eq!(a["name"], "account_command");
    assert_eq!(a["span_id"], span_a.as_str());
    assert_eq!(a["parent_span_id"], PARENT_A);
    assert_eq!(a["tenant"], T1_ID);
    assert_eq!(a["command"], "CREATE");
    assert_eq!(a["account_name"], "tina");

    let b = processed(TRACE_B);
    assert_eq!(b["name"], "account_session_command");
    assert_eq!(b["span_id"], span_b.as_str());
    assert_eq!(b["session_id"], S1);
    assert_eq!(b["tenant"], T1_ID);
    // The login's slow half (bcrypt, ban check) logs inside the same span:
    // the ban service is down, so its fail-open warning carries the span.
    assert!(
        lines
            .iter()
            .any(|l| l["target"] == "account_streams::bancheck"
                && l["span"]["span_id"] == span_b.as_str()
                && l["span"]["session_id"] == S1),
        "ban-check warning outside the login span:\n{log}"
    );

    let c = processed(TRACE_C);
    assert_eq!(c["span_id"], span_c.as_str());
    assert_eq!(c["account_id"], tina);
    assert_eq!(c["session_id"], S1);
    assert_eq!(c["command"], "LOGOUT");
}
