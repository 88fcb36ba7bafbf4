//! Baton's server: the bot endpoint (built-in bot or a Rasa upstream), handover, the visitor
//! and agent WebSockets, storage (SQLite or PostgreSQL), the bus between replicas
//! (in-process or NATS), and the static files of the widget, the demo page and the console.
//!
//! `app` builds the router; `spawn` binds and serves it, which is what `main` and the
//! integration tests both call.

pub mod auth;
pub mod bot;
pub mod bus;
pub mod clock;
pub mod config;
pub mod hours;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod queue;
pub mod routes;
pub mod service;
pub mod sockets;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use config::Config;
pub use routes::app;
pub use service::{Deps, Service};
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

    /// Shuts down gracefully: sockets are closed with 1001, in-flight requests finish, the
    /// database is closed.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// The error type of start-up.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Opens the store and the bus, binds `config.listen` and serves until `Running::stop`.
pub async fn spawn(config: Config) -> Result<Running, StartError> {
    spawn_with(config, Deps::default()).await
}

/// Like `spawn`, with parts replaced (a fixed clock, a scripted bot).
pub async fn spawn_with(config: Config, deps: Deps) -> Result<Running, StartError> {
    let (stop, stopped) = oneshot::channel::<()>();
    let (addr, service, task) = spawn_until(config, deps, async move {
        let _ = stopped.await;
    })
    .await?;
    Ok(Running {
        addr,
        service,
        stop: Some(stop),
        task,
    })
}

/// Like `spawn_with`, but serves until `shutdown` completes.
pub async fn spawn_until(
    config: Config,
    deps: Deps,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, Arc<Service>, JoinHandle<std::io::Result<()>>), StartError> {
    http::raise_file_limit();
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let limits = http::ConnLimits {
        max_connections: config.max_connections,
        header_timeout: config.header_timeout,
        idle_timeout: config.idle_timeout,
    };
    let service = Service::new(config, deps).await?;
    let svc = service.clone();
    let task = tokio::spawn(async move {
        let on_stop = svc.clone();
        let result = http::serve(listener, app(svc.clone()), limits, async move {
            shutdown.await;
            // Tell the sockets first; the listener then waits for open requests to finish.
            on_stop.shut_down();
        })
        .await;
        if let Err(e) = svc.store.close().await {
            tracing::warn!("closing the database: {e}");
        }
        result
    });
    Ok((addr, service, task))
}
