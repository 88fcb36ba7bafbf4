//! Queue positions for this replica's visitor sockets.
//!
//! One task per replica listens to every queue's notices. On a change (several changes that
//! arrive together count once) it reads the queue order once, and pushes a new position only
//! to the local sockets whose position changed. So a handover with 2,000 visitors waiting
//! costs one indexed query, not one per socket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use baton_protocol::ids::ConversationId;
use tokio::sync::watch;

use crate::bus::{Notice, Topic};
use crate::service::Service;

/// The positions of the conversations this replica's visitor sockets show.
#[derive(Default)]
pub struct QueueWatch {
    sockets: Mutex<HashMap<ConversationId, watch::Sender<Option<u32>>>>,
    /// Wakes the task when a socket has just read its position, so a change that happened
    /// meanwhile is caught.
    recheck: tokio::sync::Notify,
}

/// A socket's view of its conversation's position; unregisters when dropped.
pub struct Position {
    rx: watch::Receiver<Option<u32>>,
    id: ConversationId,
    watch: Arc<Service>,
}

impl Position {
    /// Waits for the position to change and returns it.
    pub async fn changed(&mut self) -> Option<u32> {
        if self.rx.changed().await.is_err() {
            return std::future::pending().await;
        }
        *self.rx.borrow_and_update()
    }

    /// Sets the position this socket already told its client, so only changes are sent;
    /// then has the order read once more, in case the queue moved while it was being read.
    pub fn seen(&mut self, position: Option<u32>) {
        self.watch.queues.set(&self.id, position);
        self.rx.borrow_and_update();
        if position.is_some() {
            self.watch.queues.recheck.notify_one();
        }
    }
}

impl Drop for Position {
    fn drop(&mut self) {
        let mut sockets = self
            .watch
            .queues
            .sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if sockets
            .get(&self.id)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            sockets.remove(&self.id);
        }
    }
}

impl QueueWatch {
    /// Follows a conversation's position (a socket calls this once).
    pub fn register(svc: &Arc<Service>, id: &ConversationId) -> Position {
        let rx = svc
            .queues
            .sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.clone())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe();
        Position {
            rx,
            id: id.clone(),
            watch: svc.clone(),
        }
    }

    fn set(&self, id: &ConversationId, position: Option<u32>) {
        let sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = sockets.get(id) {
            tx.send_if_modified(|p| {
                let changed = *p != position;
                *p = position;
                changed
            });
        }
    }

    /// How many sockets here follow this conversation.
    pub fn sockets_for(&self, id: &ConversationId) -> usize {
        self.sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map_or(0, |tx| tx.receiver_count())
    }

    /// Whether a notice can change the position of a socket here: one of them is queued
    /// (anyone ahead may have left), or the conversation that changed has a socket here.
    fn concerns(&self, n: &Notice) -> bool {
        let sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        match n {
            Notice::Queue {
                conversation_id, ..
            } => {
                sockets.contains_key(conversation_id)
                    || sockets.values().any(|tx| tx.borrow().is_some())
            }
            Notice::Resync => !sockets.is_empty(),
            _ => false,
        }
    }

    /// Applies a fresh queue order: position = place within its queue, `None` if not queued.
    fn update(&self, order: &[(ConversationId, String)]) {
        let mut place: HashMap<&str, u32> = HashMap::new();
        let mut positions: HashMap<&ConversationId, u32> = HashMap::with_capacity(order.len());
        for (id, queue) in order {
            let p = place.entry(queue.as_str()).or_insert(0);
            *p += 1;
            positions.insert(id, *p);
        }
        let sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        for (id, tx) in sockets.iter() {
            let new = positions.get(id).copied();
            let pushed = tx.send_if_modified(|p| {
                let changed = *p != new;
                *p = new;
                changed
            });
            if pushed {
                crate::metrics::POSITIONS.tick();
            }
        }
    }
}

/// Reads the queue's order once and pushes the positions that changed.
async fn reorder(svc: &Service) {
    let t = std::time::Instant::now();
    let order = svc.store.queue_order().await;
    crate::metrics::QUEUE_ORDER.since(t);
    match order {
        Ok(order) => svc.queues.update(&order),
        Err(e) => tracing::warn!("queue positions: {e}"),
    }
}

/// The replica's queue task; ends at shutdown.
pub async fn run(svc: Arc<Service>) {
    let mut notices = svc.bus.subscribe(&Topic::AnyQueue);
    let mut shutdown = svc.shutdown_signal();
    loop {
        tokio::select! {
            _ = svc.queues.recheck.notified() => {
                reorder(&svc).await;
            }
            n = notices.recv() => {
                let mut relevant = svc.queues.concerns(&n);
                // Changes that arrived meanwhile are covered by the one read below.
                while let Some(more) = notices.try_recv() {
                    relevant |= svc.queues.concerns(&more);
                }
                if !relevant { continue; }
                reorder(&svc).await;
            }
            _ = shutdown.changed() => return,
        }
    }
}
