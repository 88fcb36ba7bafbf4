//! Notices between sockets, inside one replica and across replicas.
//!
//! A notice says *that* something changed (new events in a conversation, a queue changed, an
//! agent's sessions were revoked); whoever wakes reads what changed from the store. A
//! conversation's notice may carry the events it announces, as a shortcut a socket takes
//! only when they continue exactly from the last seq it sent; any gap sends it to the store.
//! So a lost or late notice delays a socket, never corrupts it, and a receiver that falls
//! behind simply re-reads ([`Notice::Resync`]).
//!
//! Sockets subscribe per topic: a visitor socket to its conversation, an agent socket to its
//! own topic, the queues and the conversations it shows. [`Bus`] has two implementations:
//! [`InProcessBus`] (one replica, the default) and [`NatsBus`] (several replicas on one NATS
//! server). Both fan out locally through [`Fanout`]; NATS carries notices between replicas.

mod nats;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use baton_protocol::ids::{AgentId, ConversationId};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

pub use nats::NatsBus;

/// What a notice is about; each topic is a subject (`conv.c_…`, `queue.default`, …).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// One conversation's events.
    Conversation(ConversationId),
    /// One queue's membership.
    Queue(String),
    /// Every queue (a wildcard subscription).
    AnyQueue,
    /// One agent (session revocation).
    Agent(AgentId),
    /// Agent presence changed.
    Presence,
}

/// Encodes a name as one subject token: `[A-Za-z0-9_-]` stay, other bytes become `~HH`.
fn token(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('~');
    }
    out
}

impl Topic {
    /// The subject, relative to the bus prefix.
    pub fn subject(&self) -> String {
        match self {
            Topic::Conversation(id) => format!("conv.{}", token(id.as_str())),
            Topic::Queue(q) => format!("queue.{}", token(q)),
            Topic::AnyQueue => "queue.*".into(),
            Topic::Agent(id) => format!("agent.{}", token(id.as_str())),
            Topic::Presence => "presence".into(),
        }
    }
}

/// Something changed; read the store to learn what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    /// A conversation's log grew to `head_seq`.
    Events {
        /// Which.
        conversation_id: ConversationId,
        /// Its new head.
        head_seq: u64,
        /// The new events, when the publisher had them (a shortcut, not the truth).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        events: Vec<baton_protocol::ws::Event>,
    },
    /// A conversation entered or left a queue.
    Queue {
        /// Which.
        conversation_id: ConversationId,
        /// It left the queue (accepted or cancelled).
        #[serde(default)]
        left: bool,
        /// When it entered: how consoles list it, computed once by the publisher (a
        /// shortcut; `None` when the publisher could not tell, and receivers read it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        waiting: Option<Box<baton_protocol::ws::ConversationSummary>>,
    },
    /// Agent sessions were revoked: one (`token_hash`) or all of the agent's (`None`).
    /// Sockets on those sessions close.
    Revoked {
        /// Whose.
        agent_id: AgentId,
        /// Which session, or every one.
        token_hash: Option<String>,
    },
    /// Someone is typing in a conversation: its agent (`Some`), or its visitor (`None`).
    /// Ephemeral: nothing is stored, and a lost notice only loses an indicator.
    Typing {
        /// Which.
        conversation_id: ConversationId,
        /// The agent typing, or `None` for the visitor.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<baton_protocol::state::AgentRef>,
    },
    /// The visitor (`by_agent: false`) or the conversation's agent has read it up to `seq`
    /// (stored; the notice wakes the other side's sockets).
    Read {
        /// Which.
        conversation_id: ConversationId,
        /// Read by the agent, or by the visitor.
        by_agent: bool,
        /// Up to where.
        seq: u64,
    },
    /// An agent came online or went offline.
    Presence,
    /// An agent went away or came back, or a chat started, ended or changed hands (on the
    /// presence topic): lists of agents available and consoles' team lists are stale.
    Team,
    /// A chat is offered to the agent `to` (on that agent's topic).
    Offer {
        /// Whom it is offered to.
        to: AgentId,
        /// The offer.
        offer: Box<baton_protocol::ws::TransferOffer>,
    },
    /// A transfer offer is over (on both agents' topics).
    OfferEnded {
        /// Which conversation.
        conversation_id: ConversationId,
        /// The agent it was offered to.
        to: baton_protocol::state::AgentRef,
        /// How it ended.
        outcome: baton_protocol::ws::OfferOutcome,
    },
    /// A supervisor switched offloading on or off (published on the presence topic, which
    /// every replica's status task follows).
    Offloading,
    /// Notices may have been lost (the bus reconnected, or a receiver lagged): every
    /// subscriber reads its state from the store again.
    Resync,
}

/// One topic's local receivers.
#[derive(Default)]
pub struct Fanout {
    topics: Mutex<HashMap<String, broadcast::Sender<Notice>>>,
}

/// Receives the notices of one topic; unsubscribes when dropped.
pub struct Subscription {
    rx: Option<broadcast::Receiver<Notice>>,
    subject: String,
    fanout: Arc<Fanout>,
}

impl Subscription {
    /// The next notice. A receiver that fell behind gets [`Notice::Resync`] instead of what
    /// it missed.
    pub async fn recv(&mut self) -> Notice {
        let Some(rx) = self.rx.as_mut() else {
            return std::future::pending().await;
        };
        match rx.recv().await {
            Ok(n) => n,
            Err(RecvError::Lagged(_)) => Notice::Resync,
            // The fanout never drops a sender with live receivers; wait forever if it did.
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }
}

impl Subscription {
    /// A notice that is already waiting, if any (a lagged receiver gets `Resync`).
    pub fn try_recv(&mut self) -> Option<Notice> {
        use broadcast::error::TryRecvError;
        match self.rx.as_mut()?.try_recv() {
            Ok(n) => Some(n),
            Err(TryRecvError::Lagged(_)) => Some(Notice::Resync),
            Err(TryRecvError::Empty | TryRecvError::Closed) => None,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut topics = self.fanout.topics.lock().unwrap_or_else(|p| p.into_inner());
        if topics
            .get(&self.subject)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            topics.remove(&self.subject);
        }
    }
}

/// Notices a topic's local receivers hold before the slowest one lags (and resyncs).
const TOPIC_CAPACITY: usize = 64;

impl Fanout {
    /// Subscribes to a subject (`queue.*` receives every `queue.…` subject).
    pub fn subscribe(self: &Arc<Self>, subject: String) -> Subscription {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        let rx = topics
            .entry(subject.clone())
            .or_insert_with(|| broadcast::channel(TOPIC_CAPACITY).0)
            .subscribe();
        Subscription {
            rx: Some(rx),
            subject,
            fanout: self.clone(),
        }
    }

    /// Delivers to the subject's receivers and to those of its parent wildcard.
    pub fn deliver(&self, subject: &str, notice: Notice) {
        let topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = topics.get(subject) {
            let _ = tx.send(notice.clone());
        }
        if let Some((parent, _)) = subject.rsplit_once('.')
            && let Some(tx) = topics.get(&format!("{parent}.*"))
        {
            let _ = tx.send(notice);
        }
    }

    /// Tells every receiver to read the store again.
    pub fn resync_all(&self) {
        let topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        for tx in topics.values() {
            let _ = tx.send(Notice::Resync);
        }
    }

    /// How many subjects have receivers (for tests and metrics).
    pub fn subjects(&self) -> usize {
        self.topics.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// A boxed bus future.
pub type BusFut<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Notices between sockets.
pub trait Bus: Send + Sync + 'static {
    /// `in-process` or `nats`.
    fn kind(&self) -> &'static str;
    /// Sends a notice to every subscriber of `topic`, on every replica. Never fails: a
    /// notice that cannot be sent is logged, and receivers resync when the bus recovers.
    fn publish(&self, topic: Topic, notice: Notice) -> BusFut<'_>;
    /// Receives the notices of `topic` from now on.
    fn subscribe(&self, topic: &Topic) -> Subscription;
}

/// One replica: notices go straight to local receivers.
#[derive(Default)]
pub struct InProcessBus {
    fanout: Arc<Fanout>,
}

impl InProcessBus {
    /// A bus with no subscribers yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Bus for InProcessBus {
    fn kind(&self) -> &'static str {
        "in-process"
    }

    fn publish(&self, topic: Topic, notice: Notice) -> BusFut<'_> {
        self.fanout.deliver(&topic.subject(), notice);
        Box::pin(async {})
    }

    fn subscribe(&self, topic: &Topic) -> Subscription {
        self.fanout.subscribe(topic.subject())
    }
}

/// Opens the bus named by `url`: empty for in-process, `nats://…` for NATS. `replica` names
/// this process, so it can skip its own notices coming back from NATS.
pub async fn open(url: &str, prefix: &str, replica: &str) -> Result<Arc<dyn Bus>, String> {
    if url.is_empty() || url == "in-process" {
        return Ok(Arc::new(InProcessBus::new()));
    }
    if url.starts_with("nats://") {
        return Ok(Arc::new(NatsBus::connect(url, prefix, replica).await?));
    }
    Err(format!(
        "`{url}` is not a bus: use \"in-process\" or a nats:// URL"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(n: &str) -> Topic {
        Topic::Conversation(ConversationId::from(n))
    }

    #[test]
    fn subjects_are_safe_tokens() {
        assert_eq!(conv("c_1a").subject(), "conv.c_1a");
        assert_eq!(
            Topic::Queue("Billing team.EU".into()).subject(),
            "queue.Billing~20team~2EEU"
        );
        assert_eq!(Topic::Queue(String::new()).subject(), "queue.~");
    }

    #[tokio::test]
    async fn delivers_per_topic_and_to_wildcards() {
        let bus = InProcessBus::new();
        let mut mine = bus.subscribe(&conv("c_1"));
        let mut queues = bus.subscribe(&Topic::AnyQueue);
        let n = |h| Notice::Events {
            conversation_id: ConversationId::from("c_1"),
            head_seq: h,
            events: vec![],
        };
        bus.publish(conv("c_2"), n(9)).await;
        bus.publish(conv("c_1"), n(1)).await;
        assert_eq!(mine.recv().await, n(1), "only its own topic");
        let q = Notice::Queue {
            conversation_id: ConversationId::from("c_1"),
            left: false,
            waiting: None,
        };
        bus.publish(Topic::Queue("default".into()), q.clone()).await;
        assert_eq!(queues.recv().await, q);
    }

    #[tokio::test]
    async fn a_lagging_receiver_resyncs_and_dropped_topics_are_forgotten() {
        let bus = InProcessBus::new();
        let mut slow = bus.subscribe(&conv("c_1"));
        for h in 0..(TOPIC_CAPACITY as u64 + 5) {
            bus.publish(
                conv("c_1"),
                Notice::Events {
                    conversation_id: ConversationId::from("c_1"),
                    head_seq: h,
                    events: vec![],
                },
            )
            .await;
        }
        assert_eq!(slow.recv().await, Notice::Resync);
        assert_eq!(bus.fanout.subjects(), 1);
        drop(slow);
        assert_eq!(bus.fanout.subjects(), 0);
    }
}
