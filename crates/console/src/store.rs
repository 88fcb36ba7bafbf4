//! The console store: login, the agent socket, the queue and the open transcripts.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;

use baton_browser::{Socket, post_json, post_json_as};
use baton_protocol::decide::{self, Applied, View};
use baton_protocol::ids::{ClientMsgId, ConversationId};
use baton_protocol::state::{AgentRef, ConversationState};
use baton_protocol::ws::{
    AgentFrame, AgentServerFrame, ConversationSummary, Event, LoginRequest, LoginResponse, close,
};

const TOKEN_KEY: &str = "baton.console.token";

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
    /// The events applied so far.
    view: View,
    /// Every event, oldest first.
    pub events: Vec<Event>,
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
    /// Last error.
    pub error: RwSignal<Option<String>>,
    token: StoredValue<Option<String>>,
    socket: StoredValue<Option<Socket>, LocalStorage>,
    failures: StoredValue<u32>,
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
            error: RwSignal::new(None),
            token: StoredValue::new(None),
            socket: StoredValue::new_local(None),
            failures: StoredValue::new(0),
        };
        if let Some(t) = session_storage().and_then(|s| s.get_item(TOKEN_KEY).ok().flatten()) {
            c.token.set_value(Some(t));
            c.connect();
        }
        c
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
        self.socket.set_value(None);
        self.link.set(Link::LoggedOut);
        self.agent.set(None);
    }

    fn connect(&self) {
        let Some(token) = self.token.get_value() else {
            return;
        };
        self.link.set(Link::Connecting);
        let url = format!("{}/api/v1/agent/ws?token={token}", origin());
        let c = *self;
        let socket = Socket::open(
            &url,
            || {},
            move |frame: AgentServerFrame| c.on_frame(frame),
            move |code| spawn_local(async move { c.on_closed(code) }),
        );
        match socket {
            Ok(s) => self.socket.set_value(Some(s)),
            Err(e) => self.error.set(Some(e)),
        }
    }

    fn on_closed(&self, code: u16) {
        self.socket.set_value(None);
        if self.token.get_value().is_none() {
            return;
        }
        let failures = self.failures.get_value() + 1;
        self.failures.set_value(failures);
        // Only the server says a session ended (logged out elsewhere, expired, revoked: 4401);
        // anything else (a restart, a network blip) is retried with back-off.
        if code == close::UNAUTHORIZED {
            self.forget_session();
            self.error
                .set(Some("Your session ended. Please log in again.".into()));
            return;
        }
        self.link.set(Link::Connecting);
        let c = *self;
        let delay = if code == 1001 {
            1000
        } else {
            (500 * u64::from(failures)).min(10_000)
        };
        set_timeout(move || c.connect(), std::time::Duration::from_millis(delay));
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
        self.send(AgentFrame::Open {
            conversation_id: id,
        });
    }

    /// Takes a waiting conversation.
    pub fn accept(&self, id: ConversationId) {
        self.selected.set(Some(id.clone()));
        self.send(AgentFrame::Accept {
            conversation_id: id,
        });
    }

    /// Replies.
    pub fn reply(&self, id: ConversationId, text: String) {
        let client_msg_id = ClientMsgId(
            web_sys::window()
                .and_then(|w| w.crypto().ok())
                .map(|c| c.random_uuid())
                .unwrap_or_default(),
        );
        self.send(AgentFrame::Message {
            conversation_id: id,
            client_msg_id,
            text,
        });
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
                ..
            } => {
                self.failures.set_value(0);
                self.link.set(Link::Online);
                self.agent.set(Some(agent));
                self.waiting.set(waiting);
                self.mine.set(mine);
                // Re-open what was on screen, to catch up after a reconnect.
                if let Some(id) = self.selected.get_untracked() {
                    self.send(AgentFrame::Open {
                        conversation_id: id,
                    });
                }
            }
            AgentServerFrame::Waiting { conversation } => Self::upsert(self.waiting, conversation),
            AgentServerFrame::Dequeued { conversation_id } => {
                self.waiting
                    .update(|l| l.retain(|s| s.conversation_id != conversation_id));
            }
            AgentServerFrame::Transcript {
                conversation,
                events,
            } => {
                let mine = matches!(&conversation.state, ConversationState::AgentJoined { agent }
                    if self.agent.with_untracked(|a| a.as_ref().is_some_and(|a| a.id == agent.id)));
                let mut view = View::default();
                decide::replay(&mut view, &events);
                let state = with_live_position(view.state.clone(), &conversation.state);
                self.transcripts.update(|t| {
                    t.insert(
                        conversation.conversation_id.clone(),
                        Thread {
                            state,
                            view,
                            events,
                        },
                    );
                });
                if mine {
                    Self::upsert(self.mine, conversation);
                }
            }
            AgentServerFrame::Event {
                conversation_id,
                event,
            } => self.on_event(conversation_id, event),
            AgentServerFrame::Error { message, .. } => self.error.set(Some(message)),
            AgentServerFrame::Ack { .. } | AgentServerFrame::Pong | AgentServerFrame::Unknown => {}
        }
    }

    fn on_event(&self, id: ConversationId, event: Event) {
        let mut left_agent = false;
        self.transcripts.update(|t| {
            let Some(thread) = t.get_mut(&id) else { return };
            match decide::apply(&mut thread.view, &event) {
                Applied::Duplicate => return,
                Applied::Rejected(r) => leptos::logging::warn!("baton: {r}"),
                Applied::Changed => {}
            }
            let before = std::mem::take(&mut thread.state);
            left_agent = matches!(before, ConversationState::AgentJoined { .. })
                && !matches!(thread.view.state, ConversationState::AgentJoined { .. });
            thread.state = with_live_position(thread.view.state.clone(), &before);
            thread.events.push(event);
        });
        if left_agent {
            self.mine.update(|l| l.retain(|s| s.conversation_id != id));
        }
    }
}
