//! WebSocket frames (visitor and agent sockets), durable conversation events, and the small
//! HTTP bodies around them (handover, login).
//!
//! Every durable event has a gap-free, per-conversation `seq` starting at 1. Clients send a
//! `client_msg_id` with every message; the server acknowledges it with the `seq` it got and
//! answers a retry with the same ack instead of storing the message twice.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bot::{Button, HandoverDirective, HandoverReason, Slot};
use crate::ids::{AgentId, ClientMsgId, ConversationId, VisitorId};
use crate::state::{AgentRef, ConversationState, EndedBy};
use crate::status::OffloadStatus;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
        /// A bot image URL (Rasa `image`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
        /// A bot attachment (Rasa `attachment`), passed through untouched.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attachment: Option<Value>,
        /// A bot's custom payload (Rasa `custom`), passed through untouched.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        custom: Option<Value>,
    },
    /// A handover was asked for.
    HandoverRequested {
        /// Why.
        reason: HandoverReason,
        /// Free text for reporting, from the directive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason_text: Option<String>,
        /// For the agent's eyes only: removed from what visitors receive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_to_agent: Option<String>,
        /// The queue the conversation waits in (`default` when the directive names none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        /// The skill the agent needs, when the directive names one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skill: Option<String>,
        /// The page the visitor was on, as the widget reported it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        page_url: Option<String>,
        /// What the bot collected from the visitor, for the agent.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        slots: Vec<Slot>,
        /// The language of the visitor's widget (`de`, `ar`…: the server's closest texts),
        /// in which the queue's texts and notices reach the visitor.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        locale: Option<String>,
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
    /// The agent went offline (its last console closed, the grace period over): the chat is
    /// back in its queue, at the place its request had, with its whole transcript.
    AgentLeft {
        /// The agent who left.
        agent: AgentRef,
    },
    /// The agent handed the chat on: to another agent who accepted (`to`), or back to a
    /// queue (`queue`), which it waits in again at the place its request had. The whole
    /// transcript goes with it.
    Transferred {
        /// The agent who had it.
        from: AgentRef,
        /// The agent who has it now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<AgentRef>,
        /// The queue it waits in now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        /// For the agents' eyes only: removed from what visitors receive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
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

impl Event {
    /// The event as a visitor may see it: what is meant for the agent (the bot's note and
    /// the collected slots) is removed.
    pub fn for_visitor(&self) -> Event {
        let mut e = self.clone();
        match &mut e.body {
            EventBody::HandoverRequested {
                message_to_agent,
                slots,
                ..
            } => {
                *message_to_agent = None;
                slots.clear();
            }
            EventBody::Transferred { note, .. } => *note = None,
            _ => {}
        }
        e
    }
}

impl EventBody {
    /// A plain text message with no extras.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        EventBody::Message {
            role,
            text: text.into(),
            client_msg_id: None,
            agent: None,
            buttons: vec![],
            image: None,
            attachment: None,
            custom: None,
        }
    }

    /// The snake_case `type` of this event, as on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Message { .. } => "message",
            EventBody::HandoverRequested { .. } => "handover_requested",
            EventBody::HandoverOutcome { .. } => "handover_outcome",
            EventBody::HandoverCancelled => "handover_cancelled",
            EventBody::AgentJoined { .. } => "agent_joined",
            EventBody::AgentLeft { .. } => "agent_left",
            EventBody::Transferred { .. } => "transferred",
            EventBody::ChatEnded { .. } => "chat_ended",
            EventBody::ReturnedToBot => "returned_to_bot",
            EventBody::Unknown => "unknown",
        }
    }
}

/// WebSocket close codes (see docs/protocol.md).
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Server shutting down: reconnect with back-off.
    pub const GOING_AWAY: u16 = 1001;
    /// The client stopped answering pings, or could not keep up.
    pub const POLICY: u16 = 1008;
    /// A frame was over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// Protocol error (no hello in time).
    pub const PROTOCOL: u16 = 4400;
    /// The credential or agent session is no longer valid (logged out, expired, revoked):
    /// do not reconnect with it.
    pub const UNAUTHORIZED: u16 = 4401;
}

/// Stable error codes in `error` frames and HTTP error bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body or query was malformed (HTTP only).
    BadRequest,
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
    /// No valid credential or session was presented.
    Unauthorized,
    /// The credential is valid but not for this (wrong visitor, or an Origin not allowed).
    Forbidden,
    /// Too many requests; retry after the time the answer says.
    RateLimited,
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
    /// The visitor is typing (sent at most every few seconds while it types; the agent's
    /// console shows it for [`TYPING_SHOWN_MS`] after the last one, or until a message).
    Typing,
    /// The visitor has seen the conversation up to `seq` (the agent reads "Seen").
    Read {
        /// The last seq shown to the visitor.
        seq: u64,
    },
    /// Keep-alive.
    Ping,
}

/// How long a typing indicator stays up after the last `typing` frame, in milliseconds.
pub const TYPING_SHOWN_MS: u32 = 6000;

/// How often a client sends `typing` while its user types, at most, in milliseconds.
pub const TYPING_EVERY_MS: u32 = 3000;

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
        /// How far the agent has read the conversation (0: not at all), for "Seen".
        #[serde(default, skip_serializing_if = "is_zero")]
        read_seq: u64,
    },
    /// A durable event.
    Event {
        /// The event.
        event: Event,
    },
    /// Ephemeral: the agent is typing (shown for [`TYPING_SHOWN_MS`], or until its message).
    Typing {
        /// Who.
        agent: AgentRef,
    },
    /// Ephemeral: the agent has read the conversation up to `seq` (the visitor reads "Seen").
    Read {
        /// The last seq the agent has seen.
        seq: u64,
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
        /// The estimated wait in seconds, from how fast this queue's chats were taken lately;
        /// absent when there is too little to go on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wait_s: Option<u32>,
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
    /// The queue it waits or waited in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The skill its handover needs, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
    /// The page the visitor was on when asking for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    /// What triggered the handover (`explicit_request`, `menu_item`, `not_understood`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_text: Option<String>,
    /// What the bot collected from the visitor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<Slot>,
    /// The language of the visitor's widget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
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
    /// Hand a chat this agent has to another agent (`to`, who is offered it and must accept)
    /// or back to a queue (`queue`, at once), with a note for whoever takes it.
    Transfer {
        /// Which.
        conversation_id: ConversationId,
        /// The agent to offer it to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<AgentId>,
        /// The queue to put it back in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        /// For whoever takes it over.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Answer a transfer offered to this agent: take the chat over, or decline.
    TransferAnswer {
        /// Which.
        conversation_id: ConversationId,
        /// Take it (true) or decline (false).
        accept: bool,
    },
    /// Online (routing counts the agent) or away (it does not; chats stay).
    Presence {
        /// Away from the console.
        away: bool,
    },
    /// The agent is typing in a conversation it owns (at most every [`TYPING_EVERY_MS`]).
    Typing {
        /// Which.
        conversation_id: ConversationId,
    },
    /// The agent has seen a conversation it owns up to `seq` (the visitor reads "Seen").
    Read {
        /// Which.
        conversation_id: ConversationId,
        /// The last seq shown.
        seq: u64,
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
        /// Whether this agent is a supervisor (may switch offloading on and off).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        supervisor: bool,
        /// Whether this agent said it is away.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        away: bool,
        /// Replies to insert with `/`, from the configuration.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        canned: Vec<CannedReply>,
        /// Chats other agents offer this one now (later ones come as `offer`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        offers: Vec<TransferOffer>,
    },
    /// The offloading status: after `welcome`, and whenever it changes.
    Status {
        /// Open, closed or disabled, as visitors are told it.
        status: OffloadStatus,
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
        /// How far the visitor has read it (0: not at all), for "Seen".
        #[serde(default, skip_serializing_if = "is_zero")]
        visitor_read_seq: u64,
    },
    /// A chat offered to this agent by another, as the offer is made (those open when the
    /// console connects come with `welcome`).
    Offer {
        /// The offer.
        offer: TransferOffer,
    },
    /// This agent's offer of a chat is made: `to` has it on screen now (the answer to a
    /// `transfer` to an agent).
    Offered {
        /// Which conversation.
        conversation_id: ConversationId,
        /// The agent it is offered to.
        to: AgentRef,
    },
    /// A transfer offer is over (told to both agents): taken, declined, or withdrawn (the
    /// offering agent offered the chat to someone else, or the chat ended or moved on).
    OfferEnded {
        /// Which conversation.
        conversation_id: ConversationId,
        /// The agent it was offered to.
        to: AgentRef,
        /// How it ended.
        outcome: OfferOutcome,
    },
    /// Who is on the team now: after `welcome`, then whenever presence, load or the live
    /// chats change. A supervisor also gets every live chat with its agent.
    Team {
        /// Every agent, with presence and load.
        agents: Vec<TeamMember>,
        /// The queues chats can be transferred to.
        queues: Vec<String>,
        /// Every chat with an agent now (supervisors only).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        chats: Vec<ConversationSummary>,
    },
    /// Ephemeral: the visitor of a conversation this console follows is typing.
    Typing {
        /// Which conversation.
        conversation_id: ConversationId,
    },
    /// Ephemeral: the visitor has read a conversation this console follows up to `seq`.
    Read {
        /// Which conversation.
        conversation_id: ConversationId,
        /// The last seq the visitor has seen.
        seq: u64,
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
        /// The refused message's key, when a message was refused (it will not be stored, so
        /// the console stops re-sending it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<ClientMsgId>,
    },
    /// Answer to `ping`.
    Pong,
    /// A frame type this build does not know; ignored.
    #[serde(other)]
    Unknown,
}

/// `POST /api/v1/visitor` answer: the credential a widget gets on first contact. The widget
/// keeps both in `localStorage` and sends the token as `Authorization: Bearer …` (and as
/// `?token=` on the visitor socket). The server stores only a hash of the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorCredentials {
    /// The visitor id, chosen by the server; it is the Rasa `sender`.
    pub visitor_id: VisitorId,
    /// The secret that proves the widget is this visitor.
    pub token: String,
}

/// `POST /api/v1/handover` body: the widget asks for a person, from the overflow menu or
/// because a bot answer carried a handover directive. Needs the visitor's credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverRequest {
    /// The visitor (the bot `sender`); must be the credential's visitor.
    pub visitor_id: VisitorId,
    /// Reason, texts and routing; defaults to a plain user request.
    #[serde(default)]
    pub directive: HandoverDirective,
    /// The page the visitor is on, shown to the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    /// The widget's language (`de`, `ar`…), for the sentence in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
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
    /// The durable events of the request this answers (`handover_requested` and
    /// `handover_outcome`), so the widget applies them like any other event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

/// How to reach the visitor socket of one conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorSession {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The visitor's credential (the bearer token of the request, echoed); sent as `?token=`
    /// on the socket URL.
    pub token: String,
    /// The seq of the last event in `events` of the handover answer; the widget says
    /// `hello{last_seq: head_seq}` and the socket replays everything after it.
    pub head_seq: u64,
}

/// A chat offered by one agent to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferOffer {
    /// The chat, as the console lists it.
    pub conversation: ConversationSummary,
    /// The agent offering it.
    pub from: AgentRef,
    /// Its note for the agent taking over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How a transfer offer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferOutcome {
    /// The agent it was offered to has the chat now.
    Taken,
    /// That agent declined (or could not take it: at its limit, the chat gone meanwhile).
    Declined,
    /// The offering agent offered it to someone else, or the chat ended or moved on.
    Withdrawn,
    /// A value this build does not know.
    #[serde(other)]
    Unknown,
}

/// Where an agent is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// A console is open and the agent takes chats.
    Online,
    /// A console is open; the agent said it is away (routing does not count it).
    Away,
    /// No console (after the grace period).
    Offline,
}

/// One agent as the team list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMember {
    /// Who.
    pub agent: AgentRef,
    /// Online, away or offline.
    pub presence: Presence,
    /// Chats it has now.
    pub chats: u32,
    /// Chats it may have at once (0: no limit).
    pub max_chats: u32,
    /// A supervisor.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supervisor: bool,
}

/// A reply an agent inserts by typing `/` and its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CannedReply {
    /// What the agent types after `/`.
    pub name: String,
    /// The text inserted.
    pub text: String,
}

/// `POST /api/v1/agent/login` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// Login e-mail.
    pub email: String,
    /// Password.
    pub password: String,
}

/// `POST /api/v1/visitor/message` body: a visitor leaves a message while nobody can chat
/// (with the visitor credential as bearer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaveMessageRequest {
    /// The visitor; must be the credential's.
    pub visitor_id: VisitorId,
    /// Who is writing (1 to 100 characters).
    pub name: String,
    /// Where to answer.
    pub email: String,
    /// The message (1 to `MAX_TEXT_BYTES`).
    pub text: String,
    /// The page the visitor is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
}

/// `POST /api/v1/visitor/rating` body: after an agent chat ended, the visitor rates it
/// (with the visitor credential as bearer). Rating again replaces the rating.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingRequest {
    /// The visitor; must be the credential's.
    pub visitor_id: VisitorId,
    /// 1 (bad) to 5 (very good).
    pub stars: u8,
    /// An optional comment (at most [`MAX_COMMENT_CHARS`] characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Characters of a rating's comment at most.
pub const MAX_COMMENT_CHARS: usize = 1000;

/// A rated agent chat, as supervisors list it (`GET /api/v1/ratings`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    /// The visitor's conversation.
    pub conversation_id: ConversationId,
    /// The agent who had the chat (when it ended).
    pub agent: AgentRef,
    /// 1 to 5.
    pub stars: u8,
    /// The visitor's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When it was rated, RFC 3339 UTC.
    pub rated_at: String,
}

/// `GET /api/v1/ratings` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ratings {
    /// How many chats were rated, in all.
    pub count: u32,
    /// Their mean stars (absent with none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average: Option<f64>,
    /// The latest ratings, newest first (at most 200).
    pub latest: Vec<Rating>,
}

/// A left message, as agents list it (`GET /api/v1/messages`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftMessage {
    /// Its id.
    pub id: i64,
    /// The visitor's conversation.
    pub conversation_id: ConversationId,
    /// Who wrote it.
    pub name: String,
    /// Where to answer.
    pub email: String,
    /// The message.
    pub text: String,
    /// The page the visitor was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    /// When it was left, RFC 3339 UTC.
    pub created_at: String,
    /// Who marked it done, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_by: Option<String>,
}

/// `POST /api/v1/offloading` body (a supervisor's session).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffloadingRequest {
    /// On (handover as the hours allow) or off (every handover answers `disabled`).
    pub enabled: bool,
}

/// `GET` and `POST /api/v1/offloading` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffloadingResponse {
    /// Whether offloading is switched on.
    pub enabled: bool,
    /// The supervisor who last switched it; absent while the configuration decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
    /// When, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<String>,
    /// The status visitors are told now.
    pub status: OffloadStatus,
}

/// `POST /api/v1/agent/login` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// Bearer token for the agent socket (`?token=`) and `POST /api/v1/agent/logout`.
    pub token: String,
    /// Who logged in.
    pub agent: AgentRef,
    /// When the session ends unless it is used (sliding), RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `GET /api/v1/widget`: what the widget needs from the site owner's configuration before it
/// shows anything: every visitor-facing text by key (`crate::texts::Text::key`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetSettings {
    /// Protocol version.
    pub v: u32,
    /// Texts by key, placeholders unfilled.
    pub texts: std::collections::BTreeMap<String, String>,
    /// The language of `texts` (the closest to the one asked for with `?locale=`).
    #[serde(default)]
    pub locale: String,
    /// `ltr` or `rtl`, the direction of that language.
    #[serde(default = "left_to_right")]
    pub dir: String,
    /// How many messages the visitor writes before "Request live agent" is offered (0: from
    /// the start); `null`: never (`[offloading] request_item`). Absent (a server from before
    /// the setting): from the start.
    #[serde(default = "offered_from_the_start")]
    pub request_item_after: Option<u32>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn left_to_right() -> String {
    "ltr".into()
}

fn offered_from_the_start() -> Option<u32> {
    Some(0)
}
