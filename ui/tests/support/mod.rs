//! What the tray app's end-to-end tests share: a private desktop
//! ([`desktop`]), a WebDriver client ([`webdriver`]) and a panel's
//! StatusNotifierWatcher ([`watcher`]). Each test file uses part of it.
#![allow(dead_code)]

pub mod desktop;
pub mod watcher;
pub mod webdriver;
