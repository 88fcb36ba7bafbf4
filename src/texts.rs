//! What the widget says for each state. Pure functions of state and of the site owner's texts
//! (`tx` looks one up; the widget ships none of its own), so they are tested without a
//! browser and every state has exactly one honest sentence.

use baton_protocol::state::ConversationState;
use baton_protocol::status::{OffloadState, OffloadStatus};
use baton_protocol::texts::{Text, fill};
use baton_protocol::ws::ErrorCode;

/// What the widget tells the visitor when the server refused something, in the widget's
/// language (the server's own sentences are English and for developers).
pub fn refusal(code: ErrorCode) -> Text {
    match code {
        ErrorCode::RateLimited => Text::RateLimited,
        ErrorCode::Forbidden | ErrorCode::InvalidState | ErrorCode::Conflict => Text::NotAllowed,
        ErrorCode::BadRequest | ErrorCode::BadFrame | ErrorCode::Empty | ErrorCode::TooLarge => {
            Text::CheckInput
        }
        ErrorCode::Unauthorized => Text::SessionExpired,
        ErrorCode::NotFound | ErrorCode::Internal | ErrorCode::Unknown => Text::ServerError,
    }
}

/// The status line under the header, or `None` while the bot simply answers.
/// `notice` is the server's text for the latest handover outcome; `next_open` formats a
/// closed state's next opening in the visitor's locale.
pub fn status_line(
    state: &ConversationState,
    notice: Option<&str>,
    next_open: impl Fn(&str) -> String,
    tx: &dyn Fn(Text) -> String,
) -> Option<String> {
    let or = |fallback: Text| notice.map_or_else(|| tx(fallback), str::to_owned);
    Some(match state {
        ConversationState::Bot => return None,
        ConversationState::HandoverRequested { .. } => tx(Text::Checking),
        ConversationState::Queued {
            position,
            agents_online,
        } => {
            let waiting = or(match agents_online {
                Some(false) => Text::WaitingNoAgents,
                _ => Text::Waiting,
            });
            match position {
                Some(1) => format!("{waiting} {}", tx(Text::QueueNext)),
                Some(n) => format!(
                    "{waiting} {}",
                    fill(&tx(Text::QueuePosition), &[("position", &n.to_string())])
                ),
                None => waiting,
            }
        }
        ConversationState::AgentJoined { agent } => {
            fill(&tx(Text::ChattingWith), &[("agent", &agent.name)])
        }
        ConversationState::Ended { .. } => tx(Text::Ended),
        ConversationState::Closed { next_open_at } => {
            let closed = or(Text::Closed);
            match next_open_at {
                Some(at) => format!(
                    "{closed} {}",
                    fill(&tx(Text::BackAt), &[("when", &next_open(at))])
                ),
                None => closed,
            }
        }
        ConversationState::Disabled => or(Text::Disabled),
        ConversationState::Unavailable => or(Text::Unavailable),
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
    tx: &dyn Fn(Text) -> String,
) -> Option<String> {
    if requesting {
        return Some(tx(Text::Checking));
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
    status_line(state, notice, next_open, tx)
}

/// A queued status line with the estimated wait added, in whole minutes (at least one).
pub fn with_wait(
    line: String,
    state: &ConversationState,
    wait_s: Option<u32>,
    tx: &dyn Fn(Text) -> String,
) -> String {
    match (state, wait_s) {
        (ConversationState::Queued { .. }, Some(s)) => format!(
            "{line} {}",
            fill(
                &tx(Text::QueueWait),
                &[("minutes", &s.div_ceil(60).max(1).to_string())]
            )
        ),
        _ => line,
    }
}

/// The short state label for the header.
pub fn header_label(state: &ConversationState) -> Text {
    match state {
        ConversationState::Queued { .. } | ConversationState::HandoverRequested { .. } => {
            Text::LabelWaiting
        }
        ConversationState::AgentJoined { .. } => Text::LabelAgent,
        _ => Text::LabelBot,
    }
}

/// The server's configured sentence for `state`, from the offloading status it reported (so a
/// reload shows the site owner's text for that state as the status gives it).
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
    tx: &dyn Fn(Text) -> String,
) -> Option<String> {
    if requesting {
        return Some(tx(Text::Checking));
    }
    match state {
        ConversationState::Queued { .. } => return Some(tx(Text::AlreadyQueued)),
        // On its way or with a person: the status line's own sentence says why.
        ConversationState::HandoverRequested { .. } | ConversationState::AgentJoined { .. } => {
            return status_line(state, None, &next_open, tx);
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
    status_line(&as_state, offload.message.as_deref(), next_open, tx)
}
