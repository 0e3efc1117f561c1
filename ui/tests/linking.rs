//! The icon, which runs all session long, links no WebKit: only the window
//! does. Linking WebKitGTK costs a process its relocated pages (about 23
//! MiB of PSS) whether or not it ever draws a page, so a stray `use tauri`
//! in the icon's code would undo the split silently; this test says so.
#![cfg(target_os = "linux")]

use std::process::Command;

/// The shared libraries `binary` names as needed (`readelf -d`).
fn needed(binary: &str) -> Vec<String> {
    let out = Command::new("readelf")
        .args(["-d", "-W", binary])
        .output()
        .expect("readelf (binutils) runs");
    assert!(out.status.success(), "readelf -d {binary}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_string()))
        .collect()
}

#[test]
fn only_the_window_links_webkit() {
    let webkit = |libs: &[String]| {
        libs.iter()
            .filter(|l| l.starts_with("libwebkit2gtk") || l.starts_with("libjavascriptcoregtk"))
            .cloned()
            .collect::<Vec<_>>()
    };
    let icon = needed(env!("CARGO_BIN_EXE_tend-tray"));
    assert!(icon.iter().any(|l| l.starts_with("libgtk-3")), "{icon:?}");
    assert_eq!(webkit(&icon), Vec::<String>::new(), "{icon:?}");
    let window = needed(env!("CARGO_BIN_EXE_tend-tray-window"));
    assert!(!webkit(&window).is_empty(), "{window:?}");
}
