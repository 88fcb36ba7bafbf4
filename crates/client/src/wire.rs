//! The visitor side of the wire, read and written through [`crate::json`] rather than
//! serde (see there for why: the widget's size). Every mapping here mirrors the protocol
//! crate's serde attributes; the tests below encode every frame, event, state and body with
//! serde (as the server does) and check that these functions read the same value back, and
//! that what they write serde reads as the value written.
//!
//! Where serde would refuse a frame with a wrong-typed optional member, these functions read
//! the member as absent. A message event's `custom` is not read: the widget does not show
//! it (a bot answer's `custom` is read for its handover directive). Its `attachment` is
//! kept as its JSON text in a `serde_json::Value::String` (`crate::media::stored` reads it):
//! a `Value` tree would link serde_json's map into the widget. So an attachment read here
//! is not the serde value; nothing writes it back.

use baton_protocol::bot::{
    BotRequest, Button, HandoverDirective, HandoverReason, MessageSource, OutcomeText, Routing,
};
use baton_protocol::ids::{AgentId, ClientMsgId, ConversationId, VisitorId};
use baton_protocol::state::{AgentRef, ConversationState, EndedBy};
use baton_protocol::status::{OffloadState, OffloadStatus};
use baton_protocol::ws::{
    ErrorCode, Event, EventBody, HandoverRequest, HandoverResponse, Role, VisitorCredentials,
    VisitorFrame, VisitorServerFrame, VisitorSession,
};

use crate::json::{Json, Obj};
use crate::media::{Media, media};
use crate::outbox::Pending;

/// Why a frame or body could not be read.
pub type Error = String;

fn parse(text: &str) -> Result<Json, Error> {
    Json::parse(text).map_err(|e| e.to_string())
}

fn missing(what: &str) -> Error {
    format!("missing or malformed {what}")
}

fn opt_str(v: &Json, key: &str) -> Option<String> {
    v.field(key).and_then(Json::str).map(str::to_owned)
}

fn req_str(v: &Json, key: &str) -> Result<String, Error> {
    v.str_at(key).ok_or_else(|| missing(key))
}

fn req_u64(v: &Json, key: &str) -> Result<u64, Error> {
    v.get(key).and_then(Json::u64).ok_or_else(|| missing(key))
}

fn opt_u32(v: &Json, key: &str) -> Option<u32> {
    v.field(key)
        .and_then(Json::u64)
        .and_then(|n| u32::try_from(n).ok())
}

// ---- small types ----

fn role(v: &Json) -> Option<Role> {
    Some(match v.str()? {
        "visitor" => Role::Visitor,
        "bot" => Role::Bot,
        "agent" => Role::Agent,
        "system" => Role::System,
        _ => return None,
    })
}

fn ended_by(v: &Json) -> Option<EndedBy> {
    Some(match v.str()? {
        "agent" => EndedBy::Agent,
        "visitor" => EndedBy::Visitor,
        "system" => EndedBy::System,
        _ => return None,
    })
}

fn reason(v: Option<&Json>) -> Option<HandoverReason> {
    Some(match v?.str()? {
        "user_request" => HandoverReason::UserRequest,
        "bot_cannot_handle" => HandoverReason::BotCannotHandle,
        "policy" => HandoverReason::Policy,
        _ => HandoverReason::Other,
    })
}

fn error_code(v: &Json) -> Option<ErrorCode> {
    v.str().map(error_code_named)
}

/// An error code by its wire name (`Unknown` for one this build does not know).
pub fn error_code_named(name: &str) -> ErrorCode {
    use ErrorCode::*;
    match name {
        "bad_request" => BadRequest,
        "bad_frame" => BadFrame,
        "too_large" => TooLarge,
        "empty" => Empty,
        "not_found" => NotFound,
        "invalid_state" => InvalidState,
        "conflict" => Conflict,
        "internal" => Internal,
        "unauthorized" => Unauthorized,
        "forbidden" => Forbidden,
        "rate_limited" => RateLimited,
        _ => Unknown,
    }
}

fn agent_ref(v: &Json) -> Result<AgentRef, Error> {
    Ok(AgentRef {
        id: AgentId(req_str(v, "id")?),
        name: req_str(v, "name")?,
    })
}

fn buttons(v: Option<&Json>) -> Vec<Button> {
    v.and_then(Json::arr)
        .unwrap_or_default()
        .iter()
        .filter_map(|b| {
            Some(Button {
                title: b.str_at("title")?,
                payload: b.str_at("payload")?,
            })
        })
        .collect()
}

// ---- states and events ----

/// A conversation state (`{"state": "queued", ...}`).
pub fn conversation_state(v: &Json) -> Result<ConversationState, Error> {
    let field = |k: &str| v.get(k).ok_or_else(|| missing(k));
    Ok(match v.get("state").and_then(Json::str) {
        Some("bot") => ConversationState::Bot,
        Some("handover_requested") => ConversationState::HandoverRequested {
            reason: reason(v.get("reason")).ok_or_else(|| missing("reason"))?,
        },
        Some("queued") => ConversationState::Queued {
            position: opt_u32(v, "position"),
            agents_online: v.field("agents_online").and_then(Json::bool),
        },
        Some("agent_joined") => ConversationState::AgentJoined {
            agent: agent_ref(field("agent")?)?,
        },
        Some("ended") => ConversationState::Ended {
            by: ended_by(field("by")?).ok_or_else(|| missing("by"))?,
        },
        Some("closed") => ConversationState::Closed {
            next_open_at: opt_str(v, "next_open_at"),
        },
        Some("disabled") => ConversationState::Disabled,
        Some("unavailable") => ConversationState::Unavailable,
        _ => return Err(missing("state")),
    })
}

/// A durable event (`{"seq": 3, "ts": "…", "type": "message", ...}`).
pub fn event(v: &Json) -> Result<Event, Error> {
    let field = |k: &str| v.get(k).ok_or_else(|| missing(k));
    let body = match v.get("type").and_then(Json::str) {
        Some("message") => EventBody::Message {
            role: role(field("role")?).ok_or_else(|| missing("role"))?,
            text: req_str(v, "text")?,
            client_msg_id: opt_str(v, "client_msg_id").map(ClientMsgId),
            agent: v.field("agent").map(agent_ref).transpose()?,
            buttons: buttons(v.get("buttons")),
            image: opt_str(v, "image"),
            attachment: v
                .field("attachment")
                .map(|a| serde_json::Value::String(a.to_string())),
            custom: None,
        },
        Some("handover_requested") => EventBody::HandoverRequested {
            reason: reason(v.get("reason")).ok_or_else(|| missing("reason"))?,
            reason_text: opt_str(v, "reason_text"),
            message_to_agent: opt_str(v, "message_to_agent"),
            queue: opt_str(v, "queue"),
            skill: opt_str(v, "skill"),
            page_url: opt_str(v, "page_url"),
            // Never sent to visitors.
            slots: Vec::new(),
            // The widget knows its own.
            locale: None,
        },
        Some("handover_outcome") => EventBody::HandoverOutcome {
            outcome: conversation_state(field("outcome")?)?,
        },
        Some("handover_cancelled") => EventBody::HandoverCancelled,
        Some("agent_joined") => EventBody::AgentJoined {
            agent: agent_ref(field("agent")?)?,
        },
        Some("agent_left") => EventBody::AgentLeft {
            agent: agent_ref(field("agent")?)?,
        },
        Some("transferred") => EventBody::Transferred {
            from: agent_ref(field("from")?)?,
            to: v.field("to").map(agent_ref).transpose()?,
            queue: opt_str(v, "queue"),
            // Never sent to visitors.
            note: None,
        },
        Some("chat_ended") => EventBody::ChatEnded {
            by: ended_by(field("by")?).ok_or_else(|| missing("by"))?,
        },
        Some("returned_to_bot") => EventBody::ReturnedToBot,
        Some(_) => EventBody::Unknown,
        None => return Err(missing("type")),
    };
    Ok(Event {
        seq: req_u64(v, "seq")?,
        ts: req_str(v, "ts")?,
        body,
    })
}

/// The offloading status (`GET /api/v1/status`, the `status` frame).
pub fn offload_status(v: &Json) -> Result<OffloadStatus, Error> {
    Ok(OffloadStatus {
        v: req_u64(v, "v")? as u32,
        state: match v.get("state").and_then(Json::str) {
            Some("open") => OffloadState::Open,
            Some("closed") => OffloadState::Closed,
            Some("disabled") => OffloadState::Disabled,
            _ => return Err(missing("state")),
        },
        agents_online: v.field("agents_online").and_then(Json::bool),
        queue_length: req_u64(v, "queue_length")? as u32,
        next_open_at: opt_str(v, "next_open_at"),
        message: opt_str(v, "message"),
    })
}

/// Reads `GET /api/v1/status`.
pub fn read_status(text: &str) -> Result<OffloadStatus, Error> {
    offload_status(&parse(text)?)
}

/// Reads a frame from the visitor socket. An unknown `type` is `Unknown` (newer servers may
/// send more); a known one with missing members is an error.
pub fn read_visitor_server_frame(text: &str) -> Result<VisitorServerFrame, Error> {
    let v = parse(text)?;
    let field = |k: &str| v.get(k).ok_or_else(|| missing(k));
    Ok(match v.get("type").and_then(Json::str) {
        Some("welcome") => VisitorServerFrame::Welcome {
            v: req_u64(&v, "v")? as u32,
            conversation_id: ConversationId(req_str(&v, "conversation_id")?),
            state: conversation_state(field("state")?)?,
            head_seq: req_u64(&v, "head_seq")?,
            read_seq: v.field("read_seq").and_then(Json::u64).unwrap_or(0),
        },
        Some("event") => VisitorServerFrame::Event {
            event: event(field("event")?)?,
        },
        Some("typing") => VisitorServerFrame::Typing {
            agent: agent_ref(field("agent")?)?,
        },
        Some("read") => VisitorServerFrame::Read {
            seq: req_u64(&v, "seq")?,
        },
        Some("ack") => VisitorServerFrame::Ack {
            client_msg_id: ClientMsgId(req_str(&v, "client_msg_id")?),
            seq: req_u64(&v, "seq")?,
        },
        Some("queue") => VisitorServerFrame::Queue {
            position: opt_u32(&v, "position"),
            wait_s: opt_u32(&v, "wait_s"),
        },
        Some("status") => VisitorServerFrame::Status {
            status: offload_status(field("status")?)?,
        },
        Some("error") => VisitorServerFrame::Error {
            code: error_code(field("code")?).ok_or_else(|| missing("code"))?,
            message: req_str(&v, "message")?,
            client_msg_id: opt_str(&v, "client_msg_id").map(ClientMsgId),
        },
        Some("pong") => VisitorServerFrame::Pong,
        Some(_) => VisitorServerFrame::Unknown,
        None => return Err(missing("type")),
    })
}

/// Writes a frame for the visitor socket.
pub fn write_visitor_frame(frame: &VisitorFrame) -> String {
    match frame {
        VisitorFrame::Hello { last_seq } => {
            Obj::new().str("type", "hello").u64("last_seq", *last_seq)
        }
        VisitorFrame::Message {
            client_msg_id,
            text,
        } => Obj::new()
            .str("type", "message")
            .str("client_msg_id", client_msg_id.as_str())
            .str("text", text),
        VisitorFrame::Cancel => Obj::new().str("type", "cancel"),
        VisitorFrame::Typing => Obj::new().str("type", "typing"),
        VisitorFrame::Read { seq } => Obj::new().str("type", "read").u64("seq", *seq),
        VisitorFrame::Ping => Obj::new().str("type", "ping"),
    }
    .text()
}

// ---- HTTP bodies ----

/// The JSON error body of a 4xx/5xx answer: its `message`.
pub fn read_api_error(text: &str) -> Option<(String, String)> {
    let v = parse(text).ok()?;
    Some((v.str_at("error")?, v.str_at("message")?))
}

/// Reads `POST /api/v1/visitor`.
pub fn read_credentials(text: &str) -> Result<VisitorCredentials, Error> {
    let v = parse(text)?;
    Ok(VisitorCredentials {
        visitor_id: VisitorId(req_str(&v, "visitor_id")?),
        token: req_str(&v, "token")?,
    })
}

fn session(v: &Json) -> Result<VisitorSession, Error> {
    Ok(VisitorSession {
        conversation_id: ConversationId(req_str(v, "conversation_id")?),
        token: req_str(v, "token")?,
        head_seq: req_u64(v, "head_seq")?,
    })
}

/// Reads a visitor session (as kept in `localStorage`).
pub fn read_session(text: &str) -> Result<VisitorSession, Error> {
    session(&parse(text)?)
}

/// Writes a visitor session.
pub fn write_session(s: &VisitorSession) -> String {
    Obj::new()
        .str("conversation_id", s.conversation_id.as_str())
        .str("token", &s.token)
        .u64("head_seq", s.head_seq)
        .text()
}

/// Reads `POST /api/v1/handover`.
pub fn read_handover_response(text: &str) -> Result<HandoverResponse, Error> {
    let v = parse(text)?;
    let field = |k: &str| v.get(k).ok_or_else(|| missing(k));
    Ok(HandoverResponse {
        state: conversation_state(field("state")?)?,
        message: req_str(&v, "message")?,
        status: offload_status(field("status")?)?,
        session: v.field("session").map(session).transpose()?,
        events: v
            .get("events")
            .and_then(Json::arr)
            .unwrap_or_default()
            .iter()
            .map(event)
            .collect::<Result<_, _>>()?,
    })
}

/// An optional string member as serde reads it: absent or null is `None`; another type
/// makes the whole value unreadable (`Err`).
fn strict_str(v: &Json, key: &str) -> Result<Option<String>, ()> {
    match v.field(key) {
        None => Ok(None),
        Some(Json::Str(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

/// An optional object member read by `read`, as serde reads it.
fn strict_obj<T>(
    v: &Json,
    key: &str,
    read: impl Fn(&Json) -> Result<T, ()>,
) -> Result<Option<T>, ()> {
    match v.field(key) {
        None => Ok(None),
        Some(o @ Json::Obj(_)) => read(o).map(Some),
        Some(_) => Err(()),
    }
}

/// A directive as serde reads it: `None` wherever serde would refuse it (a wrong-typed member),
/// so the widget follows exactly the handovers the server started.
fn directive(v: &Json) -> Option<HandoverDirective> {
    let read = || -> Result<HandoverDirective, ()> {
        let reason = match v.field("reason") {
            None => HandoverReason::default(),
            Some(r @ Json::Str(_)) => reason(Some(r)).ok_or(())?,
            Some(_) => return Err(()),
        };
        let outcome = |o: &Json| {
            strict_str(o, "message")?
                .map(|message| OutcomeText { message })
                .ok_or(())
        };
        Ok(HandoverDirective {
            reason,
            reason_text: strict_str(v, "reason_text")?,
            message_to_agent: strict_str(v, "message_to_agent")?,
            agent_available: strict_obj(v, "agent_available", outcome)?,
            agent_unavailable: strict_obj(v, "agent_unavailable", outcome)?,
            routing: strict_obj(v, "routing", |r| {
                Ok(Routing {
                    queue: strict_str(r, "queue")?,
                    skill: strict_str(r, "skill")?,
                })
            })?,
            title: strict_str(v, "title")?,
            handoff_host: strict_str(v, "handoff_host")?,
            // Checked as serde checks them, but not kept: they are for the agent.
            slots: match v.field("slots") {
                None => Vec::new(),
                Some(Json::Arr(items)) => {
                    for s in items {
                        if !matches!(s, Json::Obj(_))
                            || strict_str(s, "name")?.is_none()
                            || strict_str(s, "value")?.is_none()
                        {
                            return Err(());
                        }
                    }
                    Vec::new()
                }
                Some(_) => return Err(()),
            },
        })
    };
    read().ok()
}

/// A bot answer's handover directive, read from its `custom` as
/// `HandoverDirective::from_custom` does: Baton's `{"type": "handover", ...}`, or the legacy
/// chatroom `{"handoff_host": ...}` (a policy handover).
pub fn directive_in_custom(custom: &Json) -> Option<HandoverDirective> {
    if !matches!(custom, Json::Obj(_)) {
        return None;
    }
    match custom.get("type").and_then(Json::str) {
        Some("handover") => directive(custom),
        Some(_) => None,
        None if custom.get("handoff_host").is_some() => Some(HandoverDirective {
            reason: HandoverReason::Policy,
            ..directive(custom)?
        }),
        None => None,
    }
}

fn outcome_json(t: &Option<OutcomeText>) -> Option<Obj> {
    t.as_ref().map(|t| Obj::new().str("message", &t.message))
}

fn directive_json(d: &HandoverDirective) -> Obj {
    Obj::new()
        .str("reason", d.reason.as_str())
        .opt_str("reason_text", d.reason_text.as_deref())
        .opt_str("message_to_agent", d.message_to_agent.as_deref())
        .opt("agent_available", outcome_json(&d.agent_available))
        .opt("agent_unavailable", outcome_json(&d.agent_unavailable))
        .opt(
            "routing",
            d.routing.as_ref().map(|r| {
                Obj::new()
                    .opt_str("queue", r.queue.as_deref())
                    .opt_str("skill", r.skill.as_deref())
            }),
        )
        .opt_str("title", d.title.as_deref())
        .opt_str("handoff_host", d.handoff_host.as_deref())
}

/// Writes `POST /api/v1/visitor/message`.
pub fn write_leave_message(r: &baton_protocol::ws::LeaveMessageRequest) -> String {
    Obj::new()
        .str("visitor_id", r.visitor_id.as_str())
        .str("name", &r.name)
        .str("email", &r.email)
        .str("text", &r.text)
        .opt_str("page_url", r.page_url.as_deref())
        .text()
}

/// Writes `POST /api/v1/visitor/rating`.
pub fn write_rating(r: &baton_protocol::ws::RatingRequest) -> String {
    Obj::new()
        .str("visitor_id", r.visitor_id.as_str())
        .u64("stars", r.stars.into())
        .opt_str("comment", r.comment.as_deref())
        .text()
}

/// Writes `POST /api/v1/handover`.
pub fn write_handover_request(r: &HandoverRequest) -> String {
    Obj::new()
        .str("visitor_id", r.visitor_id.as_str())
        .opt("directive", Some(directive_json(&r.directive)))
        .opt_str("page_url", r.page_url.as_deref())
        .opt_str("locale", r.locale.as_deref())
        .text()
}

fn source_name(s: MessageSource) -> &'static str {
    match s {
        MessageSource::Text => "text",
        MessageSource::Button => "button",
        MessageSource::Init => "init",
    }
}

fn source(v: Option<&Json>) -> Option<MessageSource> {
    Some(match v?.str()? {
        "text" => MessageSource::Text,
        "button" => MessageSource::Button,
        "init" => MessageSource::Init,
        _ => return None,
    })
}

/// Writes the bot request (`POST /webhooks/rest/webhook`).
pub fn write_bot_request(r: &BotRequest) -> String {
    let wcp = r.metadata.as_ref().map(|m| {
        Obj::new().opt(
            "wcp",
            m.wcp.as_ref().map(|w| {
                Obj::new()
                    .u64("v", u64::from(w.v))
                    .opt_str(
                        "client_msg_id",
                        w.client_msg_id.as_ref().map(|c| c.as_str()),
                    )
                    .opt_str("source", w.source.map(source_name))
                    .opt_str("event", w.event.as_deref())
                    .opt_str("page_url", w.page_url.as_deref())
                    .opt_str("locale", w.locale.as_deref())
            }),
        )
    });
    Obj::new()
        .str("sender", r.sender.as_str())
        .str("message", &r.message)
        .opt("metadata", wcp)
        .text()
}

/// One item of a bot answer, as the widget shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BotItem {
    /// Plain text.
    pub text: Option<String>,
    /// Quick-reply buttons.
    pub buttons: Option<Vec<Button>>,
    /// Its image and carousel.
    pub media: Media,
    /// The handover directive its `custom` carries.
    pub handover: Option<HandoverDirective>,
}

/// Reads a bot answer (a JSON array of Rasa response items).
pub fn read_bot_answer(text: &str) -> Result<Vec<BotItem>, Error> {
    let v = parse(text)?;
    let items = v.arr().ok_or_else(|| missing("answer list"))?;
    Ok(items
        .iter()
        .map(|item| BotItem {
            text: opt_str(item, "text"),
            buttons: item.field("buttons").map(|b| buttons(Some(b))),
            media: media(opt_str(item, "image").as_deref(), item.field("attachment")),
            handover: item.field("custom").and_then(directive_in_custom),
        })
        .collect())
}

/// `GET /api/v1/widget`, as the widget uses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WidgetSettings {
    /// The site owner's texts by key.
    pub texts: Vec<(String, String)>,
    /// Their language (empty from a server before languages).
    pub locale: String,
    /// Whether the page named that language (`data-locale`) rather than the browser; the
    /// loader adds this to the server's answer.
    pub locale_chosen: bool,
    /// Messages before "Request live agent" is offered; `None`: never. A server that does not
    /// say (older than the setting) offers it from the start.
    pub request_item_after: Option<u32>,
}

/// Reads `GET /api/v1/widget`.
pub fn read_widget_settings(text: &str) -> Result<WidgetSettings, Error> {
    let v = parse(text)?;
    let texts = match v.get("texts") {
        Some(Json::Obj(members)) => members
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.str()?.to_owned())))
            .collect(),
        _ => return Err(missing("texts")),
    };
    let request_item_after = match v.get("request_item_after") {
        None => Some(0),
        Some(n) => n.u64().map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
    };
    Ok(WidgetSettings {
        texts,
        locale: v
            .get("locale")
            .and_then(Json::str)
            .unwrap_or_default()
            .to_owned(),
        locale_chosen: matches!(v.get("chosen"), Some(Json::Bool(true))),
        request_item_after,
    })
}

// ---- the outbox ----

/// Reads an outbox as kept in storage.
pub fn read_pending(text: &str) -> Result<Vec<Pending>, Error> {
    let v = parse(text)?;
    v.arr()
        .ok_or_else(|| missing("outbox list"))?
        .iter()
        .map(|p| {
            Ok(Pending {
                client_msg_id: ClientMsgId(req_str(p, "client_msg_id")?),
                conversation: opt_str(p, "conversation").map(ConversationId),
                text: req_str(p, "text")?,
                shown: opt_str(p, "shown"),
                source: source(p.field("source")),
            })
        })
        .collect()
}

/// Writes an outbox for storage.
pub fn write_pending(items: &[Pending]) -> String {
    let mut s = String::from("[");
    for (i, p) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(
            &Obj::new()
                .str("client_msg_id", p.client_msg_id.as_str())
                .opt_str("conversation", p.conversation.as_ref().map(|c| c.as_str()))
                .str("text", &p.text)
                .opt_str("shown", p.shown.as_deref())
                .opt_str("source", p.source.map(source_name))
                .text(),
        );
    }
    s.push(']');
    s
}
