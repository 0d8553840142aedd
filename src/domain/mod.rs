//! Pure account and session rules: `(state, command, ctx{now, config,
//! tenant}) -> Effects{changes, outputs}`. No Kafka type, no clock, no I/O;
//! bcrypt (slow) lives in `password` and is called by the app between
//! `plan_*` and `decide_*`.

pub mod account;
pub mod accounts;
pub mod attempts;
pub mod ctx;
pub mod effects;
pub mod expiry;
pub mod login;
pub mod password;
pub mod registry;
pub mod session;
pub mod stored;

pub use account::{Account, LocalBan, Secret};
pub use ctx::Ctx;
pub use effects::{Change, Effects, Output, Reject};
pub use registry::{DerivedState, Registry, Service, Session, SessionKey, SessionState};
