//! Storage behind one trait: conversations and their event log, handover requests, agents,
//! sessions and presence.
//!
//! [`Store`] is the seam the service talks to. [`SqlStore`] implements it for both SQLite
//! (the embedded default: one file, no set-up) and PostgreSQL (for several replicas): every
//! query is written once (both accept `$N` placeholders) and runs through sqlx's `Any`
//! driver; only the migrations differ per backend (`migrations.rs`).
//!
//! The conversation row holds its state in real columns (never the wire JSON), and
//! [`Store::commit`] appends events only if the row's `head_seq` is still the one the caller
//! decided on: the conditional update plus the `(conversation_id, seq)` primary key mean two
//! replicas can never write the same seq. A loser gets [`StoreError::Conflict`] and decides
//! again on fresh state.

mod migrations;
mod sql;

use std::future::Future;
use std::pin::Pin;

use baton_protocol::bot::{HandoverReason, Slot};
use baton_protocol::decide::View;
use baton_protocol::ids::{AgentId, ClientMsgId, ConversationId, VisitorId};
use baton_protocol::state::{AgentRef, ConversationState, EndedBy};
use baton_protocol::ws::{Event, EventBody, LeftMessage, Rating, Role};

pub use sql::SqlStore;

/// A boxed store future (the trait is used as `dyn Store`).
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What can go wrong in the store.
#[derive(Debug)]
pub enum StoreError {
    /// The conversation changed since it was read (another request or replica wrote first):
    /// read it again and decide again.
    Conflict,
    /// The agent taking the chat has this many chats already, its limit: nothing was written.
    Full(u32),
    /// The database failed or is unreachable.
    Db(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Conflict => f.write_str("the conversation changed concurrently"),
            StoreError::Full(n) => write!(f, "the agent has {n} chats, its limit"),
            StoreError::Db(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}

/// A conversation as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// Id.
    pub id: ConversationId,
    /// Its visitor (the Rasa `sender`).
    pub visitor_id: VisitorId,
    /// Whether a visitor credential guards it (false for plain Rasa senders).
    pub has_credential: bool,
    /// State and log position, as `apply` left them.
    pub view: View,
    /// The latest handover request, if any.
    pub handover: Option<Handover>,
    /// The text of the latest visitor message, for queue previews.
    pub last_visitor_text: Option<String>,
    /// When the conversation started (Unix ms).
    pub created_ms: i64,
    /// How far the visitor has read it (seq; 0 for not at all).
    pub visitor_read_seq: u64,
    /// How far its agent has read it (seq; 0 for not at all).
    pub agent_read_seq: u64,
}

/// One handover request, as stored (one row per request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handover {
    /// Row id; orders requests made in the same millisecond.
    pub id: i64,
    /// Queue name.
    pub queue: String,
    /// Required skill.
    pub skill: Option<String>,
    /// Why.
    pub reason: HandoverReason,
    /// The bot's note for the agent.
    pub message_to_agent: Option<String>,
    /// The visitor's page.
    pub page_url: Option<String>,
    /// What triggered it (`explicit_request`, `menu_item`, …), or the bot's own words.
    pub reason_text: Option<String>,
    /// What the bot collected from the visitor.
    pub slots: Vec<Slot>,
    /// The visitor's language (the server's closest texts), when the widget said one.
    pub locale: Option<String>,
    /// When it was asked for (Unix ms).
    pub requested_ms: i64,
    /// When an agent accepted it.
    pub accepted_ms: Option<i64>,
    /// When it ended (cancelled or chat ended).
    pub ended_ms: Option<i64>,
    /// The agent who accepted it.
    pub agent_id: Option<AgentId>,
    /// `requested`, `queued`, `closed`, `disabled`, `unavailable`, `accepted`, `cancelled`
    /// or `ended`.
    pub outcome: String,
}

/// A conversation to create.
#[derive(Clone, Debug)]
pub struct NewConversation {
    /// Id.
    pub id: ConversationId,
    /// Visitor.
    pub visitor_id: VisitorId,
    /// Hash of the visitor credential; `None` for a plain Rasa sender.
    pub credential_hash: Option<String>,
    /// Now (Unix ms).
    pub now_ms: i64,
}

/// An agent's limit of chats at once, checked in the same transaction as the commit that
/// gives it one more, so two accepts at once cannot both pass it.
#[derive(Clone, Debug)]
pub struct Capacity {
    /// The agent taking the chat.
    pub agent: AgentId,
    /// Chats it may have at once (at least 1).
    pub limit: u32,
}

/// A console connection's agent, as routing and the team list see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnlineAgent {
    /// Who.
    pub id: AgentId,
    /// What it serves.
    pub scope: Scope,
    /// It said it is away.
    pub away: bool,
    /// Its own limit of chats at once, if any.
    pub max_chats: Option<u32>,
}

/// A chat one agent offered to another, waiting for its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// The chat.
    pub conversation_id: ConversationId,
    /// The agent offering it.
    pub from: AgentRef,
    /// The agent it is offered to.
    pub to: AgentId,
    /// The note for the agent taking over.
    pub note: Option<String>,
    /// When (Unix ms).
    pub created_ms: i64,
}

/// Events to append to one conversation, all or nothing.
#[derive(Clone, Debug)]
pub struct Commit {
    /// Which conversation.
    pub conversation: ConversationId,
    /// The `head_seq` the events were decided on; the commit fails with
    /// [`StoreError::Conflict`] if the stored head has moved.
    pub expected_head: u64,
    /// The view after applying `events` (its `head_seq` is the new head).
    pub view: View,
    /// The events, numbered from `expected_head + 1`.
    pub events: Vec<Event>,
    /// For a bot answer: the seq of the visitor message it answers.
    pub reply_to: Option<u64>,
    /// Now (Unix ms).
    pub now_ms: i64,
    /// When the commit gives an agent one more chat: its limit, checked in the commit.
    pub capacity: Option<Capacity>,
}

/// A visitor's rating of one agent chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRating {
    /// The handover whose agent chat it rates.
    pub handover_id: i64,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The agent who had the chat.
    pub agent: AgentRef,
    /// 1 to 5.
    pub stars: u8,
    /// The comment.
    pub comment: Option<String>,
}

/// A message a visitor leaves for agents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// The visitor's conversation.
    pub conversation_id: ConversationId,
    /// Who wrote it.
    pub name: String,
    /// Where to answer.
    pub email: String,
    /// The message.
    pub text: String,
    /// The page the visitor was on.
    pub page_url: Option<String>,
}

/// An agent account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRecord {
    /// Id.
    pub id: AgentId,
    /// Login e-mail.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// The queues and skills it serves.
    pub scope: Scope,
    /// Agent or supervisor.
    pub role: AgentRole,
    /// How many chats it may have at once; `None` follows `[offloading] max_chats`.
    pub max_chats: Option<u32>,
}

/// Which handovers an agent serves: those of its queues (every queue when it names none)
/// that need no skill or one of its skills.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Queue names; empty means every queue.
    pub queues: Vec<String>,
    /// Skill names.
    pub skills: Vec<String>,
}

impl Scope {
    /// Whether a handover to `queue` needing `skill` is this agent's to see and take.
    pub fn covers(&self, queue: &str, skill: Option<&str>) -> bool {
        (self.queues.is_empty() || self.queues.iter().any(|q| q == queue))
            && skill.is_none_or(|s| self.skills.iter().any(|k| k == s))
    }
}

/// What an account may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentRole {
    /// Chats with visitors.
    #[default]
    Agent,
    /// An agent who may also switch offloading off and on.
    Supervisor,
}

impl AgentRole {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Supervisor => "supervisor",
        }
    }
}

/// The agent behind a live session, with what it may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staff {
    /// The agent as others see it.
    pub agent: AgentRef,
    /// The queues and skills it serves.
    pub scope: Scope,
    /// Agent or supervisor.
    pub role: AgentRole,
    /// Its own limit of chats at once, if any.
    pub max_chats: Option<u32>,
    /// It said it is away (when the session was last checked).
    pub away: bool,
}

impl AgentRecord {
    /// The agent as others see it.
    pub fn as_ref(&self) -> AgentRef {
        AgentRef {
            id: self.id.clone(),
            name: self.name.clone(),
        }
    }
}

/// Who may not reuse another's idempotency key: the visitor of a conversation, or one agent.
pub fn author_of(body: &EventBody) -> Option<String> {
    match body {
        EventBody::Message {
            role: Role::Visitor,
            ..
        } => Some("visitor".into()),
        EventBody::Message {
            role: Role::Agent,
            agent: Some(a),
            ..
        } => Some(format!("agent:{}", a.id)),
        _ => None,
    }
}

/// The state columns of a conversation row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StateColumns {
    pub state: &'static str,
    pub reason: Option<String>,
    pub ended_by: Option<String>,
    pub next_open_at: Option<String>,
    pub agent_id: Option<String>,
    pub agent_name: Option<String>,
}

fn ended_by_name(by: EndedBy) -> &'static str {
    match by {
        EndedBy::Agent => "agent",
        EndedBy::Visitor => "visitor",
        EndedBy::System => "system",
    }
}

impl StateColumns {
    /// Splits a state into columns. Queue position and agent presence are not stored: they
    /// are read live when a state is shown.
    pub(crate) fn of(state: &ConversationState) -> Self {
        let mut c = StateColumns {
            state: state.name(),
            ..Default::default()
        };
        match state {
            ConversationState::HandoverRequested { reason } => {
                c.reason = Some(reason.as_str().to_owned())
            }
            ConversationState::AgentJoined { agent } => {
                c.agent_id = Some(agent.id.0.clone());
                c.agent_name = Some(agent.name.clone());
            }
            ConversationState::Ended { by } => c.ended_by = Some(ended_by_name(*by).to_owned()),
            ConversationState::Closed { next_open_at } => c.next_open_at = next_open_at.clone(),
            _ => {}
        }
        c
    }

    /// Joins columns back into a state; an unknown name is a database error.
    pub(crate) fn state(
        name: &str,
        reason: Option<String>,
        ended_by: Option<String>,
        next_open_at: Option<String>,
        agent_id: Option<String>,
        agent_name: Option<String>,
    ) -> Result<ConversationState, StoreError> {
        Ok(match name {
            "bot" => ConversationState::Bot,
            "handover_requested" => ConversationState::HandoverRequested {
                reason: HandoverReason::from_name(reason.as_deref().unwrap_or("")),
            },
            "queued" => ConversationState::Queued {
                position: None,
                agents_online: None,
            },
            "agent_joined" => ConversationState::AgentJoined {
                agent: AgentRef {
                    id: AgentId(agent_id.unwrap_or_default()),
                    name: agent_name.unwrap_or_default(),
                },
            },
            "ended" => ConversationState::Ended {
                by: match ended_by.as_deref() {
                    Some("visitor") => EndedBy::Visitor,
                    Some("system") => EndedBy::System,
                    _ => EndedBy::Agent,
                },
            },
            "closed" => ConversationState::Closed { next_open_at },
            "disabled" => ConversationState::Disabled,
            "unavailable" => ConversationState::Unavailable,
            other => return Err(StoreError::Db(format!("unknown state `{other}` stored"))),
        })
    }
}

/// The storage seam. Every method is one short transaction or query.
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    // ---- conversations ----

    /// Creates a conversation (a new visitor's, with a credential).
    fn create_conversation(&self, c: NewConversation) -> Fut<'_, ()>;
    /// The conversation of a visitor, created without a credential if there is none (a
    /// plain Rasa sender).
    fn conversation_for_sender(&self, c: NewConversation) -> Fut<'_, Conversation>;
    /// A conversation by id.
    fn conversation<'a>(&'a self, id: &'a ConversationId) -> Fut<'a, Option<Conversation>>;
    /// A conversation by its visitor.
    fn conversation_by_visitor<'a>(&'a self, v: &'a VisitorId) -> Fut<'a, Option<Conversation>>;
    /// The conversation whose visitor credential hashes to `hash`.
    fn conversation_by_credential<'a>(&'a self, hash: &'a str) -> Fut<'a, Option<Conversation>>;

    // ---- the log ----

    /// Appends events and writes the new state, if the head is still `expected_head`;
    /// returns the id of the handover row the commit created, if it created one.
    fn commit<'a>(&'a self, c: &'a Commit) -> Fut<'a, Option<i64>>;
    /// The event an author stored under an idempotency key, if any.
    fn event_by_client_msg_id<'a>(
        &'a self,
        conv: &'a ConversationId,
        author: &'a str,
        id: &'a ClientMsgId,
    ) -> Fut<'a, Option<Event>>;
    /// The bot's stored answer to the visitor message at `seq`.
    fn replies_to<'a>(&'a self, conv: &'a ConversationId, seq: u64) -> Fut<'a, Vec<Event>>;
    /// Records that the visitor (or `agent`, while it has the chat) has read the
    /// conversation up to `seq`; a mark never moves back nor past the log. Returns whether it
    /// moved.
    fn mark_read<'a>(
        &'a self,
        conv: &'a ConversationId,
        agent: Option<&'a AgentId>,
        seq: u64,
    ) -> Fut<'a, bool>;
    /// Events after `after`, oldest first, at most `limit`.
    fn events_after<'a>(
        &'a self,
        conv: &'a ConversationId,
        after: u64,
        limit: u32,
    ) -> Fut<'a, Vec<Event>>;

    // ---- the queue ----

    /// Every waiting conversation, oldest request first (within each queue, the queue order).
    fn waiting(&self) -> Fut<'_, Vec<Conversation>>;
    /// Every waiting conversation with its queue, in queue order (lighter than `waiting`).
    fn queue_order(&self) -> Fut<'_, Vec<(ConversationId, String)>>;
    /// The 1-based place of a waiting handover in its queue.
    fn queue_position(&self, handover_id: i64) -> Fut<'_, Option<u32>>;
    /// How many conversations wait, in all queues.
    fn queue_length(&self) -> Fut<'_, u32>;
    /// Handovers accepted after `since_ms`, newest last (at most `limit`): queue, requested
    /// and accepted times.
    fn recent_accepts(&self, since_ms: i64, limit: u32) -> Fut<'_, Vec<(String, i64, i64)>>;
    /// The conversations an agent is chatting in.
    fn owned_by<'a>(&'a self, agent: &'a AgentId) -> Fut<'a, Vec<Conversation>>;
    /// Every conversation with an agent now, the longest-running first.
    fn live_chats(&self) -> Fut<'_, Vec<Conversation>>;
    /// How many chats each agent with any has now.
    fn agent_loads(&self) -> Fut<'_, Vec<(AgentId, u32)>>;
    /// The chats waiting since before `since_ms` (since their request, or since their agent
    /// left), oldest first.
    fn overdue(&self, since_ms: i64) -> Fut<'_, Vec<Conversation>>;
    /// The agent chats whose agent holds no console lease at `now_ms` (offline, the grace
    /// period over), oldest first.
    fn stranded(&self, now_ms: i64) -> Fut<'_, Vec<Conversation>>;

    // ---- agents and sessions ----

    /// Creates or updates an agent by e-mail (a removed agent comes back); returns the
    /// stored record.
    fn upsert_agent<'a>(&'a self, a: &'a AgentRecord, now_ms: i64) -> Fut<'a, AgentRecord>;
    /// An active agent by login e-mail.
    fn agent_by_email<'a>(&'a self, email: &'a str) -> Fut<'a, Option<AgentRecord>>;
    /// Every active agent.
    fn agents(&self) -> Fut<'_, Vec<AgentRecord>>;
    /// The active agents managed from `source`: `config` (the `[[agents]]` list, the default
    /// for every account) or `cli` (`baton-server agent add`).
    fn agents_managed_by<'a>(&'a self, source: &'a str) -> Fut<'a, Vec<AgentRecord>>;
    /// Records where an agent is managed from.
    fn set_managed_by<'a>(&'a self, id: &'a AgentId, source: &'a str) -> Fut<'a, ()>;
    /// Marks an agent removed and ends its sessions and presence.
    fn remove_agent<'a>(&'a self, id: &'a AgentId, now_ms: i64) -> Fut<'a, ()>;
    /// Stores a session (its token's hash).
    fn create_session<'a>(
        &'a self,
        token_hash: &'a str,
        agent: &'a AgentId,
        now_ms: i64,
        expires_ms: i64,
    ) -> Fut<'a, ()>;
    /// The agent of a live session, extending it to `new_expires_ms` (sliding expiry);
    /// `None` when unknown, expired or the agent was removed.
    fn touch_session<'a>(
        &'a self,
        token_hash: &'a str,
        now_ms: i64,
        new_expires_ms: i64,
    ) -> Fut<'a, Option<Staff>>;
    /// Ends one session; returns its agent.
    fn delete_session<'a>(&'a self, token_hash: &'a str) -> Fut<'a, Option<AgentId>>;
    /// Ends every session of an agent.
    fn delete_sessions_of<'a>(&'a self, agent: &'a AgentId) -> Fut<'a, ()>;

    // ---- presence ----

    /// Records or renews one console connection's lease.
    fn renew_presence<'a>(
        &'a self,
        connection: &'a str,
        agent: &'a AgentId,
        replica: &'a str,
        lease_until_ms: i64,
    ) -> Fut<'a, ()>;
    /// A console connection closed: its lease ends at `until_ms` (now plus the grace period
    /// for reloads) unless it ends sooner.
    fn drop_presence<'a>(&'a self, connection: &'a str, until_ms: i64) -> Fut<'a, ()>;
    /// The agents holding an unexpired lease (each once), with what they serve, whether
    /// they are away, and their own limit of chats.
    fn agents_online(&self, now_ms: i64) -> Fut<'_, Vec<OnlineAgent>>;
    /// An agent says it is away (or back).
    fn set_away<'a>(&'a self, agent: &'a AgentId, away: bool) -> Fut<'a, ()>;

    // ---- transfer offers ----

    /// Offers a chat to an agent, if the offering agent has the chat now (checked in the
    /// same transaction, the conversation's row locked, so an offer never outlives its chat);
    /// `Err(StoreError::Conflict)` when it does not. Returns the offer it replaces, if any.
    fn put_offer<'a>(&'a self, offer: &'a Offer) -> Fut<'a, Option<Offer>>;
    /// Removes and returns a chat's offer.
    fn take_offer<'a>(&'a self, conv: &'a ConversationId) -> Fut<'a, Option<Offer>>;
    /// Removes and returns a chat's offer if it is made to `to` (else leaves it).
    fn take_offer_for<'a>(
        &'a self,
        conv: &'a ConversationId,
        to: &'a AgentId,
    ) -> Fut<'a, Option<Offer>>;
    /// The chats offered to an agent, oldest first.
    fn offers_to<'a>(&'a self, agent: &'a AgentId) -> Fut<'a, Vec<Offer>>;

    // ---- messages left for agents ----

    /// Stores a visitor's message; returns its id.
    fn leave_message<'a>(&'a self, m: &'a NewMessage, now_ms: i64) -> Fut<'a, i64>;
    /// The messages left, newest first: those not done, or all of the last `limit`.
    fn left_messages(&self, include_done: bool, limit: u32) -> Fut<'_, Vec<LeftMessage>>;
    /// Marks a message done; `false` when there is no such message.
    fn mark_message_done<'a>(&'a self, id: i64, by: &'a str, now_ms: i64) -> Fut<'a, bool>;

    // ---- ratings ----

    /// Stores (or replaces) the visitor's rating of one agent chat.
    fn rate<'a>(&'a self, r: &'a NewRating, now_ms: i64) -> Fut<'a, ()>;
    /// The latest ratings, newest first, with how many there are in all and their mean.
    fn ratings(&self, limit: u32) -> Fut<'_, (u32, Option<f64>, Vec<Rating>)>;

    // ---- settings changed at run time ----

    /// A setting a supervisor changed, and when (Unix ms); `None` when never set.
    fn setting<'a>(&'a self, key: &'a str) -> Fut<'a, Option<(String, i64)>>;
    /// Stores a setting.
    fn put_setting<'a>(&'a self, key: &'a str, value: &'a str, now_ms: i64) -> Fut<'a, ()>;

    // ---- the built-in bot ----

    /// What the built-in bot remembers of a conversation (an open flow, its misses).
    fn bot_memory<'a>(&'a self, conv: &'a ConversationId) -> Fut<'a, Option<String>>;
    /// Replaces what the built-in bot remembers of a conversation.
    fn set_bot_memory<'a>(
        &'a self,
        conv: &'a ConversationId,
        memory: &'a str,
        now_ms: i64,
    ) -> Fut<'a, ()>;

    /// Closes the connections (waits for those in use).
    fn close(&self) -> Fut<'_, ()>;
}

/// Opens the database named by `url`: a `postgres://` URL, or a SQLite file path.
pub async fn open(url: &str, pool_size: u32) -> Result<SqlStore, StoreError> {
    SqlStore::open(url, pool_size).await
}
