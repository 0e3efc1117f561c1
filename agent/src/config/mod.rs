//! The agent's configuration: where the policy is, which keys sign it, who
//! this device belongs to, where events go.
//!
//! IT pushes a small config with MDM; the policy itself is fetched
//! ([`crate::policy::manager`]). The config is read from the places MDM
//! writes on each OS and merged, lowest precedence first, a later place
//! overriding an earlier one key by key ([`Places::managed`]):
//!
//! | OS | places, lowest precedence first |
//! |---|---|
//! | Linux | `/etc/tend/agent.toml`, then `/etc/tend/agent.d/*.toml` in name order |
//! | macOS | `/Library/Application Support/Tend/agent.toml`, then the managed preferences a configuration profile writes for the domain [`MACOS_DOMAIN`] (`/Library/Managed Preferences/com.tend.agent.plist`) |
//! | Windows | `%ProgramData%\Tend\agent.toml`, then the registry key `HKLM\SOFTWARE\Policies\Tend` (what an MSI property, Intune or GPO writes) |
//!
//! so what MDM manages wins over a local file. `--config FILE` replaces all
//! of them with that one file. Tables (`[asset]`, `[slack]`) merge key by
//! key; lists (`trusted_keys`, `sinks`) are replaced whole. Every value
//! remembers where it came from ([`LoadedConfig::origins`]), which
//! `tend config show` prints. A setting this build does not know is a
//! warning, not an error, so an MDM profile written for a newer agent does
//! not stop an older one.

mod sources;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use sources::{Place, Places, SourceStatus};

use crate::os::windows::Registry;
use crate::policy::Interval;
use crate::sql::table::Platform;

/// The preference domain of Tend's macOS configuration profiles.
pub const MACOS_DOMAIN: &str = "com.tend.agent";
/// The registry key Windows MDM and GPO write.
pub const WINDOWS_POLICY_KEY: &str = r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Tend";
/// The largest config file read, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Who this device belongs to, as events report it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AssetConfig {
    /// The owner's email (the event's `user`; also how Slack finds them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_email: Option<String>,
    /// The device's name (default: the host name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The organisation (the event's `company`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_uuid: Option<String>,
}

/// Where compliance events are delivered, besides the workflows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// JSON lines appended to a file, rotated by size (`path.1` ... `path.N`).
    File {
        path: PathBuf,
        /// Rotate when the file would grow past this many bytes (default 10 MiB).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_bytes: Option<u64>,
        /// Rotated files kept (default 5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keep: Option<u32>,
    },
    /// Batched HTTPS POSTs of JSON events (a JSON array, gzip).
    Http {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch_size: Option<u32>,
        /// Extra request headers (not secrets: see `token_file`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        /// A root-only file holding a bearer token (`Authorization: Bearer ...`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_file: Option<PathBuf>,
        /// A systemd credential holding the token (`$CREDENTIALS_DIRECTORY/NAME`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_credential: Option<String>,
        /// A secret in the agent's store holding the token (`tend secret
        /// set NAME`: the keychain / Credential Manager, or a root-only file
        /// on Linux). Taken before `token_file` and `token_credential`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_secret: Option<String>,
        /// The header the token goes in, when not `Authorization: Bearer`
        /// (e.g. `Authorization: Splunk` is `"Authorization"` with `token_prefix`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_header: Option<String>,
        /// Text before the token in its header (default `Bearer `).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_prefix: Option<String>,
        /// A PEM file of CA certificates to trust for this URL instead of the OS trust store.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pinned_ca: Option<PathBuf>,
        /// Compress bodies with gzip (default true).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gzip: Option<bool>,
        /// Events kept for this sink while it is unreachable (default 10000);
        /// past that the oldest are dropped and counted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_backlog: Option<u64>,
    },
}

/// The Slack workspace the fallback DM uses. Tokens are secrets and live in
/// the OS keychain or a root-only file, never here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlackConfig {
    /// The workspace's domain, e.g. `acme.slack.com`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The Web API's base URL (default `https://slack.com/api/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

/// The merged agent configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    /// The signed policy's HTTPS URL. Without one, the agent uses the
    /// built-in policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_url: Option<String>,
    /// The signature's URL (default: the policy's URL with `.minisig` added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_url: Option<String>,
    /// minisign public keys (the base64 line of `minisign.pub`, or the whole
    /// file). A policy signed by any of them is trusted; list the new key
    /// beside the old one while rotating.
    pub trusted_keys: Vec<String>,
    /// How often to poll for a new policy (jittered by ±10%).
    pub poll_interval: Interval,
    /// A PEM file of CA certificates to trust instead of the OS trust store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_ca: Option<PathBuf>,
    /// Use the built-in policy while none has ever been fetched. Default:
    /// true without a `policy_url`, false with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_default_policy: Option<bool>,
    /// Accept a policy with no signature. For trials only.
    pub allow_unsigned: bool,
    /// Accept a plain `http://` policy URL whose host is loopback. For tests only.
    pub allow_http_loopback: bool,
    /// Where the last good policy is cached (default: `/var/lib/tend`,
    /// `/Library/Application Support/Tend`, `%ProgramData%\Tend`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// Time allowed to connect to the policy server.
    pub connect_timeout: Interval,
    /// Time allowed for a whole transfer (policy or signature).
    pub fetch_timeout: Interval,
    /// The self-update's release manifest (HTTPS). Without one the agent
    /// never updates itself; package-managed installs ignore it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_url: Option<String>,
    /// minisign public keys that sign releases (default: the key pinned in
    /// the build). Separate from `trusted_keys`: releases and policies are
    /// signed by different people.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub update_keys: Vec<String>,
    /// Let the service check for and install updates on its own (MDM turns
    /// it off with `auto_update = false`).
    pub auto_update: bool,
    /// How often the service checks for an update (jittered by ±10%).
    pub update_interval: Interval,
    pub asset: AssetConfig,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<SinkConfig>,
    pub slack: SlackConfig,
    /// How long a workflow's notification waits for a user session to
    /// connect before it fails with `Agent.NoUserSession`.
    pub notify_session_wait: Interval,
}

impl Default for AgentConfig {
    fn default() -> AgentConfig {
        AgentConfig {
            policy_url: None,
            signature_url: None,
            trusted_keys: Vec::new(),
            poll_interval: Interval(Duration::from_secs(15 * 60)),
            pinned_ca: None,
            allow_default_policy: None,
            allow_unsigned: false,
            allow_http_loopback: false,
            state_dir: None,
            connect_timeout: Interval(Duration::from_secs(10)),
            fetch_timeout: Interval(Duration::from_secs(60)),
            update_url: None,
            update_keys: Vec::new(),
            auto_update: true,
            update_interval: Interval(Duration::from_secs(6 * 3600)),
            asset: AssetConfig::default(),
            sinks: Vec::new(),
            slack: SlackConfig::default(),
            notify_session_wait: Interval(Duration::from_secs(60)),
        }
    }
}

impl AgentConfig {
    /// Whether the built-in policy may be used while no policy was ever fetched.
    pub fn allow_default_policy(&self) -> bool {
        self.allow_default_policy
            .unwrap_or(self.policy_url.is_none())
    }

    /// The state directory: the configured one or this OS's default.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| default_state_dir(Platform::current()))
    }
}

/// Where the agent keeps its state on each OS.
pub fn default_state_dir(platform: Platform) -> PathBuf {
    match platform {
        Platform::Linux => PathBuf::from("/var/lib/tend"),
        Platform::Macos => PathBuf::from("/Library/Application Support/Tend"),
        Platform::Windows => program_data().join("Tend"),
    }
}

/// `%ProgramData%` (`C:\ProgramData` when unset).
pub(crate) fn program_data() -> PathBuf {
    std::env::var_os("ProgramData")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
}

/// Why the configuration could not be read. Every variant names the place.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the file is {size} bytes; the limit is {MAX_CONFIG_BYTES}")]
    TooLarge { path: String, size: u64 },
    #[error(
        "{path}: refusing a config file that users other than its owner may write (mode {mode:o}); it names the keys every policy is checked against"
    )]
    Writable { path: String, mode: u32 },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}: {message}")]
    Source { origin: String, message: String },
    #[error("setting `{key}` (from {origin}): {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
}

/// The merged configuration and where each value came from.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    pub config: AgentConfig,
    /// Setting (`policy_url`, `asset.owner_email`, `sinks`) → the place that set it.
    /// A setting not listed has its default value.
    pub origins: BTreeMap<String, String>,
    /// Every place looked at, in merge order, and whether it was there.
    pub sources: Vec<SourceStatus>,
    /// Settings that were ignored, with where they were.
    pub warnings: Vec<String>,
}

impl LoadedConfig {
    /// Where a setting came from (`default` when nowhere set it).
    pub fn origin(&self, key: &str) -> &str {
        self.origins.get(key).map_or("default", String::as_str)
    }

    /// Whether any config place exists: with none, Tend behaves as it
    /// always has (the built-in policy, nothing fetched).
    pub fn found_any(&self) -> bool {
        self.sources.iter().any(|s| s.found)
    }

    /// Loads the config from `places`, reading registry places through `registry`.
    pub fn load(places: &Places, registry: &dyn Registry) -> Result<LoadedConfig, ConfigError> {
        let mut merged = toml::Table::new();
        let mut origins = BTreeMap::new();
        let mut warnings = Vec::new();
        let mut statuses = Vec::new();
        for place in &places.places {
            for layer in sources::read(place, places.explicit, registry, &mut statuses)? {
                let table = normalize(layer.table, "", &layer.origin, &mut warnings);
                merge(&mut merged, table, "", &layer.origin, &mut origins);
            }
        }
        let config: AgentConfig = serde_path_to_error::deserialize(toml::Value::Table(merged))
            .map_err(|e| {
                let key = e.path().to_string();
                let origin = origin_of(&origins, &key);
                ConfigError::Invalid {
                    key,
                    origin,
                    message: e.into_inner().message().to_string(),
                }
            })?;
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        Ok(LoadedConfig {
            config,
            origins,
            sources: statuses,
            warnings,
        })
    }
}

/// The origin of `key` or of the nearest setting that contains it
/// (`sinks[0].url` → `sinks`).
fn origin_of(origins: &BTreeMap<String, String>, key: &str) -> String {
    let mut k = key;
    loop {
        if let Some(o) = origins.get(k) {
            return o.clone();
        }
        match k.rfind(['.', '[']) {
            Some(i) => k = &k[..i],
            None => return "default".into(),
        }
    }
}

/// What kind of value a setting holds, so places without TOML's types (the
/// registry, a property list) can be read into the same model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Str,
    Bool,
    Interval,
    /// A list of strings.
    List,
    /// A table whose keys merge one by one.
    Section,
    /// A list of tables, replaced whole.
    Items,
}

/// Every setting this build knows.
const SCHEMA: &[(&str, Kind)] = &[
    ("policy_url", Kind::Str),
    ("signature_url", Kind::Str),
    ("trusted_keys", Kind::List),
    ("poll_interval", Kind::Interval),
    ("pinned_ca", Kind::Str),
    ("allow_default_policy", Kind::Bool),
    ("allow_unsigned", Kind::Bool),
    ("allow_http_loopback", Kind::Bool),
    ("state_dir", Kind::Str),
    ("connect_timeout", Kind::Interval),
    ("fetch_timeout", Kind::Interval),
    ("update_url", Kind::Str),
    ("update_keys", Kind::List),
    ("auto_update", Kind::Bool),
    ("update_interval", Kind::Interval),
    ("asset", Kind::Section),
    ("asset.owner_email", Kind::Str),
    ("asset.name", Kind::Str),
    ("asset.uuid", Kind::Str),
    ("asset.org_name", Kind::Str),
    ("asset.org_uuid", Kind::Str),
    ("asset.team_name", Kind::Str),
    ("asset.team_uuid", Kind::Str),
    ("sinks", Kind::Items),
    ("slack", Kind::Section),
    ("slack.workspace", Kind::Str),
    ("slack.team_id", Kind::Str),
    ("slack.app_id", Kind::Str),
    ("slack.api_url", Kind::Str),
    ("notify_session_wait", Kind::Interval),
];

fn kind_of(key: &str) -> Option<Kind> {
    SCHEMA
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, kind)| *kind)
}

/// The settings this build knows, with their kinds' names (for `tend config show`).
pub fn known_settings() -> impl Iterator<Item = &'static str> {
    SCHEMA
        .iter()
        .filter(|(_, k)| *k != Kind::Section)
        .map(|(name, _)| *name)
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Drops unknown settings (with a warning) and converts the loose types of
/// the registry and property lists: an integer 0/1 or the text
/// `true`/`false` for a switch, a number of seconds for an interval, one
/// string for a list of one.
fn normalize(
    table: toml::Table,
    prefix: &str,
    origin: &str,
    warnings: &mut Vec<String>,
) -> toml::Table {
    use toml::Value as V;
    let mut out = toml::Table::new();
    for (k, v) in table {
        let path = join(prefix, &k);
        let Some(kind) = kind_of(&path) else {
            warnings.push(format!(
                "{origin}: unknown setting `{path}` (ignored by this version of Tend)"
            ));
            continue;
        };
        let v = match (kind, v) {
            (Kind::Section, V::Table(t)) => V::Table(normalize(t, &path, origin, warnings)),
            (Kind::Bool, V::Integer(n)) if n == 0 || n == 1 => V::Boolean(n == 1),
            (Kind::Bool, V::String(s)) if matches!(s.as_str(), "true" | "false" | "1" | "0") => {
                V::Boolean(s == "true" || s == "1")
            }
            (Kind::Interval, V::Integer(n)) if n > 0 => V::String(format!("{n}s")),
            (Kind::List, V::String(s)) => V::Array(vec![V::String(s)]),
            (_, v) => v,
        };
        out.insert(k, v);
    }
    out
}

/// Merges `layer` over `into`: sections key by key, everything else whole.
fn merge(
    into: &mut toml::Table,
    layer: toml::Table,
    prefix: &str,
    origin: &str,
    origins: &mut BTreeMap<String, String>,
) {
    for (k, v) in layer {
        let path = join(prefix, &k);
        match (kind_of(&path), v) {
            (Some(Kind::Section), toml::Value::Table(t)) => {
                let slot = into
                    .entry(k)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if !slot.is_table() {
                    *slot = toml::Value::Table(toml::Table::new());
                }
                if let toml::Value::Table(sub) = slot {
                    merge(sub, t, &path, origin, origins);
                }
            }
            (_, v) => {
                into.insert(k, v);
                origins.insert(path, origin.to_string());
            }
        }
    }
}

/// Reads a file of at most [`MAX_CONFIG_BYTES`], refusing one that others may write.
pub(crate) fn read_config_file(path: &Path) -> Result<Option<Vec<u8>>, ConfigError> {
    let name = path.display().to_string();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ConfigError::Read { path: name, source }),
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: name,
            size: meta.len(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(ConfigError::Writable { path: name, mode });
        }
    }
    std::fs::read(path)
        .map(Some)
        .map_err(|source| ConfigError::Read { path: name, source })
}

#[cfg(test)]
mod tests;
