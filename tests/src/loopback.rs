//! The accept loop the test servers share ([`crate::https`],
//! [`crate::collector`], [`crate::slack`]): a port on 127.0.0.1, served on a
//! thread of its own with a single-threaded runtime, each connection handed
//! to the server's handler as a task. Dropping the [`Loopback`] stops the
//! loop and joins the thread; dropping the runtime ends every connection
//! still open (a test's stalled reply included).

use std::future::Future;
use std::net::SocketAddr;

/// A running accept loop.
pub struct Loopback {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Loopback {
    /// Binds a free port and hands every connection to `serve`.
    pub fn start<F, Fut>(serve: F) -> Loopback
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("local address");
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            if let Ok((tcp, _)) = accepted {
                                tokio::spawn(serve(tcp));
                            }
                        }
                    }
                }
            });
        });
        Loopback {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
