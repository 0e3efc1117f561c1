//! The local API on Windows: a named pipe with an ACL.
//!
//! The pipe's security descriptor lets SYSTEM and Administrators do
//! anything and authenticated users read and write (to connect), denies
//! network logons, and the pipe refuses remote clients. Who connected comes
//! from the pipe (`GetNamedPipeClientProcessId`), then the process's
//! session (`ProcessIdToSessionId`, compared with the active console
//! session) and its token (elevated or not).

use std::ffi::c_void;
use std::future::Future;
use std::os::windows::io::AsRawHandle;
use std::sync::Arc;

use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_ELEVATION, TOKEN_QUERY,
    TokenElevation,
};
use windows_sys::Win32::System::Pipes::GetNamedPipeClientProcessId;
use windows_sys::Win32::System::RemoteDesktop::{
    ProcessIdToSessionId, WTSGetActiveConsoleSessionId,
};
use windows_sys::Win32::System::Threading::{
    OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::peer::Peer;
use super::server::{Limiter, Service, handle};

/// SYSTEM and Administrators: all; authenticated users: read and write;
/// network logons: nothing.
const SDDL: &str = "D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)(A;;GRGW;;;AU)";

/// A security descriptor made from [`SDDL`], freed when dropped.
struct Descriptor(PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is plain memory owned by this value, read only by
// pipe creation; nothing in it is bound to a thread.
unsafe impl Send for Descriptor {}
// SAFETY: as above; it is never written after creation.
unsafe impl Sync for Descriptor {}

impl Descriptor {
    fn new() -> std::io::Result<Descriptor> {
        let wide: Vec<u16> = SDDL.encode_utf16().chain(std::iter::once(0)).collect();
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `wide` is NUL-terminated; `sd` receives a LocalAlloc'd descriptor.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                wide.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Descriptor(sd))
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: the descriptor was allocated by the conversion above.
        unsafe {
            LocalFree(self.0 as _);
        }
    }
}

fn create(name: &str, first: bool, sd: &Descriptor) -> std::io::Result<NamedPipeServer> {
    let mut attrs = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.0,
        bInheritHandle: 0,
    };
    let mut opts = ServerOptions::new();
    opts.first_pipe_instance(first).reject_remote_clients(true);
    // SAFETY: `attrs` points to a valid SECURITY_ATTRIBUTES whose descriptor
    // outlives the call.
    unsafe {
        opts.create_with_security_attributes_raw(
            name,
            (&mut attrs as *mut SECURITY_ATTRIBUTES).cast::<c_void>(),
        )
    }
}

/// Whether process `pid`'s token is elevated.
fn elevated(pid: u32) -> bool {
    // SAFETY: plain Win32 calls on handles we open and close here.
    unsafe {
        let process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if process.is_null() {
            return false;
        }
        let mut token: HANDLE = std::ptr::null_mut();
        let opened = OpenProcessToken(process, TOKEN_QUERY, &mut token);
        CloseHandle(process);
        if opened == 0 {
            return false;
        }
        let mut elevation = TOKEN_ELEVATION { TokenIsElevated: 0 };
        let mut len = 0u32;
        let ok = GetTokenInformation(
            token,
            TokenElevation,
            (&mut elevation as *mut TOKEN_ELEVATION).cast(),
            std::mem::size_of::<TOKEN_ELEVATION>() as u32,
            &mut len,
        );
        CloseHandle(token);
        ok != 0 && elevation.TokenIsElevated != 0
    }
}

/// Identifies the client of a connected pipe.
pub fn pipe_peer(pipe: &NamedPipeServer) -> Peer {
    let handle = pipe.as_raw_handle() as HANDLE;
    let mut pid = 0u32;
    // SAFETY: `handle` is a connected pipe server handle.
    if unsafe { GetNamedPipeClientProcessId(handle, &mut pid) } == 0 {
        return Peer {
            uid: None,
            pid: None,
            session: None,
            admin: false,
            console: false,
        };
    }
    let mut session = u32::MAX;
    // SAFETY: plain queries with out-parameters we own.
    let has_session = unsafe { ProcessIdToSessionId(pid, &mut session) } != 0;
    let console_session = unsafe { WTSGetActiveConsoleSessionId() };
    let session = has_session.then_some(session);
    Peer {
        uid: None,
        pid: i32::try_from(pid).ok(),
        session,
        admin: session == Some(0) || elevated(pid),
        console: session.is_some() && session == Some(console_session),
    }
}

/// Accepts pipe connections until `shutdown` resolves.
pub async fn serve_pipe<S: Service>(
    name: &str,
    service: Arc<S>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let sd = Descriptor::new()?;
    let mut server = create(name, true, &sd)?;
    let limiter = Limiter::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            connected = server.connect() => {
                if let Err(e) = connected {
                    tracing::warn!("local API: pipe connect: {e}");
                    server = create(name, false, &sd)?;
                    continue;
                }
                let client = std::mem::replace(&mut server, create(name, false, &sd)?);
                let peer = pipe_peer(&client);
                let Some(slot) = limiter.admit(&peer) else {
                    tracing::warn!("local API: too many connections; refusing {}", peer.describe());
                    continue;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    handle(client, peer, service).await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::client::Client;
    use crate::ipc::proto::{Op, Push};
    use crate::ipc::server::ApiError;
    use std::time::Duration;
    use tokio::sync::broadcast;

    struct Who(broadcast::Sender<Push>);

    impl Service for Who {
        async fn call(&self, peer: &Peer, op: Op) -> Result<serde_json::Value, ApiError> {
            Ok(serde_json::json!({"op": op.name(), "pid": peer.pid, "session": peer.session}))
        }
        fn subscribe(&self) -> broadcast::Receiver<Push> {
            self.0.subscribe()
        }
    }

    #[test]
    fn a_client_is_served_over_the_pipe_and_identified() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let name = format!(r"\\.\pipe\tend-test-{}", std::process::id());
            let (tx, _) = broadcast::channel(4);
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let n = name.clone();
            let server = tokio::spawn(async move {
                serve_pipe(&n, Arc::new(Who(tx)), async move {
                    let _ = stop_rx.await;
                })
                .await
            });
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut c = Client::connect(&name).await.unwrap();
            let v = c.call(&Op::Hello, Duration::from_secs(10)).await.unwrap();
            assert_eq!(v["op"], "hello");
            assert_eq!(v["pid"], std::process::id());
            // A second client while the first is connected.
            let mut c2 = Client::connect(&name).await.unwrap();
            let v = c2.call(&Op::Status, Duration::from_secs(10)).await.unwrap();
            assert_eq!(v["op"], "status");
            let _ = stop_tx.send(());
            server.await.unwrap().unwrap();
        });
    }
}
