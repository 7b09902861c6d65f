//! The HTTP server under every provider fixture: a poem server on 127.0.0.1 (a free port) with
//! its own thread and tokio runtime, so blocking tests can drive it; dropped = stopped.

use std::future::Future;
use std::thread::JoinHandle;
use std::time::Duration;

use poem::{Request, Response};

/// A running fixture server.
pub struct FixtureServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// A listener on 127.0.0.1 (free port) and its base URL, `http://127.0.0.1:PORT`: the URL is
/// known before the server starts, so a fixture's state can build links to itself.
pub fn bind() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.set_nonblocking(true).expect("non-blocking listener");
    let base_url = format!("http://{}", listener.local_addr().expect("local address"));
    (listener, base_url)
}

impl FixtureServer {
    /// Serve every request on `listener` with `handler`, on a thread named `name`.
    pub fn serve<F, Fut>(name: &str, listener: std::net::TcpListener, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("fixture runtime");
                runtime.block_on(async move {
                    let acceptor = poem::listener::TcpAcceptor::from_std(listener).expect("fixture acceptor");
                    let _ = poem::Server::new_with_acceptor(acceptor)
                        .run_with_graceful_shutdown(
                            poem::endpoint::make(handler),
                            async move {
                                let _ = stopped.await;
                            },
                            Some(Duration::from_millis(200)),
                        )
                        .await;
                });
            })
            .expect("fixture thread");
        Self { stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
