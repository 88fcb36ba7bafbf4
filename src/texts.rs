//! What the widget says for each state. Pure functions of state, so they are tested
//! without a browser and every state has exactly one honest sentence.

use baton_protocol::state::ConversationState;
use baton_protocol::status::{OffloadState, OffloadStatus};

/// While a handover request is on its way.
const CHECKING: &str = "Checking whether an agent is available…";

/// The status line under the header, or `None` while the bot simply answers.
/// `notice` is the server's text for the latest handover outcome; `next_open` formats a
/// closed state's next opening in the visitor's locale.
pub fn status_line(
    state: &ConversationState,
    notice: Option<&str>,
    next_open: impl Fn(&str) -> String,
) -> Option<String> {
    let or = |fallback: &str| notice.unwrap_or(fallback).to_owned();
    Some(match state {
        ConversationState::Bot => return None,
        ConversationState::HandoverRequested { .. } => CHECKING.into(),
        ConversationState::Queued { position, .. } => {
            let waiting = or("Please wait for a couple of minutes while a live agent connects.");
            match position {
                Some(1) => format!("{waiting} You are next in line."),
                Some(n) => format!("{waiting} You are number {n} in line."),
                None => waiting,
            }
        }
        ConversationState::AgentJoined { agent } => {
            format!("You are chatting with {}.", agent.name)
        }
        ConversationState::Ended { .. } => {
            "The chat with the agent has ended. The assistant will answer your next message.".into()
        }
        ConversationState::Closed { next_open_at } => {
            let closed = or("Our team is away right now, so the assistant will keep helping you.");
            match next_open_at {
                Some(at) => format!("{closed} We are back {}.", next_open(at)),
                None => closed,
            }
        }
        ConversationState::Disabled => {
            or("Live chat is switched off at the moment. The assistant is still here to help.")
        }
        ConversationState::Unavailable => {
            or("No agent can take your chat right now. The assistant is still here to help.")
        }
    })
}

/// The status line as the widget shows it: "checking" while a request is on its way, and
/// an outcome's sentence (ended, closed, disabled, unavailable) only until the visitor
/// writes again, since the bot has taken over by then.
pub fn shown_status(
    state: &ConversationState,
    requesting: bool,
    moved_on: bool,
    notice: Option<&str>,
    next_open: impl Fn(&str) -> String,
) -> Option<String> {
    if requesting {
        return Some(CHECKING.into());
    }
    let outcome = matches!(
        state,
        ConversationState::Ended { .. }
            | ConversationState::Closed { .. }
            | ConversationState::Disabled
            | ConversationState::Unavailable
    );
    if outcome && moved_on {
        return None;
    }
    status_line(state, notice, next_open)
}

/// The short state label for the header.
pub fn header_label(state: &ConversationState) -> &'static str {
    match state {
        ConversationState::Queued { .. } | ConversationState::HandoverRequested { .. } => {
            "Waiting for an agent"
        }
        ConversationState::AgentJoined { .. } => "Live agent",
        _ => "Assistant",
    }
}

/// The server's configured sentence for `state`, from the offloading status it reported (so a
/// reload shows the site owner's text, not the widget's fallback).
pub fn configured<'a>(
    state: &ConversationState,
    offload: Option<&'a OffloadStatus>,
) -> Option<&'a str> {
    let offload = offload?;
    let matches = matches!(
        (state, offload.state),
        (ConversationState::Queued { .. }, OffloadState::Open)
            | (ConversationState::Closed { .. }, OffloadState::Closed)
            | (ConversationState::Disabled, OffloadState::Disabled)
    );
    matches.then_some(offload.message.as_deref()).flatten()
}

/// Why "Request live agent" cannot be chosen now, or `None` when it can: the conversation is
/// already with a person (or on its way), or the offloading status says nobody can come.
pub fn request_blocked(
    state: &ConversationState,
    requesting: bool,
    offload: Option<&OffloadStatus>,
    next_open: impl Fn(&str) -> String,
) -> Option<String> {
    if requesting {
        return Some(CHECKING.into());
    }
    match state {
        ConversationState::Queued { .. } => return Some("You are already in the queue.".into()),
        // On its way or with a person: the status line's own sentence says why.
        ConversationState::HandoverRequested { .. } | ConversationState::AgentJoined { .. } => {
            return status_line(state, None, &next_open);
        }
        _ => {}
    }
    let offload = offload?;
    let as_state = match offload.state {
        OffloadState::Open => return None,
        OffloadState::Closed => ConversationState::Closed {
            next_open_at: offload.next_open_at.clone(),
        },
        OffloadState::Disabled => ConversationState::Disabled,
    };
    status_line(&as_state, offload.message.as_deref(), next_open)
}
