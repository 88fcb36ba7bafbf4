//! Queue positions for this replica's visitor sockets.
//!
//! One task per replica listens to every queue's notices. On a change (several changes that
//! arrive together count once) it reads the queue order once, and pushes a new position only
//! to the local sockets whose position changed. So a handover with 2,000 visitors waiting
//! costs one indexed query, not one per socket.
//!
//! With the position goes an estimated wait: how fast each queue's chats were taken in the
//! last two hours (the mean time between acceptances, times the place in line; with a single
//! acceptance, its wait). One more indexed query per read, however many sockets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use baton_protocol::ids::ConversationId;
use tokio::sync::watch;

use crate::bus::{Notice, Topic};
use crate::service::Service;

/// A place in line, as a visitor socket shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place {
    /// 1-based, within the conversation's queue; `None` when not queued.
    pub position: Option<u32>,
    /// Estimated wait in seconds, when there is enough to go on.
    pub wait_s: Option<u32>,
}

/// How far back acceptances count for the estimate.
const ESTIMATE_WINDOW_MS: i64 = 2 * 3_600_000;
/// Acceptances read at most for it.
const ESTIMATE_SAMPLE: u32 = 500;

/// Per queue, the estimated wait for each place in line (ms), from recent acceptances
/// (queue, requested, accepted; oldest first).
pub fn wait_per_place(accepts: &[(String, i64, i64)]) -> HashMap<&str, f64> {
    let mut by_queue: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
    for (queue, requested, accepted) in accepts {
        by_queue
            .entry(queue.as_str())
            .or_default()
            .push((*requested, *accepted));
    }
    by_queue
        .into_iter()
        .filter_map(|(queue, list)| {
            let per_place = match list.as_slice() {
                [] => return None,
                // One chat taken: its wait.
                [(requested, accepted)] => (accepted - requested).max(0) as f64,
                // Several: the mean time between acceptances (how fast the line moves).
                [first, .., last] => (last.1 - first.1).max(0) as f64 / (list.len() - 1) as f64,
            };
            Some((queue, per_place))
        })
        .collect()
}

/// The positions of the conversations this replica's visitor sockets show.
#[derive(Default)]
pub struct QueueWatch {
    sockets: Mutex<HashMap<ConversationId, watch::Sender<Place>>>,
    /// Wakes the task when a socket has just read its position, so a change that happened
    /// meanwhile is caught.
    recheck: tokio::sync::Notify,
}

/// A socket's view of its conversation's position; unregisters when dropped.
pub struct Position {
    rx: watch::Receiver<Place>,
    id: ConversationId,
    watch: Arc<Service>,
}

impl Position {
    /// Waits for the place to change and returns it.
    pub async fn changed(&mut self) -> Place {
        if self.rx.changed().await.is_err() {
            return std::future::pending().await;
        }
        *self.rx.borrow_and_update()
    }

    /// Sets the position this socket already told its client, so only changes are sent;
    /// then has the order read once more, in case the queue moved while it was being read.
    pub fn seen(&mut self, position: Option<u32>) {
        self.watch.queues.set(
            &self.id,
            Place {
                position,
                wait_s: None,
            },
        );
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
            .or_insert_with(|| watch::channel(Place::default()).0)
            .subscribe();
        Position {
            rx,
            id: id.clone(),
            watch: svc.clone(),
        }
    }

    fn set(&self, id: &ConversationId, place: Place) {
        let sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = sockets.get(id) {
            tx.send_if_modified(|p| {
                let changed = *p != place;
                *p = place;
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
                    || sockets.values().any(|tx| tx.borrow().position.is_some())
            }
            Notice::Resync => !sockets.is_empty(),
            _ => false,
        }
    }

    /// Applies a fresh queue order: position = place within its queue, `None` if not queued;
    /// the wait from the queue's estimate per place.
    fn update(&self, order: &[(ConversationId, String)], per_place: &HashMap<&str, f64>) {
        let mut place: HashMap<&str, u32> = HashMap::new();
        let mut positions: HashMap<&ConversationId, Place> = HashMap::with_capacity(order.len());
        for (id, queue) in order {
            let p = place.entry(queue.as_str()).or_insert(0);
            *p += 1;
            let wait_s = per_place.get(queue.as_str()).map(|ms| {
                (ms * f64::from(*p) / 1000.0)
                    .ceil()
                    .min(f64::from(u32::MAX)) as u32
            });
            positions.insert(
                id,
                Place {
                    position: Some(*p),
                    wait_s,
                },
            );
        }
        let sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        for (id, tx) in sockets.iter() {
            let new = positions.get(id).copied().unwrap_or_default();
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
    let since = svc.now_ms() - ESTIMATE_WINDOW_MS;
    let accepts = match svc.store.recent_accepts(since, ESTIMATE_SAMPLE).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("estimated waits: {e}");
            vec![]
        }
    };
    match order {
        Ok(order) => svc.queues.update(&order, &wait_per_place(&accepts)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_follows_how_fast_the_queue_moved() {
        let accepts = vec![
            ("sales".to_owned(), 0, 60_000),
            ("support".to_owned(), 0, 100_000),
            ("sales".to_owned(), 50_000, 180_000),
            ("sales".to_owned(), 90_000, 300_000),
        ];
        let per_place = wait_per_place(&accepts);
        // Sales: taken at 1, 3 and 5 minutes, one every 2 minutes.
        assert_eq!(per_place["sales"], 120_000.0);
        // Support: a single chat, taken after 100 s.
        assert_eq!(per_place["support"], 100_000.0);
        assert!(!per_place.contains_key("billing"), "no data, no estimate");
        assert!(wait_per_place(&[]).is_empty());
    }

    #[test]
    fn each_place_gets_its_share_and_unknown_queues_none() {
        let watch = QueueWatch::default();
        let ids: Vec<ConversationId> = ["a", "b", "c"].map(ConversationId::from).to_vec();
        let rx: Vec<_> = ids
            .iter()
            .map(|id| {
                let (tx, rx) = watch::channel(Place::default());
                watch.sockets.lock().unwrap().insert(id.clone(), tx);
                rx
            })
            .collect();
        let order = vec![
            (ids[0].clone(), "sales".to_owned()),
            (ids[1].clone(), "sales".to_owned()),
            (ids[2].clone(), "billing".to_owned()),
        ];
        let per_place = HashMap::from([("sales", 90_500.0)]);
        watch.update(&order, &per_place);
        let places: Vec<Place> = rx.iter().map(|r| *r.borrow()).collect();
        assert_eq!(
            places,
            [
                Place {
                    position: Some(1),
                    wait_s: Some(91)
                },
                Place {
                    position: Some(2),
                    wait_s: Some(181)
                },
                Place {
                    position: Some(1),
                    wait_s: None
                },
            ]
        );
    }
}
