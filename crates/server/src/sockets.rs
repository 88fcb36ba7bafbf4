//! The visitor and agent WebSocket loops.
//!
//! Both loops wait on three things: a frame from the client, a notice from the hub, and the
//! shutdown signal. Durable events are always read from the store after the last seq sent,
//! never taken from the notice, so a slow socket cannot miss or reorder events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use baton_protocol::PROTOCOL_VERSION;
use baton_protocol::ids::ConversationId;
use baton_protocol::state::AgentRef;
use baton_protocol::ws::{
    AgentFrame, AgentServerFrame, ErrorCode, Event, VisitorFrame, VisitorServerFrame,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::broadcast::error::RecvError;

use crate::hub::Notice;
use crate::service::{Refusal, Service};

/// How long a visitor has to say `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Events sent per store read while catching up.
const PAGE: usize = 500;

/// Close codes (see docs/protocol.md).
pub mod close {
    /// Server shutting down: reconnect with back-off.
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error (no hello in time).
    pub const PROTOCOL: u16 = 4400;
}

async fn send<T: Serialize>(ws: &mut WebSocket, frame: &T) -> bool {
    let text = serde_json::to_string(frame).expect("frames serialise");
    ws.send(Message::Text(text.into())).await.is_ok()
}

async fn close_with(ws: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = ws
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}

/// What a client frame turned out to be.
enum Incoming<T> {
    Frame(T),
    /// Not a frame we understand: answer with an error frame and keep going.
    Bad(String),
    /// Ping/pong and other control frames.
    Ignore,
    /// The client went away.
    Gone,
}

fn decode<T: DeserializeOwned>(msg: Option<Result<Message, axum::Error>>) -> Incoming<T> {
    match msg {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Incoming::Gone,
        Some(Ok(Message::Text(text))) => match serde_json::from_str(&text) {
            Ok(frame) => Incoming::Frame(frame),
            Err(e) => Incoming::Bad(format!("not a valid frame: {e}")),
        },
        Some(Ok(Message::Binary(_))) => {
            Incoming::Bad("binary frames are not supported; send JSON text".into())
        }
        Some(Ok(_)) => Incoming::Ignore,
    }
}

/// Sends the durable events after `*cursor`, each wrapped by `frame`, advancing the cursor.
async fn catch_up<F: Serialize>(
    svc: &Service,
    ws: &mut WebSocket,
    id: &ConversationId,
    cursor: &mut u64,
    frame: impl Fn(Event) -> F,
) -> Result<(), Refusal> {
    loop {
        let events = svc.events_after(id, *cursor, PAGE)?;
        let n = events.len();
        for event in events {
            let seq = event.seq;
            if !send(ws, &frame(event)).await {
                return Ok(());
            }
            *cursor = seq;
        }
        if n < PAGE {
            return Ok(());
        }
    }
}

/// Sends a visitor the events after `*sent`.
async fn catch_up_visitor(
    svc: &Service,
    ws: &mut WebSocket,
    id: &ConversationId,
    sent: &mut u64,
) -> Result<(), Refusal> {
    catch_up(svc, ws, id, sent, |event| VisitorServerFrame::Event {
        event,
    })
    .await
}

/// One visitor socket for one conversation.
pub async fn visitor(svc: Arc<Service>, id: ConversationId, mut ws: WebSocket) {
    let mut notices = svc.hub.subscribe();
    let mut shutdown = svc.hub.shutdown_signal();

    // The client starts with hello{last_seq}; anything else before it is refused.
    let deadline = tokio::time::Instant::now() + HELLO_TIMEOUT;
    let mut sent = loop {
        let msg = match tokio::time::timeout_at(deadline, ws.recv()).await {
            Ok(msg) => msg,
            Err(_) => return close_with(&mut ws, close::PROTOCOL, "no hello").await,
        };
        match decode::<VisitorFrame>(msg) {
            Incoming::Frame(VisitorFrame::Hello { last_seq }) => break last_seq,
            Incoming::Frame(_) => {
                let err = VisitorServerFrame::Error {
                    code: ErrorCode::InvalidState,
                    message: "send hello first".into(),
                    client_msg_id: None,
                };
                send(&mut ws, &err).await;
            }
            Incoming::Bad(message) => {
                send(
                    &mut ws,
                    &VisitorServerFrame::Error {
                        code: ErrorCode::BadFrame,
                        message,
                        client_msg_id: None,
                    },
                )
                .await;
            }
            Incoming::Ignore => {}
            Incoming::Gone => return,
        }
    };

    let Ok(conv) = svc.conversation(&id) else {
        return;
    };
    let welcome = VisitorServerFrame::Welcome {
        v: PROTOCOL_VERSION,
        conversation_id: id.clone(),
        state: conv.state,
        head_seq: conv.head_seq,
    };
    if !send(&mut ws, &welcome).await
        || catch_up_visitor(&svc, &mut ws, &id, &mut sent)
            .await
            .is_err()
    {
        return;
    }
    let mut position = None;
    let update_position = async |ws: &mut WebSocket, position: &mut Option<u32>| {
        let now = svc.queue_position(&id).ok().flatten();
        if now != *position {
            *position = now;
            send(ws, &VisitorServerFrame::Queue { position: now }).await;
        }
    };
    update_position(&mut ws, &mut position).await;

    loop {
        tokio::select! {
            msg = ws.recv() => match decode::<VisitorFrame>(msg) {
                Incoming::Frame(frame) => {
                    let reply = match frame {
                        VisitorFrame::Hello { .. } => Some(VisitorServerFrame::Error {
                            code: ErrorCode::InvalidState, message: "hello was already sent".into(), client_msg_id: None }),
                        VisitorFrame::Ping => Some(VisitorServerFrame::Pong),
                        VisitorFrame::Cancel => svc.cancel(&id).err().map(|r| VisitorServerFrame::Error {
                            code: r.code, message: r.message, client_msg_id: None }),
                        VisitorFrame::Message { client_msg_id, text } => Some(match svc.visitor_message(&id, &client_msg_id, &text) {
                            Ok(stored) => VisitorServerFrame::Ack { client_msg_id, seq: stored.seq },
                            Err(r) => VisitorServerFrame::Error { code: r.code, message: r.message, client_msg_id: Some(client_msg_id) },
                        }),
                    };
                    if let Some(reply) = reply
                        && !send(&mut ws, &reply).await
                    {
                        return;
                    }
                }
                Incoming::Bad(message) => {
                    send(&mut ws, &VisitorServerFrame::Error { code: ErrorCode::BadFrame, message, client_msg_id: None }).await;
                }
                Incoming::Ignore => {}
                Incoming::Gone => return,
            },
            notice = notices.recv() => {
                match notice {
                    Ok(Notice::Conversation(c)) if c == id => {
                        if catch_up_visitor(&svc, &mut ws, &id, &mut sent).await.is_err() { return; }
                        update_position(&mut ws, &mut position).await;
                    }
                    Ok(Notice::Waiting(_) | Notice::Dequeued(_)) => update_position(&mut ws, &mut position).await,
                    Ok(Notice::Conversation(_)) => {}
                    Err(RecvError::Lagged(_)) => {
                        if catch_up_visitor(&svc, &mut ws, &id, &mut sent).await.is_err() { return; }
                        update_position(&mut ws, &mut position).await;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
            _ = shutdown.changed() => return close_with(&mut ws, close::GOING_AWAY, "server shutting down").await,
        }
    }
}

/// Sends an agent the events of one watched conversation after its cursor.
async fn catch_up_agent(
    svc: &Service,
    ws: &mut WebSocket,
    id: &ConversationId,
    cursor: &mut u64,
) -> Result<(), Refusal> {
    catch_up(svc, ws, id, cursor, |event| AgentServerFrame::Event {
        conversation_id: id.clone(),
        event,
    })
    .await
}

async fn agent_welcome(svc: &Service, ws: &mut WebSocket, agent: &AgentRef) -> bool {
    match svc.agent_lists(&agent.id) {
        Ok((waiting, mine)) => {
            send(
                ws,
                &AgentServerFrame::Welcome {
                    v: PROTOCOL_VERSION,
                    agent: agent.clone(),
                    waiting,
                    mine,
                },
            )
            .await
        }
        Err(r) => {
            send(
                ws,
                &AgentServerFrame::Error {
                    code: r.code,
                    message: r.message,
                },
            )
            .await
        }
    }
}

/// One agent console socket.
pub async fn agent(svc: Arc<Service>, agent: AgentRef, mut ws: WebSocket) {
    let _online = svc.hub.agent_online();
    let mut notices = svc.hub.subscribe();
    let mut shutdown = svc.hub.shutdown_signal();
    // Conversations whose transcript this console shows, with the last seq sent.
    let mut watching: HashMap<ConversationId, u64> = HashMap::new();
    if !agent_welcome(&svc, &mut ws, &agent).await {
        return;
    }
    loop {
        tokio::select! {
            msg = ws.recv() => match decode::<AgentFrame>(msg) {
                Incoming::Frame(frame) => {
                    let result = handle_agent_frame(&svc, &agent, &mut ws, &mut watching, frame).await;
                    if let Err(r) = result
                        && !send(&mut ws, &AgentServerFrame::Error { code: r.code, message: r.message }).await
                    {
                        return;
                    }
                }
                Incoming::Bad(message) => {
                    send(&mut ws, &AgentServerFrame::Error { code: ErrorCode::BadFrame, message }).await;
                }
                Incoming::Ignore => {}
                Incoming::Gone => return,
            },
            notice = notices.recv() => {
                let ok = match notice {
                    Ok(Notice::Conversation(id)) => match watching.get_mut(&id) {
                        Some(cursor) => catch_up_agent(&svc, &mut ws, &id, cursor).await.is_ok(),
                        None => true,
                    },
                    Ok(Notice::Waiting(conversation)) => send(&mut ws, &AgentServerFrame::Waiting { conversation }).await,
                    Ok(Notice::Dequeued(conversation_id)) => send(&mut ws, &AgentServerFrame::Dequeued { conversation_id }).await,
                    Err(RecvError::Lagged(_)) => {
                        let mut ok = agent_welcome(&svc, &mut ws, &agent).await;
                        for (id, cursor) in watching.iter_mut() {
                            ok &= catch_up_agent(&svc, &mut ws, id, cursor).await.is_ok();
                        }
                        ok
                    }
                    Err(RecvError::Closed) => false,
                };
                if !ok { return; }
            }
            _ = shutdown.changed() => return close_with(&mut ws, close::GOING_AWAY, "server shutting down").await,
        }
    }
}

async fn handle_agent_frame(
    svc: &Service,
    agent: &AgentRef,
    ws: &mut WebSocket,
    watching: &mut HashMap<ConversationId, u64>,
    frame: AgentFrame,
) -> Result<(), Refusal> {
    match frame {
        AgentFrame::Ping => {
            send(ws, &AgentServerFrame::Pong).await;
        }
        AgentFrame::Open { conversation_id } => {
            send_transcript(svc, ws, watching, conversation_id).await?
        }
        AgentFrame::Accept { conversation_id } => {
            svc.accept(agent, &conversation_id)?;
            send_transcript(svc, ws, watching, conversation_id).await?;
        }
        AgentFrame::Message {
            conversation_id,
            client_msg_id,
            text,
        } => {
            let stored = svc.agent_message(agent, &conversation_id, &client_msg_id, &text)?;
            send(
                ws,
                &AgentServerFrame::Ack {
                    client_msg_id,
                    seq: stored.seq,
                },
            )
            .await;
        }
        AgentFrame::End { conversation_id } => svc.end(agent, &conversation_id)?,
    }
    Ok(())
}

async fn send_transcript(
    svc: &Service,
    ws: &mut WebSocket,
    watching: &mut HashMap<ConversationId, u64>,
    id: ConversationId,
) -> Result<(), Refusal> {
    let (conversation, events) = svc.transcript(&id)?;
    let head = events.last().map_or(0, |e| e.seq);
    watching.insert(id, head);
    send(
        ws,
        &AgentServerFrame::Transcript {
            conversation,
            events,
        },
    )
    .await;
    Ok(())
}
