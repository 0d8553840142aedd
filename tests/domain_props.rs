//! Property tests over random command sequences for one account (alice, 7).

mod common;

use account_streams::domain::stored::{
    decode_account, decode_registry, encode_account, encode_registry,
};
use account_streams::domain::Service;
use account_streams::wire::ids::AccountId;
use account_streams::wire::OutputTopic;
use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Cmd {
    Login {
        session: usize,
        right: bool,
    },
    Progress {
        session: usize,
        author: usize,
        state: u32,
    },
    Logout {
        session: usize,
        author: usize,
    },
    Pin {
        success: bool,
    },
    Delete,
    Tick {
        advance_ms: i64,
    },
}

const SESSIONS: [&str; 4] = [S1, S2, S3, NIL];
const AUTHORS: [&str; 5] = ["LOGIN", "CHANNEL", "channel", "INTERNAL", "login"];

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        2 => (0..4usize, any::<bool>()).prop_map(|(session, right)| Cmd::Login { session, right }),
        4 => (0..4usize, 0..5usize, 0..4u32).prop_map(|(session, author, state)| Cmd::Progress { session, author, state }),
        2 => (0..4usize, 0..5usize).prop_map(|(session, author)| Cmd::Logout { session, author }),
        1 => any::<bool>().prop_map(|success| Cmd::Pin { success }),
        1 => Just(Cmd::Delete),
        2 => (0..7000i64).prop_map(|advance_ms| Cmd::Tick { advance_ms }),
    ]
}

fn statuses(out: &[account_streams::wire::WireMessage]) -> Vec<String> {
    out.iter()
        .filter(|m| m.topic == OutputTopic::AccountStatus && m.key == key(7))
        .map(|m| {
            let v = String::from_utf8(m.value.clone()).unwrap();
            v.rsplit("\"status\":\"")
                .next()
                .unwrap()
                .trim_end_matches("\"}")
                .to_string()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn registry_invariants_hold(cmds in prop::collection::vec(cmd(), 1..30), limit in 0u32..3) {
        let mut w = World::new();
        w.config.max_login_attempts = limit;
        let mut history: Vec<String> = Vec::new();
        for c in &cmds {
            let before = w.derived(&T1, 7);
            let out = match c {
                Cmd::Login { session, right } => {
                    w.session(&T1, &login(SESSIONS[*session], "alice", if *right { "secret" } else { "nope" }))
                }
                Cmd::Progress { session, author, state } => {
                    w.session(&T1, &progress(SESSIONS[*session], AUTHORS[*author], 7, *state, r#"{"characterId":1}"#))
                }
                Cmd::Logout { session, author } => w.session(&T1, &logout_cmd(SESSIONS[*session], AUTHORS[*author], 7)),
                Cmd::Pin { success } => w.account_cmd(&T1, &pin(7, *success)),
                Cmd::Delete => w.account_cmd(&T1, &delete(7)),
                Cmd::Tick { advance_ms } => {
                    w.now += advance_ms;
                    w.tick()
                }
            };
            let after = w.derived(&T1, 7);
            let reg = w.reg(&T1, 7);
            // Derived state is the minimum over the sessions map, 0 if empty.
            let min = reg.iter().map(|(_, _, s)| *s).min().unwrap_or(0);
            prop_assert_eq!(after, min);
            // Never two LOGIN sessions at state 1; in fact never two entries.
            let login_1 = reg.iter().filter(|(_, svc, s)| *svc == Service::Login && *s == 1).count();
            prop_assert!(login_1 <= 1);
            prop_assert!(reg.len() <= 1, "{:?}", reg);
            // D3: LOGGED_OUT exactly when the account goes from logged in to not.
            let st = statuses(&out);
            let logged_out = st.iter().any(|s| s == "LOGGED_OUT");
            prop_assert_eq!(logged_out, before != 0 && after == 0, "{:?} {} -> {}", c, before, after);
            if st.iter().any(|s| s == "LOGGED_IN") {
                prop_assert!(after != 0);
            }
            history.extend(st.into_iter().filter(|s| s == "LOGGED_IN" || s == "LOGGED_OUT"));
            // Stored forms round-trip.
            if let Some(a) = w.account(&T1, 7) {
                prop_assert_eq!(&decode_account(&encode_account(a).unwrap()).unwrap(), a);
            }
            if let Some(r) = w.registries.get(&(T1.tid(), AccountId(7))) {
                prop_assert_eq!(&decode_registry(&encode_registry(r).unwrap()).unwrap(), r);
            }
        }
        // LOGGED_OUT never repeats and never comes first.
        let mut last = "LOGGED_OUT";
        for s in &history {
            prop_assert!(!(s == "LOGGED_OUT" && last == "LOGGED_OUT"), "{:?}", history);
            last = s;
        }
    }
}
