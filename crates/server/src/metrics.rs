//! Where the time goes: counters and total time per stage of the hot paths (store reads and
//! commits, bus publishes, socket sends, bot calls), kept in atomics, read by
//! `GET /metrics` (Prometheus text format) when `[server] metrics_token` is set.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One stage: how often it ran and for how long in total.
pub struct Stage {
    name: &'static str,
    count: AtomicU64,
    nanos: AtomicU64,
}

impl Stage {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            count: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
        }
    }

    /// Counts one run that takes no time worth measuring.
    pub fn tick(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one run that started at `start`.
    pub fn since(&self, start: Instant) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.nanos
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Committing events (one transaction).
pub static COMMIT: Stage = Stage::new("store_commit");
/// Reading a conversation row.
pub static READ_CONVERSATION: Stage = Stage::new("store_read_conversation");
/// Reading events after a seq (socket catch-up).
pub static READ_EVENTS: Stage = Stage::new("store_read_events");
/// Looking up an idempotency key.
pub static READ_CLIENT_MSG: Stage = Stage::new("store_read_client_msg");
/// Reading the queue order (once per queue change per replica).
pub static QUEUE_ORDER: Stage = Stage::new("store_queue_order");
/// Reading the waiting list (agent welcome).
pub static WAITING: Stage = Stage::new("store_waiting");
/// Counting agents online.
pub static PRESENCE: Stage = Stage::new("store_agents_online");
/// Publishing a notice.
pub static PUBLISH: Stage = Stage::new("bus_publish");
/// Encoding and sending one frame to a socket.
pub static SEND: Stage = Stage::new("socket_send");
/// Asking the bot.
pub static BOT: Stage = Stage::new("bot_answer");
/// Queue positions pushed to visitor sockets.
pub static POSITIONS: Stage = Stage::new("queue_positions_pushed");

const ALL: [&Stage; 11] = [
    &COMMIT,
    &READ_CONVERSATION,
    &READ_EVENTS,
    &READ_CLIENT_MSG,
    &QUEUE_ORDER,
    &WAITING,
    &PRESENCE,
    &PUBLISH,
    &SEND,
    &BOT,
    &POSITIONS,
];

/// The counters in Prometheus text format.
pub fn render() -> String {
    let mut out = String::from(
        "# HELP baton_stage_total Runs of each hot-path stage.\n# TYPE baton_stage_total counter\n",
    );
    for s in ALL {
        out.push_str(&format!(
            "baton_stage_total{{stage=\"{}\"}} {}\n",
            s.name,
            s.count.load(Ordering::Relaxed)
        ));
    }
    out.push_str(
        "# HELP baton_stage_seconds_total Time spent in each stage.\n# TYPE baton_stage_seconds_total counter\n",
    );
    for s in ALL {
        out.push_str(&format!(
            "baton_stage_seconds_total{{stage=\"{}\"}} {:.9}\n",
            s.name,
            s.nanos.load(Ordering::Relaxed) as f64 / 1e9
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_every_stage() {
        super::COMMIT.since(std::time::Instant::now());
        let text = super::render();
        assert!(text.contains("baton_stage_total{stage=\"store_commit\"}"));
        assert_eq!(text.matches("stage=").count(), 22);
    }
}
