//! Every SCENARIOS.md scenario that needs no HTTP API, with the `Ours:`
//! outcomes, asserted as exact records (topic, key, headers, JSON bytes)
//! and the resulting state.

mod common;

use account_streams::domain::login::{BanExpiry, BanStatus};
use account_streams::domain::Service::{Channel, Login};
use account_streams::wire::ids::UnixMillis;
use common::*;

const P2: &str = r#"{"ipAddress":"10.0.0.20","port":7575,"characterId":1001}"#;
const P2N: &str = r#"{"characterId":1001,"ipAddress":"10.0.0.20","port":7575}"#;
const P1: &str = r#"{"characterId":1001}"#;

#[test]
fn s1_login_logout_relogin_transition_takeover_stale_logout() {
    let mut w = World::new();
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[as_(7, "alice", "LOGGED_IN"), ss_created(S1, 7, "alice")],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S1), Login, 1)]);
    assert_eq!(w.derived(&T1, 7), 1);
    check(
        &w.session(&T1, &logout_cmd(S1, "LOGIN", 7)),
        &T1,
        &[as_(7, "alice", "LOGGED_OUT")],
    );
    assert_eq!(w.reg(&T1, 7), vec![]);
    assert_eq!(w.derived(&T1, 7), 0);
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[as_(7, "alice", "LOGGED_IN"), ss_created(S1, 7, "alice")],
    );
    check(
        &w.session(&T1, &progress(S1, "LOGIN", 7, 2, P2)),
        &T1,
        &[ss_state(S1, 7, "alice", 2, P2N)],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S1), Login, 2)]);
    assert_eq!(w.derived(&T1, 7), 2);
    check(
        &w.session(&T1, &progress(S2, "CHANNEL", 7, 1, P1)),
        &T1,
        &[
            as_(7, "alice", "LOGGED_IN"),
            ss_state(S2, 7, "alice", 1, P1),
        ],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 1)]);
    // Ours (D3): the stale logout produces nothing.
    check(&w.session(&T1, &logout_cmd(S1, "LOGIN", 7)), &T1, &[]);
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 1)]);
    assert_eq!(w.derived(&T1, 7), 1);
}

#[test]
fn s2_happy_handover() {
    let mut w = World::new();
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[as_(7, "alice", "LOGGED_IN"), ss_created(S1, 7, "alice")],
    );
    check(
        &w.session(&T1, &progress(S1, "LOGIN", 7, 2, P2)),
        &T1,
        &[ss_state(S1, 7, "alice", 2, P2N)],
    );
    check(&w.session(&T1, &logout_cmd(S1, "LOGIN", 7)), &T1, &[]);
    assert_eq!(w.reg(&T1, 7), vec![(sid(S1), Login, 2)]);
    check(
        &w.session(&T1, &progress(S2, "CHANNEL", 7, 1, P1)),
        &T1,
        &[
            as_(7, "alice", "LOGGED_IN"),
            ss_state(S2, 7, "alice", 1, P1),
        ],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 1)]);
    assert_eq!(w.derived(&T1, 7), 1);
}

#[test]
fn s3_late_login_server_logout() {
    let mut w = World::new();
    w.set_registry(&T1, 7, &[(S1, Login, 2)], T0);
    check(
        &w.session(&T1, &progress(S2, "CHANNEL", 7, 1, P1)),
        &T1,
        &[
            as_(7, "alice", "LOGGED_IN"),
            ss_state(S2, 7, "alice", 1, P1),
        ],
    );
    check(&w.session(&T1, &logout_cmd(S1, "LOGIN", 7)), &T1, &[]);
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 1)]);
}

#[test]
fn s4_s5_channel_change() {
    let mut w = World::new();
    w.set_registry(&T1, 7, &[(S2, Channel, 1)], T0);
    let p = r#"{"ipAddress":"10.0.0.21","port":7576}"#;
    check(
        &w.session(&T1, &progress(S2, "CHANNEL", 7, 2, p)),
        &T1,
        &[ss_state(S2, 7, "alice", 2, p)],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 2)]);
    check(&w.session(&T1, &logout_cmd(S2, "CHANNEL", 7)), &T1, &[]);
    check(
        &w.session(&T1, &progress(S3, "CHANNEL", 7, 1, P1)),
        &T1,
        &[
            as_(7, "alice", "LOGGED_IN"),
            ss_state(S3, 7, "alice", 1, P1),
        ],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S3), Channel, 1)]);
    // S5: the old channel's logout arrives late: nothing (D3).
    check(&w.session(&T1, &logout_cmd(S2, "CHANNEL", 7)), &T1, &[]);
    assert_eq!(w.reg(&T1, 7), vec![(sid(S3), Channel, 1)]);
}

#[test]
fn s6_double_login() {
    let mut w = World::new();
    w.session(&T1, &login(S1, "alice", "secret"));
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[ss_err(
            S1,
            7,
            "alice",
            "ALREADY_LOGGED_IN",
            "10.0.0.5",
            "a1b2c3",
        )],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S1), Login, 1)]);
}

#[test]
fn s7_s8_s100_transition_expiry() {
    let mut w = World::new();
    w.add_account(&T1, 42, "carol", fixture_hash("cpw"), true);
    w.set_registry(&T1, 42, &[(S1, Login, 2)], T0);
    // S8: not expired by any check up to t0 + 5 s.
    for dt in [0, 1000, 4999, 5000] {
        w.now = T0 + dt;
        assert!(w.tick().is_empty());
        assert_eq!(w.reg(&T1, 42), vec![(sid(S1), Login, 2)]);
    }
    w.now = T0 + 5000;
    check(
        &w.session(&T1, &login(S9, "carol", "cpw")),
        &T1,
        &[ss_err(
            S9,
            42,
            "carol",
            "ALREADY_LOGGED_IN",
            "10.0.0.5",
            "a1b2c3",
        )],
    );
    check(
        &w.session(&T1, &login(S9, "carol", "bad")),
        &T1,
        &[ss_err(
            S9,
            42,
            "carol",
            "INCORRECT_PASSWORD",
            "10.0.0.5",
            "a1b2c3",
        )],
    );
    // S7 / S100: the first check after t0 + 5 s expires it with LOGGED_OUT.
    w.now = T0 + 5001;
    let out = w.tick();
    check_headers(
        &out,
        &T1.tenant_headers_only(),
        &[as_(42, "carol", "LOGGED_OUT")],
    );
    assert_eq!(w.reg(&T1, 42), vec![]);
    assert!(w.tick().is_empty(), "later checks produce nothing");
    check(
        &w.session(&T1, &login(S9, "carol", "cpw")),
        &T1,
        &[as_(42, "carol", "LOGGED_IN"), ss_created(S9, 42, "carol")],
    );
}

#[test]
fn s100_s73_late_channel_after_expiry_and_no_expiry_without_transition() {
    let mut w = World::new();
    w.session(&T1, &login(S1, "alice", "secret"));
    w.session(&T1, &progress(S1, "LOGIN", 7, 2, P2));
    w.now = T0 + 5500;
    check_headers(
        &w.tick(),
        &T1.tenant_headers_only(),
        &[as_(7, "alice", "LOGGED_OUT")],
    );
    check(
        &w.session(&T1, &progress(S2, "CHANNEL", 7, 1, P1)),
        &T1,
        &[ss_err(S2, 7, "alice", "SYSTEM_ERROR", "", "")],
    );
    check(
        &w.session(&T1, &login(S9, "alice", "secret")),
        &T1,
        &[as_(7, "alice", "LOGGED_IN"), ss_created(S9, 7, "alice")],
    );
    // A registry without a transition is never expired.
    let mut w = World::new();
    w.set_registry(&T1, 7, &[(S2, Channel, 1)], T0);
    w.now = T0 + 3_600_000;
    assert!(w.tick().is_empty());
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 1)]);
}

#[test]
fn s9_expiry_covers_all_tenants() {
    let mut w = World::new();
    w.add_account(&T1, 100, "hundred", fixture_hash("x"), true);
    w.add_account(&T2, 200, "twohundred", fixture_hash("x"), true);
    w.set_registry(&T1, 100, &[(S1, Login, 2)], T0);
    w.set_registry(&T2, 200, &[(S9, Login, 2)], T0);
    w.now = T0 + 6000;
    let out = w.tick();
    assert_eq!(out.len(), 2);
    let (o1, o2) = if out[0].key == key(100) {
        (&out[0], &out[1])
    } else {
        (&out[1], &out[0])
    };
    check_headers(
        std::slice::from_ref(o1),
        &T1.tenant_headers_only(),
        &[as_(100, "hundred", "LOGGED_OUT")],
    );
    check_headers(
        std::slice::from_ref(o2),
        &T2.tenant_headers_only(),
        &[as_(200, "twohundred", "LOGGED_OUT")],
    );
    assert_eq!(w.reg(&T1, 100), vec![]);
    assert_eq!(w.reg(&T2, 200), vec![]);
}

#[test]
fn s10_any_session_counts_as_logged_in() {
    for entries in [[(S1, Login, 2)], [(S2, Channel, 1)]] {
        let mut w = World::new();
        w.set_registry(&T1, 7, &entries, T0);
        check(
            &w.session(&T1, &login(S9, "alice", "secret")),
            &T1,
            &[ss_err(
                S9,
                7,
                "alice",
                "ALREADY_LOGGED_IN",
                "10.0.0.5",
                "a1b2c3",
            )],
        );
        check(&w.account_cmd(&T1, &delete(7)), &T1, &[]);
        assert!(w.account(&T1, 7).is_some());
        assert_eq!(w.rejected.last(), Some(&"logged_in"));
    }
}

#[test]
fn s11_default_gender_by_region_and_version() {
    let rows: [(&str, u16, u8); 6] = [
        ("GMS", 83, 0),
        ("GMS", 84, 0),
        ("GMS", 86, 0),
        ("GMS", 87, 10),
        ("GMS", 95, 10),
        ("JMS", 87, 0),
    ];
    let ids = [
        "10000000-0000-4000-8000-000000000001",
        "10000000-0000-4000-8000-000000000002",
        "10000000-0000-4000-8000-000000000003",
        "10000000-0000-4000-8000-000000000004",
        "10000000-0000-4000-8000-000000000005",
        "10000000-0000-4000-8000-000000000006",
    ];
    let mut w = World::new();
    for ((region, major, gender), id) in rows.into_iter().zip(ids) {
        let t = TenantFixture {
            id,
            region,
            major,
            minor: 1,
        };
        let n = w.next_id;
        check(
            &w.account_cmd(&t, &create("g", "p")),
            &t,
            &[as_(n, "g", "CREATED")],
        );
        assert_eq!(w.account(&t, n).unwrap().gender, gender, "{region} {major}");
    }
    // Same tenant id, other region/version: one tenant (D11, D5).
    let t = TenantFixture {
        id: ids[0],
        region: "GMS",
        major: 95,
        minor: 1,
    };
    check(&w.account_cmd(&t, &create("g", "p")), &t, &[]);
    assert_eq!(w.rejected.last(), Some(&"duplicate_name"));
    // Auto-registration applies the same rule (S31).
    let n = w.next_id;
    w.session(&T87, &login(S1, "newbie", "pw1"));
    assert_eq!(w.account(&T87, n).unwrap().gender, 10);
}

#[test]
fn s12_create_account() {
    let mut w = World::new();
    let n = w.next_id;
    let out = w.account_cmd(&T1, &create("name", "password"));
    check(&out, &T1, &[as_(n, "name", "CREATED")]);
    let a = w.account(&T1, n).unwrap();
    assert_eq!(a.name, "name");
    assert!(account_streams::domain::password::verify(
        &account_streams::wire::commands::Password::new("password"),
        &a.password
    ));
    assert_eq!(
        (a.tos, a.gender, a.pin_attempts, a.pic_attempts),
        (false, 0, 0, 0)
    );
    assert_eq!(w.id_of(&T1, "name"), Some(n));
    assert_eq!(w.derived(&T1, n), 0);
}

#[test]
fn s16_s17_s18_delete() {
    let mut w = World::new();
    w.add_account(&T1, 50, "testuser", fixture_hash("x"), false);
    check(
        &w.account_cmd(&T1, &delete(50)),
        &T1,
        &[as_(50, "testuser", "DELETED")],
    );
    assert!(w.account(&T1, 50).is_none());
    assert_eq!(w.id_of(&T1, "testuser"), None);
    assert_eq!(w.reg(&T1, 50), vec![]);
    // S17
    check(&w.account_cmd(&T1, &delete(99999)), &T1, &[]);
    // S18
    w.add_account(&T1, 51, "busy", fixture_hash("x"), false);
    w.set_registry(&T1, 51, &[(NIL, Login, 1)], T0);
    check(&w.account_cmd(&T1, &delete(51)), &T1, &[]);
    assert!(w.account(&T1, 51).is_some());
    assert_eq!(w.reg(&T1, 51), vec![(sid(NIL), Login, 1)]);
}

#[test]
fn s23_tenant_isolation() {
    let mut w = World::new();
    w.add_account(
        &T1,
        1,
        "hero",
        account_streams::domain::password::PasswordHash::from_stored("plain"),
        true,
    );
    w.add_account(
        &T2,
        2,
        "hero",
        account_streams::domain::password::PasswordHash::from_stored("plain"),
        true,
    );
    check(&w.account_cmd(&T2, &delete(1)), &T2, &[]);
    assert!(w.account(&T1, 1).is_some());
    check(
        &w.session(&T2, &progress(S9, "CHANNEL", 1, 1, r#"{"characterId":5}"#)),
        &T2,
        &[ss_err(S9, 0, "", "NOT_REGISTERED", "", "")],
    );
    check(
        &w.session(&T2, &login(S9, "hero", "pw")),
        &T2,
        &[ss_err(
            S9,
            2,
            "hero",
            "INCORRECT_PASSWORD",
            "10.0.0.5",
            "a1b2c3",
        )],
    );
}

#[test]
fn s25_empty_name_is_rejected() {
    let mut w = World::new();
    let n = w.next_id;
    check(&w.account_cmd(&T1, &create("", "x")), &T1, &[]);
    assert_eq!(w.rejected, vec!["empty_name"]);
    assert_eq!(w.next_id, n);
    assert!(w.account(&T1, n).is_none());
}

#[test]
fn s26_environment_is_echoed_only_when_present() {
    let mut w = World::new();
    // No ENVIRONMENT header: outputs carry none (checked by `check`).
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[as_(7, "alice", "LOGGED_IN"), ss_created(S1, 7, "alice")],
    );
    let mut headers = T1.headers();
    headers.push(("ENVIRONMENT".into(), b"prod".to_vec()));
    let out = w
        .session_with(&headers, &logout_cmd(S1, "LOGIN", 7))
        .unwrap();
    check_headers(&out, &headers, &[as_(7, "alice", "LOGGED_OUT")]);
}

#[test]
fn s27_s28_s29_successful_logins() {
    let mut w = World::new();
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[as_(7, "alice", "LOGGED_IN"), ss_created(S1, 7, "alice")],
    );
    assert_eq!(
        w.ban_checks,
        vec![(7, "10.0.0.5".to_string(), "a1b2c3".to_string())]
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S1), Login, 1)]);
    check(
        &w.session(&T1, &login(S1, "bob", "hunter2")),
        &T1,
        &[as_(8, "bob", "LOGGED_IN"), ss_license(S1, 8, "bob")],
    );
    assert_eq!(w.reg(&T1, 8), vec![(sid(S1), Login, 1)]);
    w.add_account(&TJ, 30, "jiro", fixture_hash("pw"), false);
    check(
        &w.session(&TJ, &login(S1, "jiro", "pw")),
        &TJ,
        &[as_(30, "jiro", "LOGGED_IN"), ss_created(S1, 30, "jiro")],
    );
    assert_eq!(w.reg(&TJ, 30), vec![(sid(S1), Login, 1)]);
}

#[test]
fn s30_s31_s81_auto_registration() {
    let mut w = World::new();
    let n = w.next_id;
    let out = w.session(&T1, &login(S1, "newbie", "pw1"));
    // D12: one fixed order, AS then SS.
    check(
        &out,
        &T1,
        &[
            as_(n, "newbie", "CREATED"),
            as_(n, "newbie", "LOGGED_IN"),
            ss_license(S1, n, "newbie"),
        ],
    );
    let a = w.account(&T1, n).unwrap();
    assert_eq!((a.gender, a.tos), (0, false));
    assert!(account_streams::domain::password::verify(
        &account_streams::wire::commands::Password::new("pw1"),
        &a.password
    ));
    assert_eq!(w.reg(&T1, n), vec![(sid(S1), Login, 1)]);
    assert_eq!(w.ban_checks.last().unwrap().0, n);
    let n = w.next_id;
    check(
        &w.session(&T87, &login(S1, "newbie", "pw1")),
        &T87,
        &[
            as_(n, "newbie", "CREATED"),
            as_(n, "newbie", "LOGGED_IN"),
            ss_license(S1, n, "newbie"),
        ],
    );
    assert_eq!(w.account(&T87, n).unwrap().gender, 10);
    // JMS auto-registration: CREATED instead of the license request.
    let n = w.next_id;
    check(
        &w.session(&TJ, &login(S1, "newbie", "pw1")),
        &TJ,
        &[
            as_(n, "newbie", "CREATED"),
            as_(n, "newbie", "LOGGED_IN"),
            ss_created(S1, n, "newbie"),
        ],
    );
}

#[test]
fn auto_registered_then_banned_by_ip() {
    let mut w = World::new();
    let n = w.next_id;
    w.bans.insert(
        n,
        BanStatus::Banned {
            reason_code: 1,
            expiry: BanExpiry::Permanent,
        },
    );
    let out = w.session(&T1, &login(S1, "newbie", "pw1"));
    check(
        &out,
        &T1,
        &[
            as_(n, "newbie", "CREATED"),
            ss_err_until(
                S1,
                n,
                "newbie",
                "DELETED_OR_BLOCKED",
                1,
                0,
                "10.0.0.5",
                "a1b2c3",
            ),
        ],
    );
    assert!(w.account(&T1, n).is_some());
    assert_eq!(w.reg(&T1, n), vec![]);
}

#[test]
fn s32_unknown_account_without_auto_register() {
    let mut w = World::new();
    w.config.automatic_register = false;
    check(
        &w.session(&T1, &login(S1, "ghost", "x")),
        &T1,
        &[ss_err(S1, 0, "", "NOT_REGISTERED", "10.0.0.5", "a1b2c3")],
    );
    assert!(w.ban_checks.is_empty());
    assert_eq!(w.id_of(&T1, "ghost"), None);
}

#[test]
fn s33_s34_wrong_and_legacy_passwords() {
    let mut w = World::new();
    check(
        &w.session(&T1, &login(S1, "alice", "wrong")),
        &T1,
        &[ss_err(
            S1,
            7,
            "alice",
            "INCORRECT_PASSWORD",
            "10.0.0.5",
            "a1b2c3",
        )],
    );
    assert_eq!(w.reg(&T1, 7), vec![]);
    check(
        &w.session(&T1, &login(S1, "legacy", "secret")),
        &T1,
        &[ss_err(
            S1,
            9,
            "legacy",
            "INCORRECT_PASSWORD",
            "10.0.0.5",
            "a1b2c3",
        )],
    );
    // D9: empty and "$" stored values fail the check instead of panicking.
    for stored in ["", "$", "$2", "$2a$", "$2a$10$short"] {
        let mut w = World::new();
        w.add_account(
            &T1,
            60,
            "odd",
            account_streams::domain::password::PasswordHash::from_stored(stored),
            true,
        );
        check(
            &w.session(&T1, &login(S1, "odd", "x")),
            &T1,
            &[ss_err(
                S1,
                60,
                "odd",
                "INCORRECT_PASSWORD",
                "10.0.0.5",
                "a1b2c3",
            )],
        );
    }
}

#[test]
fn s35_s36_password_before_logged_in() {
    let mut w = World::new();
    w.set_registry(&T1, 7, &[(S2, Channel, 1)], T0);
    check(
        &w.session(&T1, &login(S1, "alice", "wrong")),
        &T1,
        &[ss_err(
            S1,
            7,
            "alice",
            "INCORRECT_PASSWORD",
            "10.0.0.5",
            "a1b2c3",
        )],
    );
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[ss_err(
            S1,
            7,
            "alice",
            "ALREADY_LOGGED_IN",
            "10.0.0.5",
            "a1b2c3",
        )],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 1)]);
    w.set_registry(&T1, 7, &[(S2, Channel, 2)], T0);
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[ss_err(
            S1,
            7,
            "alice",
            "ALREADY_LOGGED_IN",
            "10.0.0.5",
            "a1b2c3",
        )],
    );
}

#[test]
fn s37_s101_ban_only_after_the_right_password() {
    for logged_in in [false, true] {
        let mut w = World::new();
        w.bans.insert(
            7,
            BanStatus::Banned {
                reason_code: 3,
                expiry: BanExpiry::At(UnixMillis(1_893_456_000_000)),
            },
        );
        if logged_in {
            w.set_registry(&T1, 7, &[(S2, Channel, 1)], T0);
        }
        let before = w.reg(&T1, 7);
        check(
            &w.session(&T1, &login(S1, "alice", "wrong")),
            &T1,
            &[ss_err(
                S1,
                7,
                "alice",
                "INCORRECT_PASSWORD",
                "10.0.0.5",
                "a1b2c3",
            )],
        );
        let out = w.session(&T1, &login(S1, "alice", "secret"));
        check(
            &out,
            &T1,
            &[ss_err_until(
                S1,
                7,
                "alice",
                "DELETED_OR_BLOCKED",
                3,
                1_893_456_000_000,
                "10.0.0.5",
                "a1b2c3",
            )],
        );
        assert_eq!(
            String::from_utf8(out[0].value.clone()).unwrap(),
            r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":7,"accountName":"alice","type":"ERROR","body":{"code":"DELETED_OR_BLOCKED","reason":3,"until":1893456000000,"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#
        );
        assert_eq!(w.reg(&T1, 7), before);
    }
}

#[test]
fn s39_ban_service_down_fails_open() {
    let mut w = World::new();
    w.ban_service_down = true;
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[as_(7, "alice", "LOGGED_IN"), ss_created(S1, 7, "alice")],
    );
}

#[test]
fn s42_empty_account_name() {
    for auto in [true, false] {
        let mut w = World::new();
        w.config.automatic_register = auto;
        let n = w.next_id;
        check(
            &w.session(&T1, &login(S1, "", "pw")),
            &T1,
            &[ss_err(S1, 0, "", "NOT_REGISTERED", "10.0.0.5", "a1b2c3")],
        );
        assert_eq!(w.next_id, n);
        assert_eq!(w.id_of(&T1, ""), None);
    }
}

#[test]
fn s43_password_too_long_for_registration() {
    let mut w = World::new();
    let n = w.next_id;
    let long = "a".repeat(73);
    check(
        &w.session(&T1, &login(S1, "longpw", &long)),
        &T1,
        &[ss_err(S1, 0, "", "SYSTEM_ERROR", "10.0.0.5", "a1b2c3")],
    );
    assert_eq!(w.id_of(&T1, "longpw"), None);
    assert_eq!(w.next_id, n);
    check(&w.account_cmd(&T1, &create("longpw", &long)), &T1, &[]);
    assert_eq!(w.rejected.last(), Some(&"password_too_long"));
    // 72 bytes still register.
    let out = w.account_cmd(&T1, &create("longpw", &"a".repeat(72)));
    check(&out, &T1, &[as_(n, "longpw", "CREATED")]);
}

#[test]
fn s44_s97_missing_or_invalid_tenant_is_dead_lettered() {
    let cases: Vec<Vec<(String, Vec<u8>)>> = vec![
        vec![],
        vec![
            ("REGION".into(), b"GMS".to_vec()),
            ("MAJOR_VERSION".into(), vec![0, 83]),
            ("MINOR_VERSION".into(), vec![0, 1]),
        ],
        vec![(
            "TENANT_ID".into(),
            b"0f7a6c1e8d2b4c3a9e5f1a2b3c4d5e6f".to_vec(),
        )],
        vec![(
            "TENANT_ID".into(),
            b"zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz".to_vec(),
        )],
        vec![("TENANT_ID".into(), NIL.as_bytes().to_vec())],
    ];
    for headers in cases {
        let mut w = World::new();
        let n = w.next_id;
        let cmd = login(S1, "zed", "zedpass1");
        let err = w.session_with(&headers, &cmd).unwrap_err();
        assert_eq!(err.reason(), "missing_tenant");
        let dead = account_streams::wire::redact_secrets(cmd.as_bytes());
        let dead = String::from_utf8(dead).unwrap();
        assert!(!dead.contains("zedpass1"), "{dead}");
        assert_eq!(
            dead,
            r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":0,"author":"LOGIN","type":"CREATE","body":{"accountName":"zed","password":"***","ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#
        );
        assert_eq!(w.next_id, n);
        assert!(w.names.keys().all(|(_, name)| name != "zed"));
        assert!(w.registries.is_empty());
        assert_eq!(
            w.account_with(&headers, &create("zed", "zedpass1"))
                .unwrap_err()
                .reason(),
            "missing_tenant"
        );
        assert_eq!(
            w.account_with(&headers, &pin(7, false))
                .unwrap_err()
                .reason(),
            "missing_tenant"
        );
    }
}

#[test]
fn s45_s98_duplicate_names() {
    let mut w = World::new();
    check(&w.account_cmd(&T1, &create("alice", "other")), &T1, &[]);
    assert_eq!(w.rejected, vec!["duplicate_name"]);
    check(
        &w.session(&T1, &login(S1, "alice", "other")),
        &T1,
        &[ss_err(
            S1,
            7,
            "alice",
            "INCORRECT_PASSWORD",
            "10.0.0.5",
            "a1b2c3",
        )],
    );
    check(&w.account_cmd(&T1J, &create("alice", "other")), &T1J, &[]);
    let n = w.next_id;
    check(
        &w.account_cmd(&T1, &create("Alice", "other")),
        &T1,
        &[as_(n, "Alice", "CREATED")],
    );
    let n = w.next_id;
    check(
        &w.account_cmd(&T2, &create("alice", "other")),
        &T2,
        &[as_(n, "alice", "CREATED")],
    );
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[as_(7, "alice", "LOGGED_IN"), ss_created(S1, 7, "alice")],
    );
}

#[test]
fn s47_s48_s49_s50_s51_s52_progress_states() {
    let mut w = World::new();
    w.set_registry(&T1, 7, &[(S1, Login, 1)], T0 - 100);
    let out = w.session(&T1, &progress(S1, "LOGIN", 7, 2, P2));
    assert_eq!(
        String::from_utf8(out[0].value.clone()).unwrap(),
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":7,"accountName":"alice","type":"STATE_CHANGED","body":{"state":2,"params":{"characterId":1001,"ipAddress":"10.0.0.20","port":7575}}}"#
    );
    check(&out, &T1, &[ss_state(S1, 7, "alice", 2, P2N)]);
    let r = w
        .registries
        .get(&(T1.tid(), account_streams::wire::ids::AccountId(7)))
        .unwrap();
    assert_eq!(r.sessions().next().unwrap().1.updated_at, UnixMillis(T0));
    // S52 (state 1 as LOGIN always fails)
    check(
        &w.session(&T1, &progress(S1, "LOGIN", 7, 1, "null")),
        &T1,
        &[ss_err(S1, 7, "alice", "SYSTEM_ERROR", "", "")],
    );
    // S48
    check(
        &w.session(&T1, &progress(S2, "CHANNEL", 7, 1, P1)),
        &T1,
        &[
            as_(7, "alice", "LOGGED_IN"),
            ss_state(S2, 7, "alice", 1, P1),
        ],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 1)]);
    // S49
    let mut w = World::new();
    w.set_registry(&T1, 7, &[(S1, Login, 1)], T0);
    check(
        &w.session(&T1, &progress(S2, "CHANNEL", 7, 1, P1)),
        &T1,
        &[ss_err(S2, 7, "alice", "SYSTEM_ERROR", "", "")],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S1), Login, 1)]);
    // S50
    let mut w = World::new();
    for state in [0, 1, 2] {
        check(
            &w.session(&T1, &progress(S2, "CHANNEL", 7, state, P1)),
            &T1,
            &[ss_err(S2, 7, "alice", "SYSTEM_ERROR", "", "")],
        );
    }
    // S51 (also with state 3: the account check comes first)
    for state in [1, 3] {
        check(
            &w.session(
                &T1,
                &progress(S2, "CHANNEL", 999, state, r#"{"characterId":1}"#),
            ),
            &T1,
            &[ss_err(S2, 0, "", "NOT_REGISTERED", "", "")],
        );
    }
}

#[test]
fn s53_s54_s56_state_zero_and_unknown_state() {
    let mut w = World::new();
    w.set_registry(&T1, 7, &[(S2, Channel, 1)], T0);
    check(
        &w.session(&T1, &progress(S2, "CHANNEL", 7, 0, r#"{"reason":"quit"}"#)),
        &T1,
        &[
            as_(7, "alice", "LOGGED_OUT"),
            ss_state(S2, 7, "alice", 0, r#"{"reason":"quit"}"#),
        ],
    );
    assert_eq!(w.reg(&T1, 7), vec![]);
    w.set_registry(&T1, 7, &[(S2, Channel, 2)], T0);
    check(
        &w.session(&T1, &progress(S2, "CHANNEL", 7, 0, "null")),
        &T1,
        &[ss_err(S2, 7, "alice", "SYSTEM_ERROR", "", "")],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 2)]);
    // State 0 naming another session: STATE_CHANGED but no LOGGED_OUT (D3).
    w.set_registry(&T1, 7, &[(S2, Channel, 1)], T0);
    check(
        &w.session(&T1, &progress(S9, "CHANNEL", 7, 0, "null")),
        &T1,
        &[ss_state(S9, 7, "alice", 0, "null")],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 1)]);
    // State 0 with the nil session terminates everything.
    w.set_registry(&T1, 7, &[(S2, Channel, 2)], T0);
    check(
        &w.session(&T1, &progress(NIL, "INTERNAL", 7, 0, "null")),
        &T1,
        &[
            as_(7, "alice", "LOGGED_OUT"),
            ss_state(NIL, 7, "alice", 0, "null"),
        ],
    );
    assert_eq!(w.reg(&T1, 7), vec![]);
    // S56
    w.set_registry(&T1, 7, &[(S2, Channel, 1)], T0);
    check(
        &w.session(&T1, &progress(S2, "CHANNEL", 7, 3, "null")),
        &T1,
        &[ss_err(S2, 0, "", "SYSTEM_ERROR", "", "")],
    );
    check(
        &w.session(&T1, &progress(S2, "CHANNEL", 7, 255, "null")),
        &T1,
        &[ss_err(S2, 0, "", "SYSTEM_ERROR", "", "")],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 1)]);
    for bad in ["256", "-1", "1.0", "\"1\""] {
        let err = w
            .session_with(
                &T1.headers(),
                &progress(S2, "CHANNEL", 7, 0, "null")
                    .replace("\"state\":0", &format!("\"state\":{bad}")),
            )
            .unwrap_err();
        assert_eq!(err.reason(), "bad_json", "{bad}");
    }
}

#[test]
fn s57_s102_issuer_is_upper_cased() {
    let mut w = World::new();
    w.set_registry(&T1, 7, &[(S1, Login, 2)], T0);
    check(
        &w.session(&T1, &progress(S2, "channel", 7, 1, P1)),
        &T1,
        &[
            as_(7, "alice", "LOGGED_IN"),
            ss_state(S2, 7, "alice", 1, P1),
        ],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 1)]);
    let p = r#"{"ipAddress":"10.0.0.21","port":7576}"#;
    check(
        &w.session(&T1, &progress(S2, "Channel", 7, 2, p)),
        &T1,
        &[ss_state(S2, 7, "alice", 2, p)],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 2)]);
    check(&w.session(&T1, &logout_cmd(S2, "channel", 7)), &T1, &[]);
    check(
        &w.session(&T1, &progress(S3, "channel", 7, 1, P1)),
        &T1,
        &[
            as_(7, "alice", "LOGGED_IN"),
            ss_state(S3, 7, "alice", 1, P1),
        ],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S3), Channel, 1)]);
    check(
        &w.session(&T1, &progress(S3, "channel", 7, 0, "null")),
        &T1,
        &[
            as_(7, "alice", "LOGGED_OUT"),
            ss_state(S3, 7, "alice", 0, "null"),
        ],
    );
    assert_eq!(w.reg(&T1, 7), vec![]);
    w.set_registry(&T1, 7, &[(S1, Login, 1)], T0);
    check(
        &w.session(&T1, &progress(S1, "login", 7, 2, "null")),
        &T1,
        &[ss_state(S1, 7, "alice", 2, "null")],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S1), Login, 2)]);
    // B5 kept: a failed transition still answers STATE_CHANGED(2).
    w.set_registry(&T1, 7, &[(S2, Channel, 1)], T0);
    check(
        &w.session(&T1, &progress(S9, "CHANNEL", 7, 2, "null")),
        &T1,
        &[ss_state(S9, 7, "alice", 2, "null")],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 1)]);
}

#[test]
fn s60_s61_s62_s63_s64_s65_logout() {
    let mut w = World::new();
    w.set_registry(&T1, 7, &[(S3, Channel, 1)], T0);
    check(
        &w.session(&T1, &logout_cmd(S3, "CHANNEL", 7)),
        &T1,
        &[as_(7, "alice", "LOGGED_OUT")],
    );
    assert_eq!(w.reg(&T1, 7), vec![]);
    w.set_registry(&T1, 7, &[(S2, Channel, 2)], T0);
    check(&w.session(&T1, &logout_cmd(S2, "CHANNEL", 7)), &T1, &[]);
    assert_eq!(w.reg(&T1, 7), vec![(sid(S2), Channel, 2)]);
    w.set_registry(&T1, 7, &[(S3, Channel, 1)], T0);
    check(
        &w.session(&T1, &logout_cmd(S3, "channel", 7)),
        &T1,
        &[as_(7, "alice", "LOGGED_OUT")],
    );
    // S63: administrative logout.
    w.set_registry(&T1, 7, &[(S2, Channel, 2)], T0);
    check(
        &w.session(&T1, &logout_cmd(NIL, "INTERNAL", 7)),
        &T1,
        &[as_(7, "alice", "LOGGED_OUT")],
    );
    assert_eq!(w.reg(&T1, 7), vec![]);
    // S64 (D3): not logged in -> nothing.
    check(&w.session(&T1, &logout_cmd(S1, "LOGIN", 7)), &T1, &[]);
    check(&w.session(&T1, &logout_cmd(NIL, "INTERNAL", 7)), &T1, &[]);
    // S65
    check(&w.session(&T1, &logout_cmd(S1, "LOGIN", 0)), &T1, &[]);
    check(&w.session(&T1, &logout_cmd(S1, "LOGIN", 999)), &T1, &[]);
}

#[test]
fn s67_s77_s78_bad_input_reasons() {
    let mut w = World::new();
    let h = T1.headers();
    assert_eq!(
        w.account_with(&h, r#"{"type":"DELETE","body":{"accountId":-1}}"#)
            .unwrap_err()
            .reason(),
        "bad_json"
    );
    assert_eq!(
        w.account_with(
            &h,
            r#"{"type":"CREATE","body":{"name":"x","password":123}}"#
        )
        .unwrap_err()
        .reason(),
        "bad_json"
    );
    assert_eq!(
        w.session_with(
            &h,
            r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","type":"CREATE","body":"#
        )
        .unwrap_err()
        .reason(),
        "bad_json"
    );
    assert_eq!(
        w.session_with(&h, "not json").unwrap_err().reason(),
        "bad_json"
    );
    assert_eq!(w.session_with(&h, r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":7,"author":"LOGIN","type":"REFRESH","body":{}}"#).unwrap_err().reason(), "unknown_type");
    assert_eq!(
        w.account_with(&h, r#"{"type":"UPDATE","body":{}}"#)
            .unwrap_err()
            .reason(),
        "unknown_type"
    );
    assert_eq!(
        w.account_with(&h, "null").unwrap_err().reason(),
        "unknown_type"
    );
    let big = format!(
        r#"{{"type":"CREATE","body":{{"name":"x","password":"{}"}}}}"#,
        "a".repeat(2_000_000)
    );
    assert_eq!(w.account_with(&h, &big).unwrap_err().reason(), "too_large");
    let mut bad_version = T1.headers();
    bad_version[3].1 = vec![83];
    assert_eq!(
        w.session_with(&bad_version, &login(S1, "alice", "secret"))
            .unwrap_err()
            .reason(),
        "bad_header"
    );
    assert!(w.accounts.len() == 3 && w.registries.is_empty() && w.rejected.is_empty());
}

#[test]
fn s75_no_mass_logout_and_durable_sessions() {
    // D7: shutdown produces nothing; state survives (here: the same World).
    let mut w = World::new();
    w.add_account(&T87, 20, "kim", fixture_hash("k"), true);
    w.set_registry(&T1, 7, &[(S3, Channel, 1)], T0);
    w.set_registry(&T87, 20, &[(S5, Login, 2)], T0);
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[ss_err(
            S1,
            7,
            "alice",
            "ALREADY_LOGGED_IN",
            "10.0.0.5",
            "a1b2c3",
        )],
    );
    w.now = T0 + 5001;
    check_headers(
        &w.tick(),
        &T87.tenant_headers_only(),
        &[as_(20, "kim", "LOGGED_OUT")],
    );
    assert_eq!(w.reg(&T1, 7), vec![(sid(S3), Channel, 1)]);
}

#[test]
fn s76_keys_and_headers() {
    let mut w = World::new();
    let out = w.session(&T1, &login(S1, "alice", "secret"));
    for m in &out {
        assert_eq!(m.key, [7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            m.headers,
            vec![
                ("traceparent".to_string(), TRACEPARENT.to_vec()),
                (
                    "TENANT_ID".to_string(),
                    b"0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f".to_vec()
                ),
                ("REGION".to_string(), b"GMS".to_vec()),
                ("MAJOR_VERSION".to_string(), vec![0x00, 0x53]),
                ("MINOR_VERSION".to_string(), vec![0x00, 0x01]),
            ]
        );
    }
    w.add_account(&T1, 1001, "k", fixture_hash("k"), true);
    let out = w.session(&T1, &login(S2, "k", "k"));
    assert_eq!(out[0].key, [0xE9, 0x03, 0, 0, 0, 0, 0, 0]);
    let out = w.session(&TJ, &login(S1, "tj", "k"));
    assert_eq!(
        out[0].headers[3],
        ("MAJOR_VERSION".to_string(), vec![0x00, 0xB9])
    );
}

#[test]
fn s93_first_failed_pin_and_pic() {
    let mut w = World::new();
    let out = w.account_cmd(&T1, &pin(7, false));
    assert_eq!(
        String::from_utf8(out[0].value.clone()).unwrap(),
        r#"{"sessionId":"00000000-0000-0000-0000-000000000000","accountId":7,"accountName":"alice","type":"ERROR","body":{"code":"INVALID_PIN","reason":0,"until":0,"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#
    );
    check(
        &out,
        &T1,
        &[ss_err(NIL, 7, "alice", "INVALID_PIN", "10.0.0.5", "a1b2c3")],
    );
    assert_eq!(w.account(&T1, 7).unwrap().pin_attempts, 1);
    check(
        &w.account_cmd(&T1, &pic(7, false)),
        &T1,
        &[ss_err(NIL, 7, "alice", "INVALID_PIC", "10.0.0.5", "a1b2c3")],
    );
    let a = w.account(&T1, 7).unwrap();
    assert_eq!((a.pin_attempts, a.pic_attempts), (1, 1));
    check(&w.account_cmd(&T1, &pin(999, false)), &T1, &[]);
}

#[test]
fn s94_fifth_failed_pin_bans_and_is_enforced_locally() {
    let mut w = World::new();
    for _ in 0..4 {
        check(
            &w.account_cmd(&T1, &pin(7, false)),
            &T1,
            &[ss_err(NIL, 7, "alice", "INVALID_PIN", "10.0.0.5", "a1b2c3")],
        );
    }
    let t = w.now;
    let out = w.account_cmd(&T1, &pin(7, false));
    check(
        &out,
        &T1,
        &[
            ss_err(NIL, 7, "alice", "INVALID_PIN", "10.0.0.5", "a1b2c3"),
            ban(7, "PIN", 5, t + 900_000),
        ],
    );
    assert_eq!(
        String::from_utf8(out[1].value.clone()).unwrap(),
        format!(
            r#"{{"type":"CREATE","body":{{"banType":2,"value":"7","reason":"Exceeded maximum PIN attempts (5)","reasonCode":99,"permanent":false,"expiresAt":{},"issuedBy":"atlas-account"}}}}"#,
            t + 900_000
        )
    );
    assert_eq!(w.account(&T1, 7).unwrap().pin_attempts, 0);
    for down in [true, false] {
        w.ban_service_down = down;
        w.now = t + 899_999;
        check(
            &w.session(&T1, &login(S1, "alice", "secret")),
            &T1,
            &[ss_err_until(
                S1,
                7,
                "alice",
                "DELETED_OR_BLOCKED",
                99,
                (t + 900_000) as u64,
                "10.0.0.5",
                "a1b2c3",
            )],
        );
        check(
            &w.session(&T1, &login(S1, "alice", "wrong")),
            &T1,
            &[ss_err(
                S1,
                7,
                "alice",
                "INCORRECT_PASSWORD",
                "10.0.0.5",
                "a1b2c3",
            )],
        );
        assert_eq!(w.reg(&T1, 7), vec![]);
    }
    w.now = t + 900_000;
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[as_(7, "alice", "LOGGED_IN"), ss_created(S1, 7, "alice")],
    );
}

#[test]
fn s95_success_resets_the_counter() {
    let mut w = World::new();
    w.accounts
        .get_mut(&(T1.tid(), account_streams::wire::ids::AccountId(7)))
        .unwrap()
        .pin_attempts = 3;
    check(&w.account_cmd(&T1, &pin(7, true)), &T1, &[]);
    assert_eq!(w.account(&T1, 7).unwrap().pin_attempts, 0);
    for _ in 0..4 {
        check(
            &w.account_cmd(&T1, &pin(7, false)),
            &T1,
            &[ss_err(NIL, 7, "alice", "INVALID_PIN", "10.0.0.5", "a1b2c3")],
        );
    }
    let t = w.now;
    check(
        &w.account_cmd(&T1, &pin(7, false)),
        &T1,
        &[
            ss_err(NIL, 7, "alice", "INVALID_PIN", "10.0.0.5", "a1b2c3"),
            ban(7, "PIN", 5, t + 900_000),
        ],
    );
    check(&w.account_cmd(&T1, &pin(7, true)), &T1, &[]);
    w.accounts
        .get_mut(&(T1.tid(), account_streams::wire::ids::AccountId(7)))
        .unwrap()
        .pic_attempts = 2;
    w.accounts
        .get_mut(&(T1.tid(), account_streams::wire::ids::AccountId(7)))
        .unwrap()
        .pin_attempts = 2;
    check(&w.account_cmd(&T1, &pic(7, true)), &T1, &[]);
    let a = w.account(&T1, 7).unwrap();
    assert_eq!((a.pin_attempts, a.pic_attempts), (2, 0));
}

#[test]
fn s96_pic_with_custom_limits() {
    let mut w = World::new();
    w.config.max_pic_attempts = 3;
    w.config.pic_ban_duration = std::time::Duration::from_secs(3600);
    for _ in 0..2 {
        check(
            &w.account_cmd(&T1, &pic(7, false)),
            &T1,
            &[ss_err(NIL, 7, "alice", "INVALID_PIC", "10.0.0.5", "a1b2c3")],
        );
    }
    w.now += 1234;
    let t = w.now;
    check(
        &w.account_cmd(&T1, &pic(7, false)),
        &T1,
        &[
            ss_err(NIL, 7, "alice", "INVALID_PIC", "10.0.0.5", "a1b2c3"),
            ban(7, "PIC", 3, t + 3_600_000),
        ],
    );
    assert_eq!(w.account(&T1, 7).unwrap().pic_attempts, 0);
    // One failure, a success, then three more failures are needed.
    let mut w = World::new();
    w.config.max_pic_attempts = 3;
    w.account_cmd(&T1, &pic(7, false));
    w.account_cmd(&T1, &pic(7, true));
    for _ in 0..2 {
        assert_eq!(w.account_cmd(&T1, &pic(7, false)).len(), 1);
    }
    assert_eq!(w.account_cmd(&T1, &pic(7, false)).len(), 2);
}

#[test]
fn s99_logout_of_unregistered_session_while_another_is_active() {
    let mut w = World::new();
    w.set_registry(&T1, 7, &[(S3, Channel, 1)], T0);
    check(&w.session(&T1, &logout_cmd(S9, "CHANNEL", 7)), &T1, &[]);
    check(&w.session(&T1, &logout_cmd(S1, "LOGIN", 7)), &T1, &[]);
    check(&w.session(&T1, &logout_cmd(S3, "LOGIN", 7)), &T1, &[]);
    assert_eq!(w.reg(&T1, 7), vec![(sid(S3), Channel, 1)]);
    assert_eq!(w.derived(&T1, 7), 1);
    check(
        &w.session(&T1, &logout_cmd(S3, "CHANNEL", 7)),
        &T1,
        &[as_(7, "alice", "LOGGED_OUT")],
    );
    assert_eq!(w.reg(&T1, 7), vec![]);
    check(&w.session(&T1, &logout_cmd(S3, "CHANNEL", 7)), &T1, &[]);
}

#[test]
fn s101_integer_and_string_ban_expiry_give_the_same_output() {
    use account_streams::wire::time::parse_rfc3339;
    let from_string = parse_rfc3339("2030-01-01T00:00:00Z").unwrap();
    assert_eq!(from_string, UnixMillis(1_893_456_000_000));
}

#[test]
fn s103_tenant_identity_is_the_id() {
    let mut w = World::new();
    w.session(&T1, &login(S1, "alice", "secret"));
    check(
        &w.session(&T1J, &login(S9, "alice", "secret")),
        &T1J,
        &[ss_err(
            S9,
            7,
            "alice",
            "ALREADY_LOGGED_IN",
            "10.0.0.5",
            "a1b2c3",
        )],
    );
    let t187 = TenantFixture {
        id: T1.id,
        region: "GMS",
        major: 87,
        minor: 1,
    };
    check(
        &w.session(&t187, &login(S9, "alice", "secret")),
        &t187,
        &[ss_err(
            S9,
            7,
            "alice",
            "ALREADY_LOGGED_IN",
            "10.0.0.5",
            "a1b2c3",
        )],
    );
    check(&w.account_cmd(&T1J, &delete(7)), &T1J, &[]);
    check(
        &w.session(&T1J, &logout_cmd(S1, "LOGIN", 7)),
        &T1J,
        &[as_(7, "alice", "LOGGED_OUT")],
    );
    assert_eq!(w.reg(&T1, 7), vec![]);
    check(
        &w.session(&T1J, &login(S9, "bob", "hunter2")),
        &T1J,
        &[as_(8, "bob", "LOGGED_IN"), ss_created(S9, 8, "bob")],
    );
}

#[test]
fn s104_login_attempt_limit() {
    let mut w = World::new();
    w.config.max_login_attempts = 3;
    for _ in 0..3 {
        check(
            &w.session(&T1, &login(S1, "alice", "wrong")),
            &T1,
            &[ss_err(
                S1,
                7,
                "alice",
                "INCORRECT_PASSWORD",
                "10.0.0.5",
                "a1b2c3",
            )],
        );
    }
    for pw in ["secret", "wrong"] {
        let out = w.session(&T1, &login(S1, "alice", pw));
        assert_eq!(
            String::from_utf8(out[0].value.clone()).unwrap(),
            r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":0,"accountName":"","type":"ERROR","body":{"code":"TOO_MANY_ATTEMPTS","reason":0,"until":0,"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#
        );
        check(
            &out,
            &T1,
            &[ss_err(S1, 0, "", "TOO_MANY_ATTEMPTS", "10.0.0.5", "a1b2c3")],
        );
        assert_eq!(w.reg(&T1, 7), vec![]);
    }
    // Not limited for another account name.
    check(
        &w.session(&T1, &login(S1, "bob", "hunter2")),
        &T1,
        &[as_(8, "bob", "LOGGED_IN"), ss_license(S1, 8, "bob")],
    );
    check(
        &w.session(&T1, &login(S9, "alice", "secret")),
        &T1,
        &[as_(7, "alice", "LOGGED_IN"), ss_created(S9, 7, "alice")],
    );

    // Variant: two failures, success resets, logout, three more allowed.
    let mut w = World::new();
    w.config.max_login_attempts = 3;
    for _ in 0..2 {
        w.session(&T1, &login(S1, "alice", "wrong"));
    }
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[as_(7, "alice", "LOGGED_IN"), ss_created(S1, 7, "alice")],
    );
    assert!(w.account(&T1, 7).unwrap().login_failures.is_empty());
    w.session(&T1, &logout_cmd(S1, "LOGIN", 7));
    for _ in 0..3 {
        check(
            &w.session(&T1, &login(S1, "alice", "wrong")),
            &T1,
            &[ss_err(
                S1,
                7,
                "alice",
                "INCORRECT_PASSWORD",
                "10.0.0.5",
                "a1b2c3",
            )],
        );
    }
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[ss_err(S1, 0, "", "TOO_MANY_ATTEMPTS", "10.0.0.5", "a1b2c3")],
    );

    // Default 0: off, and failures are not even stored.
    let mut w = World::new();
    for _ in 0..5 {
        check(
            &w.session(&T1, &login(S1, "alice", "wrong")),
            &T1,
            &[ss_err(
                S1,
                7,
                "alice",
                "INCORRECT_PASSWORD",
                "10.0.0.5",
                "a1b2c3",
            )],
        );
    }
    assert!(w.account(&T1, 7).unwrap().login_failures.is_empty());
    check(
        &w.session(&T1, &login(S1, "alice", "secret")),
        &T1,
        &[as_(7, "alice", "LOGGED_IN"), ss_created(S1, 7, "alice")],
    );
}

#[test]
fn rfc3339_time_encoding_switch() {
    let mut w = World::new();
    w.enc = account_streams::wire::TimeEncoding::Rfc3339;
    w.config.max_pin_attempts = 1;
    let out = w.account_cmd(&T1, &pin(7, false));
    assert_eq!(
        String::from_utf8(out[0].value.clone()).unwrap(),
        r#"{"sessionId":"00000000-0000-0000-0000-000000000000","accountId":7,"accountName":"alice","type":"ERROR","body":{"code":"INVALID_PIN","reason":0,"until":"0001-01-01T00:00:00Z","ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#
    );
    assert_eq!(
        String::from_utf8(out[1].value.clone()).unwrap(),
        r#"{"type":"CREATE","body":{"banType":2,"value":"7","reason":"Exceeded maximum PIN attempts (1)","reasonCode":99,"permanent":false,"expiresAt":"2026-08-23T10:30:00Z","issuedBy":"atlas-account"}}"#
    );
    w.bans.insert(
        8,
        BanStatus::Banned {
            reason_code: 3,
            expiry: BanExpiry::At(UnixMillis(1_893_456_000_000)),
        },
    );
    let out = w.session(&T1, &login(S1, "bob", "hunter2"));
    assert_eq!(
        String::from_utf8(out[0].value.clone()).unwrap(),
        r#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":8,"accountName":"bob","type":"ERROR","body":{"code":"DELETED_OR_BLOCKED","reason":3,"until":"2030-01-01T00:00:00Z","ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#
    );
}
