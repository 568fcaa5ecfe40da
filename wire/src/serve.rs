//! A router served on 127.0.0.1 from a thread of its own, with its own single-threaded runtime,
//! so that a synchronous runner can start it, read what it saw and drop it; dropping it stops the
//! server, closes every connection and frees the port.

use axum::Router;
use axum::serve::ListenerExt as _;

/// A running server.
pub struct Served {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    /// Serves `app` on `port` of 127.0.0.1 (0: an ephemeral one), on a thread named `name`.
    pub fn start(port: u16, app: Router, name: &str) -> std::io::Result<Served> {
        Served::start_with(port, |_| app, name)
    }

    /// Serves the router `app` makes for the address bound (a server that names its own URLs).
    pub fn start_with(
        port: u16,
        app: impl FnOnce(std::net::SocketAddr) -> Router,
        name: &str,
    ) -> std::io::Result<Served> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let app = app(addr);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let listener = {
            let _entered = runtime.enter();
            // Small writes go at once: with Nagle's algorithm, a notification written while the
            // host's ACK of the previous write is delayed waits for that ACK (up to 40 ms), and
            // the host looks idle while the server still owes it a message.
            tokio::net::TcpListener::from_std(listener)?.tap_io(|connection| {
                let _ = connection.set_nodelay(true);
            })
        };
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            runtime.block_on(async move {
                // Stopping drops the server and every connection with it: nothing waits on a
                // host that keeps a connection (or a notification stream) open.
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stopped => {}
                }
            });
        })?;
        Ok(Served { addr, stop: Some(stop), thread: Some(thread) })
    }

    /// The address listened on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
