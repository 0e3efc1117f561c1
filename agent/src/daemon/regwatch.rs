//! Watching registry keys (Windows): the registry's half of re-checking a
//! failing check as soon as something it read changes ([`super::watch`]).
//!
//! One thread owns every watched key. For each it holds the key open with
//! `KEY_NOTIFY` and an event armed with `RegNotifyChangeKeyValue` (a value
//! set or a subkey added or removed, not the subtree); the thread waits on
//! those events and a wake event of its own, sends the key's path down the
//! watcher's channel when one fires, and re-arms it. The thread must stay:
//! Windows drops an asynchronous notification when the thread that asked
//! for it ends. A key that does not exist yet is watched through its
//! nearest existing ancestor, so creating it counts (as for files).
//! `WaitForMultipleObjects` takes 64 handles: one is the wake event, so at
//! most [`MAX_KEYS`] keys are watched.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, WAIT_OBJECT_0};
use windows_sys::Win32::System::Registry::{
    HKEY, HKEY_CLASSES_ROOT, HKEY_CURRENT_CONFIG, HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE,
    HKEY_USERS, KEY_NOTIFY, KEY_WOW64_64KEY, REG_NOTIFY_CHANGE_LAST_SET, REG_NOTIFY_CHANGE_NAME,
    RegCloseKey, RegNotifyChangeKeyValue, RegOpenKeyExW,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, INFINITE, SetEvent, WaitForMultipleObjects,
};

/// The most keys watched at once.
pub const MAX_KEYS: usize = 63;

/// An event handle, closed when dropped.
struct Event(HANDLE);

// SAFETY: an event handle may be signalled and waited on from any thread.
unsafe impl Send for Event {}
// SAFETY: as above; SetEvent is thread-safe.
unsafe impl Sync for Event {}

impl Event {
    fn new() -> std::io::Result<Event> {
        // SAFETY: an unnamed auto-reset event, initially not signalled.
        let h = unsafe { CreateEventW(std::ptr::null(), 0, 0, std::ptr::null()) };
        if h.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Event(h))
    }

    fn set(&self) {
        // SAFETY: a live event handle owned by self.
        unsafe {
            SetEvent(self.0);
        }
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: the handle was created by CreateEventW and is closed once.
        unsafe {
            CloseHandle(self.0);
        }
    }
}

/// An open key, closed when dropped.
struct OpenKey(HKEY);

impl Drop for OpenKey {
    fn drop(&mut self) {
        // SAFETY: opened by RegOpenKeyExW, closed once (which also ends
        // its pending notification).
        unsafe {
            RegCloseKey(self.0);
        }
    }
}

fn hive(name: &str) -> Option<HKEY> {
    Some(match name.to_ascii_uppercase().as_str() {
        "HKEY_LOCAL_MACHINE" => HKEY_LOCAL_MACHINE,
        "HKEY_CURRENT_USER" => HKEY_CURRENT_USER,
        "HKEY_USERS" => HKEY_USERS,
        "HKEY_CLASSES_ROOT" => HKEY_CLASSES_ROOT,
        "HKEY_CURRENT_CONFIG" => HKEY_CURRENT_CONFIG,
        _ => return None,
    })
}

/// Opens `path` (`HKEY_...\sub\key`) for notification.
fn open(path: &str) -> std::io::Result<OpenKey> {
    let (h, sub) = path.split_once('\\').unwrap_or((path, ""));
    let root = hive(h).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, format!("{h}: not a hive"))
    })?;
    let wide: Vec<u16> = sub.encode_utf16().chain(std::iter::once(0)).collect();
    let mut key: HKEY = std::ptr::null_mut();
    // SAFETY: a predefined root, a NUL-terminated subkey, an out handle.
    let rc = unsafe {
        RegOpenKeyExW(
            root,
            wide.as_ptr(),
            0,
            KEY_NOTIFY | KEY_WOW64_64KEY,
            &mut key,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc as i32));
    }
    Ok(OpenKey(key))
}

/// Opens `path`, or its nearest existing ancestor; returns which was opened.
pub fn open_nearest(path: &str) -> Option<(String, impl Drop)> {
    let mut p = path.trim_end_matches('\\').to_string();
    loop {
        if let Ok(k) = open(&p) {
            return Some((p, k));
        }
        let cut = p.rfind('\\')?;
        p.truncate(cut);
    }
}

/// One watched key: the key asked for, the key open (it or an ancestor),
/// and its event.
struct Watched {
    wanted: String,
    opened: String,
    key: OpenKey,
    event: Event,
}

impl Watched {
    fn arm(&self) -> std::io::Result<()> {
        // SAFETY: an open key with KEY_NOTIFY and a live event; asynchronous,
        // so the call returns at once and the event fires on a change.
        let rc = unsafe {
            RegNotifyChangeKeyValue(
                self.key.0,
                0,
                REG_NOTIFY_CHANGE_NAME | REG_NOTIFY_CHANGE_LAST_SET,
                self.event.0,
                1,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc as i32));
        }
        Ok(())
    }

    fn new(wanted: &str) -> std::io::Result<Watched> {
        let mut p = wanted.trim_end_matches('\\').to_string();
        let key = loop {
            match open(&p) {
                Ok(k) => break k,
                Err(e) => match p.rfind('\\') {
                    Some(cut) => p.truncate(cut),
                    None => return Err(e),
                },
            }
        };
        let w = Watched {
            wanted: wanted.to_string(),
            opened: p,
            key,
            event: Event::new()?,
        };
        w.arm()?;
        Ok(w)
    }
}

struct Shared {
    wanted: Mutex<Vec<String>>,
    stop: AtomicBool,
    wake: Event,
}

/// Watches registry keys; changes go to the watcher's channel as paths.
pub struct KeyWatch {
    shared: Arc<Shared>,
}

impl KeyWatch {
    pub fn new(tx: UnboundedSender<Vec<PathBuf>>) -> std::io::Result<KeyWatch> {
        let shared = Arc::new(Shared {
            wanted: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            wake: Event::new()?,
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("tend-regwatch".into())
            .spawn(move || watch_loop(&s, &tx))?;
        Ok(KeyWatch { shared })
    }

    /// Watches exactly `keys` (full paths, `HKEY_LOCAL_MACHINE\...`).
    pub fn set(&self, mut keys: Vec<String>) {
        if keys.len() > MAX_KEYS {
            tracing::debug!(
                "watching {MAX_KEYS} of {} registry keys; the others wait for their interval",
                keys.len()
            );
            keys.truncate(MAX_KEYS);
        }
        *self.shared.wanted.lock().unwrap_or_else(|p| p.into_inner()) = keys;
        self.shared.wake.set();
    }
}

impl Drop for KeyWatch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.set();
    }
}

fn watch_loop(shared: &Shared, tx: &UnboundedSender<Vec<PathBuf>>) {
    let mut watched: Vec<Watched> = Vec::new();
    loop {
        let mut handles: Vec<HANDLE> = vec![shared.wake.0];
        handles.extend(watched.iter().map(|w| w.event.0));
        // SAFETY: `handles` holds at most 64 live handles (MAX_KEYS + 1).
        let r =
            unsafe { WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, INFINITE) };
        let i = r.wrapping_sub(WAIT_OBJECT_0) as usize;
        if i >= handles.len() {
            tracing::warn!(
                "registry watch stopped: {}",
                std::io::Error::last_os_error()
            );
            return;
        }
        if i == 0 {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            let wanted = shared
                .wanted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            watched.retain(|w| wanted.contains(&w.wanted));
            for k in wanted {
                if watched.iter().any(|w| w.wanted == k) {
                    continue;
                }
                match Watched::new(&k) {
                    Ok(w) => watched.push(w),
                    Err(e) => tracing::debug!("cannot watch registry key {k}: {e}"),
                }
            }
            continue;
        }
        let w = &watched[i - 1];
        tracing::debug!(key = %w.opened, "a registry key changed");
        let changed = PathBuf::from(&w.opened);
        // A watched ancestor may now have the key itself: open it instead.
        if w.opened != w.wanted {
            let wanted = w.wanted.clone();
            match Watched::new(&wanted) {
                Ok(n) => watched[i - 1] = n,
                Err(e) => tracing::debug!("cannot watch registry key {wanted}: {e}"),
            }
        } else if let Err(e) = w.arm() {
            tracing::debug!("cannot re-arm the watch on {}: {e}", w.opened);
        }
        if tx.send(vec![changed]).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn reg(args: &[&str]) {
        let out = Command::new("reg").args(args).output().unwrap();
        assert!(out.status.success(), "reg {args:?}");
    }

    fn wait_for(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<PathBuf>>, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(paths) = rx.try_recv() {
                if paths.iter().any(|p| p == &PathBuf::from(want)) {
                    return;
                }
                continue;
            }
            assert!(Instant::now() < deadline, "no change reported for {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // Under Wine in the test command (Wine implements RegNotifyChangeKeyValue).
    #[test]
    fn a_change_to_a_watched_key_is_reported() {
        let base = format!(r"HKCU\Software\TendWatchTest{}", std::process::id());
        let full = format!(
            r"HKEY_CURRENT_USER\Software\TendWatchTest{}",
            std::process::id()
        );
        reg(&["add", &base, "/v", "On", "/t", "REG_DWORD", "/d", "0", "/f"]);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let w = KeyWatch::new(tx).unwrap();
        let missing = format!(r"{full}\Later");
        w.set(vec![full.clone(), missing.clone()]);
        std::thread::sleep(Duration::from_millis(300));

        // A value set.
        reg(&["add", &base, "/v", "On", "/t", "REG_DWORD", "/d", "1", "/f"]);
        wait_for(&mut rx, &full);
        // Again: the watch was re-armed.
        reg(&["add", &base, "/v", "On", "/t", "REG_DWORD", "/d", "2", "/f"]);
        wait_for(&mut rx, &full);
        // A key that did not exist, created (seen through its parent).
        while rx.try_recv().is_ok() {}
        reg(&[
            "add",
            &format!(r"{base}\Later"),
            "/v",
            "X",
            "/t",
            "REG_SZ",
            "/d",
            "y",
            "/f",
        ]);
        wait_for(&mut rx, &full);
        assert_eq!(
            open_nearest(&format!(r"{missing}\Deeper")).map(|(p, _)| p),
            Some(missing)
        );
        drop(w);
        reg(&["delete", &base, "/f"]);
    }
}
