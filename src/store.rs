//! The conversation store: all widget state, and the only code that talks to the transport.
//!
//! Components read signals and call methods on `Chat`. State changes go through
//! `baton_protocol::state::transition`, the same function the server runs, so the widget
//! cannot show a state the protocol does not have.

use leptos::prelude::*;
use leptos::task::spawn_local;

use baton_protocol::bot::{
    BotMessage, BotMetadata, BotRequest, Button, HandoverDirective, MessageSource, WcpMetadata,
};
use baton_protocol::ids::{ClientMsgId, VisitorId};
use baton_protocol::state::{ConversationState, EndedBy, Input, Transport, transition};
use baton_protocol::ws::{
    ErrorCode, Event, EventBody, HandoverRequest, HandoverResponse, Role, VisitorFrame,
    VisitorServerFrame, VisitorSession,
};
use baton_protocol::{MAX_TEXT_BYTES, PROTOCOL_VERSION};

use baton_browser::{Socket, post_json};

/// Whether a visitor message reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Stored by the server.
    Sent,
    /// On its way (or waiting in the outbox for the socket).
    Pending,
    /// Refused or unreachable; the visitor can retry.
    Failed,
}

/// One line of the transcript.
#[derive(Clone, Debug)]
pub struct Line {
    /// Local, stable key for the keyed list.
    pub key: u64,
    /// Author.
    pub role: Role,
    /// Plain text; rendered as a text node, never as HTML.
    pub text: String,
    /// The agent's name, for agent lines.
    pub author: Option<String>,
    /// The visitor's idempotency key, for visitor lines.
    pub client_msg_id: Option<ClientMsgId>,
    /// Delivery state of visitor lines.
    pub delivery: ArcRwSignal<Delivery>,
    /// Bot buttons.
    pub buttons: Vec<Button>,
}

/// Widget settings from the script tag.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Server origin, e.g. `https://chat.example.com`.
    pub server: String,
    /// Panel title.
    pub title: String,
}

/// The store. `Copy`: every field is a handle.
#[derive(Clone, Copy)]
pub struct Chat {
    /// Settings.
    pub settings: StoredValue<Settings>,
    /// This visitor.
    pub visitor: StoredValue<VisitorId>,
    /// The transcript.
    pub lines: RwSignal<Vec<Line>>,
    /// The conversation state.
    pub state: RwSignal<ConversationState>,
    /// The server's text for the current handover outcome.
    pub notice: RwSignal<Option<String>>,
    /// The last error worth telling the visitor about.
    pub error: RwSignal<Option<String>>,
    /// Whether the panel is open.
    pub open: RwSignal<bool>,
    /// Whether the overflow menu is open.
    pub menu_open: RwSignal<bool>,
    /// Waiting for the bot's answer.
    pub busy: RwSignal<bool>,
    next_key: StoredValue<u64>,
    last_seq: StoredValue<u64>,
    session: StoredValue<Option<VisitorSession>>,
    socket: StoredValue<Option<Socket>, LocalStorage>,
    retries: StoredValue<u32>,
    handback: StoredValue<bool>,
    /// Events up to this seq are a replay of history (after a reload): they are shown, but
    /// the state comes from `welcome`, not from replaying old transitions.
    replay_until: StoredValue<u64>,
}

const VISITOR_KEY: &str = "baton.visitor";
const SESSION_KEY: &str = "baton.session";

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

fn new_id() -> String {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.random_uuid())
        .unwrap_or_else(|| {
            format!(
                "{:x}{:x}",
                js_sys::Date::now() as u64,
                (js_sys::Math::random() * 1e15) as u64
            )
        })
}

/// The stable visitor id from `localStorage`, created on first use. Storage can be blocked
/// (privacy modes, sandboxed frames); then the id lasts for this page view only.
fn visitor_id() -> VisitorId {
    let storage = local_storage();
    if let Some(id) = storage
        .as_ref()
        .and_then(|s| s.get_item(VISITOR_KEY).ok().flatten())
    {
        return VisitorId(id);
    }
    let id = format!("v_{}", new_id());
    if let Some(s) = storage {
        let _ = s.set_item(VISITOR_KEY, &id);
    }
    VisitorId(id)
}

impl Chat {
    /// A store for this page view. If this visitor has an agent session from an earlier page
    /// view, it reconnects and replays the conversation, so a reload loses nothing.
    pub fn new(settings: Settings) -> Self {
        let chat = Self::with_visitor(settings, visitor_id());
        let saved = local_storage()
            .and_then(|s| s.get_item(SESSION_KEY).ok().flatten())
            .and_then(|json| serde_json::from_str::<VisitorSession>(&json).ok());
        if let Some(mut session) = saved {
            session.head_seq = 0;
            chat.session.set_value(Some(session));
            chat.replay_until.set_value(u64::MAX);
            chat.connect();
        }
        chat
    }

    /// A store for a given visitor (tests use fresh ids).
    pub fn with_visitor(settings: Settings, visitor: VisitorId) -> Self {
        Self {
            settings: StoredValue::new(settings),
            visitor: StoredValue::new(visitor),
            lines: RwSignal::new(vec![]),
            state: RwSignal::new(ConversationState::Bot),
            notice: RwSignal::new(None),
            error: RwSignal::new(None),
            open: RwSignal::new(false),
            menu_open: RwSignal::new(false),
            busy: RwSignal::new(false),
            next_key: StoredValue::new(0),
            last_seq: StoredValue::new(0),
            session: StoredValue::new(None),
            socket: StoredValue::new_local(None),
            retries: StoredValue::new(0),
            handback: StoredValue::new(false),
            replay_until: StoredValue::new(0),
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.settings
                .with_value(|s| s.server.trim_end_matches('/').to_owned())
        )
    }

    /// Appends a line and returns its delivery handle.
    pub fn push(
        &self,
        role: Role,
        text: String,
        author: Option<String>,
        client_msg_id: Option<ClientMsgId>,
        buttons: Vec<Button>,
        delivery: Delivery,
    ) -> ArcRwSignal<Delivery> {
        let key = self.next_key.get_value();
        self.next_key.set_value(key + 1);
        let delivery = ArcRwSignal::new(delivery);
        let line = Line {
            key,
            role,
            text,
            author,
            client_msg_id,
            delivery: delivery.clone(),
            buttons,
        };
        self.lines.update(|l| l.push(line));
        delivery
    }

    /// Runs one state transition. A rejected one is logged and ignored: a late or repeated
    /// event must never wedge the widget.
    pub fn apply(&self, input: Input) {
        let current = self.state.get_untracked();
        match transition(&current, &input) {
            Ok(next) => self.state.set(next),
            Err(e) => leptos::logging::warn!("baton: {e}"),
        }
    }

    // ---- sending ----

    /// Sends what the visitor typed.
    pub fn send_text(&self, text: String) {
        self.send(text.clone(), text, MessageSource::Text);
    }

    /// Sends a bot button: the title is shown, the payload goes to the bot.
    pub fn send_button(&self, button: &Button) {
        self.send(
            button.title.clone(),
            button.payload.clone(),
            MessageSource::Button,
        );
    }

    fn send(&self, shown: String, message: String, source: MessageSource) {
        let message = message.trim().to_owned();
        if message.is_empty() {
            return;
        }
        if message.len() > MAX_TEXT_BYTES {
            self.error.set(Some(format!(
                "That message is too long (the limit is {MAX_TEXT_BYTES} bytes)."
            )));
            return;
        }
        self.error.set(None);
        let id = ClientMsgId(new_id());
        let delivery = self.push(
            Role::Visitor,
            shown,
            None,
            Some(id.clone()),
            vec![],
            Delivery::Pending,
        );
        self.deliver(id, message, source, delivery);
    }

    fn deliver(
        &self,
        id: ClientMsgId,
        message: String,
        source: MessageSource,
        delivery: ArcRwSignal<Delivery>,
    ) {
        match self.state.get_untracked().transport() {
            Transport::AgentSocket => {
                // If the socket is down, the line stays pending and is re-sent after the
                // next welcome (same client_msg_id, so never twice).
                self.socket.with_value(|s| {
                    if let Some(s) = s {
                        s.send(&VisitorFrame::Message {
                            client_msg_id: id,
                            text: message,
                        });
                    }
                });
            }
            Transport::BotHttp => {
                let chat = *self;
                spawn_local(async move { chat.bot_turn(id, message, source, delivery).await });
            }
        }
    }

    /// Re-sends a failed line with its original id.
    pub fn retry(&self, key: u64) {
        let line = self
            .lines
            .with_untracked(|l| l.iter().find(|l| l.key == key).cloned());
        if let Some(Line {
            client_msg_id: Some(id),
            text,
            delivery,
            ..
        }) = line
        {
            delivery.set(Delivery::Pending);
            self.deliver(id, text, MessageSource::Text, delivery);
        }
    }

    async fn bot_turn(
        self,
        id: ClientMsgId,
        message: String,
        source: MessageSource,
        delivery: ArcRwSignal<Delivery>,
    ) {
        // After an agent chat ended, the next bot call says so (the bot may greet back).
        if matches!(
            self.state.get_untracked(),
            ConversationState::Ended { .. }
                | ConversationState::Closed { .. }
                | ConversationState::Disabled
                | ConversationState::Unavailable
        ) {
            self.apply(Input::ReturnToBot);
        }
        let event = self.handback.get_value().then(|| "handback".to_owned());
        let req = BotRequest {
            sender: self.visitor.get_value(),
            message,
            metadata: Some(BotMetadata {
                wcp: Some(WcpMetadata {
                    v: PROTOCOL_VERSION,
                    client_msg_id: Some(id),
                    source: Some(source),
                    event,
                }),
            }),
        };
        self.busy.set(true);
        let answer: Result<Vec<BotMessage>, String> =
            post_json(&self.url("/webhooks/rest/webhook"), &req).await;
        self.busy.set(false);
        match answer {
            Ok(items) => {
                delivery.set(Delivery::Sent);
                self.handback.set_value(false);
                self.on_bot_answer(items);
            }
            Err(e) => {
                delivery.set(Delivery::Failed);
                self.error.set(Some(e));
            }
        }
    }

    /// Renders a bot answer and follows a handover directive in it.
    pub fn on_bot_answer(&self, items: Vec<BotMessage>) {
        let mut directive = None;
        for item in items {
            if let Some(d) = item.handover() {
                directive = Some(d);
            }
            if item.text.is_some() || item.buttons.is_some() {
                self.push(
                    Role::Bot,
                    item.text.unwrap_or_default(),
                    None,
                    None,
                    item.buttons.unwrap_or_default(),
                    Delivery::Sent,
                );
            }
        }
        if let Some(d) = directive {
            self.request_agent(d);
        }
    }

    // ---- handover ----

    /// Asks for a person (the overflow menu, or a bot directive).
    pub fn request_agent(&self, directive: HandoverDirective) {
        self.menu_open.set(false);
        if !self.state.get_untracked().can_request_handover() {
            return;
        }
        self.apply(Input::RequestHandover(directive.reason));
        self.notice.set(None);
        let chat = *self;
        spawn_local(async move {
            let req = HandoverRequest {
                visitor_id: chat.visitor.get_value(),
                directive,
            };
            match post_json::<_, HandoverResponse>(&chat.url("/api/v1/handover"), &req).await {
                Ok(resp) => chat.on_handover(resp),
                Err(e) => {
                    chat.error.set(Some(e));
                    chat.state.set(ConversationState::Bot);
                }
            }
        });
    }

    /// Applies the server's handover answer.
    pub fn on_handover(&self, resp: HandoverResponse) {
        self.notice.set(Some(resp.message));
        self.state.set(resp.state);
        if let Some(session) = resp.session {
            self.last_seq
                .set_value(self.last_seq.get_value().max(session.head_seq));
            // Kept so a reload can reconnect and replay the conversation.
            if let (Some(storage), Ok(json)) = (local_storage(), serde_json::to_string(&session)) {
                let _ = storage.set_item(SESSION_KEY, &json);
            }
            self.session.set_value(Some(session));
            self.connect();
        }
    }

    /// Withdraws a queued request.
    pub fn cancel_request(&self) {
        self.menu_open.set(false);
        self.socket.with_value(|s| {
            if let Some(s) = s {
                s.send(&VisitorFrame::Cancel);
            }
        });
    }

    // ---- the agent socket ----

    fn connect(&self) {
        let Some(session) = self.session.get_value() else {
            return;
        };
        let url = self.url(&format!("/api/v1/visitor/ws?token={}", session.token));
        let chat = *self;
        let socket = Socket::open(
            &url,
            move || {
                let last_seq = chat.last_seq.get_value();
                chat.socket.with_value(|s| {
                    if let Some(s) = s {
                        s.send(&VisitorFrame::Hello { last_seq });
                    }
                });
            },
            move |frame: VisitorServerFrame| chat.on_frame(frame),
            move |code| spawn_local(async move { chat.on_socket_closed(code) }),
        );
        match socket {
            Ok(s) => self.socket.set_value(Some(s)),
            Err(e) => self.error.set(Some(e)),
        }
    }

    fn on_socket_closed(&self, code: u16) {
        self.socket.set_value(None);
        if self.state.get_untracked().transport() != Transport::AgentSocket || code == 1000 {
            return;
        }
        // Dropped while waiting or chatting: reconnect with back-off; hello{last_seq}
        // replays what was missed.
        let attempt = self.retries.get_value();
        self.retries.set_value(attempt + 1);
        let delay = (500 * 2u32.saturating_pow(attempt)).min(10_000);
        let chat = *self;
        set_timeout(
            move || chat.connect(),
            std::time::Duration::from_millis(u64::from(delay)),
        );
    }

    /// Handles one frame from the visitor socket.
    pub fn on_frame(&self, frame: VisitorServerFrame) {
        match frame {
            VisitorServerFrame::Welcome {
                state, head_seq, ..
            } => {
                self.retries.set_value(0);
                let resuming = self.replay_until.get_value() == u64::MAX;
                if resuming {
                    // Resuming after a reload: everything up to head_seq is history.
                    self.replay_until.set_value(head_seq);
                }
                self.state.set(state);
                self.resend_outbox();
                if resuming {
                    self.close_if_with_bot();
                }
            }
            VisitorServerFrame::Event { event } => self.apply_event(event),
            VisitorServerFrame::Ack { client_msg_id, .. } => {
                self.mark(&client_msg_id, Delivery::Sent)
            }
            VisitorServerFrame::Queue { position } => self.apply(Input::QueueUpdate(position)),
            VisitorServerFrame::Error {
                code,
                message,
                client_msg_id,
            } => {
                if let Some(id) = client_msg_id {
                    self.mark(&id, Delivery::Failed);
                }
                if code != ErrorCode::Unknown {
                    self.error.set(Some(message));
                }
            }
            VisitorServerFrame::Status { .. }
            | VisitorServerFrame::Pong
            | VisitorServerFrame::Unknown => {}
        }
    }

    fn mark(&self, id: &ClientMsgId, d: Delivery) {
        self.lines.with_untracked(|lines| {
            if let Some(l) = lines.iter().find(|l| l.client_msg_id.as_ref() == Some(id)) {
                l.delivery.set(d);
            }
        });
    }

    fn resend_outbox(&self) {
        let pending: Vec<(ClientMsgId, String)> = self.lines.with_untracked(|lines| {
            lines
                .iter()
                .filter(|l| {
                    l.role == Role::Visitor && l.delivery.get_untracked() == Delivery::Pending
                })
                .filter_map(|l| Some((l.client_msg_id.clone()?, l.text.clone())))
                .collect()
        });
        self.socket.with_value(|s| {
            if let Some(s) = s {
                for (client_msg_id, text) in pending {
                    s.send(&VisitorFrame::Message {
                        client_msg_id,
                        text,
                    });
                }
            }
        });
    }

    /// After a history replay, a conversation that is back with the bot needs no socket.
    fn close_if_with_bot(&self) {
        if self.state.get_untracked().transport() == Transport::BotHttp
            && self.last_seq.get_value() >= self.replay_until.get_value()
        {
            let chat = *self;
            // Close after the current callback returns (the socket owns the running closure).
            spawn_local(async move { chat.socket.set_value(None) });
        }
    }

    /// Applies one durable event, exactly once (events at or below the last seq are
    /// duplicates from a replay and are dropped). Every event shows its line; only live events
    /// drive the state, since after a reload the state comes from `welcome`.
    pub fn apply_event(&self, event: Event) {
        if event.seq <= self.last_seq.get_value() {
            return;
        }
        self.last_seq.set_value(event.seq);
        self.show(&event.body);
        if event.seq > self.replay_until.get_value() {
            self.follow(event.body);
        } else {
            self.close_if_with_bot();
        }
    }

    fn push_system(&self, text: String) {
        self.push(Role::System, text, None, None, vec![], Delivery::Sent);
    }

    /// The transcript line an event shows, if any.
    fn show(&self, body: &EventBody) {
        match body {
            EventBody::Message {
                role,
                text,
                client_msg_id,
                agent,
                buttons,
            } => {
                let ours = client_msg_id.as_ref().is_some_and(|id| {
                    self.lines
                        .with_untracked(|l| l.iter().any(|l| l.client_msg_id.as_ref() == Some(id)))
                });
                match client_msg_id {
                    // The echo of our own message (another tab would show it).
                    Some(id) if ours => self.mark(id, Delivery::Sent),
                    _ => {
                        let author = agent.as_ref().map(|a| a.name.clone());
                        self.push(
                            *role,
                            text.clone(),
                            author,
                            client_msg_id.clone(),
                            buttons.clone(),
                            Delivery::Sent,
                        );
                    }
                }
            }
            EventBody::AgentJoined { agent } => {
                self.push_system(format!("{} joined the chat.", agent.name))
            }
            EventBody::ChatEnded { by } => {
                let who = match (&self.state.get_untracked(), by) {
                    (ConversationState::AgentJoined { agent }, EndedBy::Agent) => {
                        agent.name.clone()
                    }
                    (_, EndedBy::Visitor) => "You".into(),
                    _ => "The agent".into(),
                };
                self.push_system(format!(
                    "{who} ended the chat. The assistant will answer your next message."
                ));
            }
            EventBody::HandoverCancelled => {
                self.push_system("You left the queue. The assistant is back.".into())
            }
            EventBody::HandoverRequested { .. }
            | EventBody::HandoverOutcome { .. }
            | EventBody::ReturnedToBot
            | EventBody::Unknown => {}
        }
    }

    /// The state change a live event drives.
    fn follow(&self, body: EventBody) {
        let close = |chat: Chat| {
            // Close after this callback returns (the socket owns the running closure).
            spawn_local(async move { chat.socket.set_value(None) });
        };
        match body {
            EventBody::AgentJoined { agent } => self.apply(Input::AgentAccepted(agent)),
            EventBody::ChatEnded { by } => {
                self.apply(Input::ChatEnded(by));
                self.handback.set_value(true);
                self.session.set_value(None);
                close(*self);
            }
            EventBody::HandoverCancelled => {
                self.apply(Input::VisitorCancelled);
                close(*self);
            }
            _ => {}
        }
    }
}
