//! Sleeping on a clock that counts time spent suspended.
//!
//! tokio's timers (like osquery's) run on the monotonic clock, which stops
//! while a laptop sleeps: a 15-minute sleep that spans a night ends 15
//! minutes *after* the lid opens. On Linux this timer is a `timerfd` on
//! `CLOCK_BOOTTIME`, which keeps counting through suspend, so a timer that
//! expired during the night fires as soon as the machine wakes, and an idle
//! daemon wakes only when a check is due. Elsewhere it sleeps in slices of
//! at most [`SLICE`] and the scheduler re-reads the wall clock after each.

use std::time::Duration;

/// The longest slice slept on systems without a boot-time timer.
#[cfg(not(target_os = "linux"))]
pub const SLICE: Duration = Duration::from_secs(60);

/// A one-shot timer that counts suspended time.
pub struct WallTimer {
    #[cfg(target_os = "linux")]
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

impl WallTimer {
    pub fn new() -> std::io::Result<WallTimer> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::FromRawFd;
            // SAFETY: timerfd_create has no preconditions; a non-negative
            // result is a new descriptor that we own from here on.
            let fd = unsafe {
                libc::timerfd_create(libc::CLOCK_BOOTTIME, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
            };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: `fd` is a valid descriptor nobody else owns.
            let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
            // SAFETY: the OwnedFd keeps the descriptor open, unchanged, for
            // as long as the AsyncFd owns it.
            let fd = unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(
                    owned,
                    tokio::io::Interest::READABLE,
                )
            }
            .map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok(WallTimer { fd })
        }
        #[cfg(not(target_os = "linux"))]
        {
            Ok(WallTimer {})
        }
    }

    /// Sleeps for `d` of wall-clock time (suspended time included on Linux).
    pub async fn sleep(&mut self, d: Duration) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // Zero disarms a timerfd; one nanosecond fires at once.
            let d = d.max(Duration::from_nanos(1));
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                },
            };
            let fd = self.fd.get_ref().as_raw_fd();
            // SAFETY: `fd` is our timerfd and `spec` a valid itimerspec.
            let rc = unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) };
            if rc != 0 {
                tracing::warn!(
                    "timerfd_settime: {}; using the monotonic clock",
                    std::io::Error::last_os_error()
                );
                tokio::time::sleep(d).await;
                return;
            }
            loop {
                let Ok(mut guard) = self.fd.readable().await else {
                    tokio::time::sleep(d).await;
                    return;
                };
                let mut buf = [0u8; 8];
                // SAFETY: reading 8 bytes into an 8-byte buffer from our fd.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                if n == 8 {
                    return;
                }
                guard.clear_ready();
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            tokio::time::sleep(d.min(SLICE)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_about_as_long_as_asked() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut t = WallTimer::new().unwrap();
            let start = std::time::Instant::now();
            t.sleep(Duration::from_millis(50)).await;
            let e = start.elapsed();
            assert!(e >= Duration::from_millis(45), "{e:?}");
            assert!(e < Duration::from_secs(2), "{e:?}");
            // Re-armed, and zero fires at once.
            t.sleep(Duration::ZERO).await;
            // Cancelled sleeps leave the timer usable.
            let _ =
                tokio::time::timeout(Duration::from_millis(5), t.sleep(Duration::from_secs(10)))
                    .await;
            let start = std::time::Instant::now();
            t.sleep(Duration::from_millis(20)).await;
            assert!(start.elapsed() < Duration::from_secs(2));
        });
    }
}
