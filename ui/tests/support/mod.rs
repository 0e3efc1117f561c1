//! What the tray app's end-to-end tests share: a private desktop
//! ([`desktop`]) and a WebDriver client ([`webdriver`]).

pub mod desktop;
pub mod webdriver;
