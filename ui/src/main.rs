//! `tend-tray`: Tend's icon in the user's session. Its colour and tooltip
//! follow the device's state, its menu lists what fails, and it is the
//! user's session for the service (native notifications with buttons).
//!
//! Started at login, hidden, and running all session long, so it is kept
//! small: an event loop (tao) and a tray icon (tray-icon), the libraries
//! Tauri itself is built on, and no webview. The window is another program
//! (`tend-tray-window`), started when the user opens it ([`App::open_window`]);
//! WebKit is linked and loaded only there.
//!
//! One instance per session ([`instance`]): a second start hands its
//! arguments over, so launching Tend again opens the window and a
//! `tend://` link reaches the running icon ([`tend_tray::deeplink`]).
//! Where the desktop shows no tray icons ([`tend_tray::desktop`]), the
//! window opens by itself while a check fails.
//!
//! Usage: `tend-tray [--show] [--socket PATH] [tend://...]`.

// Started at login by the Run key: no console window with it on Windows.
#![cfg_attr(windows, windows_subsystem = "windows")]

mod instance;
mod tray;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tao::event::{Event, StartCause};
use tao::event_loop::{ControlFlow, EventLoopBuilder};
use tend::ipc::proto::Op;
use tend_tray::deeplink::{self, Action};
use tend_tray::model::{Level, Model};
use tend_tray::{SNOOZED, daemon, desktop};
use tray_icon::TrayIcon;
use tray_icon::menu::MenuEvent;

use crate::instance::Claim;

/// How long "Remind me later" keeps the window from opening by itself.
const SNOOZE: Duration = Duration::from_secs(24 * 60 * 60);

/// What the event loop hears from other threads.
enum UserEvent {
    /// The service said something new: the icon and menu follow.
    Changed,
    /// A menu item was clicked.
    Menu(String),
}

/// What one start asks: from the command line, or handed over by a later
/// start to the running instance.
#[derive(Debug, Default, PartialEq, Eq)]
struct Args {
    show: bool,
    socket: Option<String>,
    links: Vec<String>,
}

impl Args {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut out = Args::default();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--show" => out.show = true,
                "--socket" => out.socket = Some(it.next().ok_or("--socket needs a path")?),
                link if link.starts_with("tend:") => out.links.push(link.to_string()),
                other => return Err(format!("unknown argument {other:?} (try --help)")),
            }
        }
        Ok(out)
    }
}

/// The icon's state, shared by the event loop and the link's thread.
struct App {
    link: daemon::Link,
    /// No tray icon can show here: the window stands in for it.
    no_tray: bool,
    fallback: Mutex<Fallback>,
    /// `--socket`, handed on to the window.
    socket: Option<String>,
    /// Where requests to the service run.
    runtime: tokio::runtime::Handle,
}

/// When the window opened by itself (no tray), so it does not again for
/// the same failures, nor while snoozed.
#[derive(Default)]
struct Fallback {
    shown_for: HashSet<String>,
    snoozed_until: Option<Instant>,
}

impl App {
    fn fallback(&self) -> std::sync::MutexGuard<'_, Fallback> {
        self.fallback.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the window, showing `check` first: starts `tend-tray-window`,
    /// whose own single instance hands the request to a window already
    /// open. The webview, and WebKit's web and network processes, live and
    /// die with that process.
    fn open_window(self: &Arc<Self>, check: Option<String>) {
        let program = match std::env::current_exe() {
            Ok(exe) => tend_tray::window_program(&exe),
            Err(e) => {
                tracing::error!("opening the window: cannot find this program: {e}");
                return;
            }
        };
        let mut cmd = Command::new(&program);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        if let Some(c) = &check {
            cmd.args(["--focus", c]);
        }
        if let Some(s) = &self.socket {
            cmd.args(["--socket", s]);
        }
        if self.no_tray {
            cmd.arg("--no-tray");
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("opening the window ({}): {e}", program.display());
                return;
            }
        };
        // The window says on its standard output when the user asked to be
        // reminded later; the thread ends when the window process does.
        let app = self.clone();
        let out = child.stdout.take();
        std::thread::spawn(move || {
            if let Some(out) = out {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if line == SNOOZED {
                        app.fallback().snoozed_until = Some(Instant::now() + SNOOZE);
                    }
                }
            }
            if let Err(e) = child.wait() {
                tracing::warn!("the window process: {e}");
            }
        });
    }

    /// Sends one request to the service in the background.
    fn forward(&self, op: Op) {
        let endpoint = self.link.endpoint.clone();
        self.runtime.spawn(async move {
            let name = op.name();
            match daemon::call(&endpoint, op).await {
                Ok(_) => tracing::info!("{name} asked of the service"),
                Err(e) => tracing::warn!("{name} for the tray: {e}"),
            }
        });
    }

    fn on_link(self: &Arc<Self>, link: &str) {
        match deeplink::parse(link) {
            Ok(Action::Open { check }) => self.open_window(check),
            Ok(Action::Recheck { check }) => self.forward(Op::Recheck { check: Some(check) }),
            Ok(Action::Event {
                execution,
                event,
                token,
            }) => self.forward(Op::Interaction {
                execution,
                event,
                token,
            }),
            Err(e) => tracing::warn!("ignored a link: {e}"),
        }
    }

    /// A start's requests: its links, else (a plain start of Tend, or
    /// `--show`) the window.
    fn on_start(self: &Arc<Self>, args: &Args, first: bool) {
        for l in &args.links {
            self.on_link(l);
        }
        if args.links.is_empty() && (args.show || !first) {
            self.open_window(None);
        }
    }

    fn on_menu(self: &Arc<Self>, id: &str) {
        match id {
            tray::OPEN => self.open_window(None),
            tray::RECHECK => self.forward(Op::Recheck { check: None }),
            other => {
                if let Some(check) = other.strip_prefix(tray::CHECK_PREFIX) {
                    self.open_window(Some(check.to_string()));
                }
            }
        }
    }

    /// The model changed: update the icon and, without a tray, open the
    /// window for a new failure. On the event loop's thread.
    fn on_change(self: &Arc<Self>, icon: Option<&TrayIcon>) {
        let (level, headline, failing, version) = {
            let m = self.link.model();
            (m.level(), m.headline(), m.failing(), m.daemon_version())
        };
        if let Some(icon) = icon
            && let Err(e) = tray::update(icon, level, &headline, &failing, version.as_deref())
        {
            tracing::warn!("updating the tray icon: {e}");
        }
        if !self.no_tray || level != Level::Failing {
            return;
        }
        let new: Vec<String> = {
            let mut fb = self.fallback();
            if fb.snoozed_until.is_some_and(|t| Instant::now() < t) {
                return;
            }
            let new: Vec<String> = failing
                .iter()
                .map(|f| f.id.clone())
                .filter(|id| !fb.shown_for.contains(id))
                .collect();
            fb.shown_for.extend(new.iter().cloned());
            new
        };
        if let Some(first) = new.first() {
            tracing::info!("no tray icon can show here: opening the window for {new:?}");
            self.open_window(Some(first.clone()));
        }
    }
}

fn main() {
    // SAFETY: the first statement of `main`: no other thread exists.
    #[cfg(target_os = "linux")]
    unsafe {
        tend_tray::disable_gtk_gl()
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match argv.first().map(String::as_str) {
        Some("--version") => {
            println!("tend-tray {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Some("-h" | "--help") => {
            println!("usage: tend-tray [--show] [--socket PATH] [tend://...]");
            return;
        }
        _ => {}
    }
    tend_tray::init_logging();
    let args = match Args::parse(argv.iter().cloned()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tend-tray: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args, &argv) {
        eprintln!("tend-tray: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args, argv: &[String]) -> std::io::Result<()> {
    // Requests to the service, the session role and the single instance
    // run on one thread beside the event loop.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = match runtime.block_on(instance::claim(argv)) {
        Ok(Claim::First(l)) => Some(l),
        Ok(Claim::Handed) => return Ok(()),
        Err(e) => {
            tracing::warn!("cannot make sure this is the only tend-tray: {e}");
            None
        }
    };

    #[cfg_attr(not(target_os = "macos"), allow(unused_mut))]
    let mut event_loop = EventLoopBuilder::<UserEvent>::with_user_event().build();
    // A menu-bar item, not an app in the Dock.
    #[cfg(target_os = "macos")]
    tao::platform::macos::EventLoopExtMacOS::set_activation_policy(
        &mut event_loop,
        tao::platform::macos::ActivationPolicy::Accessory,
    );
    let proxy = event_loop.create_proxy();
    let hosts = desktop::tray_hosts();
    tracing::info!(?hosts, "tray hosts");
    let changed = proxy.clone();
    let app = Arc::new(App {
        link: daemon::Link {
            endpoint: tend::ipc::endpoint(args.socket.as_deref()),
            model: Arc::new(Mutex::new(Model::default())),
            changed: Arc::new(move || {
                // Fails only once the event loop has ended: nothing to update.
                let _ = changed.send_event(UserEvent::Changed);
            }),
            page: false,
        },
        no_tray: !hosts.any(),
        fallback: Mutex::new(Fallback::default()),
        socket: args.socket.clone(),
        runtime: runtime.handle().clone(),
    });
    MenuEvent::set_event_handler(Some(move |event: MenuEvent| {
        let _ = proxy.send_event(UserEvent::Menu(event.id.0));
    }));

    let background = app.clone();
    std::thread::Builder::new()
        .name("tend-link".into())
        .spawn(move || {
            runtime.block_on(async move {
                let later_starts = async {
                    let Some(listener) = listener else {
                        return std::future::pending().await;
                    };
                    let app = background.clone();
                    listener
                        .serve(move |argv| match Args::parse(argv) {
                            Ok(args) => app.on_start(&args, false),
                            Err(e) => tracing::warn!("a later start's arguments: {e}"),
                        })
                        .await
                };
                // The user-session role: native notifications with buttons,
                // answered back to the service (the same code as `tend session`).
                let session =
                    tend::notify::session::run(background.link.endpoint.clone(), "Tend".into());
                tokio::join!(background.link.clone().run(), session, later_starts);
            })
        })?;
    app.on_start(&args, true);

    let mut icon = None;
    event_loop.run(move |event, _, control_flow| {
        *control_flow = ControlFlow::Wait;
        match event {
            // The tray icon needs the running loop (GTK, AppKit, a Windows
            // message window).
            Event::NewEvents(StartCause::Init) => match tray::create() {
                Ok(i) => {
                    icon = Some(i);
                    app.on_change(icon.as_ref());
                }
                Err(e) => tracing::error!("{e}"),
            },
            Event::UserEvent(UserEvent::Changed) => app.on_change(icon.as_ref()),
            Event::UserEvent(UserEvent::Menu(id)) => app.on_menu(&id),
            // macOS hands `tend://` links to the running app this way.
            Event::Opened { urls } => {
                for url in urls {
                    app.on_link(url.as_str());
                }
            }
            _ => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Args, String> {
        Args::parse(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn a_start_asks_for_the_window_or_for_its_links() {
        assert_eq!(args(&[]).unwrap(), Args::default());
        let a = args(&["--show", "tend://check/firewall", "--socket", "/s"]).unwrap();
        assert!(a.show);
        assert_eq!(a.links, ["tend://check/firewall"]);
        assert_eq!(a.socket.as_deref(), Some("/s"));
        assert!(args(&["--socket"]).unwrap_err().contains("needs a path"));
        assert!(args(&["--window"]).unwrap_err().contains("\"--window\""));
    }
}
