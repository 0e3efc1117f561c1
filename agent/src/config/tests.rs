use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::*;
use crate::os::windows::{NoWindows, RecordedKey, RegType, RegValue, utf16_bytes};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    p
}

fn linux_places(dir: &Path) -> Places {
    Places {
        places: vec![
            Place::Toml(dir.join("agent.toml")),
            Place::TomlDir(dir.join("agent.d")),
        ],
        explicit: false,
    }
}

#[cfg(unix)]
const MAIN: &str = r#"
policy_url = "https://policies.example.com/tend/policy.json"
trusted_keys = ["RWQold"]
poll_interval = "30m"

[asset]
owner_email = "ada@example.com"
org_name = "Example Ltd"

[[sinks]]
type = "file"
path = "/var/log/tend/events.jsonl"
"#;

// Linux's layout; on Windows `write`'s "agent.d/20-keys.toml" keeps its `/`
// while the loader names the file `agent.d\20-keys.toml`.
#[cfg(unix)]
#[test]
fn linux_files_merge_in_order_with_origins() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "agent.toml", MAIN);
    let keys = write(
        dir.path(),
        "agent.d/20-keys.toml",
        "trusted_keys = [\"RWQold\", \"RWQnew\"]\n",
    );
    let team = write(
        dir.path(),
        "agent.d/10-team.toml",
        "[asset]\nteam_name = \"Platform\"\nowner_email = \"grace@example.com\"\n",
    );
    write(dir.path(), "agent.d/README", "not a config");
    let loaded = LoadedConfig::load(&linux_places(dir.path()), &NoWindows).unwrap();
    let c = &loaded.config;
    assert_eq!(
        c.policy_url.as_deref(),
        Some("https://policies.example.com/tend/policy.json")
    );
    assert_eq!(c.trusted_keys, vec!["RWQold", "RWQnew"]);
    assert_eq!(c.poll_interval.0, Duration::from_secs(1800));
    assert_eq!(c.notify_session_wait.0, Duration::from_secs(60));
    // Tables merge key by key: org from the main file, team and owner from the drop-in.
    assert_eq!(c.asset.org_name.as_deref(), Some("Example Ltd"));
    assert_eq!(c.asset.team_name.as_deref(), Some("Platform"));
    assert_eq!(c.asset.owner_email.as_deref(), Some("grace@example.com"));
    assert_eq!(
        c.sinks,
        vec![SinkConfig::File {
            path: "/var/log/tend/events.jsonl".into(),
            max_bytes: None,
            keep: None,
        }]
    );
    let s = |p: &Path| p.display().to_string();
    assert_eq!(loaded.origin("policy_url"), s(&main));
    assert_eq!(loaded.origin("trusted_keys"), s(&keys));
    assert_eq!(loaded.origin("asset.org_name"), s(&main));
    assert_eq!(loaded.origin("asset.owner_email"), s(&team));
    assert_eq!(loaded.origin("fetch_timeout"), "default");
    assert_eq!(c.fetch_timeout.0, Duration::from_secs(60));
    assert!(loaded.found_any());
    assert_eq!(
        loaded
            .sources
            .iter()
            .map(|s| s.place.clone())
            .collect::<Vec<_>>(),
        vec![s(&main), s(&team), s(&keys)]
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn nothing_there_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = LoadedConfig::load(&linux_places(dir.path()), &NoWindows).unwrap();
    assert!(!loaded.found_any());
    assert_eq!(loaded.config, AgentConfig::default());
    assert!(loaded.config.allow_default_policy());
    // An explicit --config that is missing is an error.
    let e = LoadedConfig::load(&Places::file(dir.path().join("nope.toml")), &NoWindows)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.toml"), "{e}");
}

#[test]
fn errors_name_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "agent.toml",
        "policy_url = \"https://x/p.json\"\npoll_interval = \"soon\n",
    );
    let e = LoadedConfig::load(&Places::file(&p), &NoWindows)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{}:2:", p.display())), "{e}");

    write(dir.path(), "agent.toml", "poll_interval = \"5 weeks\"\n");
    let e = LoadedConfig::load(&Places::file(&p), &NoWindows)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`poll_interval`"), "{e}");
    assert!(e.contains(&p.display().to_string()), "{e}");

    write(
        dir.path(),
        "agent.toml",
        "[[sinks]]\ntype = \"carrier-pigeon\"\n",
    );
    let e = LoadedConfig::load(&Places::file(&p), &NoWindows)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sinks[0]"), "{e}");
}

#[test]
fn unknown_settings_warn_and_loose_types_convert() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "agent.toml",
        "future_thing = 1\npoll_interval = 600\nallow_unsigned = 0\ntrusted_keys = \"RWQone\"\n[slack]\nteam_id = \"T1\"\ncolour = \"red\"\n",
    );
    let loaded = LoadedConfig::load(&Places::file(&p), &NoWindows).unwrap();
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("`future_thing`"));
    assert!(loaded.warnings[1].contains("`slack.colour`"));
    assert_eq!(loaded.config.poll_interval.0, Duration::from_secs(600));
    assert!(!loaded.config.allow_unsigned);
    assert_eq!(loaded.config.trusted_keys, vec!["RWQone"]);
    assert_eq!(loaded.config.slack.team_id.as_deref(), Some("T1"));
}

#[cfg(unix)]
#[test]
fn a_file_others_may_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "agent.toml", MAIN);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = LoadedConfig::load(&Places::file(&p), &NoWindows)
        .unwrap_err()
        .to_string();
    assert!(e.contains("mode 666"), "{e}");
}

/// What a configuration profile for `com.tend.agent` writes under
/// `/Library/Managed Preferences`.
const MANAGED_PLIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>PayloadUUID</key>
	<string>9A1C5D0E-7F00-4C1B-9E47-2B3F6A0C8D11</string>
	<key>policy_url</key>
	<string>https://mdm.example.com/tend/policy.json</string>
	<key>trusted_keys</key>
	<array>
		<string>RWQmanaged</string>
	</array>
	<key>poll_interval</key>
	<integer>900</integer>
	<key>allow_default_policy</key>
	<false/>
	<key>asset</key>
	<dict>
		<key>owner_email</key>
		<string>ada@example.com</string>
	</dict>
	<key>sinks</key>
	<array>
		<dict>
			<key>type</key>
			<string>http</string>
			<key>url</key>
			<string>https://logs.example.com/tend</string>
		</dict>
	</array>
</dict>
</plist>
"#;

#[test]
fn macos_managed_preferences_win_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "Application Support/Tend/agent.toml",
        "policy_url = \"https://local.example.com/p.json\"\nstate_dir = \"/tmp/tend\"\n[asset]\norg_name = \"Example\"\n",
    );
    let plist = write(
        dir.path(),
        "Managed Preferences/com.tend.agent.plist",
        MANAGED_PLIST,
    );
    let places = Places {
        places: vec![Place::Toml(file.clone()), Place::Plist(plist.clone())],
        explicit: false,
    };
    let loaded = LoadedConfig::load(&places, &NoWindows).unwrap();
    let c = &loaded.config;
    assert_eq!(
        c.policy_url.as_deref(),
        Some("https://mdm.example.com/tend/policy.json")
    );
    assert_eq!(c.trusted_keys, vec!["RWQmanaged"]);
    assert_eq!(c.poll_interval.0, Duration::from_secs(900));
    assert_eq!(c.allow_default_policy, Some(false));
    assert_eq!(c.state_dir.as_deref(), Some(Path::new("/tmp/tend")));
    assert_eq!(c.asset.org_name.as_deref(), Some("Example"));
    assert_eq!(c.asset.owner_email.as_deref(), Some("ada@example.com"));
    assert_eq!(
        c.sinks,
        vec![SinkConfig::Http {
            url: "https://logs.example.com/tend".into(),
            batch_size: None,
            headers: Default::default(),
            token_file: None,
            token_credential: None,
            token_secret: None,
            token_header: None,
            token_prefix: None,
            pinned_ca: None,
            gzip: None,
            max_backlog: None,
        }]
    );
    let managed = format!("managed preferences {}", plist.display());
    assert_eq!(loaded.origin("policy_url"), managed);
    assert_eq!(loaded.origin("asset.owner_email"), managed);
    assert_eq!(loaded.origin("state_dir"), file.display().to_string());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

/// A recorded registry: key path → key, as a snapshot holds it.
struct Recorded(BTreeMap<String, RecordedKey>);

impl Registry for Recorded {
    fn key(&self, path: &str) -> io::Result<RecordedKey> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(path))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_string()))
    }
}

fn sz(name: &str, s: &str) -> RegValue {
    RegValue {
        name: name.into(),
        kind: RegType::Sz,
        data: utf16_bytes(s),
    }
}

fn dword(name: &str, n: u32) -> RegValue {
    RegValue {
        name: name.into(),
        kind: RegType::Dword,
        data: n.to_le_bytes().to_vec(),
    }
}

/// `HKLM\SOFTWARE\Policies\Tend` as an Intune or GPO deployment writes it.
fn windows_registry() -> Recorded {
    let mut multi = utf16_bytes("RWQfirst");
    multi.truncate(multi.len() - 2);
    multi.extend(utf16_bytes("\0RWQsecond\0"));
    let root = WINDOWS_POLICY_KEY;
    let mut m = BTreeMap::new();
    m.insert(
        root.to_string(),
        RecordedKey {
            mtime: 0,
            subkeys: vec!["Asset".into(), "Sinks".into()],
            values: vec![
                sz("PolicyURL", "ignored-case-mismatch"),
                sz("policy_url", "https://intune.example.com/tend/policy.json"),
                RegValue {
                    name: "trusted_keys".into(),
                    kind: RegType::MultiSz,
                    data: multi,
                },
                dword("poll_interval", 1200),
                dword("allow_unsigned", 0),
                // What an MSI property left empty writes: not a setting, so
                // the file's value stays.
                sz("fetch_timeout", ""),
                sz("signature_url", ""),
                RegValue {
                    name: "blob".into(),
                    kind: RegType::Binary,
                    data: vec![1, 2],
                },
            ],
        },
    );
    m.insert(
        format!(r"{root}\Asset"),
        RecordedKey {
            values: vec![sz("Owner_Email", "ada@example.com"), sz("team_name", "IT")],
            ..RecordedKey::default()
        },
    );
    m.insert(
        format!(r"{root}\Sinks"),
        RecordedKey {
            subkeys: vec!["2".into(), "1".into()],
            ..RecordedKey::default()
        },
    );
    m.insert(
        format!(r"{root}\Sinks\1"),
        RecordedKey {
            values: vec![
                sz("type", "file"),
                sz("path", r"C:\ProgramData\Tend\events.jsonl"),
            ],
            ..RecordedKey::default()
        },
    );
    m.insert(
        format!(r"{root}\Sinks\2"),
        RecordedKey {
            values: vec![
                sz("type", "http"),
                sz("url", "https://siem.example.com/in"),
                dword("batch_size", 50),
            ],
            ..RecordedKey::default()
        },
    );
    Recorded(m)
}

#[test]
fn windows_registry_policy_key_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "ProgramData/Tend/agent.toml",
        "policy_url = \"https://file.example.com/p.json\"\nfetch_timeout = \"2m\"\n",
    );
    let places = Places {
        places: vec![
            Place::Toml(file.clone()),
            Place::Registry(WINDOWS_POLICY_KEY.into()),
        ],
        explicit: false,
    };
    let loaded = LoadedConfig::load(&places, &windows_registry()).unwrap();
    let c = &loaded.config;
    assert_eq!(
        c.policy_url.as_deref(),
        Some("https://intune.example.com/tend/policy.json")
    );
    assert_eq!(c.trusted_keys, vec!["RWQfirst", "RWQsecond"]);
    assert_eq!(c.poll_interval.0, Duration::from_secs(1200));
    assert_eq!(c.fetch_timeout.0, Duration::from_secs(120));
    assert!(!c.allow_unsigned);
    assert_eq!(c.signature_url, None);
    assert_eq!(c.asset.owner_email.as_deref(), Some("ada@example.com"));
    assert_eq!(
        c.sinks,
        vec![
            SinkConfig::File {
                path: r"C:\ProgramData\Tend\events.jsonl".into(),
                max_bytes: None,
                keep: None,
            },
            SinkConfig::Http {
                url: "https://siem.example.com/in".into(),
                batch_size: Some(50),
                headers: Default::default(),
                token_file: None,
                token_credential: None,
                token_secret: None,
                token_header: None,
                token_prefix: None,
                pinned_ca: None,
                gzip: None,
                max_backlog: None,
            }
        ]
    );
    assert_eq!(
        loaded.origin("policy_url"),
        r"registry HKLM\SOFTWARE\Policies\Tend"
    );
    assert_eq!(loaded.origin("fetch_timeout"), file.display().to_string());
    // `PolicyURL` is not a setting (names are exact, apart from case).
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("`policyurl`"));

    // Where there is no registry (this machine), the key is simply absent.
    let loaded = LoadedConfig::load(&places, &NoWindows).unwrap();
    assert_eq!(
        loaded.config.policy_url.as_deref(),
        Some("https://file.example.com/p.json")
    );
}

#[test]
fn managed_places_per_os() {
    let linux = Places::managed(Platform::Linux);
    assert_eq!(
        linux.places,
        vec![
            Place::Toml("/etc/tend/agent.toml".into()),
            Place::TomlDir("/etc/tend/agent.d".into())
        ]
    );
    let mac = Places::managed(Platform::Macos);
    assert_eq!(
        mac.places[1],
        Place::Plist("/Library/Managed Preferences/com.tend.agent.plist".into())
    );
    let win = Places::managed(Platform::Windows);
    assert_eq!(win.places[1], Place::Registry(WINDOWS_POLICY_KEY.into()));
    assert_eq!(
        default_state_dir(Platform::Linux),
        PathBuf::from("/var/lib/tend")
    );
}
