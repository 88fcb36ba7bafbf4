//! The console store: login, the agent socket, the queue and the open transcripts. The
//! socket's life (back-off with jitter, resume, a revoked session) is the client core's
//! `Connection`; replies wait in the client core's `Outbox` (in this tab's storage) until the
//! server acknowledges them, and are re-sent with the same ids after every welcome.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;

use baton_browser::{BrowserStorage, Socket, new_client_msg_id, post_json, post_json_as, random};
use baton_client::connection::{self, Action, Connection, Input};
use baton_client::outbox::{Outbox, Pending};
use baton_client::timeline::{Step, Timeline};
use baton_protocol::ids::AgentId;
use baton_protocol::ids::ConversationId;
use baton_protocol::state::{AgentRef, ConversationState};
use baton_protocol::status::OffloadStatus;
use baton_protocol::ws::{
    AgentFrame, AgentServerFrame, CannedReply, ConversationSummary, ErrorCode, Event, EventBody,
    LeftMessage, LoginRequest, LoginResponse, OfferOutcome, OffloadingRequest, OffloadingResponse,
    Presence, Ratings, Role, TYPING_EVERY_MS, TYPING_SHOWN_MS, TeamMember, TransferOffer, close,
};

const TOKEN_KEY: &str = "baton.console.token";
const OUTBOX_KEY: &str = "baton.console.outbox";
const SOUND_KEY: &str = "baton.console.sound";

/// A short, quiet two-note tone through Web Audio (no sound file to load).
fn beep() {
    let Ok(ctx) = web_sys::AudioContext::new() else {
        return;
    };
    let start = ctx.current_time();
    for (i, hz) in [660.0_f32, 880.0].into_iter().enumerate() {
        let (Ok(osc), Ok(gain)) = (ctx.create_oscillator(), ctx.create_gain()) else {
            return;
        };
        osc.frequency().set_value(hz);
        let at = start + 0.12 * i as f64;
        let _ = gain.gain().set_value_at_time(0.0001, at);
        let _ = gain
            .gain()
            .exponential_ramp_to_value_at_time(0.2, at + 0.02);
        let _ = gain
            .gain()
            .exponential_ramp_to_value_at_time(0.0001, at + 0.11);
        let _ = osc.connect_with_audio_node(&gain);
        let _ = gain.connect_with_audio_node(&ctx.destination());
        let _ = osc.start_with_when(at);
        let _ = osc.stop_with_when(at + 0.12);
    }
    // Closed once the tone is over, so contexts do not pile up.
    let later = ctx.clone();
    set_timeout(
        move || drop(later.close()),
        std::time::Duration::from_millis(600),
    );
}

/// Connection to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Not logged in.
    LoggedOut,
    /// Connecting or reconnecting.
    Connecting,
    /// Live.
    Online,
}

/// One conversation's transcript as the console shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Thread {
    /// The state the events lead to (with the live queue position from the server).
    pub state: ConversationState,
    /// The events, de-duplicated by seq and by author and `client_msg_id` (the client core).
    pub timeline: Timeline,
    /// How far the visitor has read it (seq), for "Seen".
    pub visitor_read: u64,
}

/// The state to show: the applied one, with the queue position the server reported live.
fn with_live_position(applied: ConversationState, live: &ConversationState) -> ConversationState {
    match (applied, live) {
        (
            ConversationState::Queued { agents_online, .. },
            ConversationState::Queued { position, .. },
        ) => ConversationState::Queued {
            position: *position,
            agents_online,
        },
        (s, _) => s,
    }
}

/// The console store; `Copy`, every field is a handle.
#[derive(Clone, Copy)]
pub struct Console {
    /// Who is logged in.
    pub agent: RwSignal<Option<AgentRef>>,
    /// Connection state.
    pub link: RwSignal<Link>,
    /// Waiting conversations, oldest first.
    pub waiting: RwSignal<Vec<ConversationSummary>>,
    /// Conversations this agent owns.
    pub mine: RwSignal<Vec<ConversationSummary>>,
    /// The conversation shown on the right.
    pub selected: RwSignal<Option<ConversationId>>,
    /// Transcripts by conversation, with the state their events lead to.
    pub transcripts: RwSignal<HashMap<ConversationId, Thread>>,
    /// Visitor messages not yet seen, by conversation (every one but the selected).
    pub unread: RwSignal<HashMap<ConversationId, u32>>,
    /// Last error.
    pub error: RwSignal<Option<String>>,
    /// The offloading status, as visitors are told it.
    pub status: RwSignal<Option<OffloadStatus>>,
    /// Whether this agent may switch offloading on and off.
    pub supervisor: RwSignal<bool>,
    /// The messages visitors left (open ones), as last fetched.
    pub messages: RwSignal<Vec<LeftMessage>>,
    /// The Messages view is shown instead of a conversation.
    pub show_messages: RwSignal<bool>,
    /// The team view (supervisors) is shown instead of a conversation.
    pub show_team: RwSignal<bool>,
    /// The ratings view (supervisors) is shown instead of a conversation.
    pub show_ratings: RwSignal<bool>,
    /// The ratings, as last fetched.
    pub ratings: RwSignal<Option<Ratings>>,
    /// This agent said it is away (routing does not count it).
    pub away: RwSignal<bool>,
    /// Replies to insert with `/`.
    pub canned: RwSignal<Vec<CannedReply>>,
    /// Chats other agents offer this one.
    pub offers: RwSignal<Vec<TransferOffer>>,
    /// Chats this agent offered to someone, by conversation: to whom (from the server's
    /// `offered` until the offer ends).
    pub offered: RwSignal<HashMap<ConversationId, AgentRef>>,
    /// Every agent with presence and load.
    pub team: RwSignal<Vec<TeamMember>>,
    /// Queues a chat can be handed back to.
    pub queues: RwSignal<Vec<String>>,
    /// Every chat with an agent now (supervisors).
    pub live_chats: RwSignal<Vec<ConversationSummary>>,
    /// News that is not an error ("Sam took over the chat").
    pub info: RwSignal<Option<String>>,
    /// How many times the console called for attention (a new chat, an offer, a message not
    /// on screen), for the page and its tests; a reload starts again from 0.
    pub notifications: RwSignal<u32>,
    /// Whether those calls make a sound (kept in this browser).
    pub sound: RwSignal<bool>,
    /// Now, refreshed every few seconds, for waiting times.
    pub now_ms: RwSignal<f64>,
    /// Conversations whose visitor is typing now (with the number of its last typing frame,
    /// so only that frame's timer clears it).
    pub typing: RwSignal<HashMap<ConversationId, u64>>,
    typing_frames: StoredValue<u64>,
    /// When this console last said the agent is typing (ms since the epoch).
    typing_sent: StoredValue<f64>,
    /// How far the agent's reading was reported, by conversation.
    read_sent: StoredValue<HashMap<ConversationId, u64>>,
    token: StoredValue<Option<String>>,
    socket: StoredValue<Option<Socket>, LocalStorage>,
    conn: StoredValue<Connection>,
    outbox: StoredValue<Outbox<BrowserStorage>, LocalStorage>,
    /// Bumped whenever the outbox changes, so "sending…" lines follow it.
    outbox_changed: RwSignal<u64>,
}

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.session_storage().ok().flatten())
}

fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

impl Console {
    /// A store; resumes a session from this tab's storage if there is one.
    pub fn new() -> Self {
        let c = Self {
            agent: RwSignal::new(None),
            link: RwSignal::new(Link::LoggedOut),
            waiting: RwSignal::new(vec![]),
            mine: RwSignal::new(vec![]),
            selected: RwSignal::new(None),
            transcripts: RwSignal::new(HashMap::new()),
            unread: RwSignal::new(HashMap::new()),
            error: RwSignal::new(None),
            status: RwSignal::new(None),
            supervisor: RwSignal::new(false),
            messages: RwSignal::new(vec![]),
            show_messages: RwSignal::new(false),
            show_team: RwSignal::new(false),
            show_ratings: RwSignal::new(false),
            ratings: RwSignal::new(None),
            away: RwSignal::new(false),
            canned: RwSignal::new(vec![]),
            offers: RwSignal::new(vec![]),
            offered: RwSignal::new(HashMap::new()),
            team: RwSignal::new(vec![]),
            queues: RwSignal::new(vec![]),
            live_chats: RwSignal::new(vec![]),
            info: RwSignal::new(None),
            notifications: RwSignal::new(0),
            sound: RwSignal::new(
                web_sys::window()
                    .and_then(|w| w.local_storage().ok().flatten())
                    .and_then(|s| s.get_item(SOUND_KEY).ok().flatten())
                    .is_none_or(|v| v != "off"),
            ),
            now_ms: RwSignal::new(js_sys::Date::now()),
            typing: RwSignal::new(HashMap::new()),
            typing_frames: StoredValue::new(0),
            typing_sent: StoredValue::new(f64::NEG_INFINITY),
            read_sent: StoredValue::new(HashMap::new()),
            token: StoredValue::new(None),
            socket: StoredValue::new_local(None),
            conn: StoredValue::new(Connection::default()),
            outbox: StoredValue::new_local(Outbox::load(BrowserStorage::session(), OUTBOX_KEY)),
            outbox_changed: RwSignal::new(0),
        };
        if let Some(t) = session_storage().and_then(|s| s.get_item(TOKEN_KEY).ok().flatten()) {
            c.token.set_value(Some(t));
            c.connect();
        }
        // Waiting times move on by themselves.
        let now = c.now_ms;
        // Back to a tab that was hidden: the chat on screen is read now.
        let _ = leptos::prelude::window_event_listener_untyped("visibilitychange", move |_| {
            if let Some(id) = c.selected.get_untracked() {
                c.report_read(&id);
            }
        });
        // (The console lives as long as the page: the interval is never cleared.)
        let _ = set_interval_with_handle(
            move || now.set(js_sys::Date::now()),
            std::time::Duration::from_secs(15),
        );
        c
    }

    /// Calls for the agent's attention once: a short tone (unless switched off) and the
    /// count the page shows.
    fn notify(&self) {
        self.notifications.update(|n| *n += 1);
        if self.sound.get_untracked() {
            beep();
        }
    }

    /// Switches the tone on or off, for this browser.
    pub fn set_sound(&self, on: bool) {
        self.sound.set(on);
        if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
            let _ = s.set_item(SOUND_KEY, if on { "on" } else { "off" });
        }
    }

    /// Away (routing does not count this agent; its chats stay) or back online.
    pub fn set_away(&self, away: bool) {
        self.away.set(away);
        self.send(AgentFrame::Presence { away });
    }

    /// Offers a chat this agent has to another agent, with a note.
    pub fn transfer_to_agent(&self, id: ConversationId, to: AgentId, note: String) {
        self.send(AgentFrame::Transfer {
            conversation_id: id,
            to: Some(to),
            queue: None,
            note: Some(note).filter(|n| !n.trim().is_empty()),
        });
    }

    /// Hands a chat this agent has back to a queue, with a note.
    pub fn transfer_to_queue(&self, id: ConversationId, queue: String, note: String) {
        self.send(AgentFrame::Transfer {
            conversation_id: id,
            to: None,
            queue: Some(queue),
            note: Some(note).filter(|n| !n.trim().is_empty()),
        });
    }

    /// Takes over (or declines) a chat offered to this agent.
    pub fn answer_offer(&self, id: ConversationId, accept: bool) {
        self.offers
            .update(|o| o.retain(|x| x.conversation.conversation_id != id));
        if accept {
            self.selected.set(Some(id.clone()));
            self.show(None);
        }
        self.send(AgentFrame::TransferAnswer {
            conversation_id: id,
            accept,
        });
    }

    /// Logs in and connects.
    pub fn login(&self, email: String, password: String) {
        let c = *self;
        spawn_local(async move {
            match post_json::<_, LoginResponse>(
                &format!("{}/api/v1/agent/login", origin()),
                &LoginRequest { email, password },
            )
            .await
            {
                Ok(r) => {
                    if let Some(s) = session_storage() {
                        let _ = s.set_item(TOKEN_KEY, &r.token);
                    }
                    c.error.set(None);
                    c.agent.set(Some(r.agent));
                    c.token.set_value(Some(r.token));
                    c.connect();
                }
                Err(e) => c.error.set(Some(e)),
            }
        });
    }

    /// Fetches the open messages visitors left.
    pub fn load_messages(&self) {
        let c = *self;
        let Some(token) = self.token.get_value() else {
            return;
        };
        spawn_local(async move {
            let got = baton_browser::fetch_text(
                &format!("{}/api/v1/messages", origin()),
                None,
                Some(&token),
            )
            .await
            .map_err(|e| e.message)
            .and_then(|t| serde_json::from_str::<Vec<LeftMessage>>(&t).map_err(|e| e.to_string()));
            match got {
                Ok(list) => c.messages.set(list),
                Err(e) => c.error.set(Some(e)),
            }
        });
    }

    /// Fetches the ratings (supervisors).
    pub fn load_ratings(&self) {
        let c = *self;
        let Some(token) = self.token.get_value() else {
            return;
        };
        spawn_local(async move {
            let got = baton_browser::fetch_text(
                &format!("{}/api/v1/ratings", origin()),
                None,
                Some(&token),
            )
            .await
            .map_err(|e| e.message)
            .and_then(|t| serde_json::from_str::<Ratings>(&t).map_err(|e| e.to_string()));
            match got {
                Ok(r) => c.ratings.set(Some(r)),
                Err(e) => c.error.set(Some(e)),
            }
        });
    }

    /// Shows one of the views instead of a conversation (or none: the conversation).
    pub fn show(&self, view: Option<&str>) {
        self.show_messages.set(view == Some("messages"));
        self.show_team.set(view == Some("team"));
        self.show_ratings.set(view == Some("ratings"));
        match view {
            Some("messages") => self.load_messages(),
            Some("ratings") => self.load_ratings(),
            _ => {}
        }
    }

    /// Marks a left message done, then fetches the list again.
    pub fn mark_done(&self, id: i64) {
        let c = *self;
        let Some(token) = self.token.get_value() else {
            return;
        };
        spawn_local(async move {
            match baton_browser::fetch_text(
                &format!("{}/api/v1/messages/done", origin()),
                Some(serde_json::json!({ "id": id }).to_string()),
                Some(&token),
            )
            .await
            {
                Ok(_) => c.load_messages(),
                Err(e) => c.error.set(Some(e.message)),
            }
        });
    }

    /// A supervisor switches offloading on or off for every replica.
    pub fn switch_offloading(&self, enabled: bool) {
        let c = *self;
        let Some(token) = self.token.get_value() else {
            return;
        };
        spawn_local(async move {
            match post_json_as::<_, OffloadingResponse>(
                &format!("{}/api/v1/offloading", origin()),
                &OffloadingRequest { enabled },
                Some(&token),
            )
            .await
            {
                Ok(r) => c.status.set(Some(r.status)),
                Err(e) => c.error.set(Some(e.message)),
            }
        });
    }

    /// Logs out: the server ends the session (its other sockets close too).
    pub fn logout(&self) {
        if let Some(token) = self.token.get_value() {
            spawn_local(async move {
                let _ = post_json_as::<_, serde_json::Value>(
                    &format!("{}/api/v1/agent/logout", origin()),
                    &serde_json::json!({}),
                    Some(&token),
                )
                .await;
            });
        }
        self.forget_session();
    }

    /// Forgets the session in this tab.
    fn forget_session(&self) {
        if let Some(s) = session_storage() {
            let _ = s.remove_item(TOKEN_KEY);
        }
        self.token.set_value(None);
        self.run(Input::Stop);
        self.socket.set_value(None);
        // Replies of a session that ended can never be sent.
        self.change_outbox(|o| o.clear());
        self.link.set(Link::LoggedOut);
        self.agent.set(None);
    }

    fn connect(&self) {
        self.run(Input::Start);
    }

    /// Feeds the connection one input and carries out what it says.
    fn run(&self, input: Input) {
        let action = self
            .conn
            .try_update_value(|c| c.handle(input, random()))
            .flatten();
        if let Some(action) = action {
            match action {
                Action::Open => self.open_socket(),
                // The agent socket needs no hello: its welcome lists what the agent sees.
                Action::Hello => {}
                Action::ResendOutbox => self.resend_outbox(),
                Action::RetryIn(wait) => {
                    let c = *self;
                    set_timeout(move || c.run(Input::RetryDue), wait);
                }
                Action::Close => self.socket.set_value(None),
                // Only the server says a session ended (logged out elsewhere, expired,
                // revoked: 4401); anything else is retried.
                Action::Forget => {
                    self.forget_session();
                    self.error
                        .set(Some("Your session ended. Please log in again.".into()));
                }
            }
        }
        self.link.set(match self.conn.with_value(|c| c.link()) {
            connection::Link::Open => Link::Online,
            connection::Link::Connecting | connection::Link::Waiting => Link::Connecting,
            connection::Link::Idle | connection::Link::Refused => Link::LoggedOut,
        });
    }

    fn open_socket(&self) {
        let Some(token) = self.token.get_value() else {
            return;
        };
        let url = format!("{}/api/v1/agent/ws?token={token}", origin());
        let c = *self;
        let socket = Socket::open(
            &url,
            move || c.run(Input::Opened),
            move |frame: AgentServerFrame| c.on_frame(frame),
            move |code| spawn_local(async move { c.on_closed(code) }),
        );
        match socket {
            Ok(s) => self.socket.set_value(Some(s)),
            Err(e) => {
                self.error.set(Some(e));
                self.run(Input::Closed(close::PROTOCOL));
            }
        }
    }

    fn on_closed(&self, code: u16) {
        self.socket.set_value(None);
        if self.token.get_value().is_some() {
            self.run(Input::Closed(code));
        }
    }

    fn resend_outbox(&self) {
        let pending: Vec<Pending> = self.outbox.with_value(|o| o.pending().to_vec());
        for p in pending {
            if let Some(conversation_id) = p.conversation {
                self.send(AgentFrame::Message {
                    conversation_id,
                    client_msg_id: p.client_msg_id,
                    text: p.text,
                });
            }
        }
    }

    fn send(&self, frame: AgentFrame) {
        let sent = self
            .socket
            .with_value(|s| s.as_ref().is_some_and(|s| s.send(&frame)));
        if !sent {
            self.error
                .set(Some("Not connected; trying again shortly.".into()));
        }
    }

    /// Shows a conversation's transcript.
    pub fn open(&self, id: ConversationId) {
        self.selected.set(Some(id.clone()));
        self.unread.update(|u| {
            u.remove(&id);
        });
        self.report_read(&id);
        self.send(AgentFrame::Open {
            conversation_id: id,
        });
    }

    /// Tells the visitor how far the agent has read its chat: the chat on screen, while this
    /// agent has it and the tab is visible.
    pub fn report_read(&self, id: &ConversationId) {
        if self.selected.get_untracked().as_ref() != Some(id) {
            return;
        }
        let visible = web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| !d.hidden());
        let me = self.agent.get_untracked().map(|a| a.id);
        // The head, when a visitor line came since the last mark (the agent's own lines need
        // no telling).
        let head = self.transcripts.with_untracked(|t| {
            t.get(id).and_then(|thread| match &thread.state {
                ConversationState::AgentJoined { agent } if Some(&agent.id) == me.as_ref() => {
                    Some((
                        thread.timeline.head_seq(),
                        thread.timeline.view().last_visitor_seq,
                    ))
                }
                _ => None,
            })
        });
        let Some((seq, visitor_seq)) = head else {
            return;
        };
        let sent = self
            .read_sent
            .with_value(|r| r.get(id).copied().unwrap_or(0));
        if visible && visitor_seq > sent {
            self.read_sent.update_value(|r| {
                r.insert(id.clone(), seq);
            });
            self.send(AgentFrame::Read {
                conversation_id: id.clone(),
                seq,
            });
        }
    }

    /// The agent typed in a reply box: the visitor is told, at most every few seconds.
    pub fn typed(&self, id: &ConversationId) {
        let now = js_sys::Date::now();
        if now - self.typing_sent.get_value() >= f64::from(TYPING_EVERY_MS) {
            self.typing_sent.set_value(now);
            self.send(AgentFrame::Typing {
                conversation_id: id.clone(),
            });
        }
    }

    /// Takes a waiting conversation.
    pub fn accept(&self, id: ConversationId) {
        self.selected.set(Some(id.clone()));
        self.send(AgentFrame::Accept {
            conversation_id: id,
        });
    }

    /// Replies. The reply waits in the outbox until the server acknowledges it; while the
    /// socket is down it is sent after the next welcome.
    pub fn reply(&self, id: ConversationId, text: String) {
        let client_msg_id = new_client_msg_id();
        self.change_outbox(|o| {
            o.add(Pending {
                client_msg_id: client_msg_id.clone(),
                conversation: Some(id.clone()),
                text: text.clone(),
                shown: None,
                source: None,
            })
        });
        if self.link.get_untracked() == Link::Online {
            self.send(AgentFrame::Message {
                conversation_id: id,
                client_msg_id,
                text,
            });
        }
    }

    fn change_outbox(&self, f: impl FnOnce(&mut Outbox<BrowserStorage>)) {
        self.outbox.update_value(f);
        self.outbox_changed.update(|n| *n += 1);
    }

    /// Replies waiting for the server (shown as "sending…" in the transcript).
    pub fn unsent(&self, id: &ConversationId) -> Vec<String> {
        self.outbox_changed.track();
        // A reply whose event already arrived (its ack is on the way) shows once, as stored.
        let stored = |p: &Pending| {
            self.transcripts.with_untracked(|t| {
                t.get(id).is_some_and(|thread| {
                    thread.timeline.has_message(Role::Agent, &p.client_msg_id)
                })
            })
        };
        self.outbox.with_value(|o| {
            o.pending()
                .iter()
                .filter(|p| p.conversation.as_ref() == Some(id) && !stored(p))
                .map(|p| p.text.clone())
                .collect()
        })
    }

    /// Ends a conversation.
    pub fn end(&self, id: ConversationId) {
        self.send(AgentFrame::End {
            conversation_id: id,
        });
    }

    fn upsert(list: RwSignal<Vec<ConversationSummary>>, s: ConversationSummary) {
        list.update(|l| {
            match l
                .iter_mut()
                .find(|x| x.conversation_id == s.conversation_id)
            {
                Some(x) => *x = s,
                None => l.push(s),
            }
        });
    }

    fn on_frame(&self, frame: AgentServerFrame) {
        match frame {
            AgentServerFrame::Welcome {
                agent,
                waiting,
                mine,
                supervisor,
                away,
                canned,
                offers,
                ..
            } => {
                self.agent.set(Some(agent));
                self.supervisor.set(supervisor);
                self.away.set(away);
                self.canned.set(canned);
                self.waiting.set(waiting);
                // Open offers are news only when made (no sound for them here).
                self.offers.set(offers);
                // Follow every chat this agent has (after a reload or a reconnect each one
                // streams again, from its whole transcript), and what was on screen; then
                // re-send what was not acknowledged.
                let mut open: Vec<ConversationId> =
                    mine.iter().map(|s| s.conversation_id.clone()).collect();
                self.mine.set(mine);
                if let Some(id) = self.selected.get_untracked()
                    && !open.contains(&id)
                {
                    open.push(id);
                }
                for id in open {
                    self.send(AgentFrame::Open {
                        conversation_id: id,
                    });
                }
                self.run(Input::Welcomed);
            }
            AgentServerFrame::Status { status } => self.status.set(Some(status)),
            AgentServerFrame::Waiting { conversation } => {
                // A chat new to the list calls for attention (a reload lists them in the
                // welcome, which does not).
                let new = self.waiting.with_untracked(|w| {
                    !w.iter()
                        .any(|x| x.conversation_id == conversation.conversation_id)
                });
                Self::upsert(self.waiting, conversation);
                if new {
                    self.notify();
                }
            }
            AgentServerFrame::Offer { offer } => {
                let id = offer.conversation.conversation_id.clone();
                let new = self
                    .offers
                    .with_untracked(|o| !o.iter().any(|x| x.conversation.conversation_id == id));
                self.offers.update(|o| {
                    o.retain(|x| x.conversation.conversation_id != id);
                    o.push(offer);
                });
                if new {
                    self.notify();
                }
            }
            AgentServerFrame::Offered {
                conversation_id,
                to,
            } => self.offered.update(|o| {
                o.insert(conversation_id, to);
            }),
            AgentServerFrame::OfferEnded {
                conversation_id,
                to,
                outcome,
            } => {
                self.offers
                    .update(|o| o.retain(|x| x.conversation.conversation_id != conversation_id));
                // About this agent's offer as it stands (not one it replaced since).
                let mine = self
                    .offered
                    .with_untracked(|o| o.get(&conversation_id).is_some_and(|a| a.id == to.id));
                if mine {
                    self.offered.update(|o| {
                        o.remove(&conversation_id);
                    });
                    match outcome {
                        OfferOutcome::Taken => self
                            .info
                            .set(Some(format!("{} took over the chat.", to.name))),
                        OfferOutcome::Declined => self.info.set(Some(format!(
                            "{} did not take the chat; it is still yours.",
                            to.name
                        ))),
                        OfferOutcome::Withdrawn | OfferOutcome::Unknown => {}
                    }
                }
            }
            AgentServerFrame::Team {
                agents,
                queues,
                chats,
            } => {
                // This agent's own presence, as another tab or a new login left it.
                let me = self.agent.get_untracked().map(|a| a.id);
                if let Some(m) = agents.iter().find(|m| Some(&m.agent.id) == me.as_ref()) {
                    self.away.set(m.presence == Presence::Away);
                }
                self.team.set(agents);
                self.queues.set(queues);
                self.live_chats.set(chats);
            }
            AgentServerFrame::Dequeued { conversation_id } => {
                self.waiting
                    .update(|l| l.retain(|s| s.conversation_id != conversation_id));
            }
            AgentServerFrame::Transcript {
                conversation,
                events,
                visitor_read_seq,
            } => {
                let mine = matches!(&conversation.state, ConversationState::AgentJoined { agent }
                    if self.agent.with_untracked(|a| a.as_ref().is_some_and(|a| a.id == agent.id)));
                let timeline = Timeline::from_events(events);
                let state = with_live_position(timeline.state().clone(), &conversation.state);
                self.transcripts.update(|t| {
                    t.insert(
                        conversation.conversation_id.clone(),
                        Thread {
                            state,
                            timeline,
                            visitor_read: visitor_read_seq,
                        },
                    );
                });
                let id = conversation.conversation_id.clone();
                if mine {
                    Self::upsert(self.mine, conversation);
                }
                self.report_read(&id);
            }
            AgentServerFrame::Typing { conversation_id } => {
                self.typing_frames.update_value(|n| *n += 1);
                let n = self.typing_frames.get_value();
                self.typing.update(|t| {
                    t.insert(conversation_id.clone(), n);
                });
                let c = *self;
                set_timeout(
                    move || {
                        c.typing.update(|t| {
                            if t.get(&conversation_id) == Some(&n) {
                                t.remove(&conversation_id);
                            }
                        })
                    },
                    std::time::Duration::from_millis(TYPING_SHOWN_MS.into()),
                );
            }
            AgentServerFrame::Read {
                conversation_id,
                seq,
            } => self.transcripts.update(|t| {
                if let Some(thread) = t.get_mut(&conversation_id) {
                    thread.visitor_read = thread.visitor_read.max(seq);
                }
            }),
            AgentServerFrame::Event {
                conversation_id,
                event,
            } => self.on_event(conversation_id, event),
            AgentServerFrame::Error {
                code,
                message,
                client_msg_id,
            } => {
                // A reply refused for good is not retried (it would be refused again); one
                // refused for now (storage trouble, rate limit) stays and goes again after the
                // next welcome. The agent sees why either way.
                let for_now = matches!(code, ErrorCode::Internal | ErrorCode::RateLimited);
                if let Some(id) = client_msg_id
                    && !for_now
                {
                    self.change_outbox(|o| drop(o.settle(&id)));
                }
                self.error.set(Some(message));
            }
            AgentServerFrame::Ack { client_msg_id, .. } => {
                self.change_outbox(|o| drop(o.settle(&client_msg_id)));
            }
            AgentServerFrame::Pong | AgentServerFrame::Unknown => {}
        }
    }

    fn on_event(&self, id: ConversationId, event: Event) {
        let mut left_agent = false;
        let from_visitor = matches!(
            event.body,
            EventBody::Message {
                role: Role::Visitor,
                ..
            }
        );
        let mut added = false;
        self.transcripts.update(|t| {
            let Some(thread) = t.get_mut(&id) else { return };
            match thread.timeline.apply(event) {
                Step::Duplicate => return,
                Step::AddedRejected(r) => leptos::logging::warn!("baton: {r}"),
                Step::Added => {}
            }
            added = true;
            let before = std::mem::take(&mut thread.state);
            let agent_of = |s: &ConversationState| match s {
                ConversationState::AgentJoined { agent } => Some(agent.id.clone()),
                _ => None,
            };
            // Ended, back in a queue, or with another agent now.
            left_agent = agent_of(&before).is_some()
                && agent_of(&before) != agent_of(thread.timeline.state());
            thread.state = with_live_position(thread.timeline.state().clone(), &before);
        });
        if left_agent {
            self.mine.update(|l| l.retain(|s| s.conversation_id != id));
        }
        if from_visitor {
            // Its message is what it was typing.
            self.typing.update(|t| {
                t.remove(&id);
            });
        }
        if added {
            self.report_read(&id);
        }
        let hidden = web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| d.hidden());
        let on_screen = self.selected.get_untracked().as_ref() == Some(&id) && !hidden;
        if added && from_visitor && self.selected.get_untracked().as_ref() != Some(&id) {
            self.unread
                .update(|u| *u.entry(id.clone()).or_default() += 1);
        }
        if added && from_visitor && !on_screen {
            self.notify();
        }
    }

    /// Unread visitor messages in all chats but the one on screen.
    pub fn unread_total(&self) -> u32 {
        self.unread.with(|u| u.values().sum())
    }
}
