//! How the pure rules (`domain`) run on the exactly-once runtime
//! (`topology`): routing to the owning task, the four stores, slow work
//! (bcrypt, ban check), transition expiry and output rendering.
//!
//! Ownership: a by-name command (account CREATE, login) belongs to
//! `murmur2(tenant id ++ name) mod P`; every other command to
//! `account id mod P`. Ids are allocated by the owning task so that
//! `id mod P == partition` (striped), which puts an account's record, its
//! name index entry and its sessions in one task: one hop, one writer.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use topology::{
    partition_for_key, Context, DeadLetter, Header, InputRecord, ProcessError, Processor,
    ReadContext, Record, Route, RouteDecision, RunningTopology, RuntimeConfig, SlowOutput, Step,
    TopologyBuilder,
};
use tracing::Instrument;

use crate::bancheck::{BanCheckOutcome, BanChecker};
use crate::config::AccountConfig;
use crate::domain::accounts::{self, CreatePlan};
use crate::domain::attempts::{self, AttemptKind};
use crate::domain::login::{
    self, BanExpiry, BanStatus, LoginDecision, LoginFacts, LoginPlan, LoginState, LoginStep,
    PasswordFact, PasswordWork,
};
use crate::domain::password::{self, PasswordError, PasswordHash};
use crate::domain::{expiry, session, stored, Account, Change, Ctx, Effects, Output, Registry};
use crate::metrics::{OutcomeKind, ServiceMetrics, SlowStage};
use crate::settings::{self, Settings};
use crate::telemetry::{self, CommandFields, ProcessingTrace};
use crate::wire::commands::{
    decode_account_command, decode_session_command, AccountCommand, CreateAccount, CreateSession,
    RouteKey, SessionCommand, SessionCommandBody,
};
use crate::wire::headers::{parse_headers, InboundHeaders};
use crate::wire::ids::{AccountId, Tenant, UnixMillis};
use crate::wire::{
    redact_secrets, render, DecodeError, OutboundContext, OutputTopic, TimeEncoding,
};

pub const STORE_ACCOUNTS: &str = "accounts";
pub const STORE_NAMES: &str = "names";
pub const STORE_SESSIONS: &str = "sessions";
pub const STORE_SEQUENCES: &str = "sequences";

/// Slow jobs (logins, account creations) in flight at once; see `start`.
const MAX_INFLIGHT_SLOW: usize = 16;

/// Internal header telling the task which input topic a routed record came from.
const SOURCE_HEADER: &str = "account-streams.source";

/// Everything the tasks share.
pub struct AppContext {
    pub topics: settings::Topics,
    pub config: AccountConfig,
    pub time_encoding: TimeEncoding,
    pub ban_checker: Option<BanChecker>,
    pub metrics: ServiceMetrics,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("runtime: {0}")]
    Runtime(#[from] topology::RuntimeError),
}

/// Builds and starts the topology.
pub fn start(
    settings: &Settings,
    app: Arc<AppContext>,
    registry: &prometheus::Registry,
) -> Result<RunningTopology, AppError> {
    let mut cfg = RuntimeConfig::new(
        settings.bootstrap_servers.clone(),
        settings.application_id.clone(),
        settings.instance_id.clone(),
        settings.internal_partitions.get(),
        settings.state_dir.clone(),
    );
    cfg.commit_interval = settings.commit_interval;
    // Every started slow job (bcrypt ~100 ms of CPU, ban check) must finish
    // before the commit barrier gives up (half the transaction timeout,
    // 5 s) or the transaction is aborted and all of it is redone. With the
    // runtime's default of 256 a burst of logins needs far longer than 5 s
    // on a small host and the processor livelocks, committing nothing. A
    // bound in the order of the CPUs keeps each barrier short and costs no
    // throughput: bcrypt is CPU-bound anyway.
    cfg.max_inflight_slow = MAX_INFLIGHT_SLOW;
    cfg.punctuate_interval = Some(std::time::Duration::from_secs(1));
    cfg.dead_letter_topic = Some(settings.topics.dead_letter.clone());
    // The input topics are consumed by the Atlas group name (seed), not the
    // application id that prefixes internal topics.
    cfg.consumer_config
        .push(("group.id".to_owned(), settings.consumer_group.clone()));
    let topics = &settings.topics;
    let router = CommandRouter {
        account_topic: topics.command_account.clone(),
    };
    let factory_app = app.clone();
    let running = TopologyBuilder::new(cfg)
        .source(topics.command_account.clone())
        .source(topics.command_account_session.clone())
        .router("owner", router)
        .store(STORE_ACCOUNTS)
        .store(STORE_NAMES)
        .store(STORE_SESSIONS)
        .store(STORE_SEQUENCES)
        .sink(topics.event_account_status.clone())
        .sink(topics.event_account_session_status.clone())
        .sink(topics.command_ban.clone())
        .processor(move |partition: u32| {
            Box::new(AccountProcessor {
                app: factory_app.clone(),
                partition,
            }) as Box<dyn Processor>
        })
        .start_with_metrics(runtime_metrics(registry)?)?;
    Ok(running)
}

/// The runtime's metric families, registered, with the label sets known
/// before traffic exported at 0.
fn runtime_metrics(
    registry: &prometheus::Registry,
) -> Result<topology::RuntimeMetrics, topology::RuntimeError> {
    let metrics = topology::RuntimeMetrics::register(registry)?;
    crate::metrics::preinit_runtime(
        &metrics,
        &[STORE_ACCOUNTS, STORE_NAMES, STORE_SESSIONS, STORE_SEQUENCES],
    );
    Ok(metrics)
}

// ------------------------------------------------------------------ routing

/// Which input a command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Account,
    Session,
}

enum Command {
    Account(AccountCommand),
    Session(SessionCommand),
}

impl Command {
    fn route_key(&self) -> RouteKey {
        match self {
            Command::Account(c) => c.route_key(),
            Command::Session(c) => c.route_key(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Command::Account(c) => c.type_name(),
            Command::Session(c) => c.type_name(),
        }
    }

    fn topic_token(&self) -> &'static str {
        match self {
            Command::Account(_) => "COMMAND_TOPIC_ACCOUNT",
            Command::Session(_) => "COMMAND_TOPIC_ACCOUNT_SESSION",
        }
    }
}

fn decode(source: Source, value: &[u8]) -> Result<Command, DecodeError> {
    match source {
        Source::Account => decode_account_command(value).map(Command::Account),
        Source::Session => decode_session_command(value).map(Command::Session),
    }
}

fn header_pairs(headers: &[Header]) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
    headers.iter().map(|h| (h.key.as_str(), h.value.as_deref()))
}

/// The value a dead letter may carry. Redaction finds `password`, `pin` and
/// `pic` members, even in truncated JSON; a value that is not a JSON object
/// at all has no members to find, so a secret in it could not be masked
/// (D16): such a value is left out, and `dlq.topic`, `dlq.partition` and
/// `dlq.offset` still locate the original.
fn dead_letter_value(value: &[u8]) -> Option<Vec<u8>> {
    let first = value.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'{') => Some(redact_secrets(value)),
        Some(_) => None,
        None => Some(value.to_vec()),
    }
}

fn tenant_bytes(t: &Tenant) -> [u8; 16] {
    t.id.0 .0
}

/// Store key of per-account state: tenant id ++ account id (big-endian, so
/// a tenant's accounts scan in id order).
fn account_key(tenant: &Tenant, id: AccountId) -> Vec<u8> {
    let mut k = tenant_bytes(tenant).to_vec();
    k.extend_from_slice(&id.0.to_be_bytes());
    k
}

fn name_key(tenant: &Tenant, name: &str) -> Vec<u8> {
    let mut k = tenant_bytes(tenant).to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

fn sequence_key(tenant: &Tenant, partition: u32) -> Vec<u8> {
    let mut k = tenant_bytes(tenant).to_vec();
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

/// Routed record key: `N` ++ tenant ++ name, or `I` ++ tenant ++ id.
fn route_record_key(tenant: &Tenant, key: &RouteKey) -> Vec<u8> {
    match key {
        RouteKey::Name(n) => {
            let mut k = vec![b'N'];
            k.extend_from_slice(&name_key(tenant, n));
            k
        }
        RouteKey::Id(id) => {
            let mut k = vec![b'I'];
            k.extend_from_slice(&account_key(tenant, *id));
            k
        }
    }
}

/// Sends each command to the task that owns its account; undecodable
/// input goes to the dead-letter topic (W5, W7).
struct CommandRouter {
    account_topic: String,
}

impl topology::Router for CommandRouter {
    fn route(&mut self, record: &InputRecord<'_>, partitions: u32) -> RouteDecision {
        let source = if record.topic == self.account_topic {
            Source::Account
        } else {
            Source::Session
        };
        let dead = |e: DecodeError| {
            tracing::warn!(topic = record.topic, partition = record.partition, offset = record.offset,
                reason = e.reason(), error = %e, "dead-lettering input");
            // A too-large value is not copied: it would exceed the
            // producer's and the broker's message size limit, the dead
            // letter could never be written and the transaction would be
            // retried forever, stalling the partition. `dlq.topic`,
            // `dlq.partition` and `dlq.offset` still locate the original.
            let value = match e {
                DecodeError::TooLarge { .. } => None,
                _ => record.value.and_then(dead_letter_value),
            };
            RouteDecision::DeadLetter(DeadLetter {
                reason: e.reason(),
                error: e.to_string(),
                value,
            })
        };
        let inbound = match parse_headers(header_pairs(record.headers)) {
            Ok(h) => h,
            Err(e) => return dead(e),
        };
        let command = match decode(source, record.value.unwrap_or(b"null")) {
            Ok(c) => c,
            Err(e) => return dead(e),
        };
        let key = command.route_key();
        let partition = match &key {
            RouteKey::Name(n) => partition_for_key(&name_key(&inbound.tenant, n), partitions),
            RouteKey::Id(id) => id.0 % partitions,
        };
        let mut headers = record.headers.to_vec();
        headers.push(Header::new(
            SOURCE_HEADER,
            match source {
                Source::Account => &b"A"[..],
                Source::Session => &b"S"[..],
            },
        ));
        RouteDecision::Route(Route {
            partition,
            key: Some(route_record_key(&inbound.tenant, &key)),
            value: record.value.map(<[u8]>::to_vec),
            headers,
        })
    }
}

// ---------------------------------------------------------------- processing

struct AccountProcessor {
    app: Arc<AppContext>,
    partition: u32,
}

/// Slow-work results handed back to `resume`.
enum SlowResult {
    Login(LoginPlan, LoginFacts),
    Hash(Result<PasswordHash, PasswordError>),
}

fn unix_millis(t: SystemTime) -> UnixMillis {
    UnixMillis(
        t.duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    )
}

fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> ProcessError {
    Box::new(e)
}

/// Per-record decoded input (decoded again in the task: the repartition
/// record carries the original bytes, which keeps the router cheap to
/// replay and the internal topic readable).
struct Input {
    command: Command,
    headers: InboundHeaders,
    trace: ProcessingTrace,
}

fn read_input(record: &Record) -> Result<Input, DecodeError> {
    let source = match record.header(SOURCE_HEADER) {
        Some(b"A") => Source::Account,
        _ => Source::Session,
    };
    let headers = parse_headers(header_pairs(&record.headers))?;
    let command = decode(source, record.value.as_deref().unwrap_or(b"null"))?;
    let trace = ProcessingTrace::continue_from(&headers.trace, record.partition, record.offset);
    Ok(Input {
        command,
        headers,
        trace,
    })
}

impl Input {
    /// The span this command is processed in (its logs carry its fields).
    fn span(&self) -> tracing::Span {
        let (account_id, account_name, session_id) = match &self.command {
            Command::Account(AccountCommand::Create(c)) => (None, Some(c.name.as_str()), None),
            Command::Account(AccountCommand::Delete { account_id }) => {
                (Some(account_id.0), None, None)
            }
            Command::Account(AccountCommand::PinAttempt(a) | AccountCommand::PicAttempt(a)) => {
                (Some(a.account_id.0), None, None)
            }
            Command::Session(s) => (
                Some(s.account_id.0).filter(|id| *id != 0),
                match &s.body {
                    SessionCommandBody::Create(c) => Some(c.account_name.as_str()),
                    _ => None,
                },
                Some(s.session_id.to_string()),
            ),
        };
        telemetry::command_span(
            &self.trace,
            &self.headers.tenant,
            CommandFields {
                session_topic: matches!(self.command, Command::Session(_)),
                command_type: self.command.type_name(),
                account_id,
                account_name,
                session_id,
            },
        )
    }
}

impl AccountProcessor {
    fn load_account(
        &self,
        ctx: &Context<'_>,
        tenant: &Tenant,
        id: AccountId,
    ) -> Result<Option<Account>, ProcessError> {
        match ctx
            .get(STORE_ACCOUNTS, &account_key(tenant, id))
            .map_err(boxed)?
        {
            Some(b) => Ok(Some(stored::decode_account(&b).map_err(boxed)?)),
            None => Ok(None),
        }
    }

    fn load_registry(
        &self,
        ctx: &Context<'_>,
        tenant: &Tenant,
        id: AccountId,
    ) -> Result<Option<Registry>, ProcessError> {
        match ctx
            .get(STORE_SESSIONS, &account_key(tenant, id))
            .map_err(boxed)?
        {
            Some(b) => Ok(Some(stored::decode_registry(&b).map_err(boxed)?)),
            None => Ok(None),
        }
    }

    fn lookup_name(
        &self,
        ctx: &Context<'_>,
        tenant: &Tenant,
        name: &str,
    ) -> Result<Option<AccountId>, ProcessError> {
        Ok(ctx
            .get(STORE_NAMES, &name_key(tenant, name))
            .map_err(boxed)?
            .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
            .map(|b| AccountId(u32::from_be_bytes(b))))
    }

    /// The id the next new account of this tenant gets here: striped so
    /// that `id mod P == partition`, never 0.
    fn next_id(&self, ctx: &Context<'_>, tenant: &Tenant) -> Result<AccountId, ProcessError> {
        let stored = ctx
            .get(STORE_SEQUENCES, &sequence_key(tenant, self.partition))
            .map_err(boxed)?
            .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
            .map(u32::from_be_bytes);
        let first = if self.partition == 0 {
            ctx.partitions()
        } else {
            self.partition
        };
        Ok(AccountId(stored.unwrap_or(first)))
    }

    fn login_state(
        &self,
        ctx: &Context<'_>,
        tenant: &Tenant,
        name: &str,
    ) -> Result<(Option<Account>, Option<Registry>), ProcessError> {
        let Some(id) = self.lookup_name(ctx, tenant, name)? else {
            return Ok((None, None));
        };
        Ok((
            self.load_account(ctx, tenant, id)?,
            self.load_registry(ctx, tenant, id)?,
        ))
    }

    /// Writes the changes and sends the outputs of one command, in the
    /// domain's order (D12), and counts them.
    fn apply(
        &self,
        ctx: &mut Context<'_>,
        tenant: &Tenant,
        out: &OutboundContext,
        effects: Effects,
    ) -> Result<(), ProcessError> {
        let m = &self.app.metrics;
        if let Some(r) = effects.rejected.filter(|r| r.is_metric_rejection()) {
            m.outcome(OutcomeKind::Rejected, r.as_str());
        }
        for change in effects.changes {
            match change {
                Change::PutAccount(a) => {
                    let v = stored::encode_account(&a).map_err(boxed)?;
                    ctx.put(STORE_ACCOUNTS, &account_key(tenant, a.id), &v)
                        .map_err(boxed)?;
                }
                Change::DeleteAccount(id) => ctx
                    .delete(STORE_ACCOUNTS, &account_key(tenant, id))
                    .map_err(boxed)?,
                Change::PutName { name, id } => ctx
                    .put(STORE_NAMES, &name_key(tenant, &name), &id.0.to_be_bytes())
                    .map_err(boxed)?,
                Change::DeleteName(name) => ctx
                    .delete(STORE_NAMES, &name_key(tenant, &name))
                    .map_err(boxed)?,
                Change::PutRegistry(id, r) => {
                    let k = account_key(tenant, id);
                    if ctx.get(STORE_SESSIONS, &k).map_err(boxed)?.is_none() {
                        m.logged_in_delta(self.partition, 1);
                    }
                    let v = stored::encode_registry(&r).map_err(boxed)?;
                    ctx.put(STORE_SESSIONS, &k, &v).map_err(boxed)?;
                }
                Change::DeleteRegistry(id) => {
                    let k = account_key(tenant, id);
                    if ctx.get(STORE_SESSIONS, &k).map_err(boxed)?.is_some() {
                        m.logged_in_delta(self.partition, -1);
                    }
                    ctx.delete(STORE_SESSIONS, &k).map_err(boxed)?;
                }
                Change::ConsumeAllocatedId(id) => {
                    let next = id.0.saturating_add(ctx.partitions());
                    ctx.put(
                        STORE_SEQUENCES,
                        &sequence_key(tenant, self.partition),
                        &next.to_be_bytes(),
                    )
                    .map_err(boxed)?;
                }
            }
        }
        for output in &effects.outputs {
            let (kind, code) = match output {
                Output::AccountStatus(e) => (OutcomeKind::AccountStatus, e.status.as_str()),
                Output::SessionStatus(e) => match &e.body {
                    crate::wire::events::SessionStatusBody::Error(err) => {
                        (OutcomeKind::SessionStatus, err.code.as_str())
                    }
                    body => (OutcomeKind::SessionStatus, body.type_name()),
                },
                Output::Ban { .. } => (OutcomeKind::Ban, "CREATE"),
            };
            m.outcome(kind, code);
            let wm = render(output, out, self.app.time_encoding);
            let topic = match wm.topic {
                OutputTopic::AccountStatus => &self.app.topics.event_account_status,
                OutputTopic::SessionStatus => &self.app.topics.event_account_session_status,
                OutputTopic::Ban => &self.app.topics.command_ban,
            };
            let headers = wm
                .headers
                .into_iter()
                .map(|(k, v)| Header::new(k, v))
                .collect();
            ctx.send(topic, Some(&wm.key), Some(&wm.value), headers);
        }
        Ok(())
    }

    fn process_input(
        &mut self,
        ctx: &mut Context<'_>,
        input: &Input,
        slow: Option<SlowResult>,
    ) -> Result<Step, ProcessError> {
        let tenant = &input.headers.tenant;
        let out = outbound(input);
        let now = unix_millis(ctx.now());
        let app = self.app.clone();
        let dctx = Ctx {
            now,
            config: &app.config,
            tenant,
        };
        let effects = match &input.command {
            Command::Account(AccountCommand::Create(c)) => {
                let taken = self.lookup_name(ctx, tenant, &c.name)?.is_some();
                match slow {
                    Some(SlowResult::Hash(hash)) => {
                        let id = self.next_id(ctx, tenant)?;
                        accounts::decide_create(c, taken, id, hash, &dctx)
                    }
                    _ => match accounts::plan_create(c, taken) {
                        CreatePlan::Done(e) => e,
                        CreatePlan::Hash => return Ok(self.hash_work(c)),
                    },
                }
            }
            Command::Account(AccountCommand::Delete { account_id }) => {
                let a = self.load_account(ctx, tenant, *account_id)?;
                let r = self.load_registry(ctx, tenant, *account_id)?;
                accounts::delete(a.as_ref(), r.as_ref())
            }
            Command::Account(AccountCommand::PinAttempt(at))
            | Command::Account(AccountCommand::PicAttempt(at)) => {
                let kind = if matches!(
                    input.command,
                    Command::Account(AccountCommand::PinAttempt(_))
                ) {
                    AttemptKind::Pin
                } else {
                    AttemptKind::Pic
                };
                let a = self.load_account(ctx, tenant, at.account_id)?;
                attempts::attempt(a.as_ref(), kind, at, &dctx).0
            }
            Command::Session(s) => match &s.body {
                SessionCommandBody::Create(c) => {
                    let (account, registry) = self.login_state(ctx, tenant, &c.account_name)?;
                    let state = LoginState {
                        account: account.as_ref(),
                        registry: registry.as_ref(),
                    };
                    let new_id = self.next_id(ctx, tenant)?;
                    let decided = match slow {
                        Some(SlowResult::Login(plan, facts)) => login::decide_login(
                            &state,
                            s.session_id,
                            c,
                            &dctx,
                            new_id,
                            &plan,
                            &facts,
                        ),
                        _ => LoginDecision::Replan,
                    };
                    match decided {
                        LoginDecision::Done(e) => e,
                        LoginDecision::Replan => {
                            match login::plan_login(&state, s.session_id, c, &dctx, new_id) {
                                LoginStep::Done(e) => e,
                                LoginStep::Need(plan) => return Ok(self.login_work(c, plan)),
                            }
                        }
                    }
                }
                SessionCommandBody::ProgressState {
                    state, normalised, ..
                } => {
                    let a = self.load_account(ctx, tenant, s.account_id)?;
                    let r = self.load_registry(ctx, tenant, s.account_id)?;
                    session::progress_state(
                        a.as_ref(),
                        r.as_ref(),
                        s.session_id,
                        &s.issuer(),
                        *state,
                        normalised,
                        &dctx,
                    )
                }
                SessionCommandBody::Logout => {
                    let a = self.load_account(ctx, tenant, s.account_id)?;
                    let r = self.load_registry(ctx, tenant, s.account_id)?;
                    session::logout(a.as_ref(), r.as_ref(), s.session_id, &s.issuer(), &dctx)
                }
            },
        };
        tracing::debug!(
            outputs = effects.outputs.len(),
            rejected = effects.rejected.map(|r| r.as_str()),
            "command processed"
        );
        self.apply(ctx, tenant, &out, effects)?;
        Ok(Step::Done)
    }

    fn hash_work(&self, c: &CreateAccount) -> Step {
        let password = c.password.clone();
        let metrics = self.app.metrics.clone();
        Step::Slow(Box::pin(async move {
            let started = Instant::now();
            let hash = tokio::task::spawn_blocking(move || password::hash(&password))
                .await
                .unwrap_or(Err(PasswordError::Bcrypt));
            metrics.slow_work(SlowStage::BcryptHash, started.elapsed());
            Box::new(SlowResult::Hash(hash)) as SlowOutput
        }))
    }

    /// bcrypt and the ban check run concurrently; the partition goes on
    /// with other accounts meanwhile (the runtime's per-key slow stage).
    fn login_work(&self, c: &CreateSession, plan: LoginPlan) -> Step {
        let password = c.password.clone();
        let checker = self.app.ban_checker.clone();
        let metrics = self.app.metrics.clone();
        Step::Slow(Box::pin(async move {
            let work = plan.password.clone();
            let pw = async {
                let started = Instant::now();
                let (stage, fact) = match work {
                    PasswordWork::Verify(hash) => (
                        SlowStage::BcryptVerify,
                        tokio::task::spawn_blocking(move || {
                            PasswordFact::Verified(password::verify(&password, &hash))
                        })
                        .await
                        .unwrap_or(PasswordFact::Verified(false)),
                    ),
                    PasswordWork::HashNew => (
                        SlowStage::BcryptHash,
                        tokio::task::spawn_blocking(move || match password::hash(&password) {
                            Ok(h) => PasswordFact::NewHash(h),
                            Err(_) => PasswordFact::HashFailed,
                        })
                        .await
                        .unwrap_or(PasswordFact::HashFailed),
                    ),
                };
                metrics.slow_work(stage, started.elapsed());
                fact
            };
            let q = plan.ban_check.clone();
            let ban = async {
                match &checker {
                    None => BanStatus::NotBanned,
                    Some(ch) => match ch.check(&q.ip, &q.hwid, q.account_id.0).await {
                        BanCheckOutcome::NotBanned => BanStatus::NotBanned,
                        BanCheckOutcome::Banned {
                            reason_code,
                            until_unix_millis: 0,
                        } => BanStatus::Banned {
                            reason_code,
                            expiry: BanExpiry::Permanent,
                        },
                        BanCheckOutcome::Banned {
                            reason_code,
                            until_unix_millis,
                        } => BanStatus::Banned {
                            reason_code,
                            expiry: BanExpiry::At(UnixMillis(
                                i64::try_from(until_unix_millis).unwrap_or(i64::MAX),
                            )),
                        },
                        BanCheckOutcome::Failed(_) => BanStatus::CheckFailed,
                    },
                }
            };
            let (password, remote_ban) = futures::join!(pw, ban);
            Box::new(SlowResult::Login(
                plan,
                LoginFacts {
                    password,
                    remote_ban,
                },
            )) as SlowOutput
        }))
    }
}

/// Slow work (bcrypt, ban check) runs in the command's span, so its logs
/// carry the command's fields too.
fn in_current_span(step: Step) -> Step {
    match step {
        Step::Slow(work) => Step::Slow(Box::pin(work.instrument(tracing::Span::current()))),
        done => done,
    }
}

/// Outputs carry the processing span's context (its trace id is the
/// command's, its span id the processing span's).
fn outbound(input: &Input) -> OutboundContext {
    OutboundContext {
        tenant: input.headers.tenant.clone(),
        trace: input.trace.headers(),
        environment: input.headers.environment.clone(),
    }
}

impl Processor for AccountProcessor {
    /// Records of one account stay in order: by-id records are keyed by the
    /// account; a by-name record too once the name is known here.
    fn order_key(&self, ctx: &ReadContext<'_>, record: &Record) -> Result<Vec<u8>, ProcessError> {
        let key = record.key.clone().unwrap_or_default();
        if key.first() == Some(&b'N') && key.len() >= 17 {
            if let Some(id) = ctx.get(STORE_NAMES, &key[1..]).map_err(boxed)? {
                let mut k = vec![b'I'];
                k.extend_from_slice(&key[1..17]);
                k.extend_from_slice(&id);
                return Ok(k);
            }
        }
        Ok(key)
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record) -> Result<Step, ProcessError> {
        let input = match read_input(record) {
            Ok(i) => i,
            Err(e) => {
                // The router decoded it already; only a version skew gets here.
                tracing::error!(reason = e.reason(), error = %e, "routed record no longer decodes; skipped");
                return Ok(Step::Done);
            }
        };
        self.app
            .metrics
            .command_consumed(input.command.topic_token(), input.command.type_name());
        let _span = input.span().entered();
        self.process_input(ctx, &input, None).map(in_current_span)
    }

    fn resume(
        &mut self,
        ctx: &mut Context<'_>,
        record: &Record,
        output: SlowOutput,
    ) -> Result<Step, ProcessError> {
        let input = match read_input(record) {
            Ok(i) => i,
            Err(_) => return Ok(Step::Done),
        };
        let slow = match output.downcast::<SlowResult>() {
            Ok(s) => *s,
            Err(_) => return Err("unexpected slow-work result type".into()),
        };
        let _span = input.span().entered();
        self.process_input(ctx, &input, Some(slow))
            .map(in_current_span)
    }

    /// Expires transitions older than `transitionTimeout` (D4).
    fn punctuate(&mut self, ctx: &mut Context<'_>, now: SystemTime) -> Result<(), ProcessError> {
        let now = unix_millis(now);
        let timeout =
            u64::try_from(self.app.config.transition_timeout.as_millis()).unwrap_or(u64::MAX);
        // The scan also recounts the logged-in accounts of this task.
        let mut logged_in = 0;
        for (key, value) in ctx.scan_prefix(STORE_SESSIONS, &[]).map_err(boxed)? {
            let registry = match stored::decode_registry(&value) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "unreadable session registry skipped");
                    continue;
                }
            };
            let due = registry.next_expiry(timeout).is_some_and(|t| t.0 <= now.0);
            if !due || key.len() != 20 {
                logged_in += i64::from(registry.derived_state().as_u8() != 0);
                continue;
            }
            let id = AccountId(u32::from_be_bytes([key[16], key[17], key[18], key[19]]));
            let tenant = registry.tenant.clone();
            let account = self.load_account(ctx, &tenant, id)?;
            let effects = expiry::expire(account.as_ref(), id, &registry, now, &self.app.config);
            let out = OutboundContext::tenant_only(tenant.clone());
            self.apply(ctx, &tenant, &out, effects)?;
            let after = self.load_registry(ctx, &tenant, id)?;
            logged_in += i64::from(after.is_some_and(|r| r.derived_state().as_u8() != 0));
        }
        self.app
            .metrics
            .logged_in_recount(self.partition, logged_in);
        Ok(())
    }
}

// ------------------------------------------------------------------ service

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("ban check client: {0}")]
    BanCheck(#[from] crate::bancheck::BanCheckError),
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot listen on REST_PORT {port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error(transparent)]
    App(#[from] AppError),
    #[error("the stream runtime stopped: {0}")]
    Stopped(String),
}

impl ServeError {
    /// Settings and configuration errors are usage errors (exit 2).
    pub fn is_startup_config(&self) -> bool {
        matches!(self, ServeError::Config(_) | ServeError::BanCheck(_))
    }
}

/// Runs the processor until SIGTERM/SIGINT: rules configuration, ban-check
/// client, topology, HTTP server; then a graceful stop.
pub async fn serve(settings: Settings) -> Result<(), ServeError> {
    let env = |k: &str| -> Option<String> {
        settings
            .rules
            .as_env_pairs()
            .into_iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_owned())
            .or_else(|| std::env::var(k).ok())
    };
    let config_path = settings
        .config_file
        .clone()
        .or_else(|| crate::config::resolve_config_path(env));
    let config = crate::config::load(config_path.as_deref(), env)?;
    let time_encoding = match settings.time_encoding {
        settings::TimeEncoding::UnixMillis => TimeEncoding::UnixMillis,
        settings::TimeEncoding::Rfc3339 => TimeEncoding::Rfc3339,
    };
    let registry = prometheus::Registry::new();
    let metrics = ServiceMetrics::register(&registry)?;
    let ban_checker = match &settings.ban_service_root {
        Some(root) => Some(BanChecker::new(
            root,
            settings.ban_check_timeout,
            Some(metrics.clone()),
        )?),
        None => None,
    };
    tracing::info!(
        ?config,
        ban_check = ban_checker.is_some(),
        "rules configuration"
    );
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", settings.rest_port))
        .await
        .map_err(|source| ServeError::Listen {
            port: settings.rest_port,
            source,
        })?;
    let app = Arc::new(AppContext {
        topics: settings.topics.clone(),
        config,
        time_encoding,
        ban_checker,
        metrics,
    });
    let running = start(&settings, app, &registry)?;
    let status = running.status();
    let shutdown = running.shutdown_handle();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let ready = status.clone();
    let http = tokio::spawn(crate::http::serve(
        listener,
        registry,
        crate::http::Readiness::new(move || ready.is_ready()),
        async {
            let _ = stop_rx.await;
        },
    ));
    let joined = tokio::task::spawn_blocking(move || running.join());
    tokio::pin!(joined);
    let result = tokio::select! {
        r = &mut joined => r,
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            shutdown.shutdown();
            joined.await
        }
    };
    let _ = stop_tx.send(());
    let _ = http.await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServeError::Stopped(e.to_string())),
        Err(e) => Err(ServeError::Stopped(e.to_string())),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use topology::Router as _;

    const T1: &[u8] = b"0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f";

    fn t1_headers() -> Vec<Header> {
        vec![
            Header::new(
                "traceparent",
                &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..],
            ),
            Header::new("TENANT_ID", T1),
            Header::new("REGION", &b"GMS"[..]),
            Header::new("MAJOR_VERSION", vec![0, 83]),
            Header::new("MINOR_VERSION", vec![0, 1]),
        ]
    }

    fn route(topic: &str, value: &[u8], headers: &[Header]) -> RouteDecision {
        let mut r = CommandRouter {
            account_topic: "CA".into(),
        };
        r.route(
            &InputRecord {
                topic,
                partition: 0,
                offset: 5,
                timestamp: None,
                key: Some(&[0; 8]),
                value: Some(value),
                headers,
            },
            6,
        )
    }

    fn tenant_uuid() -> [u8; 16] {
        *uuid::Uuid::parse_str(std::str::from_utf8(T1).unwrap())
            .unwrap()
            .as_bytes()
    }

    #[test]
    fn logins_route_by_tenant_and_name_other_commands_by_id() {
        let login = br#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":0,"author":"LOGIN","type":"CREATE","body":{"accountName":"alice","password":"secret","ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#;
        let RouteDecision::Route(r) = route("CS", login, &t1_headers()) else {
            panic!("not routed")
        };
        let mut name_key = tenant_uuid().to_vec();
        name_key.extend_from_slice(b"alice");
        assert_eq!(r.partition, partition_for_key(&name_key, 6));
        let mut key = vec![b'N'];
        key.extend_from_slice(&name_key);
        assert_eq!(r.key, Some(key));
        assert_eq!(r.value.as_deref(), Some(&login[..]));
        assert_eq!(
            r.headers.last(),
            Some(&Header::new(SOURCE_HEADER, &b"S"[..]))
        );

        let progress = br#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":13,"author":"LOGIN","type":"PROGRESS_STATE","body":{"state":2,"params":{}}}"#;
        let RouteDecision::Route(r) = route("CS", progress, &t1_headers()) else {
            panic!("not routed")
        };
        assert_eq!(r.partition, 13 % 6);
        let delete = br#"{"type":"DELETE","body":{"accountId":13}}"#;
        let RouteDecision::Route(r) = route("CA", delete, &t1_headers()) else {
            panic!("not routed")
        };
        assert_eq!(r.partition, 1);
        assert_eq!(
            r.headers.last(),
            Some(&Header::new(SOURCE_HEADER, &b"A"[..]))
        );
    }

    #[test]
    fn bad_input_is_dead_lettered_without_the_password() {
        let create = br#"{"type":"CREATE","body":{"name":"alice","password":"secret"}}"#;
        let RouteDecision::DeadLetter(d) = route("CA", create, &[]) else {
            panic!("routed without tenant")
        };
        assert_eq!(d.reason, "missing_tenant");
        let v = String::from_utf8(d.value.unwrap()).unwrap();
        assert!(!v.contains("secret"), "{v}");
        let RouteDecision::DeadLetter(d) = route("CA", b"{nope", &t1_headers()) else {
            panic!()
        };
        assert_eq!(d.reason, "bad_json");
        let RouteDecision::DeadLetter(d) =
            route("CA", br#"{"type":"RENAME","body":{}}"#, &t1_headers())
        else {
            panic!()
        };
        assert_eq!(d.reason, "unknown_type");
    }

    #[test]
    fn dead_letters_never_carry_an_unmaskable_value() {
        assert_eq!(dead_letter_value(b"not json SuperSecretPW-7731"), None);
        assert_eq!(dead_letter_value(b"[\"hunter2\"]"), None);
        assert_eq!(dead_letter_value(b""), Some(Vec::new()));
        let v = dead_letter_value(br#"{"type":"CREATE","body":{"name":"a","password":"hunter2"#)
            .expect("an object keeps its redacted value");
        assert!(!String::from_utf8_lossy(&v).contains("hunter2"));
    }

    #[test]
    fn a_too_large_value_is_dead_lettered_without_its_bytes() {
        let big = vec![b' '; 2 * 1024 * 1024];
        let RouteDecision::DeadLetter(d) = route("CS", &big, &t1_headers()) else {
            panic!("routed a 2 MB value")
        };
        assert_eq!(d.reason, "too_large");
        assert_eq!(d.value, None);
    }
}
