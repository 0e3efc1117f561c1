//! Whether this desktop shows tray icons at all.
//!
//! GNOME without an extension shows none: the icon would be invisible and a
//! failing check unseen. On Linux the tray asks the session bus for a
//! StatusNotifierWatcher with a host registered (KDE, most panels, GNOME's
//! AppIndicator extension) and the X server for an XEmbed tray (the
//! `_NET_SYSTEM_TRAY_S<screen>` selection); with neither, the app falls
//! back to opening its window while a check fails. macOS and Windows always
//! have a menu bar / notification area.

/// Where tray icons can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrayHosts {
    pub status_notifier: bool,
    pub xembed: bool,
}

impl TrayHosts {
    pub fn any(self) -> bool {
        self.status_notifier || self.xembed
    }
}

#[cfg(target_os = "linux")]
pub fn tray_hosts() -> TrayHosts {
    TrayHosts {
        status_notifier: status_notifier_host(),
        xembed: xembed_tray(),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn tray_hosts() -> TrayHosts {
    TrayHosts {
        status_notifier: true,
        xembed: false,
    }
}

/// A StatusNotifierWatcher owns its name and has a host registered.
#[cfg(target_os = "linux")]
fn status_notifier_host() -> bool {
    use gtk::gio::{self, DBusCallFlags};
    use gtk::glib::{Variant, VariantTy};

    const WATCHER: &str = "org.kde.StatusNotifierWatcher";
    let Ok(bus) = gio::bus_get_sync(gio::BusType::Session, None::<&gio::Cancellable>) else {
        return false;
    };
    let call = |dest: &str, path: &str, iface: &str, method: &str, args: Variant, ty: &str| {
        bus.call_sync(
            Some(dest),
            path,
            iface,
            method,
            Some(&args),
            VariantTy::new(ty).ok(),
            DBusCallFlags::NO_AUTO_START,
            1000,
            None::<&gio::Cancellable>,
        )
        .ok()
    };
    let owned = call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "NameHasOwner",
        (WATCHER,).into(),
        "(b)",
    )
    .and_then(|v| v.get::<(bool,)>())
    .is_some_and(|(b,)| b);
    if !owned {
        return false;
    }
    // A watcher that cannot tell is taken at its word.
    call(
        WATCHER,
        "/StatusNotifierWatcher",
        "org.freedesktop.DBus.Properties",
        "Get",
        (WATCHER, "IsStatusNotifierHostRegistered").into(),
        "(v)",
    )
    .and_then(|v| v.get::<(Variant,)>())
    .and_then(|(inner,)| inner.get::<bool>())
    .unwrap_or(true)
}

/// The X server has an owner for this screen's system-tray selection.
#[cfg(target_os = "linux")]
fn xembed_tray() -> bool {
    use x11_dl::xlib::Xlib;
    let Ok(xlib) = Xlib::open() else {
        return false;
    };
    // SAFETY: plain Xlib calls on a display this function opens and closes;
    // the atom name is a NUL-terminated CString that outlives the call.
    unsafe {
        let display = (xlib.XOpenDisplay)(std::ptr::null());
        if display.is_null() {
            return false;
        }
        let screen = (xlib.XDefaultScreen)(display);
        let owner = std::ffi::CString::new(format!("_NET_SYSTEM_TRAY_S{screen}"))
            .map(|name| {
                let atom = (xlib.XInternAtom)(display, name.as_ptr(), 0);
                (xlib.XGetSelectionOwner)(display, atom)
            })
            .unwrap_or(0);
        (xlib.XCloseDisplay)(display);
        owner != 0
    }
}
