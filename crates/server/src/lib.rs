//! Baton's server: the built-in bot endpoint, handover, the visitor and agent WebSockets,
//! SQLite storage, and the static files of the widget, the demo page and the console.
//!
//! `app` builds the router; `spawn` binds and serves it, which is what `main` and the
//! integration tests both call.

pub mod bot;
pub mod config;
pub mod hub;
pub mod routes;
pub mod service;
pub mod sockets;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use config::Config;
pub use routes::app;
pub use service::Service;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The shared state.
    pub service: Arc<Service>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts down gracefully: sockets are closed with 1001, in-flight requests finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Opens the store, binds `config.listen` and serves until `Running::stop`.
pub async fn spawn(config: Config) -> Result<Running, Box<dyn std::error::Error + Send + Sync>> {
    let (stop, stopped) = oneshot::channel::<()>();
    spawn_until(config, async move {
        let _ = stopped.await;
    })
    .await
    .map(|(addr, service, task)| Running {
        addr,
        service,
        stop: Some(stop),
        task,
    })
}

/// Like `spawn`, but serves until `shutdown` completes.
pub async fn spawn_until(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<
    (SocketAddr, Arc<Service>, JoinHandle<std::io::Result<()>>),
    Box<dyn std::error::Error + Send + Sync>,
> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let service = Service::new(config)?;
    let svc = service.clone();
    let task = tokio::spawn(async move {
        let hub_svc = svc.clone();
        axum::serve(listener, app(svc))
            .with_graceful_shutdown(async move {
                shutdown.await;
                // Tell the sockets first; axum then waits for open requests to finish.
                hub_svc.hub.shut_down();
            })
            .await
    });
    Ok((addr, service, task))
}
