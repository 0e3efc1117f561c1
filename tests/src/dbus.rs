//! A private D-Bus session bus with a notification server on it, for the
//! tests of native notifications on Linux.
//!
//! [`PrivateBus`] runs `dbus-daemon` on a socket in a temporary directory
//! with a config of its own (no service files, so nothing is activated, and
//! nothing of the machine's session is reached). [`NotificationServer`]
//! implements `org.freedesktop.Notifications` with zbus: it records every
//! `Notify` call and emits `ActionInvoked` and `NotificationClosed` when the
//! test says, as a desktop would when the user clicks.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::OwnedVariant;

/// A `dbus-daemon --session` of the test's own.
pub struct PrivateBus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    /// Starts the bus; panics (with the reason) when `dbus-daemon` cannot run.
    pub fn start() -> PrivateBus {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let socket = dir.path().join("bus");
        let config = dir.path().join("session.conf");
        std::fs::write(&config, config_text(&socket)).expect("writing the bus config");
        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .arg("--nopidfile")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dbus-daemon runs (scripts/deps.sh test installs it)");
        let address = format!("unix:path={}", socket.display());
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "dbus-daemon did not create {} within 10 s",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        PrivateBus {
            child,
            address,
            _dir: dir,
        }
    }

    /// `unix:path=...`: what `DBUS_SESSION_BUS_ADDRESS` says.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_text(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

/// One `Notify` call as the server received it.
#[derive(Clone, Debug, PartialEq)]
pub struct Notified {
    pub id: u32,
    pub app_name: String,
    pub replaces_id: u32,
    pub summary: String,
    pub body: String,
    /// `(id, label)` pairs.
    pub actions: Vec<(String, String)>,
    /// The `urgency` hint (0 low, 1 normal, 2 critical), when given.
    pub urgency: Option<u8>,
    pub expire_timeout: i32,
}

#[derive(Default)]
struct Record {
    next: u32,
    calls: Vec<Notified>,
}

struct Server {
    record: Arc<Mutex<Record>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedVariant>,
        expire_timeout: i32,
    ) -> u32 {
        let mut r = self.record.lock().unwrap();
        let id = if replaces_id != 0 {
            replaces_id
        } else {
            r.next += 1;
            r.next
        };
        let urgency = hints.get("urgency").and_then(|v| u8::try_from(v).ok());
        r.calls.push(Notified {
            id,
            app_name,
            replaces_id,
            summary,
            body,
            actions: actions
                .chunks(2)
                .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
                .collect(),
            urgency,
            expire_timeout,
        });
        id
    }

    fn close_notification(&self, _id: u32) {}

    fn get_server_information(&self) -> (String, String, String, String) {
        ("tend-test".into(), "tend".into(), "1".into(), "1.2".into())
    }
}

/// `org.freedesktop.Notifications` on a [`PrivateBus`].
pub struct NotificationServer {
    conn: zbus::Connection,
    record: Arc<Mutex<Record>>,
}

/// How long a test's user takes to click (see [`NotificationServer::invoke`]).
const USER_DELAY: Duration = Duration::from_millis(500);
const PATH: &str = "/org/freedesktop/Notifications";
const IFACE: &str = "org.freedesktop.Notifications";

impl NotificationServer {
    pub fn start(bus: &PrivateBus) -> NotificationServer {
        let record = Arc::new(Mutex::new(Record::default()));
        let server = Server {
            record: record.clone(),
        };
        let conn = zbus::block_on(async {
            zbus::connection::Builder::address(bus.address())
                .serve_at(PATH, server)
                .name(IFACE)
                .build()
                .await
        })
        .expect("the notification server connects to the private bus");
        NotificationServer { conn, record }
    }

    /// Every `Notify` so far.
    pub fn calls(&self) -> Vec<Notified> {
        self.record.lock().unwrap().calls.clone()
    }

    /// Waits (at most `limit`) for the `n`th `Notify` call (1-based).
    pub fn wait_for_calls(&self, n: usize, limit: Duration) -> Vec<Notified> {
        let start = Instant::now();
        loop {
            let calls = self.calls();
            if calls.len() >= n {
                return calls;
            }
            assert!(
                start.elapsed() < limit,
                "{n} notification(s) expected within {limit:?}, got {calls:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The user pressed the button `action` of notification `id`.
    ///
    /// Like a user, it takes a moment first: notify-rust subscribes to the
    /// signals only after `Notify` has returned, and a signal sent before
    /// that reaches nobody.
    pub fn invoke(&self, id: u32, action: &str) {
        std::thread::sleep(USER_DELAY);
        self.emit("ActionInvoked", &(id, action));
        self.emit("NotificationClosed", &(id, 3u32));
    }

    /// The notification `id` closed: 1 expired, 2 dismissed by the user.
    pub fn close(&self, id: u32, reason: u32) {
        std::thread::sleep(USER_DELAY);
        self.emit("NotificationClosed", &(id, reason));
    }

    fn emit<B: serde::Serialize + zbus::DynamicType>(&self, name: &str, body: &B) {
        zbus::block_on(self.conn.emit_signal(None::<&str>, PATH, IFACE, name, body))
            .expect("emitting a notification signal");
    }
}
