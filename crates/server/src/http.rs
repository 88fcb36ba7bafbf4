//! The listener: accepts TCP connections and serves the router on each, with the limits a
//! public server needs, which `axum::serve` does not set:
//!
//! - a cap on open connections (HTTP and WebSocket alike): past it, a new connection is
//!   closed at once instead of queueing, and the cap holds for as long as a socket lives;
//! - a header-read timeout, so a client that connects and sends nothing, or half a request,
//!   is closed;
//! - an idle timeout for keep-alive connections that send nothing more;
//! - the client address in `ConnectInfo`, for rate limits;
//! - graceful shutdown: stop accepting, let requests in flight finish (sockets are told by
//!   the service and close themselves with 1001).
//!
//! It also raises the process's soft file limit to its hard limit at start.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// Connection limits.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Time to send a request's headers.
    pub header_timeout: Duration,
    /// A connection with nothing read or written for this long is closed.
    pub idle_timeout: Duration,
}

/// Raises the soft limit on open files to the hard limit; returns the new soft limit.
pub fn raise_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::increase_nofile_limit(u64::MAX).ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// A TCP stream that remembers when it last read or wrote anything, and holds its connection permit
/// for as long as it lives (also after a WebSocket upgrade took it over).
struct Watched {
    inner: TcpStream,
    start: Instant,
    last_heard_ms: Arc<AtomicU64>,
    _permit: OwnedSemaphorePermit,
}

impl Watched {
    /// Bytes the client took count as life too: a status stream only ever writes. A client
    /// that stops reading fills its buffers, writes stall, and the idle timeout applies.
    fn wrote(&self, r: &Poll<std::io::Result<usize>>) {
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0) {
            let ms = self.start.elapsed().as_millis() as u64;
            self.last_heard_ms.store(ms, Ordering::Relaxed);
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let ms = self.start.elapsed().as_millis() as u64;
            self.last_heard_ms.store(ms, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&r);
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors or a reset before accept: wait a little and go on.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(
                "{} connections open; closing the one from {peer}",
                limits.max_connections
            );
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let last_heard_ms = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let io = TokioIo::new(Watched {
            inner: tcp,
            start,
            last_heard_ms: last_heard_ms.clone(),
            _permit: permit,
        });
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let conn = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let conn = graceful.watch(conn);
        let idle = limits.idle_timeout;
        tokio::spawn(async move {
            tokio::pin!(conn);
            loop {
                let last = Duration::from_millis(last_heard_ms.load(Ordering::Relaxed));
                let deadline = start + last + idle;
                tokio::select! {
                    _ = &mut conn => return,
                    _ = tokio::time::sleep_until(deadline.into()) => {
                        let last = Duration::from_millis(last_heard_ms.load(Ordering::Relaxed));
                        if start.elapsed() >= last + idle {
                            // Nothing read or written for the whole idle time: drop it.
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("some requests did not finish within 10 s of shutdown");
        }
    }
    Ok(())
}

/// The client address: the peer, or with `trust_forwarded_for` the last address in
/// `X-Forwarded-For` (the one the load balancer in front of Baton added).
pub fn client_ip(
    peer: Option<SocketAddr>,
    headers: &axum::http::HeaderMap,
    trust_forwarded_for: bool,
) -> std::net::IpAddr {
    if trust_forwarded_for
        && let Some(ip) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .next_back()
    {
        return ip;
    }
    peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.ip())
}
