//! The offloading status (whether a handover can happen now) and the policy it comes from.

use serde::{Deserialize, Serialize};

use crate::schedule::{Opening, Schedule};
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

/// The site owner's offloading rules, as the decider reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffloadPolicy {
    /// `false` = offloading disabled.
    pub enabled: bool,
    /// Opening hours.
    pub schedule: Schedule,
    /// What to do when no agent is online.
    pub when_no_agents: NoAgentsPolicy,
}

impl OffloadPolicy {
    /// Open, closed or disabled at `now_ms`, with the next opening when closed (formatted in
    /// the schedule's offset).
    pub fn state_at(&self, now_ms: i64) -> (OffloadState, Option<String>) {
        if !self.enabled {
            return (OffloadState::Disabled, None);
        }
        match self.schedule.at(now_ms) {
            Opening::Open => (OffloadState::Open, None),
            Opening::Closed { next_open_ms } => (
                OffloadState::Closed,
                next_open_ms.map(|ms| self.schedule.format_local(ms)),
            ),
        }
    }

    /// What a handover asked for at `now_ms` leads to, given how many agents are online.
    pub fn decision(&self, now_ms: i64, agents_online: u32) -> OffloadDecision {
        match self.state_at(now_ms) {
            (OffloadState::Disabled, _) => OffloadDecision::Disabled,
            (OffloadState::Closed, next_open_at) => OffloadDecision::Closed { next_open_at },
            (OffloadState::Open, _)
                if agents_online == 0 && self.when_no_agents == NoAgentsPolicy::Unavailable =>
            {
                OffloadDecision::NoAgents
            }
            (OffloadState::Open, _) => OffloadDecision::Open {
                position: None,
                agents_online: Some(agents_online > 0),
            },
        }
    }
}
