//! Who is on the other end of the socket, and what they may do.
//!
//! On Unix the kernel says who connected (`SO_PEERCRED` on Linux,
//! `getpeereid` on macOS, through tokio's `peer_cred`); it cannot be
//! forged by the client. On Windows the named pipe gives the client's
//! process id, and from it its session and whether its token is elevated.
//!
//! - An *administrator* is root (or, for a daemon run unprivileged in
//!   tests and trials, the daemon's own user), or on Windows an elevated
//!   process or a service in session 0.
//! - The *console user* is the user of the active local session: logind's
//!   `ACTIVE_UID` of `seat0` on Linux, the owner of `/dev/console` on
//!   macOS, the active console session on Windows.
//! - Anyone else may read ([`Access::Read`]).

use super::proto::Op;

/// What an op needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    Console,
    Admin,
}

impl Access {
    pub fn describe(self) -> &'static str {
        match self {
            Access::Read => "any local user",
            Access::Console => "the console user's session or an administrator",
            Access::Admin => "an administrator",
        }
    }
}

/// What `op` requires.
pub fn required(op: &Op) -> Access {
    match op {
        Op::Hello | Op::Status | Op::Checks | Op::Subscribe | Op::History { .. } => Access::Read,
        Op::Recheck { .. }
        | Op::Session { .. }
        | Op::Interaction { .. }
        | Op::Notified { .. }
        | Op::WorkflowExecutions { .. }
        | Op::WorkflowHistory { .. } => Access::Console,
        Op::Pull | Op::Reload | Op::WorkflowStart { .. } => Access::Admin,
    }
}

/// The other end of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub uid: Option<u32>,
    pub pid: Option<i32>,
    /// The Windows session id.
    pub session: Option<u32>,
    pub admin: bool,
    pub console: bool,
}

impl Peer {
    pub fn may(&self, access: Access) -> bool {
        match access {
            Access::Read => true,
            Access::Console => self.console || self.admin,
            Access::Admin => self.admin,
        }
    }

    /// The highest access this peer has.
    pub fn access(&self) -> Access {
        if self.admin {
            Access::Admin
        } else if self.console {
            Access::Console
        } else {
            Access::Read
        }
    }

    /// A short description for logs: `uid 1000 (pid 4242)`.
    pub fn describe(&self) -> String {
        let mut s = match (self.uid, self.session) {
            (Some(u), _) => format!("uid {u}"),
            (None, Some(sess)) => format!("session {sess}"),
            _ => "unknown peer".to_string(),
        };
        if let Some(p) = self.pid {
            s.push_str(&format!(" (pid {p})"));
        }
        s
    }
}

/// logind's active user of `seat0`, from `/run/systemd/seats/seat0`.
pub fn parse_seat_active_uid(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.strip_prefix("ACTIVE_UID="))
        .and_then(|v| v.trim().parse().ok())
}

/// The console user's uid, when one is logged in at the console.
#[cfg(unix)]
pub fn console_uid() -> Option<u32> {
    #[cfg(target_os = "macos")]
    {
        use std::os::unix::fs::MetadataExt;
        // The login window owns /dev/console as root; a user session owns it as the user.
        std::fs::metadata("/dev/console")
            .ok()
            .map(|m| m.uid())
            .filter(|u| *u != 0)
    }
    #[cfg(not(target_os = "macos"))]
    {
        std::fs::read_to_string("/run/systemd/seats/seat0")
            .ok()
            .and_then(|t| parse_seat_active_uid(&t))
    }
}

/// Identifies the peer of a Unix socket connection.
#[cfg(unix)]
pub fn unix_peer(stream: &tokio::net::UnixStream) -> Peer {
    // SAFETY: geteuid cannot fail and has no preconditions.
    let me = unsafe { libc::geteuid() };
    match stream.peer_cred() {
        Ok(cred) => {
            let uid = cred.uid();
            Peer {
                uid: Some(uid),
                pid: cred.pid(),
                session: None,
                admin: uid == 0 || uid == me,
                console: console_uid() == Some(uid),
            }
        }
        Err(e) => {
            tracing::warn!("cannot identify a local API peer: {e}");
            Peer {
                uid: None,
                pid: None,
                session: None,
                admin: false,
                console: false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rules() {
        let reader = Peer {
            uid: Some(65534),
            pid: None,
            session: None,
            admin: false,
            console: false,
        };
        let console = Peer {
            console: true,
            ..reader.clone()
        };
        let admin = Peer {
            admin: true,
            ..reader.clone()
        };
        assert!(reader.may(required(&Op::Status)));
        assert!(!reader.may(required(&Op::Recheck { check: None })));
        assert!(console.may(required(&Op::Recheck { check: None })));
        assert!(!console.may(required(&Op::Reload)));
        assert!(admin.may(required(&Op::Pull)));
        assert_eq!(reader.describe(), "uid 65534");
    }

    #[test]
    fn logind_seat_file() {
        let text = "# This is private data. Do not parse.\nIS_SEAT0=1\nCAN_MULTI_SESSION=1\nACTIVE=2\nACTIVE_UID=1000\nSESSIONS=2 c1\nUIDS=1000 120\n";
        assert_eq!(parse_seat_active_uid(text), Some(1000));
        assert_eq!(parse_seat_active_uid("IS_SEAT0=1\n"), None);
    }
}
