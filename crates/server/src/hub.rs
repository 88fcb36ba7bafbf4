//! In-memory fan-out between sockets.
//!
//! A notice only says *that* something changed; sockets then read what changed from the
//! store by sequence number. So a socket that falls behind (a lagged broadcast receiver)
//! loses nothing: it re-reads from its last seq. The store is the single source of truth.

use std::sync::atomic::{AtomicUsize, Ordering};

use baton_protocol::ids::ConversationId;
use baton_protocol::ws::ConversationSummary;
use tokio::sync::{broadcast, watch};

/// Something changed.
#[derive(Clone, Debug)]
pub enum Notice {
    /// New durable events in this conversation.
    Conversation(ConversationId),
    /// A conversation entered or changed in the queue.
    Waiting(ConversationSummary),
    /// A conversation left the queue.
    Dequeued(ConversationId),
}

/// The hub.
pub struct Hub {
    tx: broadcast::Sender<Notice>,
    agents_online: AtomicUsize,
    shutdown: watch::Sender<bool>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            agents_online: AtomicUsize::new(0),
            shutdown: watch::channel(false).0,
        }
    }
}

impl Hub {
    /// Publishes a notice to every socket.
    pub fn notify(&self, n: Notice) {
        // No receivers is fine: nobody is connected.
        let _ = self.tx.send(n);
    }

    /// A receiver for notices from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }

    /// Number of connected agent sockets.
    pub fn agents_online(&self) -> usize {
        self.agents_online.load(Ordering::Relaxed)
    }

    /// Counts an agent socket for as long as the guard lives.
    pub fn agent_online(&self) -> AgentOnline<'_> {
        self.agents_online.fetch_add(1, Ordering::Relaxed);
        AgentOnline(self)
    }

    /// A receiver that turns `true` when the server shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Tells every socket to close.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }
}

/// Decrements the online-agent count when dropped.
pub struct AgentOnline<'a>(&'a Hub);

impl Drop for AgentOnline<'_> {
    fn drop(&mut self) {
        self.0.agents_online.fetch_sub(1, Ordering::Relaxed);
    }
}
