//! The tray icon: its picture and tooltip follow the device's state, its
//! menu lists what fails and offers "Check again now" and "Open Tend".
//!
//! The icons are drawn here (a disc in the state's colour; a ring while the
//! state is unknown, so the difference does not rest on colour alone).

use tend_tray::model::{Failing, Level};
use tray_icon::menu::{IsMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

/// Menu ids: the fixed items, and `check:<id>` for each failing check.
pub const RECHECK: &str = "recheck";
pub const OPEN: &str = "open";
pub const CHECK_PREFIX: &str = "check:";

const SIZE: u32 = 32;

/// Why the tray icon could not be made or changed.
#[derive(Debug, thiserror::Error)]
pub enum TrayError {
    #[error("the tray menu: {0}")]
    Menu(#[from] tray_icon::menu::Error),
    #[error("the tray icon: {0}")]
    Icon(#[from] tray_icon::Error),
    #[error("the tray icon's picture: {0}")]
    Picture(#[from] tray_icon::BadIcon),
}

/// The icon for a level.
fn icon(level: Level) -> Result<Icon, TrayError> {
    Ok(Icon::from_rgba(pixels(level), SIZE, SIZE)?)
}

/// The icon's RGBA pixels.
fn pixels(level: Level) -> Vec<u8> {
    let (rgb, ring) = match level {
        Level::Passing => ([0x2e, 0x7d, 0x32], false),
        Level::Failing => ([0xc6, 0x28, 0x28], false),
        Level::Unknown => ([0xef, 0x8f, 0x00], true),
        Level::Unreachable => ([0x75, 0x75, 0x75], true),
    };
    let mut px = Vec::with_capacity((SIZE * SIZE * 4) as usize);
    let c = (SIZE as f32 - 1.0) / 2.0;
    let outer = SIZE as f32 / 2.0 - 1.0;
    let inner = outer * 0.55;
    for y in 0..SIZE {
        for x in 0..SIZE {
            let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt();
            // One pixel of anti-aliasing at each edge.
            let mut a = (outer + 0.5 - d).clamp(0.0, 1.0);
            if ring {
                a *= (d - inner + 0.5).clamp(0.0, 1.0);
            }
            px.extend_from_slice(&[rgb[0], rgb[1], rgb[2], (a * 255.0) as u8]);
        }
    }
    px
}

/// Builds the menu for the current state.
fn menu(headline: &str, failing: &[Failing], version: &str) -> Result<Menu, TrayError> {
    let item = |id: String, text: &str, enabled: bool| -> Box<dyn IsMenuItem> {
        Box::new(MenuItem::with_id(id, text, enabled, None))
    };
    let separator = || -> Box<dyn IsMenuItem> { Box::new(PredefinedMenuItem::separator()) };
    let mut items = vec![item("state".into(), headline, false)];
    if !failing.is_empty() {
        items.push(separator());
        for f in failing {
            items.push(item(
                format!("{CHECK_PREFIX}{}", f.id),
                &format!("✗ {}", f.name),
                true,
            ));
        }
    }
    items.push(separator());
    items.push(item(RECHECK.into(), "Check again now", true));
    items.push(item(OPEN.into(), "Open Tend", true));
    items.push(separator());
    items.push(item("version".into(), version, false));
    let refs: Vec<&dyn IsMenuItem> = items.iter().map(|b| b.as_ref()).collect();
    Ok(Menu::with_items(&refs)?)
}

/// Creates the tray icon in the unreachable state. Menu clicks arrive
/// through `tray_icon::menu::MenuEvent`.
pub fn create() -> Result<TrayIcon, TrayError> {
    let text = "Tend: connecting…";
    Ok(TrayIconBuilder::new()
        .with_id("tend")
        .with_icon(icon(Level::Unreachable)?)
        .with_tooltip(text)
        .with_menu(Box::new(menu(text, &[], &version_line(None))?))
        .with_menu_on_left_click(true)
        .build()?)
}

/// Applies a new state to the tray icon.
pub fn update(
    tray: &TrayIcon,
    level: Level,
    headline: &str,
    failing: &[Failing],
    daemon_version: Option<&str>,
) -> Result<(), TrayError> {
    tray.set_icon(Some(icon(level)?))?;
    tray.set_tooltip(Some(format!("Tend: {headline}")))?;
    tray.set_menu(Some(Box::new(menu(
        headline,
        failing,
        &version_line(daemon_version),
    )?)));
    Ok(())
}

fn version_line(daemon: Option<&str>) -> String {
    let tray = env!("CARGO_PKG_VERSION");
    match daemon {
        Some(d) if d != tray => format!("Tend {tray} (service {d})"),
        _ => format!("Tend {tray}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icons_differ_by_level_and_shape() {
        let alpha_at_centre = |l| {
            let px = pixels(l);
            let i = ((SIZE / 2 * SIZE + SIZE / 2) * 4) as usize;
            (px[i], px[i + 3])
        };
        assert_eq!(alpha_at_centre(Level::Passing), (0x2e, 255));
        assert_eq!(alpha_at_centre(Level::Failing).1, 255);
        // Rings are hollow; corners are transparent.
        assert_eq!(alpha_at_centre(Level::Unreachable).1, 0);
        assert_eq!(pixels(Level::Passing)[3], 0);
        assert_eq!(
            version_line(Some("0.0.9")),
            format!("Tend {} (service 0.0.9)", env!("CARGO_PKG_VERSION"))
        );
    }
}
