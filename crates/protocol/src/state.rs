//! The conversation state machine: one enum, one pure transition function.
//!
//! ```text
//! Bot ─request─▶ HandoverRequested ─open─────▶ Queued ─accepted─▶ AgentJoined ─end─▶ Ended ─return─▶ Bot
//!                                  ├─closed───▶ Closed      (bot keeps answering)
//!                                  ├─disabled─▶ Disabled    (bot keeps answering)
//!                                  └─no agent─▶ Unavailable (bot keeps answering)
//! Queued ─cancel─▶ Bot
//! ```
//!
//! `crate::decide::apply` maps each durable event to an input of this function, so the
//! server, the widget and the console all follow the same machine. A rejected transition is
//! a value, not a panic, so a late or duplicated event can never wedge a conversation.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::bot::HandoverReason;
use crate::ids::AgentId;

/// An agent as shown to visitors and other agents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRef {
    /// Account id.
    pub id: AgentId,
    /// Display name.
    pub name: String,
}

/// Who ended a chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// The agent ended it.
    Agent,
    /// The visitor ended it.
    Visitor,
    /// The server ended it (timeout, shutdown, offloading switched off).
    System,
}

/// Where a conversation stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConversationState {
    /// The bot answers.
    #[default]
    Bot,
    /// A handover was asked for; the server is deciding.
    HandoverRequested {
        /// Why.
        reason: HandoverReason,
    },
    /// Waiting for an agent. The visitor may keep talking; the bot still answers.
    Queued {
        /// 1-based place in the queue, when known.
        position: Option<u32>,
        /// Whether any agent is connected, when known.
        agents_online: Option<bool>,
    },
    /// An agent owns the conversation.
    AgentJoined {
        /// The agent.
        agent: AgentRef,
    },
    /// The agent chat is over; the next visitor message goes to the bot.
    Ended {
        /// Who ended it.
        by: EndedBy,
    },
    /// Outside opening hours; the bot keeps answering.
    Closed {
        /// Next opening, RFC 3339 with offset, when known.
        next_open_at: Option<String>,
    },
    /// Handover is switched off; the bot keeps answering.
    Disabled,
    /// No agent can be assigned; the bot keeps answering.
    Unavailable,
}

/// What the server learned about offloading when a handover was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OffloadDecision {
    /// Open: the conversation is queued.
    Open {
        /// Place in the queue.
        position: Option<u32>,
        /// Whether any agent is connected.
        agents_online: Option<bool>,
    },
    /// Outside opening hours.
    Closed {
        /// Next opening.
        next_open_at: Option<String>,
    },
    /// Switched off.
    Disabled,
    /// Open, but no agent can be assigned under the configured policy.
    NoAgents,
}

/// Everything that can happen to a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The visitor or the bot asked for a person.
    RequestHandover(HandoverReason),
    /// The server's offloading answer to a request.
    Offload(OffloadDecision),
    /// The visitor's place in the queue changed.
    QueueUpdate(Option<u32>),
    /// An agent accepted the conversation.
    AgentAccepted(AgentRef),
    /// The visitor withdrew the request while queued.
    VisitorCancelled,
    /// The agent went offline; the chat waits again.
    AgentLeft,
    /// The agent handed the chat to another agent (`Some`, who accepted), or back to a queue.
    Transferred(Option<AgentRef>),
    /// The chat was ended.
    ChatEnded(EndedBy),
    /// The visitor talks to the bot again after an ended chat.
    ReturnToBot,
}

/// Which endpoint carries the visitor's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `POST /webhooks/rest/webhook`.
    BotHttp,
    /// The visitor WebSocket.
    AgentSocket,
}

/// A transition that the machine does not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The state name.
    pub state: &'static str,
    /// The input name.
    pub input: &'static str,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not allowed in state `{}`",
            self.input, self.state
        )
    }
}

impl std::error::Error for Rejected {}

impl ConversationState {
    /// The snake_case name, as on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::HandoverRequested { .. } => "handover_requested",
            Self::Queued { .. } => "queued",
            Self::AgentJoined { .. } => "agent_joined",
            Self::Ended { .. } => "ended",
            Self::Closed { .. } => "closed",
            Self::Disabled => "disabled",
            Self::Unavailable => "unavailable",
        }
    }

    /// Which endpoint the widget sends visitor messages to in this state.
    pub fn transport(&self) -> Transport {
        match self {
            Self::Queued { .. } | Self::AgentJoined { .. } => Transport::AgentSocket,
            _ => Transport::BotHttp,
        }
    }

    /// Whether the bot answers visitor messages in this state (everywhere but with an agent).
    pub fn bot_answers(&self) -> bool {
        !matches!(self, Self::AgentJoined { .. })
    }

    /// Whether a new handover may be asked for from here.
    pub fn can_request_handover(&self) -> bool {
        transition(self, &Input::RequestHandover(HandoverReason::UserRequest)).is_ok()
    }
}

impl Input {
    /// The snake_case name, for logs and the transition table.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RequestHandover(_) => "request_handover",
            Self::Offload(OffloadDecision::Open { .. }) => "offload_open",
            Self::Offload(OffloadDecision::Closed { .. }) => "offload_closed",
            Self::Offload(OffloadDecision::Disabled) => "offload_disabled",
            Self::Offload(OffloadDecision::NoAgents) => "offload_no_agents",
            Self::QueueUpdate(_) => "queue_update",
            Self::AgentAccepted(_) => "agent_accepted",
            Self::AgentLeft => "agent_left",
            Self::Transferred(Some(_)) => "transferred_to_agent",
            Self::Transferred(None) => "transferred_to_queue",
            Self::VisitorCancelled => "visitor_cancelled",
            Self::ChatEnded(_) => "chat_ended",
            Self::ReturnToBot => "return_to_bot",
        }
    }
}

/// The one transition function. Pure: same state and input, same answer.
pub fn transition(state: &ConversationState, input: &Input) -> Result<ConversationState, Rejected> {
    use ConversationState as S;
    use Input as I;
    let next = match (state, input) {
        // A person can be asked for whenever the bot is the one answering.
        (
            S::Bot | S::Ended { .. } | S::Closed { .. } | S::Disabled | S::Unavailable,
            I::RequestHandover(reason),
        ) => S::HandoverRequested { reason: *reason },

        (S::HandoverRequested { .. }, I::Offload(decision)) => match decision {
            OffloadDecision::Open {
                position,
                agents_online,
            } => S::Queued {
                position: *position,
                agents_online: *agents_online,
            },
            OffloadDecision::Closed { next_open_at } => S::Closed {
                next_open_at: next_open_at.clone(),
            },
            OffloadDecision::Disabled => S::Disabled,
            OffloadDecision::NoAgents => S::Unavailable,
        },

        (S::Queued { agents_online, .. }, I::QueueUpdate(position)) => S::Queued {
            position: *position,
            agents_online: *agents_online,
        },
        // Offloading switched off or closing while the visitor waits.
        (S::Queued { .. }, I::Offload(OffloadDecision::Disabled)) => S::Disabled,
        // Nobody took it in time.
        (S::Queued { .. }, I::Offload(OffloadDecision::NoAgents)) => S::Unavailable,
        (S::Queued { .. }, I::Offload(OffloadDecision::Closed { next_open_at })) => S::Closed {
            next_open_at: next_open_at.clone(),
        },
        (S::Queued { .. }, I::AgentAccepted(agent)) => S::AgentJoined {
            agent: agent.clone(),
        },
        (S::Queued { .. }, I::VisitorCancelled) => S::Bot,
        // Its agent went offline: waiting again (the position follows as a queue update).
        (S::AgentJoined { .. }, I::AgentLeft) => S::Queued {
            position: None,
            agents_online: None,
        },
        // Handed over: to the agent who accepted, or waiting again in a queue.
        (S::AgentJoined { .. }, I::Transferred(Some(agent))) => S::AgentJoined {
            agent: agent.clone(),
        },
        (S::AgentJoined { .. }, I::Transferred(None)) => S::Queued {
            position: None,
            agents_online: None,
        },
        (S::Queued { .. } | S::AgentJoined { .. }, I::ChatEnded(by)) => S::Ended { by: *by },

        (S::Ended { .. } | S::Closed { .. } | S::Disabled | S::Unavailable, I::ReturnToBot) => {
            S::Bot
        }

        _ => {
            return Err(Rejected {
                state: state.name(),
                input: input.name(),
            });
        }
    };
    Ok(next)
}
