//! The offloading status (whether a handover can happen now) and the policy it comes from.

use serde::{Deserialize, Serialize};

use crate::state::OffloadDecision;

/// The three predefined offloading states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffloadState {
    /// Handover may proceed (the waiting message is shown).
    Open,
    /// Outside opening hours.
    Closed,
    /// Handover switched off, e.g. during an incident.
    Disabled,
}

/// `GET /api/v1/status`, and the `status` frame on the visitor socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffloadStatus {
    /// Protocol version.
    pub v: u32,
    /// Open, closed or disabled.
    pub state: OffloadState,
    /// Whether any agent is connected; `None` when unknown.
    pub agents_online: Option<bool>,
    /// Conversations waiting for an agent.
    pub queue_length: u32,
    /// Next opening, RFC 3339 with the schedule's offset; only when closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_open_at: Option<String>,
    /// The configured text for this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl OffloadStatus {
    /// Whether a visitor would be told the same (the queue's length aside, which changes
    /// with every request and is not pushed).
    pub fn tells_the_same(&self, other: &Self) -> bool {
        (
            self.state,
            self.agents_online,
            &self.next_open_at,
            &self.message,
        ) == (
            other.state,
            other.agents_online,
            &other.next_open_at,
            &other.message,
        )
    }
}

/// What a handover does when no agent is online.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoAgentsPolicy {
    /// Queue anyway; the next agent to come online sees it.
    #[default]
    Queue,
    /// Refuse: the conversation becomes `unavailable` and stays with the bot.
    Unavailable,
}

/// When the widget offers "Request live agent" (`[offloading] request_item`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RequestItem {
    /// From the start.
    #[default]
    Always,
    /// Never: a person is reached only through the bot.
    Never,
    /// Once the visitor has written this many messages (turns with the bot).
    AfterMessages(u32),
}

impl RequestItem {
    /// Reads `"always"`, `"never"` or `"after N messages"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        match words[..] {
            ["always"] => Ok(Self::Always),
            ["never"] => Ok(Self::Never),
            ["after", n, "message" | "messages"] => n
                .parse()
                .map(Self::AfterMessages)
                .map_err(|_| format!("`{n}` is not a number of messages")),
            _ => Err(format!(
                "`{s}` is not \"always\", \"never\" or \"after N messages\""
            )),
        }
    }

    /// Whether the item is offered after `visitor_messages` messages.
    pub fn allows(self, visitor_messages: u32) -> bool {
        self.after().is_some_and(|n| visitor_messages >= n)
    }

    /// Messages needed before the item is offered; `None` for never (the wire form).
    pub fn after(self) -> Option<u32> {
        match self {
            Self::Always => Some(0),
            Self::Never => None,
            Self::AfterMessages(n) => Some(n),
        }
    }
}

/// The offloading situation a handover is decided in. The server works it out before deciding
/// (the supervisor's switch, the opening hours in their time zone, the queue's assignment
/// mode), so the decision itself stays pure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offload {
    /// Open, closed or disabled now.
    pub state: OffloadState,
    /// When closed: the next opening, RFC 3339 with the schedule's offset.
    pub next_open_at: Option<String>,
    /// What to do when none of the handover's agents is online.
    pub when_no_agents: NoAgentsPolicy,
}

impl Offload {
    /// Open, queueing when nobody is online.
    pub fn open() -> Self {
        Self {
            state: OffloadState::Open,
            next_open_at: None,
            when_no_agents: NoAgentsPolicy::Queue,
        }
    }

    /// What a handover asked for now leads to, given how many of its agents are online.
    pub fn decision(&self, agents_online: u32) -> OffloadDecision {
        match self.state {
            OffloadState::Disabled => OffloadDecision::Disabled,
            OffloadState::Closed => OffloadDecision::Closed {
                next_open_at: self.next_open_at.clone(),
            },
            OffloadState::Open
                if agents_online == 0 && self.when_no_agents == NoAgentsPolicy::Unavailable =>
            {
                OffloadDecision::NoAgents
            }
            OffloadState::Open => OffloadDecision::Open {
                position: None,
                agents_online: Some(agents_online > 0),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_item_policy_reads_and_applies() {
        assert_eq!(RequestItem::parse("always"), Ok(RequestItem::Always));
        assert_eq!(RequestItem::parse(" never "), Ok(RequestItem::Never));
        assert_eq!(
            RequestItem::parse("after 3 messages"),
            Ok(RequestItem::AfterMessages(3))
        );
        assert!(
            RequestItem::parse("after x messages")
                .unwrap_err()
                .contains("`x`")
        );
        assert!(RequestItem::parse("sometimes").is_err());
        assert!(RequestItem::Always.allows(0));
        assert!(!RequestItem::Never.allows(99));
        assert!(!RequestItem::AfterMessages(2).allows(1));
        assert!(RequestItem::AfterMessages(2).allows(2));
        assert_eq!(RequestItem::Never.after(), None);
    }
}
