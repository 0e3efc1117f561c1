//! `tend-tray-window`: Tend's window. Every check with its status,
//! evidence and fix, the history of changes, the policy; "I've fixed it —
//! check again" and "Remind me later".
//!
//! The icon (`tend-tray`) starts it and it ends when its window closes, so
//! the webview and WebKit's web and network processes exist only while the
//! user looks at them. It follows the service on its own connection
//! ([`tend_tray::daemon`]) and tells the page when anything changed. Its
//! single instance hands a second start's `--focus` to the open window.
//! "Remind me later" is printed as [`SNOOZED`] on standard output, which
//! the icon reads so that it does not open the window by itself for a day.
//!
//! Usage: `tend-tray-window [--focus CHECK] [--socket PATH] [--no-tray]`.

// Started by the icon: no console window with it on Windows.
#![cfg_attr(windows, windows_subsystem = "windows")]

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tauri::{AppHandle, Emitter, Manager, State, WebviewUrl, WebviewWindowBuilder};
use tend::ipc::proto::Op;

use tend_tray::model::Model;
use tend_tray::{SNOOZED, daemon};

/// The window's label (and the capability that grants it the commands).
const LABEL: &str = "main";

/// What the icon asks of the window.
struct Options {
    endpoint: String,
    /// The check to show first.
    focus: Option<String>,
    /// The desktop shows no tray icon (the page says why the window opened).
    no_tray: bool,
}

/// The window process's state, shared by the page's commands.
struct Window {
    link: daemon::Link,
    /// The check the page should show first, taken by the next snapshot.
    focus: Mutex<Option<String>>,
    no_tray: bool,
}

/// Everything the page shows.
#[tauri::command]
fn snapshot(w: State<'_, Window>) -> Value {
    let focus = w.focus.lock().unwrap_or_else(|p| p.into_inner()).take();
    w.link.model().page(focus.as_deref(), w.no_tray)
}

/// "I've fixed it — check again": answers a waiting workflow, then re-checks.
#[tauri::command]
async fn recheck(w: State<'_, Window>, check: String) -> Result<Value, String> {
    let waiting = w.link.model().waiting_for(&check);
    let endpoint = w.link.endpoint.clone();
    if let Some(a) = waiting.filter(|a| a.takes("yes")) {
        let op = Op::Interaction {
            execution: a.execution,
            event: "yes".into(),
            token: a.token,
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
/// again, within its reminder budget), and tells the icon to keep
/// the window from opening by itself for a day.
#[tauri::command]
async fn remind(w: State<'_, Window>, check: String) -> Result<String, String> {
    let waiting = w.link.model().waiting_for(&check);
    tell_tray(SNOOZED);
    match waiting.filter(|a| a.takes("no")) {
        Some(a) => {
            let op = Op::Interaction {
                execution: a.execution,
                event: "no".into(),
                token: a.token,
            };
            daemon::call(&w.link.endpoint, op)
                .await
                .map_err(|e| e.to_string())?;
            Ok("Tend will remind you again later.".into())
        }
        None => Ok("Tend will not bring this up again today.".into()),
    }
}

/// One line to the icon, which reads this process's standard output.
fn tell_tray(line: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        // Started by hand, not by the icon: nobody to tell.
        tracing::debug!("telling the icon: {e}");
    }
}

/// Brings the window forward, showing `check` first.
fn focus(app: &AppHandle, check: Option<String>) {
    if let Some(w) = app.try_state::<Window>() {
        *w.focus.lock().unwrap_or_else(|p| p.into_inner()) = check.clone();
    }
    if let Some(w) = app.get_webview_window(LABEL) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        let _ = app.emit_to(LABEL, "focus", check);
    }
}

/// `--focus CHECK` in a second start's arguments.
fn focus_arg(argv: &[String]) -> Option<String> {
    argv.iter()
        .position(|a| a == "--focus")
        .and_then(|i| argv.get(i + 1))
        .cloned()
}

fn parse_args() -> Result<Options, String> {
    let mut socket = None;
    let mut options = Options {
        endpoint: String::new(),
        focus: None,
        no_tray: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--socket" => socket = Some(it.next().ok_or("--socket needs a path")?),
            "--focus" => options.focus = Some(it.next().ok_or("--focus needs a check id")?),
            "--no-tray" => options.no_tray = true,
            "--version" => {
                println!("tend-tray-window {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!("usage: tend-tray-window [--focus CHECK] [--socket PATH] [--no-tray]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    options.endpoint = tend::ipc::endpoint(socket.as_deref());
    Ok(options)
}

fn main() {
    // SAFETY: the first statement of `main`: no other thread exists.
    #[cfg(target_os = "linux")]
    unsafe {
        tend_tray::disable_gtk_gl()
    };
    tend_tray::init_logging();
    let result = parse_args().and_then(|o| run(o).map_err(|e| e.to_string()));
    if let Err(e) = result {
        eprintln!("tend-tray-window: {e}");
        std::process::exit(1);
    }
}

/// Runs the window until it is closed.
fn run(options: Options) -> tauri::Result<()> {
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            focus(app, focus_arg(&argv));
        }))
        .invoke_handler(tauri::generate_handler![snapshot, recheck, remind])
        .setup(move |app| {
            let handle = app.handle().clone();
            let link = daemon::Link {
                endpoint: options.endpoint,
                model: Arc::new(Mutex::new(Model::default())),
                changed: Arc::new(move || {
                    let _ = handle.emit_to(LABEL, "state", ());
                }),
                page: true,
            };
            app.manage(Window {
                link: link.clone(),
                focus: Mutex::new(options.focus),
                no_tray: options.no_tray,
            });
            tauri::async_runtime::spawn(link.run());
            WebviewWindowBuilder::new(app, LABEL, WebviewUrl::App("index.html".into()))
                .title("Tend")
                .inner_size(820.0, 760.0)
                .min_inner_size(420.0, 400.0)
                .build()?;
            Ok(())
        })
        .build(tauri::generate_context!())?;
    // Closing the window ends the process (Tauri exits with the last window).
    app.run(|_, _| {});
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_start_names_the_check_to_show() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            focus_arg(&argv(&["tend-tray-window", "--focus", "firewall"])),
            Some("firewall".into())
        );
        assert_eq!(focus_arg(&argv(&["tend-tray-window"])), None);
        assert_eq!(focus_arg(&argv(&["tend-tray-window", "--focus"])), None);
    }
}
