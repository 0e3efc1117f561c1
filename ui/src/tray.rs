//! The tray icon: its picture and tooltip follow the device's state, its
//! menu lists what fails and offers "Check again now" and "Open Tend".
//!
//! The icons are drawn here (a disc in the state's colour; a ring while the
//! state is unknown, so the difference does not rest on colour alone).

use tauri::image::Image;
use tauri::menu::{IsMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Wry};

use crate::model::{Failing, Level};

pub const TRAY_ID: &str = "tend";
/// Menu ids: the fixed items, and `check:<id>` for each failing check.
pub const RECHECK: &str = "recheck";
pub const OPEN: &str = "open";
pub const CHECK_PREFIX: &str = "check:";

const SIZE: u32 = 32;

/// The icon for a level: RGBA pixels.
pub fn icon(level: Level) -> Image<'static> {
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
    Image::new_owned(px, SIZE, SIZE)
}

/// Builds the menu for the current state.
pub fn menu(
    app: &AppHandle,
    headline: &str,
    failing: &[Failing],
    version: &str,
) -> tauri::Result<Menu<Wry>> {
    type Item = Box<dyn IsMenuItem<Wry>>;
    let item = |id: String, text: &str, enabled: bool| -> tauri::Result<Item> {
        Ok(Box::new(MenuItem::with_id(
            app,
            id,
            text,
            enabled,
            None::<&str>,
        )?))
    };
    let separator = || -> tauri::Result<Item> { Ok(Box::new(PredefinedMenuItem::separator(app)?)) };
    let mut items = vec![item("state".into(), headline, false)?];
    if !failing.is_empty() {
        items.push(separator()?);
        for f in failing {
            items.push(item(
                format!("{CHECK_PREFIX}{}", f.id),
                &format!("✗ {}", f.name),
                true,
            )?);
        }
    }
    items.push(separator()?);
    items.push(item(RECHECK.into(), "Check again now", true)?);
    items.push(item(OPEN.into(), "Open Tend", true)?);
    items.push(separator()?);
    items.push(item("version".into(), version, false)?);
    let refs: Vec<&dyn IsMenuItem<Wry>> = items.iter().map(|b| b.as_ref()).collect();
    Menu::with_items(app, &refs)
}

/// Creates the tray icon in the unreachable state; `on_menu` gets each
/// menu item's id.
pub fn create(
    app: &AppHandle,
    on_menu: impl Fn(&AppHandle, &str) + Send + Sync + 'static,
) -> tauri::Result<TrayIcon> {
    let level = Level::Unreachable;
    let text = "Tend: connecting…";
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(level))
        .tooltip(text)
        .menu(&menu(app, text, &[], &version_line(None))?)
        .show_menu_on_left_click(true)
        .on_menu_event(move |app, event| on_menu(app, event.id.as_ref()))
        .build(app)
}

/// Applies a new state to the tray icon.
pub fn update(
    app: &AppHandle,
    level: Level,
    headline: &str,
    failing: &[Failing],
    daemon_version: Option<&str>,
) -> tauri::Result<()> {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return Ok(());
    };
    tray.set_icon(Some(icon(level)))?;
    tray.set_tooltip(Some(format!("Tend: {headline}")))?;
    tray.set_menu(Some(menu(
        app,
        headline,
        failing,
        &version_line(daemon_version),
    )?))?;
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
            let img = icon(l);
            let i = ((SIZE / 2 * SIZE + SIZE / 2) * 4) as usize;
            (img.rgba()[i], img.rgba()[i + 3])
        };
        assert_eq!(alpha_at_centre(Level::Passing), (0x2e, 255));
        assert_eq!(alpha_at_centre(Level::Failing).1, 255);
        // Rings are hollow; corners are transparent.
        assert_eq!(alpha_at_centre(Level::Unreachable).1, 0);
        assert_eq!(icon(Level::Passing).rgba()[3], 0);
        assert_eq!(
            version_line(Some("0.0.9")),
            format!("Tend {} (service 0.0.9)", env!("CARGO_PKG_VERSION"))
        );
    }
}
