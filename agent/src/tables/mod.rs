//! osquery's tables, one file each.
//!
//! Each file declares a [`TableDef`]: osquery's table name, osquery's
//! columns exactly as the spec has them (checked by
//! `tests/osquery_conformance.rs`), the platforms whose machines it can read,
//! and its `generate` function. To add a table, write its file and list it
//! in [`all`]; the engine registers it and `tend schema` shows it.

pub mod util;

mod alf;
mod alf_exceptions;
mod alf_explicit_auths;
mod apps;
mod apt_sources;
mod augeas;
mod bitlocker_info;
mod block_devices;
mod chrome_extensions;
mod darwin;
mod deb_packages;
mod disk_encryption;
mod extended_attributes;
mod file;
mod file_lines;
mod firefox_addons;
mod gatekeeper;
mod groups;
mod hash;
mod interface_addresses;
mod iptables;
mod kernel_info;
mod kernel_modules;
mod launchd;
mod listening_ports;
mod logged_in_users;
mod magic;
mod managed_policies;
mod mdfind;
mod mounts;
mod os_version;
mod osquery_info;
mod patches;
mod plist;
mod preferences;
mod process_memory_map;
mod process_open_files;
mod process_open_sockets;
mod processes;
mod programs;
mod registry;
mod rpm_packages;
mod screenlock;
mod secureboot;
mod services;
mod signature;
mod sip_config;
mod system_info;
mod systemd_units;
mod time;
mod tpm_info;
mod uptime;
mod users;
mod windows_security_center;
mod windows_security_products;
mod windows_update_history;
pub(crate) mod wmi;
mod xprotect_entries;
mod xprotect_meta;
mod yum_sources;

use crate::sql::table::TableDef;

/// Every table Tend implements.
pub fn all() -> &'static [&'static TableDef] {
    static ALL: &[&TableDef] = &[
        &file::TABLE,
        &augeas::TABLE,
        &magic::TABLE,
        &block_devices::TABLE,
        &disk_encryption::TABLE,
        &extended_attributes::TABLE,
        &file_lines::TABLE,
        &hash::TABLE,
        &plist::TABLE,
        &mounts::TABLE,
        &process_memory_map::TABLE,
        &process_open_files::TABLE,
        &process_open_sockets::TABLE,
        &listening_ports::TABLE,
        &interface_addresses::TABLE,
        &iptables::TABLE,
        &systemd_units::TABLE,
        &chrome_extensions::TABLE,
        &firefox_addons::TABLE,
        &processes::TABLE,
        &time::TABLE,
        &apt_sources::TABLE,
        &deb_packages::TABLE,
        &groups::TABLE,
        &kernel_info::TABLE,
        &kernel_modules::TABLE,
        &os_version::TABLE,
        &osquery_info::TABLE,
        &rpm_packages::TABLE,
        &secureboot::TABLE,
        &system_info::TABLE,
        &uptime::TABLE,
        &users::TABLE,
        &yum_sources::TABLE,
        &registry::TABLE,
        &bitlocker_info::TABLE,
        &windows_security_center::TABLE,
        &windows_security_products::TABLE,
        &programs::TABLE,
        &patches::TABLE,
        &services::TABLE,
        &logged_in_users::TABLE,
        &tpm_info::TABLE,
        &windows_update_history::TABLE,
        &alf::TABLE,
        &alf_exceptions::TABLE,
        &alf_explicit_auths::TABLE,
        &apps::TABLE,
        &gatekeeper::TABLE,
        &launchd::TABLE,
        &managed_policies::TABLE,
        &mdfind::TABLE,
        &preferences::TABLE,
        &screenlock::TABLE,
        &signature::TABLE,
        &sip_config::TABLE,
        &xprotect_entries::TABLE,
        &xprotect_meta::TABLE,
    ];
    ALL
}
