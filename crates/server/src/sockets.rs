//! The visitor and agent WebSocket loops.
//!
//! Each loop waits on the client's frames, the notices of the topics it shows, a ping timer
//! and the shutdown signal. A socket sends the events a notice carries only when they
//! continue exactly from the last seq it sent; otherwise (a gap, a lag, a resync) it reads
//! the store after that seq, so a slow socket cannot miss or reorder events. The server pings;
//! a client that stops answering for the idle timeout is closed, and one that stops reading
//! is dropped once a send has waited too long.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use baton_protocol::PROTOCOL_VERSION;
use baton_protocol::decide::{self, Refusal};
use baton_protocol::ids::ConversationId;
use baton_protocol::state::ConversationState;
use baton_protocol::ws::{
    AgentFrame, AgentServerFrame, ConversationSummary, ErrorCode, Event, EventBody, VisitorFrame,
    VisitorServerFrame, close,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::auth;
use crate::bus::{Notice, Subscription, Topic};
use crate::queue::QueueWatch;
use crate::service::{PRESENCE_RENEW_MS, Service};
use crate::store::{AgentRole, Conversation, Staff};

/// How long a client has to say `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one send may wait on a client that does not read.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Events sent per store read while catching up.
const PAGE: u32 = 500;
/// Conversations one console socket may follow at once.
const MAX_WATCHED: usize = 500;
/// Open sockets one visitor may have (tabs, reconnects still closing).
const MAX_VISITOR_SOCKETS: usize = 8;

/// Accepts the upgrade only to say why the socket cannot stay (4401: the credential or
/// session is not valid); a browser sees the close code, never an HTTP status.
pub async fn refuse(mut ws: WebSocket, reason: &'static str) {
    close_with(&mut ws, close::UNAUTHORIZED, reason).await;
}

async fn send<T: Serialize>(ws: &mut WebSocket, frame: &T) -> bool {
    let t = std::time::Instant::now();
    let text = serde_json::to_string(frame).expect("frames serialise");
    let sent = matches!(
        tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    );
    crate::metrics::SEND.since(t);
    sent
}

/// How long a closing socket waits for the client's answering close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Sends a close frame, then reads (and drops) what the client still sends until its own
/// close frame arrives, so the close frame is not lost in a connection reset.
async fn close_with(ws: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }));
    if !matches!(
        tokio::time::timeout(SEND_TIMEOUT, ws.send(frame)).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(msg)) = ws.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// What a client frame turned out to be.
enum Incoming<T> {
    Frame(T),
    /// Not a frame we understand: answer with an error frame and keep going.
    Bad(String),
    /// Over the frame size limit: the connection cannot continue.
    TooBig,
    /// Ping/pong and other control frames.
    Ignore,
    /// The client went away.
    Gone,
}

fn decode<T: DeserializeOwned>(msg: Option<Result<Message, axum::Error>>) -> Incoming<T> {
    match msg {
        Some(Err(e)) if e.to_string().contains("too long") => Incoming::TooBig,
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

/// Pings the client every third of the idle timeout and tells when it has been silent for
/// the whole of it.
struct Liveness {
    idle: Duration,
    heard: Instant,
    tick: tokio::time::Interval,
}

impl Liveness {
    fn new(idle: Duration) -> Self {
        let period = (idle / 3).max(Duration::from_millis(50));
        let mut tick = tokio::time::interval_at(Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            idle,
            heard: Instant::now(),
            tick,
        }
    }

    fn heard(&mut self) {
        self.heard = Instant::now();
    }

    /// Waits for the next tick; true when the client has been silent too long.
    async fn tick(&mut self) -> bool {
        self.tick.tick().await;
        self.heard.elapsed() >= self.idle
    }
}

/// Lets one typing notice through per [`TYPING_MIN_GAP`] from one socket (clients send
/// one every few seconds; more is dropped, not refused).
#[derive(Default)]
struct Throttle(Option<Instant>);

/// The shortest time between two typing notices from one socket.
const TYPING_MIN_GAP: Duration = Duration::from_millis(1000);

impl Throttle {
    fn ready(&mut self) -> bool {
        let now = Instant::now();
        if self
            .0
            .is_some_and(|t| now.duration_since(t) < TYPING_MIN_GAP)
        {
            return false;
        }
        self.0 = Some(now);
        true
    }
}

/// Sends the durable events after `*cursor`, each wrapped by `frame`, advancing the cursor.
/// False when the client is gone.
async fn catch_up<F: Serialize>(
    svc: &Service,
    ws: &mut WebSocket,
    id: &ConversationId,
    cursor: &mut u64,
    frame: impl Fn(Event) -> F,
) -> Result<bool, Refusal> {
    loop {
        let events = svc.events_after(id, *cursor, PAGE).await?;
        let n = events.len();
        for event in events {
            let seq = event.seq;
            if !send(ws, &frame(event)).await {
                return Ok(false);
            }
            *cursor = seq;
        }
        if n < PAGE as usize {
            return Ok(true);
        }
    }
}

/// The events a notice carried, if they continue exactly from `sent` up to `head_seq`; a
/// socket may send these without reading the store.
fn contiguous(events: Vec<Event>, sent: u64, head_seq: u64) -> Option<Vec<Event>> {
    let first = events.first()?.seq;
    let last = events.last()?.seq;
    let in_order = events.windows(2).all(|w| w[1].seq == w[0].seq + 1);
    (first == sent + 1 && last == head_seq && in_order).then_some(events)
}

/// Sends events a notice carried, advancing the cursor; false when the client is gone.
async fn send_events<F: Serialize>(
    ws: &mut WebSocket,
    events: Vec<Event>,
    cursor: &mut u64,
    frame: impl Fn(Event) -> F,
) -> bool {
    for event in events {
        let seq = event.seq;
        if !send(ws, &frame(event)).await {
            return false;
        }
        *cursor = seq;
    }
    true
}

async fn catch_up_visitor(
    svc: &Service,
    ws: &mut WebSocket,
    id: &ConversationId,
    sent: &mut u64,
) -> bool {
    match catch_up(svc, ws, id, sent, |event| VisitorServerFrame::Event {
        event: event.for_visitor(),
    })
    .await
    {
        Ok(open) => open,
        Err(r) => send(ws, &visitor_error(r, None)).await,
    }
}

fn visitor_error(
    r: Refusal,
    client_msg_id: Option<baton_protocol::ids::ClientMsgId>,
) -> VisitorServerFrame {
    VisitorServerFrame::Error {
        code: r.code,
        message: r.message,
        client_msg_id,
    }
}

/// Waits for `hello{last_seq}`; anything else before it gets an error frame.
async fn hello(ws: &mut WebSocket) -> Option<u64> {
    let deadline = Instant::now() + HELLO_TIMEOUT;
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.recv()).await {
            Ok(msg) => msg,
            Err(_) => {
                close_with(ws, close::PROTOCOL, "no hello").await;
                return None;
            }
        };
        let reply = match decode::<VisitorFrame>(msg) {
            Incoming::Frame(VisitorFrame::Hello { last_seq }) => return Some(last_seq),
            Incoming::Frame(_) => Refusal::new(ErrorCode::InvalidState, "send hello first"),
            Incoming::Bad(message) => Refusal::new(ErrorCode::BadFrame, message),
            Incoming::TooBig => {
                close_with(ws, close::TOO_BIG, "frame too large").await;
                return None;
            }
            Incoming::Ignore => continue,
            Incoming::Gone => return None,
        };
        if !send(ws, &visitor_error(reply, None)).await {
            return None;
        }
    }
}

/// One visitor socket, for the conversation its credential opens.
pub async fn visitor(
    svc: Arc<Service>,
    conv: Conversation,
    locale: Option<String>,
    mut ws: WebSocket,
) {
    let id = conv.id.clone();
    // Subscribe before reading anything, so no change falls between the read and the
    // subscription.
    let mut notices = svc.bus.subscribe(&Topic::Conversation(id.clone()));
    let mut position = QueueWatch::register(&svc, &id);
    let mut status = svc.status_changes();
    if svc.queues.sockets_for(&id) > MAX_VISITOR_SOCKETS {
        return close_with(&mut ws, close::POLICY, "too many sockets for this visitor").await;
    }
    let mut shutdown = svc.shutdown_signal();
    let Some(mut sent) = hello(&mut ws).await else {
        return;
    };
    let welcome = async {
        let conv = svc
            .store
            .conversation(&id)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| Refusal::new(ErrorCode::NotFound, "the conversation is gone"))?;
        let state = svc.live_state(&conv).await?;
        Ok::<_, Refusal>((conv, state))
    };
    let (conv, state) = match welcome.await {
        Ok(x) => x,
        Err(r) => {
            send(&mut ws, &visitor_error(r, None)).await;
            return close_with(&mut ws, close::GOING_AWAY, "try again").await;
        }
    };
    let queued_at = match &state {
        ConversationState::Queued { position, .. } => *position,
        _ => None,
    };
    // The queue (and skill) of its handover: the status it is told is that queue's.
    let mut route = conv
        .handover
        .as_ref()
        .map(|h| (h.queue.clone(), h.skill.clone()));
    let welcome = VisitorServerFrame::Welcome {
        v: PROTOCOL_VERSION,
        conversation_id: id.clone(),
        state,
        head_seq: conv.view.head_seq,
        read_seq: conv.agent_read_seq,
    };
    // The welcome, the offloading status as it is now (then whenever it changes), and the
    // replay.
    // In the widget's language, for its handover's queue.
    let told = async |s: Option<baton_protocol::status::OffloadStatus>,
                      route: &Option<(String, Option<String>)>| {
        let s = s?;
        let status = svc.status_for(s, route.as_ref(), locale.as_deref()).await;
        Some(VisitorServerFrame::Status { status })
    };
    let now = status.borrow_and_update().clone();
    let now = told(now, &route).await;
    if !send(&mut ws, &welcome).await {
        return;
    }
    if let Some(now) = now
        && !send(&mut ws, &now).await
    {
        return;
    }
    if !catch_up_visitor(&svc, &mut ws, &id, &mut sent).await {
        return;
    }
    position.seen(queued_at);
    if let Some(p) = queued_at
        && !send(
            &mut ws,
            &VisitorServerFrame::Queue {
                position: Some(p),
                wait_s: None,
            },
        )
        .await
    {
        return;
    }
    let mut live = Liveness::new(svc.config.idle_timeout);
    let mut typing = Throttle::default();
    let mut read = 0;
    loop {
        tokio::select! {
            msg = ws.recv() => {
                live.heard();
                let reply = match decode::<VisitorFrame>(msg) {
                    Incoming::Frame(VisitorFrame::Hello { .. }) => Some(visitor_error(
                        Refusal::new(ErrorCode::InvalidState, "hello was already sent"), None)),
                    Incoming::Frame(VisitorFrame::Ping) => Some(VisitorServerFrame::Pong),
                    Incoming::Frame(VisitorFrame::Cancel) => svc.cancel(&id).await.err().map(|r| visitor_error(r, None)),
                    Incoming::Frame(VisitorFrame::Typing) => {
                        if typing.ready() {
                            svc.typing(&id, None).await.err().map(|r| visitor_error(r, None))
                        } else {
                            None
                        }
                    }
                    // A mark this socket already made is not written again.
                    Incoming::Frame(VisitorFrame::Read { seq }) if seq <= read => None,
                    Incoming::Frame(VisitorFrame::Read { seq }) => {
                        read = seq;
                        svc.read(&id, None, seq).await.err().map(|r| visitor_error(r, None))
                    }
                    Incoming::Frame(VisitorFrame::Message { client_msg_id, text }) => {
                        Some(match svc.visitor_message(&conv, &client_msg_id, &text, locale.as_deref()).await {
                            Ok(stored) => VisitorServerFrame::Ack { client_msg_id, seq: stored.seq },
                            Err(r) => visitor_error(r, Some(client_msg_id)),
                        })
                    }
                    Incoming::Bad(message) => Some(visitor_error(Refusal::new(ErrorCode::BadFrame, message), None)),
                    Incoming::TooBig => return close_with(&mut ws, close::TOO_BIG, "frame too large").await,
                    Incoming::Ignore => None,
                    Incoming::Gone => return,
                };
                if let Some(reply) = reply && !send(&mut ws, &reply).await {
                    return;
                }
            }
            notice = notices.recv() => {
                if let Notice::Events { events, .. } = &notice {
                    // A new request may go to another queue.
                    for e in events {
                        if let EventBody::HandoverRequested { queue, skill, .. } = &e.body {
                            let queue = queue.clone().unwrap_or_else(|| decide::DEFAULT_QUEUE.into());
                            route = Some((queue, skill.clone()));
                        }
                    }
                }
                let open = match notice {
                    Notice::Events { head_seq, events, .. } if head_seq > sent => {
                        match contiguous(events, sent, head_seq) {
                            Some(events) => send_events(&mut ws, events, &mut sent, |event| {
                                VisitorServerFrame::Event { event: event.for_visitor() }
                            }).await,
                            None => catch_up_visitor(&svc, &mut ws, &id, &mut sent).await,
                        }
                    }
                    Notice::Typing { agent: Some(agent), .. } => send(&mut ws, &VisitorServerFrame::Typing { agent }).await,
                    Notice::Read { by_agent: true, seq, .. } => send(&mut ws, &VisitorServerFrame::Read { seq }).await,
                    Notice::Resync => catch_up_visitor(&svc, &mut ws, &id, &mut sent).await,
                    _ => true,
                };
                if !open {
                    return;
                }
            }
            p = position.changed() => {
                // Leaving the queue is told by the durable event (agent joined, cancelled).
                if let Some(position) = p.position
                    && !send(&mut ws, &VisitorServerFrame::Queue { position: Some(position), wait_s: p.wait_s }).await
                {
                    return;
                }
            }
            Ok(()) = status.changed() => {
                let now = status.borrow_and_update().clone();
                if let Some(now) = told(now, &route).await && !send(&mut ws, &now).await {
                    return;
                }
            }
            silent = live.tick() => {
                if silent {
                    return close_with(&mut ws, close::POLICY, "no answer to pings").await;
                }
                if tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::Ping(Default::default()))).await.is_err() {
                    return;
                }
            }
            _ = shutdown.changed() => return close_with(&mut ws, close::GOING_AWAY, "server shutting down").await,
        }
    }
}

/// Forgets a console connection's presence when its socket ends, however it ends.
struct PresenceGuard {
    svc: Arc<Service>,
    connection: String,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        let svc = self.svc.clone();
        let connection = std::mem::take(&mut self.connection);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { svc.presence_down(&connection).await });
        }
    }
}

/// The conversations one console socket follows: the last seq sent of each, and a task
/// that forwards its notices into one channel the socket loop reads.
struct Watching {
    cursors: HashMap<ConversationId, (u64, tokio::task::AbortHandle)>,
    /// This console's typing notices.
    typing: Throttle,
    /// The read marks this console made, by conversation.
    read: HashMap<ConversationId, u64>,
    tx: tokio::sync::mpsc::UnboundedSender<(ConversationId, Notice)>,
    rx: tokio::sync::mpsc::UnboundedReceiver<(ConversationId, Notice)>,
}

impl Default for Watching {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Self {
            cursors: HashMap::new(),
            typing: Throttle::default(),
            read: HashMap::new(),
            tx,
            rx,
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        for (_, (_, task)) in self.cursors.drain() {
            task.abort();
        }
    }
}

impl Watching {
    /// Whether one more conversation may be followed (or this one already is).
    fn has_room(&self, id: &ConversationId) -> bool {
        self.cursors.contains_key(id) || self.cursors.len() < MAX_WATCHED
    }

    /// Follows a conversation's notices from now on (before its transcript is read).
    fn watch(&mut self, svc: &Service, id: &ConversationId) -> Result<(), Refusal> {
        if self.cursors.contains_key(id) {
            return Ok(());
        }
        if !self.has_room(id) {
            return Err(Refusal::new(
                ErrorCode::InvalidState,
                format!("this console already follows {MAX_WATCHED} conversations; end some"),
            ));
        }
        let mut sub: Subscription = svc.bus.subscribe(&Topic::Conversation(id.clone()));
        let (key, tx) = (id.clone(), self.tx.clone());
        let task = tokio::spawn(async move {
            loop {
                let n = sub.recv().await;
                if tx.send((key.clone(), n)).is_err() {
                    return;
                }
            }
        });
        self.cursors.insert(id.clone(), (0, task.abort_handle()));
        Ok(())
    }

    /// Stops following a conversation.
    fn unwatch(&mut self, id: &ConversationId) {
        if let Some((_, task)) = self.cursors.remove(id) {
            task.abort();
        }
    }

    fn cursor(&mut self, id: &ConversationId) -> Option<&mut u64> {
        self.cursors.get_mut(id).map(|(c, _)| c)
    }
}

async fn catch_up_agent(
    svc: &Service,
    ws: &mut WebSocket,
    id: &ConversationId,
    cursor: &mut u64,
) -> Result<bool, Refusal> {
    catch_up(svc, ws, id, cursor, |event| AgentServerFrame::Event {
        conversation_id: id.clone(),
        event,
    })
    .await
}

/// The team list as this agent sees it; false when the client is gone.
async fn send_team(svc: &Service, ws: &mut WebSocket, staff: &Staff) -> bool {
    match svc.team(staff).await {
        Ok((agents, queues, chats)) => {
            send(
                ws,
                &AgentServerFrame::Team {
                    agents,
                    queues,
                    chats,
                },
            )
            .await
        }
        Err(r) => {
            tracing::warn!("team list: {r}");
            true
        }
    }
}

/// The chats offered to this agent; false when the client is gone.
async fn send_offers(svc: &Service, ws: &mut WebSocket, staff: &Staff) -> bool {
    match svc.offers_to(staff).await {
        Ok(offers) => {
            for offer in offers {
                if !send(ws, &AgentServerFrame::Offer { offer }).await {
                    return false;
                }
            }
            true
        }
        Err(r) => {
            tracing::warn!("offers: {r}");
            true
        }
    }
}

/// How long a console waits for more presence news before it reads the team list again.
const TEAM_SETTLE: Duration = Duration::from_millis(250);

async fn agent_welcome(svc: &Service, ws: &mut WebSocket, staff: &Staff) -> bool {
    let lists = async {
        let (waiting, mine) = svc.agent_lists(staff).await?;
        Ok::<_, Refusal>((waiting, mine, svc.offers_to(staff).await?))
    };
    let frame = match lists.await {
        Ok((waiting, mine, offers)) => AgentServerFrame::Welcome {
            v: PROTOCOL_VERSION,
            agent: staff.agent.clone(),
            waiting,
            mine,
            supervisor: staff.role == AgentRole::Supervisor,
            away: staff.away,
            canned: svc.config.canned.clone(),
            offers,
        },
        Err(r) => AgentServerFrame::Error {
            code: r.code,
            message: r.message,
            client_msg_id: None,
        },
    };
    send(ws, &frame).await
}

/// One agent console socket, on one session.
pub async fn agent(svc: Arc<Service>, staff: Staff, token: String, mut ws: WebSocket) {
    let agent = staff.agent.clone();
    // Whether a waiting conversation is in this agent's queues and skills.
    let serves = |c: &ConversationSummary| {
        staff.scope.covers(
            c.queue.as_deref().unwrap_or(decide::DEFAULT_QUEUE),
            c.skill.as_deref(),
        )
    };
    let token_hash = auth::token_hash(&token);
    let connection = format!("k_{}", auth::random_hex(8));
    if let Err(r) = svc.presence_up(&connection, &agent.id, true).await {
        send(
            &mut ws,
            &AgentServerFrame::Error {
                code: r.code,
                message: r.message,
                client_msg_id: None,
            },
        )
        .await;
        return close_with(&mut ws, close::GOING_AWAY, "try again").await;
    }
    let _presence = PresenceGuard {
        svc: svc.clone(),
        connection: connection.clone(),
    };
    let mut mine = svc.bus.subscribe(&Topic::Agent(agent.id.clone()));
    let mut queues = svc.bus.subscribe(&Topic::AnyQueue);
    let mut presence = svc.bus.subscribe(&Topic::Presence);
    let mut shutdown = svc.shutdown_signal();
    let mut watching = Watching::default();
    let mut status = svc.status_changes();
    if !agent_welcome(&svc, &mut ws, &staff).await {
        return;
    }
    // The offloading status as visitors are told it, then whenever it changes.
    let now = status.borrow_and_update().clone();
    if let Some(now) = now
        && !send(&mut ws, &AgentServerFrame::Status { status: now }).await
    {
        return;
    }
    if !send_team(&svc, &mut ws, &staff).await {
        return;
    }
    // When the team list is due again (presence news settles for a moment first).
    let mut team_due: Option<Instant> = None;
    let mut live = Liveness::new(svc.config.idle_timeout);
    let mut renew = tokio::time::interval_at(
        Instant::now() + Duration::from_millis(PRESENCE_RENEW_MS),
        Duration::from_millis(PRESENCE_RENEW_MS),
    );
    loop {
        tokio::select! {
            msg = ws.recv() => {
                live.heard();
                let (result, about) = match decode::<AgentFrame>(msg) {
                    Incoming::Frame(frame) => {
                        let about = match &frame {
                            AgentFrame::Message { client_msg_id, .. } => Some(client_msg_id.clone()),
                            _ => None,
                        };
                        (handle_agent_frame(&svc, &staff, &mut ws, &mut watching, frame).await, about)
                    }
                    Incoming::Bad(message) => (Err(Refusal::new(ErrorCode::BadFrame, message)), None),
                    Incoming::TooBig => return close_with(&mut ws, close::TOO_BIG, "frame too large").await,
                    Incoming::Ignore => (Ok(true), None),
                    Incoming::Gone => return,
                };
                let open = match result {
                    Ok(open) => open,
                    Err(r) => send(&mut ws, &AgentServerFrame::Error { code: r.code, message: r.message, client_msg_id: about }).await,
                };
                if !open { return; }
            }
            notice = mine.recv() => {
                let open = match notice {
                    Notice::Revoked { token_hash: which, .. }
                        if which.as_ref().is_none_or(|h| *h == token_hash) =>
                    {
                        return close_with(&mut ws, close::UNAUTHORIZED, "session ended").await;
                    }
                    Notice::Offer { offer, .. } => send(&mut ws, &AgentServerFrame::Offer { offer: *offer }).await,
                    Notice::OfferEnded { conversation_id, to, outcome } => {
                        send(&mut ws, &AgentServerFrame::OfferEnded { conversation_id, to, outcome }).await
                    }
                    Notice::Resync => send_offers(&svc, &mut ws, &staff).await,
                    _ => true,
                };
                if !open { return; }
            }
            _ = presence.recv() => {
                // Presence, load or live chats changed (or notices were lost): read the
                // team again once the news settles.
                team_due.get_or_insert_with(|| Instant::now() + TEAM_SETTLE);
            }
            _ = async { tokio::time::sleep_until(team_due.unwrap_or_else(Instant::now)).await }, if team_due.is_some() => {
                team_due = None;
                if !send_team(&svc, &mut ws, &staff).await { return; }
            }
            notice = queues.recv() => {
                let open = match notice {
                    Notice::Queue { conversation_id, left: true, .. } => {
                        send(&mut ws, &AgentServerFrame::Dequeued { conversation_id }).await
                    }
                    Notice::Queue { waiting: Some(conversation), .. } if serves(&conversation) => {
                        send(&mut ws, &AgentServerFrame::Waiting { conversation: *conversation }).await
                    }
                    Notice::Queue { waiting: Some(_), .. } => true,
                    Notice::Queue { conversation_id, .. } => match svc.conversation_summary(&conversation_id).await {
                        Ok((_, summary)) if !serves(&summary) => true,
                        Ok((_, summary)) if matches!(summary.state, ConversationState::Queued { .. }) => {
                            send(&mut ws, &AgentServerFrame::Waiting { conversation: summary }).await
                        }
                        Ok(_) => send(&mut ws, &AgentServerFrame::Dequeued { conversation_id }).await,
                        Err(r) => send(&mut ws, &AgentServerFrame::Error { code: r.code, message: r.message, client_msg_id: None }).await,
                    },
                    Notice::Resync => agent_welcome(&svc, &mut ws, &staff).await,
                    _ => true,
                };
                if !open { return; }
            }
            Some((id, notice)) = watching.rx.recv() => {
                // A notice queued before the conversation was unwatched is dropped.
                let Some(cursor) = watching.cursor(&id) else { continue };
                // Handed to a colleague: this console stops following it once it has the
                // event (as after `end`).
                let handed_on = matches!(&notice, Notice::Events { events, .. } if events.iter().any(|e| {
                    matches!(&e.body, EventBody::Transferred { from, to, .. }
                        if from.id == agent.id && to.as_ref().is_none_or(|t| t.id != agent.id))
                }));
                let behind = match notice {
                    Notice::Events { head_seq, events, .. } if head_seq > *cursor => {
                        match contiguous(events, *cursor, head_seq) {
                            Some(events) => {
                                let frame = |event| AgentServerFrame::Event { conversation_id: id.clone(), event };
                                if !send_events(&mut ws, events, cursor, frame).await {
                                    return;
                                }
                                false
                            }
                            None => true,
                        }
                    }
                    Notice::Resync => true,
                    Notice::Typing { agent: None, .. } => {
                        if !send(&mut ws, &AgentServerFrame::Typing { conversation_id: id.clone() }).await {
                            return;
                        }
                        false
                    }
                    Notice::Read { by_agent: false, seq, .. } => {
                        if !send(&mut ws, &AgentServerFrame::Read { conversation_id: id.clone(), seq }).await {
                            return;
                        }
                        false
                    }
                    _ => false,
                };
                if behind {
                    match catch_up_agent(&svc, &mut ws, &id, cursor).await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(r) => if !send(&mut ws, &AgentServerFrame::Error { code: r.code, message: r.message, client_msg_id: None }).await { return },
                    }
                }
                if handed_on {
                    watching.unwatch(&id);
                }
            }
            Ok(()) = status.changed() => {
                let now = status.borrow_and_update().clone();
                if let Some(now) = now && !send(&mut ws, &AgentServerFrame::Status { status: now }).await {
                    return;
                }
            }
            _ = renew.tick() => {
                match svc.agent_by_token(&token).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return close_with(&mut ws, close::UNAUTHORIZED, "session ended").await,
                    Err(r) => tracing::warn!("session check failed: {r}"),
                }
                if let Err(r) = svc.presence_up(&connection, &agent.id, false).await {
                    tracing::warn!("presence renewal failed: {r}");
                }
            }
            silent = live.tick() => {
                if silent {
                    return close_with(&mut ws, close::POLICY, "no answer to pings").await;
                }
                if tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::Ping(Default::default()))).await.is_err() {
                    return;
                }
            }
            _ = shutdown.changed() => return close_with(&mut ws, close::GOING_AWAY, "server shutting down").await,
        }
    }
}

/// Handles one console frame; `Ok(false)` when the client is gone.
async fn handle_agent_frame(
    svc: &Service,
    staff: &Staff,
    ws: &mut WebSocket,
    watching: &mut Watching,
    frame: AgentFrame,
) -> Result<bool, Refusal> {
    let agent = &staff.agent;
    Ok(match frame {
        AgentFrame::Ping => send(ws, &AgentServerFrame::Pong).await,
        AgentFrame::Open { conversation_id } => {
            send_transcript(svc, staff, ws, watching, conversation_id).await?
        }
        AgentFrame::Accept { conversation_id } => {
            // Take nothing this console could not then follow.
            if !watching.has_room(&conversation_id) {
                return Err(Refusal::new(
                    ErrorCode::InvalidState,
                    format!("this console already follows {MAX_WATCHED} conversations; end some"),
                ));
            }
            svc.accept(staff, &conversation_id).await?;
            send_transcript(svc, staff, ws, watching, conversation_id).await?
        }
        AgentFrame::Message {
            conversation_id,
            client_msg_id,
            text,
        } => {
            let stored = svc
                .agent_message(agent, &conversation_id, &client_msg_id, &text)
                .await?;
            send(
                ws,
                &AgentServerFrame::Ack {
                    client_msg_id,
                    seq: stored.seq,
                },
            )
            .await
        }
        AgentFrame::Transfer {
            conversation_id,
            to,
            queue,
            note,
        } => {
            let offered = svc
                .transfer(staff, &conversation_id, to.as_ref(), queue.as_deref(), note)
                .await?;
            if let Some(to) = offered {
                send(
                    ws,
                    &AgentServerFrame::Offered {
                        conversation_id,
                        to,
                    },
                )
                .await
            } else if queue.is_some() {
                // Back in a queue: the transfer reaches the console, then it stops following
                // the chat (as after `end`).
                let mut at = watching.cursor(&conversation_id).copied().unwrap_or(0);
                let open = catch_up_agent(svc, ws, &conversation_id, &mut at).await?;
                watching.unwatch(&conversation_id);
                open
            } else {
                true
            }
        }
        AgentFrame::TransferAnswer {
            conversation_id,
            accept,
        } => {
            if accept && !watching.has_room(&conversation_id) {
                return Err(Refusal::new(
                    ErrorCode::InvalidState,
                    format!("this console already follows {MAX_WATCHED} conversations; end some"),
                ));
            }
            svc.answer_transfer(staff, &conversation_id, accept).await?;
            if accept {
                send_transcript(svc, staff, ws, watching, conversation_id).await?
            } else {
                true
            }
        }
        AgentFrame::Presence { away } => {
            svc.set_away(staff, away).await?;
            true
        }
        AgentFrame::Typing { conversation_id } => {
            if watching.typing.ready() {
                svc.typing(&conversation_id, Some(agent)).await?;
            }
            true
        }
        AgentFrame::Read {
            conversation_id,
            seq,
        } => {
            // A mark this console already made is not written again.
            let last = watching.read.entry(conversation_id.clone()).or_default();
            if seq > *last {
                svc.read(&conversation_id, Some(agent), seq).await?;
                *last = seq;
            }
            true
        }
        AgentFrame::End { conversation_id } => {
            svc.end(agent, &conversation_id).await?;
            // Let the ended event reach the console first, then stop following it.
            let cursor = watching.cursor(&conversation_id).copied().unwrap_or(0);
            let mut at = cursor;
            let open = catch_up_agent(svc, ws, &conversation_id, &mut at).await?;
            watching.unwatch(&conversation_id);
            open
        }
    })
}

async fn send_transcript(
    svc: &Service,
    staff: &Staff,
    ws: &mut WebSocket,
    watching: &mut Watching,
    id: ConversationId,
) -> Result<bool, Refusal> {
    let new = watching.cursor(&id).is_none();
    watching.watch(svc, &id)?;
    let (conversation, events, visitor_read_seq) = match svc.transcript(staff, &id).await {
        Ok(t) => t,
        Err(r) => {
            if new {
                watching.unwatch(&id);
            }
            return Err(r);
        }
    };
    let head = events.last().map_or(0, |e| e.seq);
    if let Some(cursor) = watching.cursor(&id) {
        *cursor = (*cursor).max(head);
    }
    Ok(send(
        ws,
        &AgentServerFrame::Transcript {
            conversation,
            events,
            visitor_read_seq,
        },
    )
    .await)
}
