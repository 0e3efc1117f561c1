//! `tend-tray`: Tend in the user's session. A tray icon whose colour and
//! tooltip follow the device's state, a menu with what fails, and a window
//! with every check, its evidence and its fix.
//!
//! Two processes of this one program. The tray process (started at login,
//! hidden) holds the icon, the menu and the user-session role (native
//! notifications with buttons), and never a webview. The window is a
//! process of its own ([`window`], `tend-tray --window`), started when the
//! user opens it and gone when they close it, taking WebKit's web and
//! network processes with it: a window open once does not leave the icon
//! carrying WebKit for the rest of the session.
//!
//! Both talk to the Tend service only through the library's local API
//! client ([`daemon`]). A second start opens the window (single instance);
//! `tend://` links are forwarded to the service ([`deeplink`]). Where the
//! desktop shows no tray icons ([`desktop`]), the window opens by itself
//! while a check fails.
//!
//! Usage: `tend-tray [--show] [--socket PATH] [tend://...]`;
//! `tend-tray --window [--focus CHECK] [--socket PATH]`.

// Started at login by the Run key: no console window with it on Windows.
#![cfg_attr(windows, windows_subsystem = "windows")]

mod daemon;
mod deeplink;
mod desktop;
mod markdown;
mod model;
mod tray;
mod window;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tauri::{AppHandle, Manager, RunEvent};
use tauri_plugin_deep_link::DeepLinkExt;
use tend::ipc::proto::Op;

use crate::deeplink::Action;
use crate::model::{Level, Model};

/// How long "Remind me later" keeps the window from opening by itself.
const SNOOZE: Duration = Duration::from_secs(24 * 60 * 60);

/// The tray process's state, shared by the icon, the menu and the link.
struct App {
    link: daemon::Link,
    /// No tray icon can show here: the window stands in for it.
    no_tray: bool,
    fallback: Mutex<Fallback>,
    /// `--socket`, handed on to the window process.
    socket: Option<String>,
}

/// When the window opened by itself (no tray), so it does not again for
/// the same failures, nor while snoozed.
#[derive(Default)]
struct Fallback {
    shown_for: HashSet<String>,
    snoozed_until: Option<Instant>,
}

impl App {
    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.link.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn snooze(&self) {
        self.fallback
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snoozed_until = Some(Instant::now() + SNOOZE);
    }
}

/// Opens the window, showing `check` first: starts the window process
/// (`tend-tray --window`), whose own single instance hands the request to
/// a window already open. The webview, and WebKit's web and network
/// processes, live and die with that process, so the icon never holds them.
fn open_window(app: &AppHandle, check: Option<String>) {
    let state = app.state::<App>();
    let mut cmd = match std::env::current_exe() {
        Ok(exe) => Command::new(exe),
        Err(e) => {
            tracing::error!("opening the window: cannot find this program: {e}");
            return;
        }
    };
    cmd.arg("--window")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    if let Some(c) = &check {
        cmd.args(["--focus", c]);
    }
    if let Some(s) = &state.socket {
        cmd.args(["--socket", s]);
    }
    if state.no_tray {
        cmd.arg("--no-tray");
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("opening the window: {e}");
            return;
        }
    };
    // The window says on its standard output when the user asked to be
    // reminded later; the thread ends when the window process does.
    let handle = app.clone();
    let out = child.stdout.take();
    std::thread::spawn(move || {
        if let Some(out) = out {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line == window::SNOOZED {
                    handle.state::<App>().snooze();
                }
            }
        }
        if let Err(e) = child.wait() {
            tracing::warn!("the window process: {e}");
        }
    });
}

/// Forwards one request to the service in the background.
fn forward(app: &AppHandle, op: Op) {
    let endpoint = app.state::<App>().link.endpoint.clone();
    tauri::async_runtime::spawn(async move {
        let name = op.name();
        if let Err(e) = daemon::call(&endpoint, op).await {
            tracing::warn!("{name} for the tray: {e}");
        }
    });
}

fn on_link(app: &AppHandle, link: &str) {
    match deeplink::parse(link) {
        Ok(Action::Open { check }) => open_window(app, check),
        Ok(Action::Recheck { check }) => forward(app, Op::Recheck { check: Some(check) }),
        Ok(Action::Event {
            execution,
            event,
            token,
        }) => forward(
            app,
            Op::Interaction {
                execution,
                event,
                token,
            },
        ),
        Err(e) => tracing::warn!("ignored a link: {e}"),
    }
}

fn on_menu(app: &AppHandle, id: &str) {
    match id {
        tray::OPEN => open_window(app, None),
        tray::RECHECK => forward(app, Op::Recheck { check: None }),
        other => {
            if let Some(check) = other.strip_prefix(tray::CHECK_PREFIX) {
                open_window(app, Some(check.to_string()));
            }
        }
    }
}

/// The model changed: update the tray, tell the window, and, without a
/// tray, open the window for a new failure.
fn on_change(app: &AppHandle) {
    let state = app.state::<App>();
    let (level, headline, failing, version) = {
        let m = state.model();
        (m.level(), m.headline(), m.failing(), m.daemon_version())
    };
    let handle = app.clone();
    let (h, f) = (headline.clone(), failing.clone());
    let _ = app.run_on_main_thread(move || {
        if let Err(e) = tray::update(&handle, level, &h, &f, version.as_deref()) {
            tracing::warn!("updating the tray icon: {e}");
        }
    });
    if state.no_tray && level == Level::Failing {
        let mut fb = state.fallback.lock().unwrap_or_else(|p| p.into_inner());
        let snoozed = fb.snoozed_until.is_some_and(|t| Instant::now() < t);
        let new: Vec<String> = failing
            .iter()
            .map(|f| f.id.clone())
            .filter(|id| !fb.shown_for.contains(id))
            .collect();
        if !snoozed && !new.is_empty() {
            fb.shown_for.extend(new.iter().cloned());
            drop(fb);
            tracing::info!("no tray icon can show here: opening the window for {new:?}");
            open_window(app, new.first().cloned());
        }
    }
}

struct Args {
    show: bool,
    socket: Option<String>,
    links: Vec<String>,
    /// `--window`: be the window process.
    window: bool,
    focus: Option<String>,
    no_tray: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        show: false,
        socket: None,
        links: Vec::new(),
        window: false,
        focus: None,
        no_tray: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--show" => args.show = true,
            "--socket" => {
                args.socket = Some(it.next().ok_or("--socket needs a path")?);
            }
            "--window" => args.window = true,
            "--focus" => {
                args.focus = Some(it.next().ok_or("--focus needs a check id")?);
            }
            "--no-tray" => args.no_tray = true,
            "--version" => {
                println!("tend-tray {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!(
                    "usage: tend-tray [--show] [--socket PATH] [tend://...]\n       tend-tray --window [--focus CHECK] [--socket PATH]"
                );
                std::process::exit(0);
            }
            link if link.starts_with("tend:") => args.links.push(link.to_string()),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

fn main() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("GDK_GL").is_none() {
        // GTK 3 on X11 opens the GL driver at start to choose a visual,
        // which maps Mesa and LLVM (30 MiB of PSS) into the tray process,
        // which draws no GL, and the window process, whose page WebKit
        // draws in its web process.
        // SAFETY: the first statement of `main`: no other thread exists,
        // so nothing reads the environment concurrently.
        unsafe { std::env::set_var("GDK_GL", "disable") };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TEND_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tend-tray: {e}");
            std::process::exit(2);
        }
    };
    let result = if args.window {
        window::run(window::Options {
            endpoint: tend::ipc::endpoint(args.socket.as_deref()),
            focus: args.focus,
            no_tray: args.no_tray,
        })
    } else {
        run(args)
    };
    if let Err(e) = result {
        eprintln!("tend-tray: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> tauri::Result<()> {
    let endpoint = tend::ipc::endpoint(args.socket.as_deref());
    let app = tauri::Builder::default()
        // First, so a second start hands over before anything else runs.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            // Links arrive through the deep-link plugin; a plain second
            // start (the user launched Tend again) opens the window.
            if !argv.iter().skip(1).any(|a| a.starts_with("tend:")) {
                open_window(app, None);
            }
        }))
        .plugin(tauri_plugin_deep_link::init())
        .setup(move |app| {
            let handle = app.handle().clone();
            let hosts = desktop::tray_hosts();
            tracing::info!(?hosts, "tray hosts");
            let changed_handle = handle.clone();
            let link = daemon::Link {
                endpoint,
                model: Arc::new(Mutex::new(Model::default())),
                changed: Arc::new(move || on_change(&changed_handle)),
                page: false,
            };
            app.manage(App {
                link: link.clone(),
                no_tray: !hosts.any(),
                fallback: Mutex::new(Fallback::default()),
                socket: args.socket.clone(),
            });
            tray::create(&handle, on_menu)?;

            #[cfg(any(target_os = "linux", windows))]
            if !app.deep_link().is_registered("tend").unwrap_or(false)
                && let Err(e) = app.deep_link().register_all()
            {
                tracing::warn!("registering tend:// links: {e}");
            }
            let link_handle = handle.clone();
            app.deep_link().on_open_url(move |event| {
                for url in event.urls() {
                    on_link(&link_handle, url.as_str());
                }
            });
            for l in &args.links {
                on_link(&handle, l);
            }
            if args.show {
                open_window(&handle, None);
            }
            // The user-session role: native notifications with buttons,
            // answered back to the service (the same code as `tend session`).
            tauri::async_runtime::spawn(tend::notify::session::run(
                link.endpoint.clone(),
                "Tend".to_string(),
            ));
            tauri::async_runtime::spawn(link.run());
            Ok(())
        })
        .build(tauri::generate_context!())?;
    app.run(|_app, event| {
        // The tray process has no window; it ends only when asked to.
        if let RunEvent::ExitRequested {
            api, code: None, ..
        } = event
        {
            api.prevent_exit();
        }
    });
    Ok(())
}
