//! Running as a system service: systemd's notify protocol, the Windows
//! service control manager, and logs where each OS keeps them.
//!
//! - Linux (systemd, `Type=notify`): `READY=1` once the socket is bound and
//!   the policy loaded, `RELOADING=1`/`READY=1` around a reload,
//!   `STOPPING=1` on the way out, and `WATCHDOG=1` at half of
//!   `WatchdogSec` when the unit sets one. Logs go to stderr, which systemd
//!   hands to journald; each line starts with its syslog priority (`<3>`
//!   error ... `<7>` debug), so `journalctl -p warning` works.
//! - macOS (launchd): `tend run` stays in the foreground; launchd keeps it
//!   alive and collects stderr.
//! - Windows: `tend run --service` is started by the service control
//!   manager (start, stop, status through the `windows-service` crate);
//!   logs go to the Windows event log (source `Tend`).

use std::time::Duration;

/// Tells the service manager how the service is: systemd, when started
/// by it with `NOTIFY_SOCKET`; the Windows service control manager, when
/// running as a Windows service (`READY` is *running*, `STOPPING` is *stop
/// pending*).
pub fn notify(state: &str) {
    #[cfg(windows)]
    windows::notify(state);
    #[cfg(target_os = "linux")]
    {
        use sd_notify::NotifyState;
        let s = match state {
            "READY" => NotifyState::Ready,
            "RELOADING" => NotifyState::Reloading,
            "STOPPING" => NotifyState::Stopping,
            "WATCHDOG" => NotifyState::Watchdog,
            other => NotifyState::Status(other),
        };
        if std::env::var_os("NOTIFY_SOCKET").is_some()
            && let Err(e) = sd_notify::notify(&[s])
        {
            tracing::debug!("sd_notify: {e}");
        }
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    let _ = state;
}

/// How often to ping systemd's watchdog, when the unit has one.
pub fn watchdog_interval() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        sd_notify::watchdog_enabled().map(|d| d / 2)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Hands memory back when the daemon goes idle (Linux): freed heap to the
/// OS (`malloc_trim`), and the pages of its program and libraries that are
/// mapped read-only from files (`MADV_PAGEOUT`). Those are clean: nothing
/// is lost, the next evaluation faults back in what it uses (from the page
/// cache, or the disk), and start-up's code (argument parsing, config,
/// building the engine's 300 tables) does not stay resident for days.
/// Pages other processes map too (libc) are left alone by the kernel.
/// Returns how many mappings were advised.
pub fn trim_memory() -> usize {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the OS.
    unsafe {
        libc::malloc_trim(0);
    }
    #[cfg(target_os = "linux")]
    {
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return 0;
        };
        let mut advised = 0;
        for line in maps.lines() {
            let mut f = line.split_whitespace();
            let (Some(range), Some(perms)) = (f.next(), f.next()) else {
                continue;
            };
            let path = f.nth(3).unwrap_or("");
            if !path.starts_with('/') || perms.contains('w') {
                continue;
            }
            let Some((a, b)) = range.split_once('-') else {
                continue;
            };
            let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            else {
                continue;
            };
            // SAFETY: advising the kernel about a mapping of this process;
            // MADV_PAGEOUT on read-only file pages changes no contents.
            let rc = unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_PAGEOUT) };
            if rc == 0 {
                advised += 1;
            }
        }
        advised
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// syslog's priority prefix for a level (journald reads it from stderr).
pub fn journal_prefix(level: tracing::Level) -> &'static str {
    match level {
        tracing::Level::ERROR => "<3>",
        tracing::Level::WARN => "<4>",
        tracing::Level::INFO => "<6>",
        _ => "<7>",
    }
}

mod format {
    use tracing::{Event, Subscriber};
    use tracing_subscriber::fmt::format::{Format, Writer};
    use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
    use tracing_subscriber::registry::LookupSpan;

    /// The default format without time (journald adds it), after the
    /// priority prefix.
    pub struct Journal(pub Format<tracing_subscriber::fmt::format::Full, ()>);

    impl<S, N> FormatEvent<S, N> for Journal
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        fn format_event(
            &self,
            ctx: &FmtContext<'_, S, N>,
            mut writer: Writer<'_>,
            event: &Event<'_>,
        ) -> std::fmt::Result {
            write!(
                writer,
                "{}",
                super::journal_prefix(*event.metadata().level())
            )?;
            self.0.format_event(ctx, writer, event)
        }
    }
}

/// Sets up logging for `tend run`: `TEND_LOG` (a tracing filter), else
/// `info` (`debug` with -v, `trace` with -vv).
pub fn init_logging(verbose: u8, windows_service: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("TEND_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    #[cfg(windows)]
    if windows_service {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(windows::EventLogWriter::new())
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .try_init();
        return;
    }
    let _ = windows_service;
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        let format = tracing_subscriber::fmt::format()
            .without_time()
            .with_target(false)
            .with_ansi(false);
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .event_format(format::Journal(format))
            .try_init();
    } else {
        use std::io::IsTerminal;
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .try_init();
    }
}

#[cfg(windows)]
pub mod windows {
    //! The Windows event log and the service control manager.

    use std::ffi::OsString;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Mutex, OnceLock};
    use std::time::Duration;

    use windows_service::service::{
        ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus,
        ServiceType,
    };
    use windows_service::service_control_handler::{
        self, ServiceControlHandlerResult, ServiceStatusHandle,
    };
    use windows_sys::Win32::System::EventLog::{
        EVENTLOG_ERROR_TYPE, EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
        RegisterEventSourceW, ReportEventW,
    };

    /// The service's name, as the MSI registers it.
    pub const SERVICE_NAME: &str = "tend";

    /// Writes each log line to the event log, as source `Tend`.
    pub struct EventLogWriter {
        source: isize,
    }

    impl EventLogWriter {
        pub fn new() -> EventLogWriter {
            let name: Vec<u16> = "Tend".encode_utf16().chain(std::iter::once(0)).collect();
            // SAFETY: a NUL-terminated name; a null server means this machine.
            let h = unsafe { RegisterEventSourceW(std::ptr::null(), name.as_ptr()) };
            EventLogWriter { source: h as isize }
        }
    }

    impl Default for EventLogWriter {
        fn default() -> Self {
            EventLogWriter::new()
        }
    }

    pub struct Line {
        source: isize,
        kind: u16,
        buf: Vec<u8>,
    }

    impl std::io::Write for Line {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.buf.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Drop for Line {
        fn drop(&mut self) {
            if self.source == 0 || self.buf.is_empty() {
                return;
            }
            let text = String::from_utf8_lossy(&self.buf);
            let wide: Vec<u16> = text
                .trim_end()
                .encode_utf16()
                .chain(std::iter::once(0))
                .collect();
            let strings = [wide.as_ptr()];
            // SAFETY: one NUL-terminated string, a handle from RegisterEventSourceW.
            unsafe {
                ReportEventW(
                    self.source as _,
                    self.kind,
                    0,
                    1,
                    std::ptr::null_mut(),
                    1,
                    0,
                    strings.as_ptr(),
                    std::ptr::null(),
                );
            }
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for EventLogWriter {
        type Writer = Line;
        fn make_writer(&'a self) -> Line {
            Line {
                source: self.source,
                kind: EVENTLOG_INFORMATION_TYPE,
                buf: Vec::new(),
            }
        }
        fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Line {
            let kind = match *meta.level() {
                tracing::Level::ERROR => EVENTLOG_ERROR_TYPE,
                tracing::Level::WARN => EVENTLOG_WARNING_TYPE,
                _ => EVENTLOG_INFORMATION_TYPE,
            };
            Line {
                source: self.source,
                kind,
                buf: Vec::new(),
            }
        }
    }

    /// What the service runs: the daemon, stopping when the future resolves.
    pub type ServiceBody =
        Box<dyn FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>) -> Result<(), String> + Send>;

    static BODY: Mutex<Option<ServiceBody>> = Mutex::new(None);

    /// The running service's status handle, once registered.
    static HANDLE: OnceLock<ServiceStatusHandle> = OnceLock::new();

    /// Reports the daemon's progress to the service manager (see
    /// [`super::notify`]); nothing when not running as a service.
    pub fn notify(state: &str) {
        let Some(handle) = HANDLE.get() else {
            return;
        };
        let state = match state {
            "READY" => ServiceState::Running,
            "STOPPING" => ServiceState::StopPending,
            _ => return,
        };
        if let Err(e) = handle.set_service_status(status(state, None)) {
            tracing::debug!("reporting the service status: {e}");
        }
    }

    windows_service::define_windows_service!(ffi_service_main, service_main);

    /// Hands this thread to the service control manager, which calls
    /// `body` on a thread of its own; returns when the service stopped.
    pub fn run(body: ServiceBody) -> Result<(), String> {
        *BODY.lock().unwrap_or_else(|p| p.into_inner()) = Some(body);
        windows_service::service_dispatcher::start(SERVICE_NAME, ffi_service_main).map_err(|e| {
            format!(
                "cannot start as a Windows service (was it started by the service manager?): {e}"
            )
        })
    }

    /// A status to report; `failure` is the service-specific exit code of
    /// a stop after an error.
    fn status(state: ServiceState, failure: Option<u32>) -> ServiceStatus {
        ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: if state == ServiceState::Running {
                ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
            } else {
                ServiceControlAccept::empty()
            },
            exit_code: match failure {
                Some(code) => ServiceExitCode::ServiceSpecific(code),
                None => ServiceExitCode::Win32(0),
            },
            checkpoint: 0,
            // Start-up loads the policy and builds the engine; stopping
            // waits for a running evaluation (up to its time limit).
            wait_hint: Duration::from_secs(30),
            process_id: None,
        }
    }

    fn service_main(args: Vec<OsString>) {
        // The name the service was started under (the MSI's `tend`, or
        // another an admin chose); the handler is registered under it.
        let name = args
            .first()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| SERVICE_NAME.to_string());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let tx = Mutex::new(Some(tx));
        let handler = move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                if let Some(tx) = tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    let _ = tx.send(());
                }
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        };
        let handle = match service_control_handler::register(&name, handler) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!("registering the service control handler for {name}: {e}");
                return;
            }
        };
        // Running is reported when the daemon is ready (`notify("READY")`).
        let _ = handle.set_service_status(status(ServiceState::StartPending, None));
        let _ = HANDLE.set(handle);
        let body = BODY.lock().unwrap_or_else(|p| p.into_inner()).take();
        let failure = match body {
            Some(body) => match body(Box::pin(async move {
                let _ = rx.await;
            })) {
                Ok(()) => None,
                Err(e) => {
                    tracing::error!("{e}");
                    Some(1)
                }
            },
            None => Some(1),
        };
        let _ = handle.set_service_status(status(ServiceState::Stopped, failure));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn trimming_keeps_the_process_working() {
        assert!(trim_memory() > 0);
        // Code and read-only data fault back in.
        let v: Vec<String> = (0..1000).map(|i| format!("{i}")).collect();
        assert_eq!(v[999], "999");
    }

    #[test]
    fn journald_priorities() {
        assert_eq!(journal_prefix(tracing::Level::ERROR), "<3>");
        assert_eq!(journal_prefix(tracing::Level::INFO), "<6>");
        assert_eq!(journal_prefix(tracing::Level::TRACE), "<7>");
    }
}
