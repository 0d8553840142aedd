//! Scenario harness: the fixtures of SCENARIOS.md section 0, an in-memory
//! model of the app's stores, and a driver that runs decode -> plan ->
//! (real bcrypt) -> decide -> render, so tests assert exact bytes.
#![allow(dead_code)]

use account_streams::config::AccountConfig;
use account_streams::domain::accounts::{decide_create, plan_create, CreatePlan};
use account_streams::domain::attempts::{attempt, AttemptKind};
use account_streams::domain::expiry::expire;
use account_streams::domain::login::{
    decide_login, plan_login, BanStatus, LoginDecision, LoginFacts, LoginState, LoginStep,
    PasswordFact, PasswordWork,
};
use account_streams::domain::password::{self, PasswordHash};
use account_streams::domain::session::{logout, progress_state};
use account_streams::domain::{Account, Change, Ctx, Effects, Registry, Service, SessionState};
use account_streams::wire::commands::{AccountCommand, Password, SessionCommandBody};
use account_streams::wire::ids::{AccountId, SessionId, Tenant, TenantId, UnixMillis, Uuid};
use account_streams::wire::{
    decode_account_command, decode_session_command, parse_headers, render, DecodeError,
    OutboundContext, OutputTopic, TimeEncoding, WireMessage,
};
use std::collections::{BTreeMap, HashMap};

pub const S1: &str = "a0000000-0000-4000-8000-000000000001";
pub const S2: &str = "a0000000-0000-4000-8000-000000000002";
pub const S3: &str = "a0000000-0000-4000-8000-000000000003";
pub const S5: &str = "a0000000-0000-4000-8000-000000000005";
pub const S9: &str = "a0000000-0000-4000-8000-000000000009";
pub const NIL: &str = "00000000-0000-0000-0000-000000000000";
pub const TRACEPARENT: &[u8] = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
/// 2026-08-23T10:15:00Z: the default processing time.
pub const T0: i64 = 1_787_480_100_000;

pub fn sid(s: &str) -> SessionId {
    SessionId(Uuid::parse(s.as_bytes()).unwrap())
}

#[derive(Clone, Debug)]
pub struct TenantFixture {
    pub id: &'static str,
    pub region: &'static str,
    pub major: u16,
    pub minor: u16,
}

pub const T1: TenantFixture = TenantFixture {
    id: "0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f",
    region: "GMS",
    major: 83,
    minor: 1,
};
pub const T2: TenantFixture = TenantFixture {
    id: "2b4e9d10-5a6c-4f7e-8a9b-0c1d2e3f4a5b",
    region: "GMS",
    major: 83,
    minor: 1,
};
pub const T87: TenantFixture = TenantFixture {
    id: "1c0ffee0-0000-4000-8000-000000000087",
    region: "GMS",
    major: 87,
    minor: 1,
};
pub const TJ: TenantFixture = TenantFixture {
    id: "1c0ffee0-0000-4000-8000-0000000000a1",
    region: "JMS",
    major: 185,
    minor: 1,
};
/// T1's id with region JMS (S103).
pub const T1J: TenantFixture = TenantFixture {
    id: "0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f",
    region: "JMS",
    major: 83,
    minor: 1,
};

impl TenantFixture {
    pub fn tenant(&self) -> Tenant {
        Tenant {
            id: self.tid(),
            region: self.region.into(),
            major: self.major,
            minor: self.minor,
        }
    }
    pub fn tid(&self) -> TenantId {
        TenantId(Uuid::parse(self.id.as_bytes()).unwrap())
    }
    /// The record headers of a command under this tenant.
    pub fn headers(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            ("traceparent".into(), TRACEPARENT.to_vec()),
            ("TENANT_ID".into(), self.id.as_bytes().to_vec()),
            ("REGION".into(), self.region.as_bytes().to_vec()),
            ("MAJOR_VERSION".into(), self.major.to_be_bytes().to_vec()),
            ("MINOR_VERSION".into(), self.minor.to_be_bytes().to_vec()),
        ]
    }
    /// Tenant headers alone (expiry outputs carry no trace context).
    pub fn tenant_headers_only(&self) -> Vec<(String, Vec<u8>)> {
        self.headers().into_iter().skip(1).collect()
    }

    /// The headers every output of a command under this tenant carries.
    pub fn out_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers()
    }
}

/// A fast bcrypt (cost 4) for fixtures; verify reads the cost from the hash.
pub fn fixture_hash(pw: &str) -> PasswordHash {
    password::hash_with_cost(&Password::new(pw), 4).unwrap()
}

#[derive(Default)]
pub struct World {
    pub config: AccountConfig,
    pub enc: TimeEncoding,
    pub now: i64,
    pub accounts: HashMap<(TenantId, AccountId), Account>,
    pub names: HashMap<(TenantId, String), AccountId>,
    pub registries: HashMap<(TenantId, AccountId), Registry>,
    pub next_id: u32,
    /// atlas-ban's answers by account id; anything else: not banned.
    pub bans: HashMap<u32, BanStatus>,
    pub ban_service_down: bool,
    /// Ban checks made (account id, ip, hwid).
    pub ban_checks: Vec<(u32, String, String)>,
    /// Rejections and decode errors seen, for assertions.
    pub rejected: Vec<&'static str>,
}

impl World {
    /// The T1 fixture accounts 7 alice, 8 bob, 9 legacy.
    pub fn new() -> World {
        let mut w = World {
            now: T0,
            next_id: 1000,
            ..World::default()
        };
        w.add_account(&T1, 7, "alice", fixture_hash("secret"), true);
        w.add_account(&T1, 8, "bob", fixture_hash("hunter2"), false);
        w.add_account(&T1, 9, "legacy", PasswordHash::from_stored("secret"), true);
        w
    }

    pub fn add_account(
        &mut self,
        t: &TenantFixture,
        id: u32,
        name: &str,
        pw: PasswordHash,
        tos: bool,
    ) {
        let mut a = Account::new(AccountId(id), name.into(), pw, &t.tenant(), UnixMillis(0));
        a.tos = tos;
        self.accounts.insert((t.tid(), AccountId(id)), a);
        self.names.insert((t.tid(), name.into()), AccountId(id));
    }

    pub fn account(&self, t: &TenantFixture, id: u32) -> Option<&Account> {
        self.accounts.get(&(t.tid(), AccountId(id)))
    }

    pub fn id_of(&self, t: &TenantFixture, name: &str) -> Option<u32> {
        self.names.get(&(t.tid(), name.to_string())).map(|i| i.0)
    }

    /// Set a registry directly: entries (session, service, state), all at `at`.
    pub fn set_registry(
        &mut self,
        t: &TenantFixture,
        id: u32,
        entries: &[(&str, Service, u8)],
        at: i64,
    ) {
        let r = Registry::with_sessions(
            t.tenant(),
            entries.iter().map(|(s, svc, st)| {
                (
                    account_streams::domain::SessionKey {
                        session: sid(s),
                        service: *svc,
                    },
                    account_streams::domain::Session {
                        state: if *st == 1 {
                            SessionState::LoggedIn
                        } else {
                            SessionState::Transition
                        },
                        updated_at: UnixMillis(at),
                    },
                )
            }),
        );
        self.registries.insert((t.tid(), AccountId(id)), r);
    }

    /// Registry entries as (session, service, state, updated_at), sorted;
    /// empty for "no value" and "{}" alike.
    pub fn reg(&self, t: &TenantFixture, id: u32) -> Vec<(SessionId, Service, u8)> {
        let mut v: Vec<_> = self
            .registries
            .get(&(t.tid(), AccountId(id)))
            .map(|r| {
                r.sessions()
                    .map(|(k, s)| (k.session, k.service, s.state as u8))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn derived(&self, t: &TenantFixture, id: u32) -> u8 {
        self.registries
            .get(&(t.tid(), AccountId(id)))
            .map(|r| r.derived_state().as_u8())
            .unwrap_or(0)
    }

    fn apply(&mut self, tenant: TenantId, e: &Effects) {
        if let Some(r) = e.rejected {
            self.rejected.push(r.as_str());
        }
        for c in &e.changes {
            match c {
                Change::PutAccount(a) => {
                    self.accounts.insert((tenant, a.id), a.clone());
                }
                Change::DeleteAccount(id) => {
                    self.accounts.remove(&(tenant, *id));
                }
                Change::PutName { name, id } => {
                    self.names.insert((tenant, name.clone()), *id);
                }
                Change::DeleteName(n) => {
                    self.names.remove(&(tenant, n.clone()));
                }
                Change::PutRegistry(id, r) => {
                    assert!(!r.is_empty(), "PutRegistry with an empty registry");
                    self.registries.insert((tenant, *id), r.clone());
                }
                Change::DeleteRegistry(id) => {
                    self.registries.remove(&(tenant, *id));
                }
                Change::ConsumeAllocatedId(id) => {
                    assert_eq!(id.0, self.next_id, "consumed an id that was not offered");
                    self.next_id += 1;
                }
            }
        }
    }

    fn render_all(&self, e: &Effects, ctx: &OutboundContext) -> Vec<WireMessage> {
        e.outputs.iter().map(|o| render(o, ctx, self.enc)).collect()
    }

    fn inbound(
        &self,
        headers: &[(String, Vec<u8>)],
    ) -> Result<(Tenant, OutboundContext), DecodeError> {
        let h = parse_headers(
            headers
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_slice()))),
        )?;
        let ctx = OutboundContext {
            tenant: h.tenant.clone(),
            trace: h.trace,
            environment: h.environment,
        };
        Ok((h.tenant, ctx))
    }

    /// Consume one `COMMAND_TOPIC_ACCOUNT_SESSION` record.
    pub fn session(&mut self, t: &TenantFixture, json: &str) -> Vec<WireMessage> {
        self.session_with(&t.headers(), json).expect("decodes")
    }

    pub fn session_with(
        &mut self,
        headers: &[(String, Vec<u8>)],
        json: &str,
    ) -> Result<Vec<WireMessage>, DecodeError> {
        let (tenant, out) = self.inbound(headers)?;
        let cmd = decode_session_command(json.as_bytes())?;
        let config = self.config.clone();
        let ctx = Ctx {
            now: UnixMillis(self.now),
            config: &config,
            tenant: &tenant,
        };
        let tid = tenant.id;
        let issuer = cmd.issuer();
        let e = match &cmd.body {
            SessionCommandBody::Create(c) => self.login(&tenant, cmd.session_id, c, &ctx),
            SessionCommandBody::ProgressState {
                state, normalised, ..
            } => {
                let key = (tid, cmd.account_id);
                progress_state(
                    self.accounts.get(&key),
                    self.registries.get(&key),
                    cmd.session_id,
                    &issuer,
                    *state,
                    normalised,
                    &ctx,
                )
            }
            SessionCommandBody::Logout => {
                let key = (tid, cmd.account_id);
                logout(
                    self.accounts.get(&key),
                    self.registries.get(&key),
                    cmd.session_id,
                    &issuer,
                    &ctx,
                )
            }
        };
        self.apply(tid, &e);
        Ok(self.render_all(&e, &out))
    }

    fn login(
        &mut self,
        tenant: &Tenant,
        session: SessionId,
        c: &account_streams::wire::commands::CreateSession,
        ctx: &Ctx<'_>,
    ) -> Effects {
        for _ in 0..3 {
            let new_id = AccountId(self.next_id);
            let (account, registry) = self.by_name(tenant.id, &c.account_name);
            let state = LoginState {
                account: account.as_ref(),
                registry: registry.as_ref(),
            };
            let plan = match plan_login(&state, session, c, ctx, new_id) {
                LoginStep::Done(e) => return e,
                LoginStep::Need(p) => p,
            };
            // The slow work the app does on its worker pool.
            let pw = match &plan.password {
                PasswordWork::Verify(h) => PasswordFact::Verified(password::verify(&c.password, h)),
                PasswordWork::HashNew => match password::hash_with_cost(&c.password, 4) {
                    Ok(h) => PasswordFact::NewHash(h),
                    Err(_) => PasswordFact::HashFailed,
                },
            };
            let remote_ban = if self.ban_service_down {
                BanStatus::CheckFailed
            } else {
                let q = &plan.ban_check;
                self.ban_checks
                    .push((q.account_id.0, q.ip.clone(), q.hwid.clone()));
                self.bans
                    .get(&q.account_id.0)
                    .copied()
                    .unwrap_or(BanStatus::NotBanned)
            };
            let facts = LoginFacts {
                password: pw,
                remote_ban,
            };
            // Re-load the state after the slow work.
            let (account, registry) = self.by_name(tenant.id, &c.account_name);
            let state = LoginState {
                account: account.as_ref(),
                registry: registry.as_ref(),
            };
            match decide_login(&state, session, c, ctx, new_id, &plan, &facts) {
                LoginDecision::Done(e) => return e,
                LoginDecision::Replan => continue,
            }
        }
        panic!("login did not settle");
    }

    fn by_name(&self, tenant: TenantId, name: &str) -> (Option<Account>, Option<Registry>) {
        match self.names.get(&(tenant, name.to_string())) {
            None => (None, None),
            Some(id) => (
                self.accounts.get(&(tenant, *id)).cloned(),
                self.registries.get(&(tenant, *id)).cloned(),
            ),
        }
    }

    /// Consume one `COMMAND_TOPIC_ACCOUNT` record.
    pub fn account_cmd(&mut self, t: &TenantFixture, json: &str) -> Vec<WireMessage> {
        self.account_with(&t.headers(), json).expect("decodes")
    }

    pub fn account_with(
        &mut self,
        headers: &[(String, Vec<u8>)],
        json: &str,
    ) -> Result<Vec<WireMessage>, DecodeError> {
        let (tenant, out) = self.inbound(headers)?;
        let cmd = decode_account_command(json.as_bytes())?;
        let config = self.config.clone();
        let ctx = Ctx {
            now: UnixMillis(self.now),
            config: &config,
            tenant: &tenant,
        };
        let tid = tenant.id;
        let e = match &cmd {
            AccountCommand::Create(c) => {
                let taken = self.names.contains_key(&(tid, c.name.clone()));
                match plan_create(c, taken) {
                    CreatePlan::Done(e) => e,
                    CreatePlan::Hash => {
                        let h = password::hash_with_cost(&c.password, 4);
                        let taken = self.names.contains_key(&(tid, c.name.clone()));
                        decide_create(c, taken, AccountId(self.next_id), h, &ctx)
                    }
                }
            }
            AccountCommand::Delete { account_id } => {
                let key = (tid, *account_id);
                account_streams::domain::accounts::delete(
                    self.accounts.get(&key),
                    self.registries.get(&key),
                )
            }
            AccountCommand::PinAttempt(a) | AccountCommand::PicAttempt(a) => {
                let kind = if matches!(cmd, AccountCommand::PinAttempt(_)) {
                    AttemptKind::Pin
                } else {
                    AttemptKind::Pic
                };
                attempt(self.accounts.get(&(tid, a.account_id)), kind, a, &ctx).0
            }
        };
        self.apply(tid, &e);
        Ok(self.render_all(&e, &out))
    }

    /// One punctuation of the expiry check over every registry.
    pub fn tick(&mut self) -> Vec<WireMessage> {
        let mut out = Vec::new();
        let keys: BTreeMap<_, _> = self
            .registries
            .iter()
            .map(|(k, r)| (*k, r.clone()))
            .collect();
        for ((tid, id), r) in keys {
            let e = expire(
                self.accounts.get(&(tid, id)),
                id,
                &r,
                UnixMillis(self.now),
                &self.config,
            );
            self.apply(tid, &e);
            let ctx = OutboundContext::tenant_only(r.tenant.clone());
            out.extend(self.render_all(&e, &ctx));
        }
        out
    }
}

// ---- shorthand inputs (SCENARIOS.md section 0) ----

pub fn login(sid: &str, name: &str, pw: &str) -> String {
    format!(
        r#"{{"sessionId":"{sid}","accountId":0,"author":"LOGIN","type":"CREATE","body":{{"accountName":"{name}","password":"{pw}","ipAddress":"10.0.0.5","hwid":"a1b2c3"}}}}"#
    )
}

pub fn progress(sid: &str, author: &str, acct: u32, state: u32, params: &str) -> String {
    format!(
        r#"{{"sessionId":"{sid}","accountId":{acct},"author":"{author}","type":"PROGRESS_STATE","body":{{"state":{state},"params":{params}}}}}"#
    )
}

pub fn logout_cmd(sid: &str, author: &str, acct: u32) -> String {
    format!(
        r#"{{"sessionId":"{sid}","accountId":{acct},"author":"{author}","type":"LOGOUT","body":{{}}}}"#
    )
}

pub fn pin(acct: u32, success: bool) -> String {
    format!(
        r#"{{"type":"PIN_ATTEMPT","body":{{"accountId":{acct},"success":{success},"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}}}"#
    )
}

pub fn pic(acct: u32, success: bool) -> String {
    format!(
        r#"{{"type":"PIC_ATTEMPT","body":{{"accountId":{acct},"success":{success},"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}}}"#
    )
}

pub fn create(name: &str, pw: &str) -> String {
    format!(r#"{{"type":"CREATE","body":{{"name":"{name}","password":"{pw}"}}}}"#)
}

pub fn delete(id: u32) -> String {
    format!(r#"{{"type":"DELETE","body":{{"accountId":{id}}}}}"#)
}

// ---- shorthand outputs ----

pub type Expected = (OutputTopic, u32, String);

pub fn as_(n: u32, name: &str, status: &str) -> Expected {
    (
        OutputTopic::AccountStatus,
        n,
        format!(r#"{{"account_id":{n},"name":"{name}","status":"{status}"}}"#),
    )
}

pub fn ss_created(sid: &str, n: u32, name: &str) -> Expected {
    (
        OutputTopic::SessionStatus,
        n,
        format!(
            r#"{{"sessionId":"{sid}","accountId":{n},"accountName":"{name}","type":"CREATED","body":{{"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}}}"#
        ),
    )
}

pub fn ss_license(sid: &str, n: u32, name: &str) -> Expected {
    (
        OutputTopic::SessionStatus,
        n,
        format!(
            r#"{{"sessionId":"{sid}","accountId":{n},"accountName":"{name}","type":"REQUEST_LICENSE_AGREEMENT","body":null}}"#
        ),
    )
}

pub fn ss_state(sid: &str, n: u32, name: &str, state: u8, params: &str) -> Expected {
    (
        OutputTopic::SessionStatus,
        n,
        format!(
            r#"{{"sessionId":"{sid}","accountId":{n},"accountName":"{name}","type":"STATE_CHANGED","body":{{"state":{state},"params":{params}}}}}"#
        ),
    )
}

pub fn ss_err(sid: &str, n: u32, name: &str, code: &str, ip: &str, hwid: &str) -> Expected {
    ss_err_until(sid, n, name, code, 0, 0, ip, hwid)
}

#[allow(clippy::too_many_arguments)]
pub fn ss_err_until(
    sid: &str,
    n: u32,
    name: &str,
    code: &str,
    reason: u8,
    until: u64,
    ip: &str,
    hwid: &str,
) -> Expected {
    (
        OutputTopic::SessionStatus,
        n,
        format!(
            r#"{{"sessionId":"{sid}","accountId":{n},"accountName":"{name}","type":"ERROR","body":{{"code":"{code}","reason":{reason},"until":{until},"ipAddress":"{ip}","hwid":"{hwid}"}}}}"#
        ),
    )
}

pub fn ban(n: u32, what: &str, limit: u32, expires: i64) -> Expected {
    (
        OutputTopic::Ban,
        n,
        format!(
            r#"{{"type":"CREATE","body":{{"banType":2,"value":"{n}","reason":"Exceeded maximum {what} attempts ({limit})","reasonCode":99,"permanent":false,"expiresAt":{expires},"issuedBy":"atlas-account"}}}}"#
        ),
    )
}

pub fn key(n: u32) -> [u8; 8] {
    let b = n.to_le_bytes();
    [b[0], b[1], b[2], b[3], 0, 0, 0, 0]
}

/// Assert exact outputs in order: topic, key bytes, JSON bytes, and the
/// headers (the command's trace and tenant headers, nothing else).
#[track_caller]
pub fn check(got: &[WireMessage], t: &TenantFixture, expected: &[Expected]) {
    check_headers(got, &t.out_headers(), expected)
}

#[track_caller]
pub fn check_headers(got: &[WireMessage], headers: &[(String, Vec<u8>)], expected: &[Expected]) {
    let got_view: Vec<(OutputTopic, [u8; 8], String)> = got
        .iter()
        .map(|m| (m.topic, m.key, String::from_utf8(m.value.clone()).unwrap()))
        .collect();
    let want: Vec<(OutputTopic, [u8; 8], String)> = expected
        .iter()
        .map(|(t, k, j)| (*t, key(*k), j.clone()))
        .collect();
    assert_eq!(got_view, want);
    for m in got {
        assert_eq!(&m.headers, headers, "headers of {:?}", m.topic);
    }
}
