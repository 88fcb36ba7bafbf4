//! The offloading status: whether a handover can happen now.

use serde::{Deserialize, Serialize};

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
