//! `tend-tray`: Tend in the user's session. A tray icon whose colour and
//! tooltip follow the device's state, a menu with what fails, and a window
//! (created when opened, destroyed when closed, so the idle tray holds no
//! webview) with every check, its evidence and its fix.
//!
//! It talks to the Tend service only through the library's local API client
//! ([`daemon`]). Started at login it stays hidden; a second start opens the
//! window of the first (single instance); `tend://` links are forwarded to
//! the service ([`deeplink`]). Where the desktop shows no tray icons
//! ([`desktop`]), the window opens by itself while a check fails.
//!
//! Usage: `tend-tray [--show] [--socket PATH] [tend://...]`.

mod daemon;
mod deeplink;
mod desktop;
mod markdown;
mod model;
mod tray;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tauri::{AppHandle, Emitter, Manager, RunEvent, State, WebviewUrl, WebviewWindowBuilder};
use tauri_plugin_deep_link::DeepLinkExt;
use tend::ipc::proto::Op;

use crate::deeplink::Action;
use crate::model::{Level, Model};

/// The window's label (and the capability that grants it the commands).
const WINDOW: &str = "main";
/// How long "Remind me later" keeps the window from opening by itself.
const SNOOZE: Duration = Duration::from_secs(24 * 60 * 60);

/// The app's state, shared by the tray, the window's commands and the link.
struct App {
    link: daemon::Link,
    /// The check the window should show first.
    focus: Mutex<Option<String>>,
    /// No tray icon can show here: the window stands in for it.
    no_tray: bool,
    fallback: Mutex<Fallback>,
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
}

/// Everything the window shows.
#[tauri::command]
fn snapshot(app: State<'_, App>) -> Value {
    let focus = app.focus.lock().unwrap_or_else(|p| p.into_inner()).take();
    app.model().page(focus.as_deref(), app.no_tray)
}

/// "I've fixed it — check again": answers a waiting workflow, then re-checks.
#[tauri::command]
async fn recheck(app: State<'_, App>, check: String) -> Result<Value, String> {
    let waiting = app.model().waiting_for(&check);
    let endpoint = app.link.endpoint.clone();
    if let Some(w) = waiting.filter(|w| w.takes("yes")) {
        let op = Op::Interaction {
            execution: w.execution,
            event: "yes".into(),
            token: w.token,
        };
        // The re-check below is what the user asked for; a workflow that
        // stopped waiting meanwhile must not stand in its way.
        if let Err(e) = daemon::call(&endpoint, op).await {
            tracing::warn!(check = %check, "answering the waiting workflow: {e}");
        }
    }
    daemon::call(&endpoint, Op::Recheck { check: Some(check) })
        .await
        .map_err(|e| e.to_string())
}

/// "Remind me later": answers a waiting workflow (which waits and asks
/// again, within its reminder budget), and keeps the window from opening by
/// itself for a day.
#[tauri::command]
async fn remind(app: State<'_, App>, check: String) -> Result<String, String> {
    let waiting = app.model().waiting_for(&check);
    app.fallback
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .snoozed_until = Some(Instant::now() + SNOOZE);
    match waiting.filter(|w| w.takes("no")) {
        Some(w) => {
            let op = Op::Interaction {
                execution: w.execution,
                event: "no".into(),
                token: w.token,
            };
            daemon::call(&app.link.endpoint, op)
                .await
                .map_err(|e| e.to_string())?;
            Ok("Tend will remind you again later.".into())
        }
        None => Ok("Tend will not bring this up again today.".into()),
    }
}

/// Opens the window (creating its webview), or brings it forward.
fn open_window(app: &AppHandle, check: Option<String>) {
    if let Some(state) = app.try_state::<App>() {
        *state.focus.lock().unwrap_or_else(|p| p.into_inner()) = check.clone();
    }
    if let Some(w) = app.get_webview_window(WINDOW) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        let _ = app.emit_to(WINDOW, "focus", check);
        return;
    }
    let built = WebviewWindowBuilder::new(app, WINDOW, WebviewUrl::App("index.html".into()))
        .title("Tend")
        .inner_size(820.0, 760.0)
        .min_inner_size(420.0, 400.0)
        .build();
    if let Err(e) = built {
        tracing::error!("opening the window: {e}");
    }
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
    let _ = app.emit_to(WINDOW, "state", ());
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
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        show: false,
        socket: None,
        links: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--show" => args.show = true,
            "--socket" => {
                args.socket = Some(it.next().ok_or("--socket needs a path")?);
            }
            "--version" => {
                println!("tend-tray {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!("usage: tend-tray [--show] [--socket PATH] [tend://...]");
                std::process::exit(0);
            }
            link if link.starts_with("tend:") => args.links.push(link.to_string()),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

fn main() {
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
    if let Err(e) = run(args) {
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
        .invoke_handler(tauri::generate_handler![snapshot, recheck, remind])
        .setup(move |app| {
            let handle = app.handle().clone();
            let hosts = desktop::tray_hosts();
            tracing::info!(?hosts, "tray hosts");
            let changed_handle = handle.clone();
            let link = daemon::Link {
                endpoint,
                model: Arc::new(Mutex::new(Model::default())),
                changed: Arc::new(move || on_change(&changed_handle)),
            };
            app.manage(App {
                link: link.clone(),
                focus: Mutex::new(None),
                no_tray: !hosts.any(),
                fallback: Mutex::new(Fallback::default()),
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
        // Closing the window destroys it; the tray lives on.
        if let RunEvent::ExitRequested {
            api, code: None, ..
        } = event
        {
            api.prevent_exit();
        }
    });
    Ok(())
}
