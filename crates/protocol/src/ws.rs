//! WebSocket frames (visitor and agent sockets), durable conversation events, and the small
//! HTTP bodies around them (handover, login).
//!
//! Every durable event has a gap-free, per-conversation `seq` starting at 1. Clients send a
//! `client_msg_id` with every message; the server acknowledges it with the `seq` it got and
//! answers a retry with the same ack instead of storing the message twice.

use serde::{Deserialize, Serialize};

use crate::bot::{Button, HandoverDirective, HandoverReason};
use crate::ids::{ClientMsgId, ConversationId, VisitorId};
use crate::state::{AgentRef, ConversationState, EndedBy};
use crate::status::OffloadStatus;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The website visitor.
    Visitor,
    /// The bot.
    Bot,
    /// A human agent.
    Agent,
    /// Baton itself (notices).
    System,
}

/// A durable conversation event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Gap-free per-conversation sequence number, from 1.
    pub seq: u64,
    /// Server time, RFC 3339 UTC.
    pub ts: String,
    /// What happened.
    #[serde(flatten)]
    pub body: EventBody,
}

/// What a durable event says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// A message from anyone.
    Message {
        /// Author.
        role: Role,
        /// Plain text, never HTML.
        text: String,
        /// The sender's idempotency key (visitor and agent messages).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<ClientMsgId>,
        /// The agent who wrote it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<AgentRef>,
        /// Bot buttons.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        buttons: Vec<Button>,
    },
    /// A handover was asked for.
    HandoverRequested {
        /// Why.
        reason: HandoverReason,
        /// For the agent's eyes only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_to_agent: Option<String>,
    },
    /// The request was answered: queued, closed, disabled or unavailable.
    HandoverOutcome {
        /// The resulting state.
        outcome: ConversationState,
    },
    /// The visitor withdrew the request while queued.
    HandoverCancelled,
    /// An agent accepted the conversation.
    AgentJoined {
        /// The agent.
        agent: AgentRef,
    },
    /// The agent chat ended; the bot answers again.
    ChatEnded {
        /// Who ended it.
        by: EndedBy,
    },
    /// The visitor went back to the bot after an ended or refused handover.
    ReturnedToBot,
    /// An event type this build does not know; ignored.
    #[serde(other)]
    Unknown,
}

/// Stable error codes in `error` frames and HTTP error bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON or not a known frame type.
    BadFrame,
    /// The frame or message text was over the size limit.
    TooLarge,
    /// The message text was empty.
    Empty,
    /// The conversation does not exist.
    NotFound,
    /// The frame is not allowed in the conversation's current state.
    InvalidState,
    /// Another agent already took the conversation.
    Conflict,
    /// The server failed; the client may retry.
    Internal,
    /// A code this build does not know.
    #[serde(other)]
    Unknown,
}

/// Visitor → server frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VisitorFrame {
    /// First frame: the last `seq` the client has; the server replays the rest.
    Hello {
        /// Last seq seen, 0 for none.
        last_seq: u64,
    },
    /// A visitor message.
    Message {
        /// Idempotency key, reused on retries.
        client_msg_id: ClientMsgId,
        /// Plain text.
        text: String,
    },
    /// Withdraw the handover request while queued.
    Cancel,
    /// Keep-alive.
    Ping,
}

/// Server → visitor frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VisitorServerFrame {
    /// Answer to `hello`; replayed events follow.
    Welcome {
        /// Protocol version.
        v: u32,
        /// The conversation.
        conversation_id: ConversationId,
        /// Current state.
        state: ConversationState,
        /// Highest seq stored.
        head_seq: u64,
    },
    /// A durable event.
    Event {
        /// The event.
        event: Event,
    },
    /// The message with this `client_msg_id` is stored as `seq`.
    Ack {
        /// The client's key.
        client_msg_id: ClientMsgId,
        /// Where it is stored.
        seq: u64,
    },
    /// Ephemeral: the visitor's place in the queue changed.
    Queue {
        /// 1-based position.
        position: Option<u32>,
    },
    /// Ephemeral: offloading status changed.
    Status {
        /// The new status.
        status: OffloadStatus,
    },
    /// Something the client sent was refused; the connection stays open.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// What is wrong.
        message: String,
        /// The message this is about, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<ClientMsgId>,
    },
    /// Answer to `ping`.
    Pong,
    /// A frame type this build does not know; ignored.
    #[serde(other)]
    Unknown,
}

/// A conversation as listed in the agent console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The visitor.
    pub visitor_id: VisitorId,
    /// Current state.
    pub state: ConversationState,
    /// Why it was handed over.
    pub reason: HandoverReason,
    /// The bot's note for the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_to_agent: Option<String>,
    /// When the visitor started waiting, RFC 3339 UTC.
    pub waiting_since: String,
    /// The last visitor message, as a preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

/// Agent → server frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentFrame {
    /// Read a conversation's transcript without taking it.
    Open {
        /// Which.
        conversation_id: ConversationId,
    },
    /// Take a waiting conversation.
    Accept {
        /// Which.
        conversation_id: ConversationId,
    },
    /// Reply in a conversation the agent owns.
    Message {
        /// Which.
        conversation_id: ConversationId,
        /// Idempotency key.
        client_msg_id: ClientMsgId,
        /// Plain text.
        text: String,
    },
    /// End a conversation the agent owns; the visitor returns to the bot.
    End {
        /// Which.
        conversation_id: ConversationId,
    },
    /// Keep-alive.
    Ping,
}

/// Server → agent frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentServerFrame {
    /// First frame after connecting.
    Welcome {
        /// Protocol version.
        v: u32,
        /// Who is logged in.
        agent: AgentRef,
        /// Conversations waiting for an agent, oldest first.
        waiting: Vec<ConversationSummary>,
        /// Conversations this agent owns.
        mine: Vec<ConversationSummary>,
    },
    /// A conversation entered or changed in the queue.
    Waiting {
        /// The conversation.
        conversation: ConversationSummary,
    },
    /// A conversation left the queue (accepted, cancelled or refused).
    Dequeued {
        /// Which.
        conversation_id: ConversationId,
    },
    /// The whole transcript of a conversation, answering `open` or `accept`.
    Transcript {
        /// The conversation.
        conversation: ConversationSummary,
        /// All its durable events, oldest first.
        events: Vec<Event>,
    },
    /// A durable event in a conversation this agent owns.
    Event {
        /// Which conversation.
        conversation_id: ConversationId,
        /// The event.
        event: Event,
    },
    /// The agent's message is stored as `seq`.
    Ack {
        /// The client's key.
        client_msg_id: ClientMsgId,
        /// Where it is stored.
        seq: u64,
    },
    /// Something was refused; the connection stays open.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// What is wrong.
        message: String,
    },
    /// Answer to `ping`.
    Pong,
    /// A frame type this build does not know; ignored.
    #[serde(other)]
    Unknown,
}

/// `POST /api/v1/handover` body: the widget asks for a person, from the overflow menu or
/// because a bot answer carried a handover directive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverRequest {
    /// The visitor (the bot `sender`).
    pub visitor_id: VisitorId,
    /// Reason, texts and routing; defaults to a plain user request.
    #[serde(default)]
    pub directive: HandoverDirective,
}

/// `POST /api/v1/handover` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverResponse {
    /// Queued, closed, disabled or unavailable.
    pub state: ConversationState,
    /// The text to show the visitor for that state.
    pub message: String,
    /// The offloading status the decision was based on.
    pub status: OffloadStatus,
    /// Present when queued: how to reach the agent socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<VisitorSession>,
}

/// Credentials for the visitor socket of one conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorSession {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Bearer token scoped to that conversation; sent as `?token=` on the socket URL.
    pub token: String,
    /// The seq of the last event the widget has already shown (the bot transcript);
    /// the widget says `hello{last_seq: head_seq}`.
    pub head_seq: u64,
}

/// `POST /api/v1/agent/login` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// Login e-mail.
    pub email: String,
    /// Password.
    pub password: String,
}

/// `POST /api/v1/agent/login` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// Bearer token for the agent socket (`?token=`).
    pub token: String,
    /// Who logged in.
    pub agent: AgentRef,
}
