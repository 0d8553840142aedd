//! The context every rule receives: time, configuration and the command's
//! tenant are inputs, so rules stay pure and deterministic.

use crate::config::AccountConfig;
use crate::wire::ids::{Tenant, UnixMillis};

#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub now: UnixMillis,
    pub config: &'a AccountConfig,
    pub tenant: &'a Tenant,
}
