//! Who the events are about: this device (the event's `asset`) and, from the
//! config, its owner (`user`), organisation (`company`) and `team`.
//!
//! The asset's `uuid` is, in order: the config's `asset.uuid`; the
//! hardware UUID (`system_info.uuid`: SMBIOS on Linux, `IOPlatformUUID` on
//! macOS, the SMBIOS UUID on Windows); `/etc/machine-id` as a UUID; or a
//! random UUID made once and kept in the state directory (`device-id`). Its
//! `name` is the config's `asset.name`, else "Owner (hostname)" with the
//! owner's first name taken from `asset.owner_email`, else the host name.

use std::path::Path;

use super::events::{Identity, Named, User};
use crate::config::AssetConfig;

/// A UUID from 32 hex digits (a machine-id), lowercase and hyphenated.
pub fn uuid_from_hex(hex: &str) -> Option<String> {
    let h = hex.trim();
    if h.len() != 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let h = h.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// "Ada" from `ada.lovelace@example.com`.
pub fn owner_first_name(email: &str) -> Option<String> {
    let local = email.split('@').next()?;
    let first = local.split(['.', '_', '-', '+']).find(|s| !s.is_empty())?;
    let mut c = first.chars();
    let head = c.next()?;
    Some(head.to_uppercase().chain(c).collect())
}

/// The device id kept in the state directory, made when missing.
pub fn stored_device_id(state_dir: &Path) -> Option<String> {
    let path = state_dir.join("device-id");
    if let Ok(text) = std::fs::read_to_string(&path)
        && uuid::Uuid::parse_str(text.trim()).is_ok()
    {
        return Some(text.trim().to_string());
    }
    let id = uuid::Uuid::new_v4().to_string();
    match crate::policy::store::write_atomic(&path, id.as_bytes()) {
        Ok(()) => Some(id),
        Err(e) => {
            tracing::warn!("cannot keep a device id in {}: {e}", path.display());
            None
        }
    }
}

/// What the machine says about itself.
#[derive(Clone, Debug, Default)]
pub struct MachineFacts {
    pub hardware_uuid: Option<String>,
    pub machine_id: Option<String>,
    pub hostname: Option<String>,
}

/// Puts the identity together (see the module documentation for the order).
pub fn resolve(cfg: &AssetConfig, facts: &MachineFacts, state_dir: &Path) -> Identity {
    let nonempty = |s: &Option<String>| s.as_ref().filter(|s| !s.trim().is_empty()).cloned();
    let uuid = nonempty(&cfg.uuid)
        .or_else(|| nonempty(&facts.hardware_uuid).map(|u| u.to_ascii_lowercase()))
        .or_else(|| facts.machine_id.as_deref().and_then(uuid_from_hex))
        .or_else(|| stored_device_id(state_dir));
    let host = nonempty(&facts.hostname);
    let name = nonempty(&cfg.name).or_else(|| {
        let owner = cfg.owner_email.as_deref().and_then(owner_first_name);
        match (owner, &host) {
            (Some(o), Some(h)) => Some(format!("{o} ({h})")),
            (None, Some(h)) => Some(h.clone()),
            (Some(o), None) => Some(o),
            (None, None) => None,
        }
    });
    let named = |uuid: &Option<String>, name: &Option<String>| {
        (uuid.is_some() || name.is_some()).then(|| Named {
            uuid: uuid.clone(),
            name: name.clone(),
        })
    };
    Identity {
        asset: Named { uuid, name },
        company: named(&cfg.org_uuid, &cfg.org_name),
        user: nonempty(&cfg.owner_email).map(|email| User { email }),
        team: named(&cfg.team_uuid, &cfg.team_name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids() {
        assert_eq!(
            uuid_from_hex("3d1219c7c4c5404aaa1f6d2a48adfda4\n").as_deref(),
            Some("3d1219c7-c4c5-404a-aa1f-6d2a48adfda4")
        );
        assert_eq!(uuid_from_hex("xyz"), None);
        assert_eq!(
            owner_first_name("ada.lovelace@example.com").as_deref(),
            Some("Ada")
        );
        assert_eq!(owner_first_name("james@x").as_deref(), Some("James"));
    }

    #[test]
    fn the_identity_falls_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AssetConfig {
            owner_email: Some("james@example.com".into()),
            org_name: Some("Zercurity".into()),
            ..AssetConfig::default()
        };
        let facts = MachineFacts {
            hardware_uuid: Some("4E8924A8-31FF-4895-8956-92879B8C617E".into()),
            machine_id: None,
            hostname: Some("laptop".into()),
        };
        let id = resolve(&cfg, &facts, dir.path());
        assert_eq!(
            id.asset.uuid.as_deref(),
            Some("4e8924a8-31ff-4895-8956-92879b8c617e")
        );
        assert_eq!(id.asset.name.as_deref(), Some("James (laptop)"));
        assert_eq!(
            id.company.as_ref().unwrap().name.as_deref(),
            Some("Zercurity")
        );
        assert!(id.team.is_none());
        assert_eq!(id.user.unwrap().email, "james@example.com");

        // No hardware UUID, no machine-id: a device id kept in the state dir.
        let bare = MachineFacts {
            hostname: Some("laptop".into()),
            ..MachineFacts::default()
        };
        let a = resolve(&AssetConfig::default(), &bare, dir.path());
        let b = resolve(&AssetConfig::default(), &bare, dir.path());
        assert_eq!(a.asset.uuid, b.asset.uuid);
        assert!(a.asset.uuid.is_some());
        assert_eq!(a.asset.name.as_deref(), Some("laptop"));
        assert!(a.user.is_none() && a.company.is_none());
    }
}
