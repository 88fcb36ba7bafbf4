//! The decider: what a command does to a conversation, and what an event does to its state.
//!
//! Two pure functions, shared by every party:
//!
//! - [`decide`] takes the conversation as the server last stored it (a [`View`]), one
//!   [`Command`] and a [`Context`] (the time, the offloading situation, how many agents are
//!   online) and answers with the durable events to append, or a [`Refusal`].
//! - [`apply`] turns any durable event into state. The server runs it on the events it just
//!   decided before storing the new state; the widget and the console run it on the events
//!   they receive. Nothing else sets conversation state.
//!
//! Neither does I/O, reads a clock or looks anything up, so every rule is a unit test.

use crate::bot::{BotMessage, HandoverDirective, HandoverReason};
use crate::ids::{AgentId, ClientMsgId};
use crate::state::{AgentRef, ConversationState, EndedBy, Input, OffloadDecision, Rejected};
use crate::status::{Offload, OffloadState};
use crate::ws::{ErrorCode, Event, EventBody, Role};
use crate::{MAX_CLIENT_MSG_ID_BYTES, MAX_TEXT_BYTES, MAX_URL_BYTES};

/// What the decider needs to know of a conversation: its state and where its log stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// The state all events so far lead to.
    pub state: ConversationState,
    /// The seq of the last event applied (0 for none).
    pub head_seq: u64,
    /// The seq of the last visitor message (0 for none).
    pub last_visitor_seq: u64,
    /// The seq of the last `handover_requested` event (0 for none).
    pub last_request_seq: u64,
}

impl View {
    /// A handover was asked for after the visitor's last message (the visitor has said nothing
    /// since, e.g. the bot's answer to that message asked for it).
    pub fn asked_since_last_message(&self) -> bool {
        self.last_request_seq > 0 && self.last_request_seq > self.last_visitor_seq
    }
}

/// Something a party wants to do to a conversation.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// The visitor wrote (over the bot endpoint or the visitor socket).
    VisitorMessage {
        /// The text, as typed.
        text: String,
        /// The visitor's idempotency key; plain Rasa clients send none.
        client_msg_id: Option<ClientMsgId>,
    },
    /// The bot answered a visitor message.
    BotAnswer {
        /// The answer, in the Rasa REST shape, stored as it came.
        items: Vec<BotMessage>,
    },
    /// The bot could not be reached; the visitor is told so in the transcript.
    BotUnavailable {
        /// The sentence shown to the visitor.
        notice: String,
    },
    /// The visitor (overflow menu) or the bot (a directive) asks for a person.
    RequestHandover {
        /// Reason, texts and routing.
        directive: HandoverDirective,
        /// The page the visitor is on.
        page_url: Option<String>,
        /// The widget's language (the server's closest texts), when known.
        locale: Option<String>,
    },
    /// The visitor leaves the queue.
    Cancel,
    /// An agent takes a waiting conversation.
    Accept {
        /// Who.
        agent: AgentRef,
        /// A notice for the visitor (the queue's "an agent has been assigned" text).
        notice: Option<String>,
    },
    /// An agent writes in a conversation it owns.
    AgentMessage {
        /// Who.
        agent: AgentRef,
        /// The text.
        text: String,
        /// The agent's idempotency key.
        client_msg_id: ClientMsgId,
    },
    /// An agent ends a conversation it owns.
    End {
        /// Who.
        agent: AgentRef,
    },
    /// Baton ends a waiting or agent chat (its agent was removed, for instance).
    EndBySystem,
    /// Nobody took a waiting chat in time: the visitor is told `notice` (leave a message, or
    /// go on with the bot), and the request is answered `unavailable`.
    QueueTimeout {
        /// What the visitor reads.
        notice: String,
    },
    /// The agent of a chat went offline: the visitor is told `notice`, and the chat goes
    /// back to its queue, or ends when `end` (the site's choice).
    AgentGone {
        /// The agent that went offline (nothing happens if another agent has it by now).
        agent: AgentId,
        /// What the visitor reads.
        notice: String,
        /// End the chat instead of queueing it again.
        end: bool,
    },
    /// The chat's agent (`from`) hands it to `to` (who accepted the offer), or back to
    /// `queue`; the visitor is told `notice`.
    Transfer {
        /// The agent who has it (nothing happens if another has it by now).
        from: AgentRef,
        /// The agent who takes it over.
        to: Option<AgentRef>,
        /// The queue it goes back to (when not to an agent).
        queue: Option<String>,
        /// For whoever takes it over.
        note: Option<String>,
        /// What the visitor reads.
        notice: String,
    },
    /// Offloading closed or was switched off while the visitor waited: the request is
    /// answered again with the new situation (closed or disabled), and the bot takes over.
    Unqueue,
}

/// What the decider may know besides the conversation: all of it is read by the server
/// before deciding, so the decision itself is pure.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Now, in Unix milliseconds.
    pub now_ms: i64,
    /// The offloading situation now (for a handover: in its queue).
    pub offload: &'a Offload,
    /// How many agents are online now.
    pub agents_online: u32,
}

/// A command the decider will not carry out: a stable code and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code.
    pub code: ErrorCode,
    /// What is wrong.
    pub message: String,
}

impl Refusal {
    /// A refusal with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// The queue a handover waits in when its directive names none.
pub const DEFAULT_QUEUE: &str = "default";

/// Slots one handover may carry.
pub const MAX_SLOTS: usize = 20;

/// Bytes of one slot value at most.
pub const MAX_SLOT_BYTES: usize = 1000;

/// Checks a message text: trimmed, not empty, at most [`MAX_TEXT_BYTES`], and free of control
/// characters other than line breaks and tabs (so the largest text always fits in a frame).
pub fn check_text(text: &str) -> Result<&str, Refusal> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Refusal::new(ErrorCode::Empty, "message text is empty"));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!(
                "message text is {} bytes; the limit is {MAX_TEXT_BYTES}",
                text.len()
            ),
        ));
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Refusal::new(
            ErrorCode::BadFrame,
            format!(
                "message text contains the control character U+{:04X}",
                u32::from(c)
            ),
        ));
    }
    Ok(text)
}

/// Checks an idempotency key: 1 to [`MAX_CLIENT_MSG_ID_BYTES`] visible ASCII characters.
pub fn check_client_msg_id(id: &ClientMsgId) -> Result<(), Refusal> {
    let s = id.as_str();
    if s.is_empty() || s.len() > MAX_CLIENT_MSG_ID_BYTES {
        return Err(Refusal::new(
            ErrorCode::BadFrame,
            format!("client_msg_id must be 1 to {MAX_CLIENT_MSG_ID_BYTES} characters long"),
        ));
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Refusal::new(
            ErrorCode::BadFrame,
            "client_msg_id may only hold visible ASCII characters",
        ));
    }
    Ok(())
}

fn check_optional(name: &str, value: Option<&str>, limit: usize) -> Result<(), Refusal> {
    match value {
        Some(v) if v.len() > limit => Err(Refusal::new(
            ErrorCode::TooLarge,
            format!("{name} is {} bytes; the limit is {limit}", v.len()),
        )),
        _ => Ok(()),
    }
}

/// Checks a `page_url`: an http(s) URL of at most [`MAX_URL_BYTES`] without control characters.
pub fn check_page_url(url: Option<&str>) -> Result<(), Refusal> {
    check_optional("page_url", url, MAX_URL_BYTES)?;
    match url {
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => Err(Refusal::new(
            ErrorCode::BadRequest,
            "page_url must be an http or https URL",
        )),
        Some(u) if u.chars().any(char::is_control) => Err(Refusal::new(
            ErrorCode::BadRequest,
            "page_url contains control characters",
        )),
        _ => Ok(()),
    }
}

/// The queue name a directive asks for, bounded and trimmed; [`DEFAULT_QUEUE`] when absent.
pub fn queue_of(directive: &HandoverDirective) -> String {
    directive
        .routing
        .as_ref()
        .and_then(|r| r.queue.as_deref())
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .unwrap_or(DEFAULT_QUEUE)
        .to_owned()
}

fn owns(state: &ConversationState, agent: &AgentRef) -> Result<(), Refusal> {
    match state {
        ConversationState::AgentJoined { agent: owner } if owner.id == agent.id => Ok(()),
        other => Err(Refusal::new(
            ErrorCode::InvalidState,
            format!(
                "you do not own this conversation (it is `{}`)",
                other.name()
            ),
        )),
    }
}

/// The durable event a bot item becomes, if it holds anything at all.
fn bot_event(item: &BotMessage) -> Option<EventBody> {
    let empty = item.text.as_deref().is_none_or(str::is_empty)
        && item.buttons.as_ref().is_none_or(Vec::is_empty)
        && item.image.is_none()
        && item.attachment.is_none()
        && item.custom.is_none();
    (!empty).then(|| EventBody::Message {
        role: Role::Bot,
        text: item.text.clone().unwrap_or_default(),
        client_msg_id: None,
        agent: None,
        buttons: item.buttons.clone().unwrap_or_default(),
        image: item.image.clone(),
        attachment: item.attachment.clone(),
        custom: item.custom.clone(),
    })
}

/// What `command` does to the conversation `view`: the events to append, in order, or why
/// not. An empty list means "already done": asking for a person while queued, or again with
/// nothing said since and the same answer, changes nothing.
pub fn decide(view: &View, command: &Command, cx: &Context<'_>) -> Result<Vec<EventBody>, Refusal> {
    use ConversationState as S;
    match command {
        Command::VisitorMessage {
            text,
            client_msg_id,
        } => {
            let text = check_text(text)?;
            if let Some(id) = client_msg_id {
                check_client_msg_id(id)?;
            }
            let mut out = vec![];
            // Talking again after an ended or refused handover puts the bot back in charge.
            if crate::state::transition(&view.state, &Input::ReturnToBot).is_ok() {
                out.push(EventBody::ReturnedToBot);
            }
            out.push(EventBody::Message {
                role: Role::Visitor,
                text: text.to_owned(),
                client_msg_id: client_msg_id.clone(),
                agent: None,
                buttons: vec![],
                image: None,
                attachment: None,
                custom: None,
            });
            Ok(out)
        }
        Command::BotAnswer { items } => Ok(if view.state.bot_answers() {
            items.iter().filter_map(bot_event).collect()
        } else {
            // An agent took over while the bot was thinking: its late answer is dropped.
            vec![]
        }),
        Command::BotUnavailable { notice } => Ok(if view.state.bot_answers() {
            vec![EventBody::text(Role::System, notice.clone())]
        } else {
            vec![]
        }),
        Command::RequestHandover {
            directive,
            page_url,
            locale,
        } => {
            if matches!(
                view.state,
                S::Queued { .. } | S::AgentJoined { .. } | S::HandoverRequested { .. }
            ) {
                return Ok(vec![]);
            }
            let reason = directive.reason;
            let requested = crate::state::transition(&view.state, &Input::RequestHandover(reason))
                .map_err(|e| Refusal::new(ErrorCode::InvalidState, e.to_string()))?;
            let decision = cx.offload.decision(cx.agents_online);
            let outcome = crate::state::transition(&requested, &Input::Offload(decision))
                .map_err(|e| Refusal::new(ErrorCode::InvalidState, e.to_string()))?;
            if view.asked_since_last_message() && view.state == outcome {
                return Ok(vec![]);
            }
            check_optional(
                "message_to_agent",
                directive.message_to_agent.as_deref(),
                MAX_TEXT_BYTES,
            )?;
            check_optional(
                "reason_text",
                directive.reason_text.as_deref(),
                MAX_TEXT_BYTES,
            )?;
            let routing = directive.routing.as_ref();
            check_optional(
                "routing.queue",
                routing.and_then(|r| r.queue.as_deref()),
                64,
            )?;
            check_optional(
                "routing.skill",
                routing.and_then(|r| r.skill.as_deref()),
                64,
            )?;
            check_page_url(page_url.as_deref())?;
            check_optional("locale", locale.as_deref(), 35)?;
            if directive.slots.len() > MAX_SLOTS {
                return Err(Refusal::new(
                    ErrorCode::BadRequest,
                    format!("a handover carries at most {MAX_SLOTS} slots"),
                ));
            }
            for slot in &directive.slots {
                check_optional("slots[].name", Some(&slot.name), 64)?;
                check_optional("slots[].value", Some(&slot.value), MAX_SLOT_BYTES)?;
            }
            Ok(vec![
                EventBody::HandoverRequested {
                    reason,
                    reason_text: directive.reason_text.clone(),
                    message_to_agent: directive.message_to_agent.clone(),
                    queue: Some(queue_of(directive)),
                    skill: routing
                        .and_then(|r| r.skill.as_deref())
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                    page_url: page_url.clone(),
                    slots: directive.slots.clone(),
                    locale: locale.clone(),
                },
                EventBody::HandoverOutcome { outcome },
            ])
        }
        Command::Cancel => match view.state {
            S::Queued { .. } => Ok(vec![EventBody::HandoverCancelled]),
            ref other => Err(Refusal::new(
                ErrorCode::InvalidState,
                format!(
                    "there is no request to cancel (the conversation is `{}`)",
                    other.name()
                ),
            )),
        },
        Command::Accept { agent, notice } => match &view.state {
            S::Queued { .. } => Ok(std::iter::once(EventBody::AgentJoined {
                agent: agent.clone(),
            })
            .chain(
                notice
                    .iter()
                    .map(|text| EventBody::text(Role::System, text.clone())),
            )
            .collect()),
            S::AgentJoined { agent: owner } if owner.id == agent.id => Ok(vec![]),
            S::AgentJoined { agent: owner } => Err(Refusal::new(
                ErrorCode::Conflict,
                format!("{} already took this conversation", owner.name),
            )),
            other => Err(Refusal::new(
                ErrorCode::InvalidState,
                format!(
                    "this conversation is not waiting for an agent (it is `{}`)",
                    other.name()
                ),
            )),
        },
        Command::AgentMessage {
            agent,
            text,
            client_msg_id,
        } => {
            let text = check_text(text)?;
            check_client_msg_id(client_msg_id)?;
            owns(&view.state, agent)?;
            Ok(vec![EventBody::Message {
                role: Role::Agent,
                text: text.to_owned(),
                client_msg_id: Some(client_msg_id.clone()),
                agent: Some(agent.clone()),
                buttons: vec![],
                image: None,
                attachment: None,
                custom: None,
            }])
        }
        Command::End { agent } => {
            owns(&view.state, agent)?;
            Ok(vec![EventBody::ChatEnded { by: EndedBy::Agent }])
        }
        Command::Transfer {
            from,
            to,
            queue,
            note,
            notice,
        } => {
            owns(&view.state, from)?;
            check_optional("note", note.as_deref(), MAX_TEXT_BYTES)?;
            let queue = queue.as_deref().map(str::trim).filter(|q| !q.is_empty());
            match (to, queue) {
                (Some(to), None) if to.id == from.id => Err(Refusal::new(
                    ErrorCode::BadRequest,
                    "a chat cannot be transferred to the agent who has it",
                )),
                (Some(_), None) => Ok(()),
                (None, Some(q)) if q.len() <= 64 => Ok(()),
                (None, Some(_)) => Err(Refusal::new(
                    ErrorCode::TooLarge,
                    "a queue name is at most 64 bytes",
                )),
                _ => Err(Refusal::new(
                    ErrorCode::BadRequest,
                    "a transfer names either an agent or a queue",
                )),
            }?;
            Ok(vec![
                EventBody::text(Role::System, notice.clone()),
                EventBody::Transferred {
                    from: from.clone(),
                    to: to.clone(),
                    queue: queue.map(str::to_owned),
                    note: note
                        .as_deref()
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_owned),
                },
            ])
        }
        Command::Unqueue => Ok(match (&view.state, cx.offload.state) {
            (S::Queued { .. }, OffloadState::Closed | OffloadState::Disabled) => {
                let outcome = crate::state::transition(
                    &view.state,
                    &Input::Offload(cx.offload.decision(cx.agents_online)),
                )
                .map_err(|e| Refusal::new(ErrorCode::InvalidState, e.to_string()))?;
                vec![EventBody::HandoverOutcome { outcome }]
            }
            // Still open, or no longer waiting: nothing to tell.
            _ => vec![],
        }),
        Command::QueueTimeout { notice } => Ok(match &view.state {
            S::Queued { .. } => vec![
                EventBody::text(Role::System, notice.clone()),
                EventBody::HandoverOutcome {
                    outcome: S::Unavailable,
                },
            ],
            // Taken, cancelled or answered otherwise meanwhile.
            _ => vec![],
        }),
        Command::AgentGone { agent, notice, end } => match &view.state {
            S::AgentJoined { agent: owner } if owner.id == *agent => {
                let gone = if *end {
                    EventBody::ChatEnded {
                        by: EndedBy::System,
                    }
                } else {
                    EventBody::AgentLeft {
                        agent: owner.clone(),
                    }
                };
                Ok(vec![EventBody::text(Role::System, notice.clone()), gone])
            }
            // Taken over, ended or transferred meanwhile: nothing to do.
            _ => Ok(vec![]),
        },
        Command::EndBySystem => match view.state {
            S::Queued { .. } | S::AgentJoined { .. } => Ok(vec![EventBody::ChatEnded {
                by: EndedBy::System,
            }]),
            ref other => Err(Refusal::new(
                ErrorCode::InvalidState,
                format!(
                    "there is no chat to end (the conversation is `{}`)",
                    other.name()
                ),
            )),
        },
    }
}

/// The state-machine input a durable event stands for, if any.
fn input_of(body: &EventBody) -> Option<Result<Input, &'static str>> {
    Some(Ok(match body {
        EventBody::HandoverRequested { reason, .. } => Input::RequestHandover(*reason),
        EventBody::HandoverOutcome { outcome } => {
            return Some(match outcome {
                ConversationState::Queued {
                    position,
                    agents_online,
                } => Ok(Input::Offload(OffloadDecision::Open {
                    position: *position,
                    agents_online: *agents_online,
                })),
                ConversationState::Closed { next_open_at } => {
                    Ok(Input::Offload(OffloadDecision::Closed {
                        next_open_at: next_open_at.clone(),
                    }))
                }
                ConversationState::Disabled => Ok(Input::Offload(OffloadDecision::Disabled)),
                ConversationState::Unavailable => Ok(Input::Offload(OffloadDecision::NoAgents)),
                _ => Err("handover_outcome"),
            });
        }
        EventBody::HandoverCancelled => Input::VisitorCancelled,
        EventBody::AgentJoined { agent } => Input::AgentAccepted(agent.clone()),
        EventBody::AgentLeft { .. } => Input::AgentLeft,
        EventBody::Transferred { to, .. } => Input::Transferred(to.clone()),
        EventBody::ChatEnded { by } => Input::ChatEnded(*by),
        EventBody::ReturnedToBot => Input::ReturnToBot,
        EventBody::Message { .. } | EventBody::Unknown => return None,
    }))
}

/// What applying one event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The event was new and its state change (if any) happened.
    Changed,
    /// The event was at or below the view's head: a duplicate from a replay, ignored.
    Duplicate,
    /// The event was new, but its state change is not allowed from the current state; the
    /// log position advanced and the state stayed as it was.
    Rejected(Rejected),
}

/// Turns one durable event into state. Events at or below `view.head_seq` are duplicates
/// and change nothing, so a replay may overlap what a client already has.
pub fn apply(view: &mut View, event: &Event) -> Applied {
    if event.seq <= view.head_seq {
        return Applied::Duplicate;
    }
    view.head_seq = event.seq;
    match &event.body {
        EventBody::Message {
            role: Role::Visitor,
            ..
        } => view.last_visitor_seq = event.seq,
        EventBody::HandoverRequested { .. } => view.last_request_seq = event.seq,
        _ => {}
    }
    match input_of(&event.body) {
        None => Applied::Changed,
        Some(Err(input)) => Applied::Rejected(Rejected {
            state: view.state.name(),
            input,
        }),
        Some(Ok(input)) => match crate::state::transition(&view.state, &input) {
            Ok(next) => {
                view.state = next;
                Applied::Changed
            }
            Err(e) => Applied::Rejected(e),
        },
    }
}

/// Applies a whole log (or the tail a client has not seen yet), oldest first.
pub fn replay<'a>(view: &mut View, events: impl IntoIterator<Item = &'a Event>) {
    for e in events {
        apply(view, e);
    }
}

impl HandoverReason {
    /// The reason from its wire name (`other` for anything unknown).
    pub fn from_name(name: &str) -> Self {
        match name {
            "user_request" => Self::UserRequest,
            "bot_cannot_handle" => Self::BotCannotHandle,
            "policy" => Self::Policy,
            _ => Self::Other,
        }
    }
}
