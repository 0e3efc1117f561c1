//! The local API: how the CLI and the tray talk to the service.
//!
//! A Unix socket (peer credentials checked by the kernel) or a Windows
//! named pipe (with an ACL), speaking versioned JSON messages, one per
//! line, each size-bounded ([`proto`]). The server ([`server`]) checks who
//! is asking ([`peer`]) before it hands a request to the daemon through the
//! [`server::Service`] trait, so this module knows nothing of the daemon.
//! [`client`] is the other end; [`sessions`] tracks the user sessions
//! connected (they show the daemon's notifications).

pub mod client;
pub mod fuzzing;
pub mod peer;
#[cfg(windows)]
pub mod pipe;
pub mod proto;
pub mod server;
pub mod sessions;

use crate::sql::table::Platform;

/// The environment variable naming another endpoint (tests, trials).
pub const ENDPOINT_ENV: &str = "TEND_SOCKET";

/// Where the service listens on this OS by default.
pub fn default_endpoint(platform: Platform) -> String {
    match platform {
        Platform::Linux => "/run/tend/tend.sock".into(),
        Platform::Macos => "/var/run/tend/tend.sock".into(),
        Platform::Windows => r"\\.\pipe\tend".into(),
    }
}

/// The endpoint: the one given, else `TEND_SOCKET`, else this OS's default.
pub fn endpoint(given: Option<&str>) -> String {
    given
        .map(str::to_string)
        .or_else(|| std::env::var(ENDPOINT_ENV).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| default_endpoint(Platform::current()))
}

/// Binds the Unix socket at `path`: creates its directory, replaces a stale
/// socket (one nobody answers on), refuses to take over a live one, and
/// lets every local user connect (access is decided per request).
#[cfg(unix)]
pub fn bind_unix(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    if path.exists() {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!(
                        "{}: another Tend service is listening there",
                        path.display()
                    ),
                ));
            }
            Err(_) => std::fs::remove_file(path)?,
        }
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}
