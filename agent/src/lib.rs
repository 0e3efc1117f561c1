//! Tend: an endpoint compliance agent.
//!
//! Tend answers four questions on every machine — is the disk encrypted, is
//! the firewall on, are automatic updates on, is anti-virus running with fresh
//! definitions — with osquery-compatible SQL that it evaluates itself. See
//! `ARCHITECTURE.md` at the repository root for the map of this crate.
//!
//! - [`sql`]: the engine (SQLite, the table adapter, osquery's functions, hardening).
//! - [`tables`]: osquery's tables, one file each.
//! - [`os`]: OS access behind small traits, real and recorded.
//! - [`checks`]: a check's query → passed / failed / error / not applicable.
//! - [`policy`]: the policy file: model, parsing, lint, the built-in default,
//!   and its distribution: HTTPS fetch, minisign signature, cache.
//! - [`config`]: the agent's config (`agent.toml`, MDM-managed places), merged with provenance.
//! - [`daemon`]: `tend run`: scheduling, the state store, events, sinks, the service.
//! - [`ipc`]: the local API (Unix socket / named pipe) the CLI and the tray use.
//! - [`secrets`]: tokens the agent sends, in the OS keychain or root-only files.
//! - [`update`]: self-update from a signed release (unmanaged installs).
//! - [`notify`]: desktop notifications with buttons, shown in the user's session.
//! - [`resources`]: workflow task resources: the agent's own (rules, checks, queries) and
//!   those that reach a user (notifications, Slack).
//! - [`cli`]: the `tend` commands.

pub mod checks;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod ipc;
pub mod notify;
pub mod os;
pub mod policy;
pub mod resources;
pub mod secrets;
pub mod sql;
pub mod tables;
pub mod update;

/// The version this build reports (`tend --version`, the local API's
/// status): `TEND_RELEASE_VERSION` when a release build stamps one, else the
/// crate's version.
pub const VERSION: &str = match option_env!("TEND_RELEASE_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};
