//! One simulated player: what the login and channel servers send for it,
//! step by step, reacting to the processor's answers like those servers do.
//!
//! Pure (no Kafka, no clock): the driver feeds answers in and asks for the
//! next command, so the flows are testable without a broker.

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use super::commands::{Command, CommandSpec, Tenant, TraceContext};
use super::events::{OutputEvent, OutputTopic};

/// What the generator exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Realistic mix: creation, wrong passwords, logins, hand-over, channel
    /// changes, PIN/PIC failures up to a ban, logouts, deletes.
    Mixed,
    /// Login and logout only (bcrypt-bound).
    Logins,
    /// After one login per account, channel changes only (no bcrypt).
    Sessions,
}

/// The output a command waits for before its flow continues.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expect {
    /// Nothing is produced for it (or nothing the sender waits for).
    Nothing,
    /// The session status event of this session id.
    Session(Uuid),
    /// Account status CREATED of this name.
    Created(String),
    /// Account status of this account id.
    Status(u32, &'static str),
    /// Nil-session ERROR of this account id (INVALID_PIN / INVALID_PIC).
    AttemptError(u32, &'static str),
}

impl Expect {
    /// Whether `ev` answers this expectation (tenant checked by the caller).
    pub fn matches(&self, ev: &OutputEvent) -> bool {
        match self {
            Expect::Nothing => false,
            Expect::Session(sid) => {
                ev.topic == OutputTopic::SessionStatus && ev.session == Some(*sid)
            }
            Expect::Created(name) => {
                ev.topic == OutputTopic::AccountStatus && ev.kind == "CREATED" && ev.name == *name
            }
            Expect::Status(id, status) => {
                ev.topic == OutputTopic::AccountStatus && ev.account_id == *id && ev.kind == *status
            }
            Expect::AttemptError(id, code) => {
                ev.topic == OutputTopic::SessionStatus
                    && ev.session == Some(Uuid::nil())
                    && ev.account_id == *id
                    && ev.code.as_deref() == Some(*code)
            }
        }
    }
}

/// Latency classes reported separately (a login costs a bcrypt verify).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Login,
    Session,
    Account,
}

impl Class {
    pub fn label(self) -> &'static str {
        match self {
            Class::Login => "login",
            Class::Session => "session",
            Class::Account => "account",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    CreateAccount,
    Login { right: bool, expect_blocked: bool },
    CloseLogin,
    SelectCharacter,
    ChannelArrive,
    ChangeChannel,
    CloseOldChannel,
    Attempt { pic: bool, success: bool },
    ChannelLogout,
    Delete,
    Terminate,
}

/// The limits the processor is configured with (to know when a ban is due).
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub mode: Mode,
    pub max_pin_attempts: u32,
}

/// A command to send and what it waits for.
#[derive(Debug)]
pub struct Step {
    pub command: Command,
    pub expect: Expect,
    pub class: Class,
}

/// How an answer compared with what the flow expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    Expected,
    /// The processor answered differently than the rules predict; the flow
    /// recovers (terminates the account's sessions) and goes on.
    Unexpected,
}

/// One simulated player.
#[derive(Debug)]
pub struct Flow {
    pub tenant: usize,
    pub name: String,
    password: String,
    ip: String,
    hwid: String,
    character_id: u32,
    id: Option<u32>,
    exists: bool,
    banned: bool,
    pin_failures: u32,
    login_session: Option<Uuid>,
    login_bound: Option<u32>,
    login_registered: bool,
    channel: Option<Uuid>,
    old_channel: Option<Uuid>,
    plan: VecDeque<Action>,
    current: Option<Action>,
    rng: StdRng,
    profile: Profile,
}

impl Flow {
    pub fn new(index: usize, tenant: usize, prefix: &str, seed: u64, profile: Profile) -> Self {
        let mut rng =
            StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let password = format!("pw-{:08x}", rng.random::<u32>());
        let ip = format!(
            "10.{}.{}.{}",
            rng.random_range(0..=255u8),
            rng.random_range(0..=255u8),
            rng.random_range(1..=254u8)
        );
        let hwid = format!("{:012x}", rng.random::<u64>() & 0xFFFF_FFFF_FFFF);
        Flow {
            tenant,
            name: format!("{prefix}{index}"),
            password,
            ip,
            hwid,
            character_id: 1000 + index as u32,
            id: None,
            exists: false,
            banned: false,
            pin_failures: 0,
            login_session: None,
            login_bound: None,
            login_registered: false,
            channel: None,
            old_channel: None,
            plan: VecDeque::new(),
            current: None,
            rng,
            profile,
        }
    }

    pub fn account_id(&self) -> Option<u32> {
        self.id
    }

    /// Logged in on a channel with nothing planned or awaited: from here on
    /// a sessions-mode flow only cycles channel changes, which do not depend
    /// on the answers' content, so the open-loop phase can run it ahead.
    pub fn in_channel(&self) -> bool {
        self.id.is_some()
            && self.channel.is_some()
            && self.current.is_none()
            && self.plan.is_empty()
    }

    fn new_session(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.random()).into_uuid()
    }

    pub fn new_trace(&mut self) -> TraceContext {
        TraceContext {
            trace_id: self.rng.random::<u128>() | 1,
            span_id: self.rng.random::<u64>() | 1,
        }
    }

    fn plan_life(&mut self) {
        use Action::*;
        let p = &mut self.plan;
        match self.profile.mode {
            Mode::Logins => {
                if self.exists && self.rng.random_bool(0.25) {
                    p.extend([
                        Login {
                            right: false,
                            expect_blocked: false,
                        },
                        CloseLogin,
                    ]);
                }
                p.extend([
                    Login {
                        right: true,
                        expect_blocked: false,
                    },
                    CloseLogin,
                ]);
            }
            Mode::Sessions => {
                if self.channel.is_none() {
                    p.extend([
                        Login {
                            right: true,
                            expect_blocked: false,
                        },
                        SelectCharacter,
                        ChannelArrive,
                        CloseLogin,
                    ]);
                } else {
                    p.extend([ChangeChannel, ChannelArrive, CloseOldChannel]);
                }
            }
            Mode::Mixed => {
                let mut exists = self.exists;
                if !exists && self.rng.random_bool(0.5) {
                    p.push_back(CreateAccount);
                    exists = true;
                }
                if exists && self.rng.random_bool(0.3) {
                    p.extend([
                        Login {
                            right: false,
                            expect_blocked: false,
                        },
                        CloseLogin,
                    ]);
                }
                p.push_back(Login {
                    right: true,
                    expect_blocked: false,
                });
                if self.rng.random_bool(0.1) {
                    // Declines the license agreement / quits at the login screen.
                    p.push_back(CloseLogin);
                    return;
                }
                p.extend([SelectCharacter, ChannelArrive, CloseLogin]);
                for _ in 0..self.rng.random_range(0..=2) {
                    p.extend([ChangeChannel, ChannelArrive, CloseOldChannel]);
                }
                let r: f64 = self.rng.random();
                let mut bans = false;
                if r < 0.15 {
                    for _ in 0..self.profile.max_pin_attempts.max(1) {
                        p.push_back(Attempt {
                            pic: false,
                            success: false,
                        });
                    }
                    bans = true;
                } else if r < 0.35 {
                    p.extend([
                        Attempt {
                            pic: false,
                            success: false,
                        },
                        Attempt {
                            pic: false,
                            success: true,
                        },
                    ]);
                } else if r < 0.45 {
                    p.extend([
                        Attempt {
                            pic: true,
                            success: false,
                        },
                        Attempt {
                            pic: true,
                            success: true,
                        },
                    ]);
                }
                p.push_back(ChannelLogout);
                if bans {
                    // The service's own PIN ban is enforced locally (D13).
                    p.extend([
                        Login {
                            right: true,
                            expect_blocked: true,
                        },
                        CloseLogin,
                        Delete,
                    ]);
                } else if self.rng.random_bool(0.15) {
                    p.push_back(Delete);
                }
            }
        }
    }

    /// The next command of this player.
    pub fn next_step(&mut self, tenants: &[Tenant]) -> Step {
        loop {
            if self.plan.is_empty() {
                self.plan_life();
            }
            let Some(action) = self.plan.pop_front() else {
                continue;
            };
            if let Some(step) = self.build(action, &tenants[self.tenant]) {
                self.current = Some(action);
                return step;
            }
        }
    }

    fn build(&mut self, action: Action, tenant: &Tenant) -> Option<Step> {
        use Action::*;
        let trace = self.new_trace();
        let (spec, expect, class) = match action {
            CreateAccount => {
                let random_key = self.rng.random::<u32>() & 0x7FFF_FFFF;
                (
                    CommandSpec::CreateAccount {
                        name: &self.name,
                        password: &self.password,
                        random_key,
                    },
                    Expect::Created(self.name.clone()),
                    Class::Account,
                )
            }
            Login { right, .. } => {
                let session = self.new_session();
                self.login_session = Some(session);
                self.login_bound = None;
                self.login_registered = false;
                let password = if right {
                    self.password.clone()
                } else {
                    format!("{}-wrong", self.password)
                };
                let command = CommandSpec::Login {
                    session,
                    account_id: 0,
                    name: &self.name,
                    password: &password,
                    ip: &self.ip,
                    hwid: &self.hwid,
                }
                .build(tenant, trace);
                return Some(Step {
                    command,
                    expect: Expect::Session(session),
                    class: Class::Login,
                });
            }
            CloseLogin => {
                let session = self.login_session.take()?;
                let bound = self.login_bound.take();
                let expect = match bound {
                    Some(id) if self.login_registered => Expect::Status(id, "LOGGED_OUT"),
                    _ => Expect::Nothing,
                };
                self.login_registered = false;
                (
                    CommandSpec::Logout {
                        session,
                        account_id: bound.unwrap_or(0),
                        author: "LOGIN",
                    },
                    expect,
                    Class::Session,
                )
            }
            SelectCharacter => {
                let session = self.login_session?;
                let account_id = self.login_bound?;
                (
                    CommandSpec::SelectCharacter {
                        session,
                        account_id,
                        channel_ip: "10.0.0.20",
                        port: 7575,
                        character_id: self.character_id,
                    },
                    Expect::Session(session),
                    Class::Session,
                )
            }
            ChannelArrive => {
                let account_id = self.id?;
                let session = self.new_session();
                self.old_channel = self.channel.replace(session);
                (
                    CommandSpec::ChannelArrive {
                        session,
                        account_id,
                        character_id: self.character_id,
                    },
                    Expect::Session(session),
                    Class::Session,
                )
            }
            ChangeChannel => {
                let account_id = self.id?;
                let session = self.channel?;
                let port = 7575 + self.rng.random_range(1..=20u16);
                (
                    CommandSpec::ChangeChannel {
                        session,
                        account_id,
                        channel_ip: "10.0.0.21",
                        port,
                    },
                    Expect::Session(session),
                    Class::Session,
                )
            }
            CloseOldChannel => {
                let account_id = self.id?;
                let session = self.old_channel.take()?;
                (
                    CommandSpec::Logout {
                        session,
                        account_id,
                        author: "CHANNEL",
                    },
                    Expect::Nothing,
                    Class::Session,
                )
            }
            Attempt { pic, success } => {
                let account_id = self.id?;
                let expect = if success {
                    Expect::Nothing
                } else {
                    Expect::AttemptError(
                        account_id,
                        if pic { "INVALID_PIC" } else { "INVALID_PIN" },
                    )
                };
                (
                    CommandSpec::Attempt {
                        pic,
                        account_id,
                        success,
                        ip: &self.ip,
                        hwid: &self.hwid,
                    },
                    expect,
                    Class::Account,
                )
            }
            ChannelLogout => {
                let account_id = self.id?;
                let session = self.channel.take()?;
                self.old_channel = None;
                (
                    CommandSpec::Logout {
                        session,
                        account_id,
                        author: "CHANNEL",
                    },
                    Expect::Status(account_id, "LOGGED_OUT"),
                    Class::Session,
                )
            }
            Delete => {
                let account_id = self.id?;
                (
                    CommandSpec::DeleteAccount { account_id },
                    Expect::Status(account_id, "DELETED"),
                    Class::Account,
                )
            }
            Terminate => {
                let account_id = self.id?;
                self.login_session = None;
                self.login_bound = None;
                self.login_registered = false;
                self.channel = None;
                self.old_channel = None;
                (
                    CommandSpec::Logout {
                        session: Uuid::nil(),
                        account_id,
                        author: "INTERNAL",
                    },
                    Expect::Status(account_id, "LOGGED_OUT"),
                    Class::Session,
                )
            }
        };
        Some(Step {
            command: spec.build(tenant, trace),
            expect,
            class,
        })
    }

    /// Feeds the answer to the current command (`None`: nothing came in time,
    /// or nothing was expected).
    pub fn on_answer(&mut self, answer: Option<&OutputEvent>, timed_out: bool) -> Judgement {
        use Action::*;
        let Some(action) = self.current.take() else {
            return Judgement::Expected;
        };
        if timed_out {
            if action == CreateAccount {
                // Unknown whether it exists: a login auto-registers either way.
                self.exists = true;
            }
            self.abort();
            return Judgement::Unexpected;
        }
        let Some(ev) = answer else {
            return Judgement::Expected;
        };
        match action {
            CreateAccount => {
                self.id = Some(ev.account_id);
                self.exists = true;
                Judgement::Expected
            }
            Login {
                right,
                expect_blocked,
            } => {
                if ev.account_id != 0 {
                    self.id = Some(ev.account_id);
                    self.exists = true;
                }
                let success = matches!(ev.kind.as_str(), "CREATED" | "REQUEST_LICENSE_AGREEMENT");
                if success {
                    self.login_bound = Some(ev.account_id);
                    self.login_registered = true;
                    self.exists = true;
                }
                let code = ev.code.as_deref();
                let expected = match (right, expect_blocked) {
                    (true, false) => success,
                    (false, _) => code == Some("INCORRECT_PASSWORD"),
                    (true, true) => code == Some("DELETED_OR_BLOCKED"),
                };
                if expect_blocked {
                    self.banned = false;
                }
                if expected {
                    Judgement::Expected
                } else {
                    if !success && right && !expect_blocked {
                        // Close the socket, clear whatever holds the account, start over.
                        self.plan.clear();
                        self.plan.push_back(CloseLogin);
                        if self.id.is_some() {
                            self.plan.push_back(Terminate);
                        }
                    }
                    Judgement::Unexpected
                }
            }
            SelectCharacter | ChannelArrive | ChangeChannel => {
                if ev.kind == "STATE_CHANGED" {
                    if action == SelectCharacter {
                        self.login_registered = false;
                    }
                    Judgement::Expected
                } else {
                    self.abort();
                    Judgement::Unexpected
                }
            }
            Attempt {
                pic: false,
                success: false,
            } => {
                self.pin_failures += 1;
                if self.pin_failures >= self.profile.max_pin_attempts.max(1) {
                    self.pin_failures = 0;
                    self.banned = true;
                }
                Judgement::Expected
            }
            Delete => {
                self.id = None;
                self.exists = false;
                self.banned = false;
                self.pin_failures = 0;
                Judgement::Expected
            }
            CloseLogin | CloseOldChannel | Attempt { .. } | ChannelLogout | Terminate => {
                Judgement::Expected
            }
        }
    }

    /// Forget sessions and terminate whatever the processor still holds.
    fn abort(&mut self) {
        self.plan.clear();
        self.login_session = None;
        self.login_bound = None;
        self.login_registered = false;
        self.channel = None;
        self.old_channel = None;
        if self.id.is_some() {
            self.plan.push_back(Action::Terminate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants() -> Vec<Tenant> {
        vec![Tenant {
            id: Uuid::from_u128(0x0f7a6c1e_8d2b_4c3a_9e5f_1a2b3c4d5e6f),
            region: "GMS".into(),
            major: 83,
            minor: 1,
        }]
    }

    fn json(step: &Step) -> serde_json::Value {
        serde_json::from_str(&step.command.value).unwrap()
    }

    fn ss(session: Uuid, id: u32, kind: &str, code: Option<&str>) -> OutputEvent {
        OutputEvent {
            topic: OutputTopic::SessionStatus,
            tenant: Some(tenants()[0].id),
            account_id: id,
            name: "n".into(),
            session: Some(session),
            kind: kind.into(),
            code: code.map(str::to_owned),
            detail: None,
            trace_id: None,
        }
    }

    fn flow(mode: Mode) -> Flow {
        Flow::new(
            0,
            0,
            "p-",
            42,
            Profile {
                mode,
                max_pin_attempts: 5,
            },
        )
    }

    #[test]
    fn sessions_mode_hands_over_then_changes_channels() {
        let t = tenants();
        let mut f = flow(Mode::Sessions);
        let login = f.next_step(&t);
        assert_eq!((login.command.kind, login.command.key), ("CREATE", [0; 8]));
        let v = json(&login);
        assert_eq!(v["author"], "LOGIN");
        assert_eq!(v["accountId"], 0);
        assert_eq!(v["body"]["accountName"], "p-0");
        let Expect::Session(s1) = login.expect else {
            panic!("{:?}", login.expect)
        };
        assert_eq!(
            f.on_answer(Some(&ss(s1, 9, "REQUEST_LICENSE_AGREEMENT", None)), false),
            Judgement::Expected
        );

        let select = f.next_step(&t);
        let v = json(&select);
        assert_eq!(
            (v["author"].as_str(), v["accountId"].as_u64()),
            (Some("LOGIN"), Some(9))
        );
        assert_eq!(v["body"]["state"], 2);
        assert_eq!(select.command.key, [9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(select.expect, Expect::Session(s1));
        f.on_answer(Some(&ss(s1, 9, "STATE_CHANGED", None)), false);

        let arrive = f.next_step(&t);
        let v = json(&arrive);
        assert_eq!(
            (v["author"].as_str(), v["body"]["state"].as_u64()),
            (Some("CHANNEL"), Some(1))
        );
        let Expect::Session(s2) = arrive.expect else {
            panic!()
        };
        assert_ne!(s1, s2);
        f.on_answer(Some(&ss(s2, 9, "STATE_CHANGED", None)), false);

        // The login server's socket closes after the hand-over: nothing to wait for.
        let close = f.next_step(&t);
        let v = json(&close);
        assert_eq!(v["type"], "LOGOUT");
        assert_eq!(v["sessionId"], s1.to_string());
        assert_eq!(close.expect, Expect::Nothing);
        f.on_answer(None, false);

        let change = f.next_step(&t);
        let v = json(&change);
        assert_eq!(v["sessionId"], s2.to_string());
        assert_eq!(v["body"]["state"], 2);
        assert!(v["body"]["params"]["ipAddress"].is_string());
        f.on_answer(Some(&ss(s2, 9, "STATE_CHANGED", None)), false);
        let arrive2 = f.next_step(&t);
        let Expect::Session(s3) = arrive2.expect else {
            panic!()
        };
        f.on_answer(Some(&ss(s3, 9, "STATE_CHANGED", None)), false);
        let close_old = f.next_step(&t);
        let v = json(&close_old);
        assert_eq!(
            (v["sessionId"].as_str(), v["author"].as_str()),
            (Some(s2.to_string().as_str()), Some("CHANNEL"))
        );
    }

    #[test]
    fn logins_mode_logs_out_the_bound_account() {
        let t = tenants();
        let mut f = flow(Mode::Logins);
        let login = f.next_step(&t);
        let Expect::Session(s1) = login.expect else {
            panic!()
        };
        f.on_answer(Some(&ss(s1, 12, "CREATED", None)), false);
        let logout = f.next_step(&t);
        let v = json(&logout);
        assert_eq!(
            (v["accountId"].as_u64(), v["author"].as_str()),
            (Some(12), Some("LOGIN"))
        );
        assert_eq!(logout.expect, Expect::Status(12, "LOGGED_OUT"));
    }

    #[test]
    fn a_failed_login_closes_with_account_zero_and_recovers() {
        let t = tenants();
        let mut f = flow(Mode::Logins);
        let login = f.next_step(&t);
        let Expect::Session(s1) = login.expect else {
            panic!()
        };
        // A right password refused: unexpected; the socket closes unbound.
        assert_eq!(
            f.on_answer(Some(&ss(s1, 12, "ERROR", Some("ALREADY_LOGGED_IN"))), false),
            Judgement::Unexpected
        );
        let close = f.next_step(&t);
        assert_eq!(json(&close)["accountId"], 0);
        assert_eq!(close.expect, Expect::Nothing);
        f.on_answer(None, false);
        // Then the REST-style terminate of everything the account holds.
        let terminate = f.next_step(&t);
        let v = json(&terminate);
        assert_eq!(
            (
                v["sessionId"].as_str(),
                v["author"].as_str(),
                v["accountId"].as_u64()
            ),
            (
                Some("00000000-0000-0000-0000-000000000000"),
                Some("INTERNAL"),
                Some(12)
            )
        );
        assert_eq!(terminate.expect, Expect::Status(12, "LOGGED_OUT"));
    }

    #[test]
    fn mixed_mode_is_deterministic_per_seed() {
        let t = tenants();
        let run = || {
            let mut f = flow(Mode::Mixed);
            let s = f.next_step(&t);
            (s.command.value.clone(), s.expect.clone())
        };
        assert_eq!(run(), run());
    }
}
