//! Tend in the user's session: what the tray icon (`tend-tray`) and the
//! window (`tend-tray-window`) share.
//!
//! The two are separate programs so that the icon, which runs all session
//! long, never loads WebKit: linking WebKitGTK costs a process about 23 MiB
//! of relocated library pages (WebKit, JavaScriptCore, the flite voices)
//! whether or not it draws a page. With Tauri linked the icon measured 62
//! MiB of PSS, without it 23 (`scripts/measure-tray.sh`). The icon starts
//! the window when the user opens it; the window ends when it closes,
//! taking WebKit's web and network processes with it.
//!
//! - [`model`]: what the service last said, and what follows (the icon's
//!   level, the menu's lines, the page's data). Pure.
//! - [`daemon`]: the connection to the Tend service that fills the model,
//!   through the agent library's local API client.
//! - [`deeplink`]: `tend://` links and what each asks.
//! - [`desktop`]: whether this desktop shows tray icons at all.
//! - [`markdown`]: a check's fix, rendered for the page.

pub mod daemon;
pub mod deeplink;
pub mod desktop;
pub mod markdown;
pub mod model;

/// The line the window prints on its standard output when the user chose
/// "Remind me later"; the icon, which started it and reads that output,
/// then keeps the window from opening by itself for a day.
pub const SNOOZED: &str = "snoozed";

/// The window program's file name.
const WINDOW: &str = if cfg!(windows) {
    "tend-tray-window.exe"
} else {
    "tend-tray-window"
};

/// Where the window program is, given the icon's own path: beside it (a
/// build directory, Windows' Program Files\Tend), else in
/// `../libexec/tend-tray/` (the Linux and macOS packages, which keep
/// `bin/` for what users run).
pub fn window_program(icon: &std::path::Path) -> std::path::PathBuf {
    let dir = icon.parent().unwrap_or(std::path::Path::new("."));
    let beside = dir.join(WINDOW);
    if beside.exists() {
        return beside;
    }
    dir.join("../libexec/tend-tray").join(WINDOW)
}

/// Turns GTK's GL probe off unless the user set `GDK_GL`. GTK 3 on X11
/// opens the GL driver at start to choose a visual, which maps Mesa and
/// LLVM (30 MiB of PSS) into the icon, which draws no GL, and into the
/// window, whose page WebKit draws in its web process.
///
/// # Safety
///
/// Must be called before any other thread exists (the first statement of
/// `main`): it changes the environment.
#[cfg(target_os = "linux")]
pub unsafe fn disable_gtk_gl() {
    if std::env::var_os("GDK_GL").is_none() {
        // SAFETY: the caller guarantees that no other thread exists, so
        // nothing reads the environment concurrently.
        unsafe { std::env::set_var("GDK_GL", "disable") };
    }
}

/// Logs to standard error, filtered by `TEND_LOG` (default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TEND_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_found_beside_the_icon_or_in_libexec() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let icon = bin.join("tend-tray");
        assert_eq!(
            window_program(&icon),
            bin.join("../libexec/tend-tray").join(WINDOW)
        );
        std::fs::write(bin.join(WINDOW), "").unwrap();
        assert_eq!(window_program(&icon), bin.join(WINDOW));
    }
}
