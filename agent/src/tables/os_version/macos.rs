//! `os_version` on macOS.
//!
//! osquery calls CoreFoundation's private `_CFCopySystemVersionDictionary`,
//! which reads `/System/Library/CoreServices/SystemVersion.plist`, and
//! `_CFCopySupplementalVersionDictionary`, which reads the same file in the
//! OS cryptex (`/System/Cryptexes/OS/System/Library/CoreServices/`, where a
//! Rapid Security Response puts its version) and falls back to the first.
//! Tend reads the two files:
//!
//! - `name` is `ProductName` (`macOS`), `version` `ProductVersion`
//!   (`14.7.1`) split into `major`, `minor` and `patch` (NULL when the
//!   version has fewer parts, as in osquery), `build`
//!   `ProductBuildVersion`.
//! - From the cryptex's file: `ProductVersionExtra` is `extra` (`(a)`), and
//!   its `ProductBuildVersion` (and a `ShortVersionString`, if any) replace
//!   `build` (and `version`).
//! - `platform` and `platform_like` are `darwin`, `arch` is `uname`'s
//!   machine (`arm64`, `x86_64`); `codename` is NULL.

use std::path::Path;

use crate::sql::table::{Constraints, Row, RowBuilder, ScanContext, TableError};
use crate::tables::darwin;

use super::COLUMNS;

/// The OS cryptex's copy of SystemVersion.plist (Rapid Security Responses).
const SUPPLEMENTAL: &str = "/System/Cryptexes/OS/System/Library/CoreServices/SystemVersion.plist";

fn version_dict(ctx: &ScanContext<'_>, path: &str) -> Option<plist::Dictionary> {
    darwin::read_plist(ctx, Path::new(path))?.into_dictionary()
}

pub(super) fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let base = version_dict(ctx, darwin::SYSTEM_VERSION);
    let supplemental = version_dict(ctx, SUPPLEMENTAL).or_else(|| base.clone());
    let arch = ctx.machine.host.uname().ok().map(|u| u.machine);
    Ok(vec![row(base.as_ref(), supplemental.as_ref(), arch)])
}

/// osquery's `genOSVersion` from the two dictionaries.
pub fn row(
    base: Option<&plist::Dictionary>,
    supplemental: Option<&plist::Dictionary>,
    arch: Option<String>,
) -> Row {
    let mut r = RowBuilder::new(COLUMNS);
    r.set("platform", "darwin")
        .set("platform_like", "darwin")
        .set_opt("arch", arch);
    let get = |d: Option<&plist::Dictionary>, k: &str| {
        d.and_then(|d| darwin::string(d, k)).map(String::from)
    };
    r.set_opt("build", get(base, "ProductBuildVersion"))
        .set_opt("name", get(base, "ProductName"));
    if let Some(version) = get(base, "ProductVersion") {
        let parts: Vec<&str> = version
            .split('.')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if (1..=3).contains(&parts.len()) {
            for (column, part) in ["major", "minor", "patch"].iter().zip(&parts) {
                r.set(column, *part);
            }
        }
        r.set("version", version);
    }
    r.set_opt("version", get(supplemental, "ShortVersionString"))
        .set_opt("extra", get(supplemental, "ProductVersionExtra"))
        .set_opt("build", get(supplemental, "ProductBuildVersion"));
    r.build()
}

#[cfg(test)]
mod tests {
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn sonoma_on_apple_silicon() {
        let engine = Engine::new(fixture("../machines/macos14-compliant")).unwrap();
        let r = engine
            .query("SELECT name, version, major, minor, patch, build, platform, platform_like, codename, arch, extra FROM os_version")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![vec![
                t("macOS"),
                t("14.7.1"),
                Value::Integer(14),
                Value::Integer(7),
                Value::Integer(1),
                t("23H222"),
                t("darwin"),
                t("darwin"),
                Value::Null,
                t("arm64"),
                Value::Null,
            ]]
        );
    }

    #[test]
    fn rapid_security_response() {
        let engine = Engine::new(fixture("os_version_macos")).unwrap();
        let r = engine
            .query("SELECT version, major, minor, patch, build, extra, arch FROM os_version")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![vec![
                t("13.4.1"),
                Value::Integer(13),
                Value::Integer(4),
                Value::Integer(1),
                t("22F770820d"),
                t("(c)"),
                t("arm64"),
            ]]
        );
    }

    #[test]
    fn two_part_version_has_no_patch() {
        let engine = Engine::new(fixture("../machines/macos14-noncompliant")).unwrap();
        let r = engine
            .query("SELECT version, major, minor, patch, build, arch FROM os_version")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![vec![
                t("14.6"),
                Value::Integer(14),
                Value::Integer(6),
                Value::Null,
                t("23G80"),
                t("x86_64"),
            ]]
        );
    }
}
