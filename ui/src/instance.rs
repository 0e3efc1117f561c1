//! One icon per user session: a second `tend-tray` (the user launched Tend
//! again, or a `tend://` link started it) hands its arguments to the first
//! and exits.
//!
//! The first instance listens on a per-user local socket: on Unix, a socket
//! in `$XDG_RUNTIME_DIR` (the user's own 0700 directory; without it, a
//! socket in the temporary directory whose owner is checked); on Windows,
//! a named pipe named after the session, whose server must be in this
//! session (a session-local mutex says who is first). A later start
//! connects, sends its arguments as one JSON line, and waits for the first
//! to answer `ok`, so that its exit status says whether the hand-over
//! happened.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The longest hand-over line read (arguments are a few links at most).
const MAX_LINE: u64 = 64 * 1024;
const ANSWER: &str = "ok";

/// Who this process is.
pub enum Claim {
    /// The first: serve later starts with [`Listener::serve`].
    First(Listener),
    /// Another instance runs, and took these arguments.
    Handed,
}

/// Claims the session's single instance, or hands `args` to the one that
/// has it.
pub async fn claim(args: &[String]) -> io::Result<Claim> {
    imp::claim(args).await
}

pub use imp::Listener;

/// Sends `args` on a connection to the first instance and waits for its
/// answer.
async fn hand_over<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    args: &[String],
) -> io::Result<()> {
    let mut stream = BufReader::new(stream);
    let mut line = serde_json::to_string(args)?;
    line.push('\n');
    stream.get_mut().write_all(line.as_bytes()).await?;
    stream.get_mut().flush().await?;
    let mut answer = String::new();
    (&mut stream).take(MAX_LINE).read_line(&mut answer).await?;
    if answer.trim_end() == ANSWER {
        Ok(())
    } else {
        Err(io::Error::other(
            "the running tend-tray did not take the arguments",
        ))
    }
}

/// Reads one later start's arguments, gives them to `on_args`, answers.
async fn take<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    on_args: &(dyn Fn(Vec<String>) + Send + Sync),
) -> io::Result<()> {
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    (&mut stream).take(MAX_LINE).read_line(&mut line).await?;
    let args: Vec<String> = serde_json::from_str(&line).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a later start sent {:?}: {e}", truncate(&line)),
        )
    })?;
    on_args(args);
    stream.get_mut().write_all(b"ok\n").await?;
    stream.get_mut().flush().await
}

fn truncate(s: &str) -> &str {
    let end = s.char_indices().nth(80).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

#[cfg(unix)]
mod imp {
    use std::io;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    use tokio::net::{UnixListener, UnixStream};

    use super::{Claim, hand_over, take};

    /// The first instance's socket.
    pub struct Listener {
        listener: UnixListener,
        path: PathBuf,
    }

    fn path() -> PathBuf {
        match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir).join("tend-tray.sock"),
            // SAFETY: geteuid has no preconditions and cannot fail.
            None => {
                std::env::temp_dir().join(format!("tend-tray-{}.sock", unsafe { libc::geteuid() }))
            }
        }
    }

    pub async fn claim(args: &[String]) -> io::Result<Claim> {
        claim_at(path(), args).await
    }

    pub(super) async fn claim_at(path: PathBuf, args: &[String]) -> io::Result<Claim> {
        for _ in 0..2 {
            match UnixListener::bind(&path) {
                Ok(listener) => return Ok(Claim::First(Listener { listener, path })),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
                Err(e) => return Err(with_path(e, &path)),
            }
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            let owner = std::fs::symlink_metadata(&path)
                .map_err(|e| with_path(e, &path))?
                .uid();
            if owner != me {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{} belongs to user {owner}, not to this one",
                        path.display()
                    ),
                ));
            }
            match UnixStream::connect(&path).await {
                Ok(stream) => {
                    hand_over(stream, args).await?;
                    return Ok(Claim::Handed);
                }
                // Left by an instance that ended without removing it.
                Err(_) => std::fs::remove_file(&path).map_err(|e| with_path(e, &path))?,
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{}: another tend-tray is starting", path.display()),
        ))
    }

    fn with_path(e: io::Error, path: &std::path::Path) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", path.display()))
    }

    impl Listener {
        /// Serves later starts for as long as the process lives.
        pub async fn serve(self, on_args: impl Fn(Vec<String>) + Send + Sync + 'static) {
            let on_args = std::sync::Arc::new(on_args);
            loop {
                match self.listener.accept().await {
                    Ok((stream, _)) => {
                        let on_args = on_args.clone();
                        tokio::spawn(async move {
                            if let Err(e) = take(stream, &*on_args).await {
                                tracing::warn!("a later start of tend-tray: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!("{}: {e}", self.path.display());
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                }
            }
        }
    }

    impl Drop for Listener {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(windows)]
mod imp {
    use std::io;
    use std::os::windows::io::AsRawHandle;
    use std::time::{Duration, Instant};

    use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeServer, ServerOptions};
    use windows_sys::Win32::Foundation::{
        CloseHandle, ERROR_ALREADY_EXISTS, ERROR_FILE_NOT_FOUND, ERROR_PIPE_BUSY, GetLastError,
        HANDLE,
    };
    use windows_sys::Win32::System::Pipes::GetNamedPipeServerSessionId;
    use windows_sys::Win32::System::RemoteDesktop::ProcessIdToSessionId;
    use windows_sys::Win32::System::Threading::{CreateMutexW, GetCurrentProcessId};

    use super::{Claim, hand_over, take};

    /// How long a later start waits for the first one's pipe (the first
    /// may be starting: it holds the mutex before it serves the pipe).
    const WAIT_FOR_PIPE: Duration = Duration::from_secs(5);

    /// The first instance's pipe, and the session mutex that says it is first.
    pub struct Listener {
        server: NamedPipeServer,
        name: String,
        _first: Owned,
    }

    /// A kernel handle closed when dropped.
    struct Owned(HANDLE);

    // SAFETY: a mutex handle may be used and closed from any thread; this
    // one is only held, then closed once.
    unsafe impl Send for Owned {}

    impl Drop for Owned {
        fn drop(&mut self) {
            // SAFETY: the handle came from CreateMutexW and is closed once.
            unsafe { CloseHandle(self.0) };
        }
    }

    fn session() -> io::Result<u32> {
        let mut id = 0;
        // SAFETY: `id` is a valid out pointer for the call's duration.
        if unsafe { ProcessIdToSessionId(GetCurrentProcessId(), &mut id) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(id)
    }

    /// Creates the session's mutex: `Some` when this process is the first.
    /// (Named kernel objects are per session; named pipes are not, and
    /// Wine ignores a pipe's "first instance" flag, so the mutex decides.)
    fn first() -> io::Result<Option<Owned>> {
        let name: Vec<u16> = "Local\\dev.tend.tray".encode_utf16().chain([0]).collect();
        // SAFETY: `name` is NUL-terminated and outlives the call; no
        // security attributes; not taken (only its existence counts).
        let handle = unsafe { CreateMutexW(std::ptr::null(), 0, name.as_ptr()) };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: reads this thread's last error, set by CreateMutexW.
        let existed = unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
        let owned = Owned(handle);
        Ok((!existed).then_some(owned))
    }

    pub async fn claim(args: &[String]) -> io::Result<Claim> {
        let session = session()?;
        // Pipe names are machine-wide: the session keeps users apart.
        let name = format!(r"\\.\pipe\tend-tray-session-{session}");
        if let Some(first) = first()? {
            let server = ServerOptions::new()
                .first_pipe_instance(true)
                .create(&name)
                .map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))?;
            return Ok(Claim::First(Listener {
                server,
                name,
                _first: first,
            }));
        }
        let deadline = Instant::now() + WAIT_FOR_PIPE;
        let client = loop {
            match ClientOptions::new().open(&name) {
                Ok(c) => break c,
                Err(e)
                    if Instant::now() < deadline
                        && [ERROR_PIPE_BUSY, ERROR_FILE_NOT_FOUND]
                            .iter()
                            .any(|&code| e.raw_os_error() == Some(code as i32)) =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(io::Error::new(e.kind(), format!("{name}: {e}"))),
            }
        };
        let mut server_session = 0;
        // SAFETY: the handle is the open client end of the pipe; the out
        // pointer is valid for the call's duration.
        let ok = unsafe {
            GetNamedPipeServerSessionId(client.as_raw_handle() as _, &mut server_session)
        };
        if ok == 0 || server_session != session {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{name} is served from another session"),
            ));
        }
        hand_over(client, args).await?;
        Ok(Claim::Handed)
    }

    impl Listener {
        /// Serves later starts for as long as the process lives.
        pub async fn serve(mut self, on_args: impl Fn(Vec<String>) + Send + Sync + 'static) {
            let on_args = std::sync::Arc::new(on_args);
            loop {
                if let Err(e) = self.server.connect().await {
                    tracing::warn!("{}: {e}", self.name);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                // The next start finds a fresh instance of the pipe.
                let next = match ServerOptions::new().create(&self.name) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!("{}: {e}", self.name);
                        return;
                    }
                };
                let connected = std::mem::replace(&mut self.server, next);
                let on_args = on_args.clone();
                tokio::spawn(async move {
                    if let Err(e) = take(connected, &*on_args).await {
                        tracing::warn!("a later start of tend-tray: {e}");
                    }
                });
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn a_later_start_hands_its_arguments_to_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tend-tray.sock");
        let Claim::First(listener) = imp::claim_at(path.clone(), &[]).await.unwrap() else {
            panic!("the first start was not first");
        };
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let server = tokio::spawn(listener.serve(move |a| sink.lock().unwrap().push(a)));

        let args = vec!["--show".to_string(), "tend://check/firewall".to_string()];
        assert!(matches!(
            imp::claim_at(path.clone(), &args).await.unwrap(),
            Claim::Handed
        ));
        assert_eq!(*got.lock().unwrap(), [args]);

        // The first instance's end removes its socket.
        server.abort();
        let _ = server.await;
        assert!(!path.exists());

        // One that was killed leaves it behind: the next start is first.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        assert!(matches!(
            imp::claim_at(path.clone(), &[]).await.unwrap(),
            Claim::First(_)
        ));
    }

    #[tokio::test]
    async fn a_later_start_that_is_not_answered_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tend-tray.sock");
        // Something listens but answers with nonsense.
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"what?\n").await.unwrap();
        });
        let err = imp::claim_at(path, &["x".into()]).await.err().unwrap();
        assert!(err.to_string().contains("did not take"), "{err}");
    }
}
