//! osquery's tables, one file each.
//!
//! Each file declares a [`TableDef`]: osquery's table name, osquery's
//! columns exactly as the spec has them (checked by
//! `tests/osquery_conformance.rs`), the platforms whose machines it can read,
//! and its `generate` function. To add a table, write its file and list it
//! in [`all`]; the engine registers it and `tend schema` shows it.

pub mod util;

mod apt_sources;
mod augeas;
mod block_devices;
mod chrome_extensions;
mod deb_packages;
mod disk_encryption;
mod extended_attributes;
mod file;
mod file_lines;
mod firefox_addons;
mod groups;
mod hash;
mod interface_addresses;
mod iptables;
mod kernel_info;
mod kernel_modules;
mod listening_ports;
mod magic;
mod mounts;
mod os_version;
mod osquery_info;
mod plist;
mod process_memory_map;
mod process_open_files;
mod process_open_sockets;
mod processes;
mod rpm_packages;
mod secureboot;
mod system_info;
mod systemd_units;
mod time;
mod uptime;
mod users;
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
    ];
    ALL
}
