//! The conversation service: every rule that changes a conversation, in one place.
//!
//! Each operation reads the conversation, asks `baton_protocol::state::transition` what
//! follows, appends the durable events and writes the state back, all in one transaction;
//! then it notifies the hub. HTTP handlers and socket loops only translate to and from it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use baton_protocol::bot::{BotMessage, BotRequest, HandoverDirective};
use baton_protocol::ids::{AgentId, ClientMsgId, ConversationId, VisitorId};
use baton_protocol::schedule::Opening;
use baton_protocol::state::{
    AgentRef, ConversationState, EndedBy, Input, OffloadDecision, transition,
};
use baton_protocol::status::{OffloadState, OffloadStatus};
use baton_protocol::ws::{
    ConversationSummary, ErrorCode, Event, EventBody, HandoverResponse, Role, VisitorSession,
};
use baton_protocol::{MAX_TEXT_BYTES, PROTOCOL_VERSION};
use rusqlite::Transaction;

use crate::config::{Config, NoAgentsPolicy};
use crate::hub::{Hub, Notice};
use crate::store::{self, Conversation, Store, StoreError};

/// A refused operation: a stable code and a sentence for people.
#[derive(Debug)]
pub struct Refusal {
    /// Stable code.
    pub code: ErrorCode,
    /// What is wrong.
    pub message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        tracing::error!("storage error: {e}");
        Self::new(ErrorCode::Internal, "storage error; please retry")
    }
}

/// The result of storing a message: its seq, and whether it was a retry of one stored before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Where the message is.
    pub seq: u64,
    /// True when the client message id had been stored already.
    pub duplicate: bool,
}

/// Shared server state.
pub struct Service {
    /// Resolved configuration.
    pub config: Config,
    /// Storage.
    pub store: Store,
    /// Socket fan-out.
    pub hub: Hub,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A random hex token of `bytes` bytes.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_text(text: &str) -> Result<&str, Refusal> {
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
    Ok(text)
}

/// Applies a transition or refuses with `invalid_state`.
fn step(conv: &mut Conversation, input: &Input) -> Result<(), Refusal> {
    conv.state = transition(&conv.state, input)
        .map_err(|e| Refusal::new(ErrorCode::InvalidState, e.to_string()))?;
    Ok(())
}

impl Service {
    /// Opens the store and ensures the configured agent accounts exist.
    pub fn new(config: Config) -> Result<Arc<Self>, Box<dyn std::error::Error + Send + Sync>> {
        let store = Store::open(&config.database)
            .map_err(|e| format!("cannot open database {}: {e}", config.database.display()))?;
        let argon = argon2::Argon2::default();
        for a in &config.agents {
            // Keep the stored hash when the password is unchanged, so restarts stay fast.
            let existing = store.tx(|tx| store::agent_by_email(tx, &a.email))?;
            let unchanged = existing.as_ref().is_some_and(|(agent, hash)| {
                agent.name == a.name
                    && PasswordHash::new(hash)
                        .is_ok_and(|h| argon.verify_password(a.password.as_bytes(), &h).is_ok())
            });
            if unchanged {
                continue;
            }
            let salt =
                SaltString::encode_b64(random_hex(16).as_bytes()).map_err(|e| e.to_string())?;
            let hash = argon
                .hash_password(a.password.as_bytes(), &salt)
                .map_err(|e| e.to_string())?
                .to_string();
            let id = AgentId(format!("a_{}", random_hex(6)));
            store.tx(|tx| store::upsert_agent(tx, &id, &a.email, &a.name, &hash))?;
        }
        Ok(Arc::new(Self {
            config,
            store,
            hub: Hub::default(),
        }))
    }

    // ---- offloading ----

    /// The offloading status now.
    pub fn status(&self) -> Result<OffloadStatus, Refusal> {
        let queue_length = self
            .store
            .tx(|tx| store::conversations_in(tx, "queued", None))?
            .len() as u32;
        let agents_online = Some(self.hub.agents_online() > 0);
        let o = &self.config.offloading;
        let t = &self.config.texts;
        let (state, next_open_at, message) = if !o.enabled {
            (OffloadState::Disabled, None, t.disabled.clone())
        } else {
            match o.schedule.at(now_ms()) {
                Opening::Open => (OffloadState::Open, None, t.waiting.clone()),
                Opening::Closed { next_open_ms } => (
                    OffloadState::Closed,
                    next_open_ms.map(|ms| o.schedule.format_local(ms)),
                    t.closed.clone(),
                ),
            }
        };
        Ok(OffloadStatus {
            v: PROTOCOL_VERSION,
            state,
            agents_online,
            queue_length,
            next_open_at,
            message: Some(message),
        })
    }

    fn decide(&self, status: &OffloadStatus) -> OffloadDecision {
        let agents_online = status.agents_online;
        match status.state {
            OffloadState::Disabled => OffloadDecision::Disabled,
            OffloadState::Closed => OffloadDecision::Closed {
                next_open_at: status.next_open_at.clone(),
            },
            OffloadState::Open
                if agents_online == Some(false)
                    && self.config.offloading.when_no_agents == NoAgentsPolicy::Unavailable =>
            {
                OffloadDecision::NoAgents
            }
            OffloadState::Open => OffloadDecision::Open {
                position: None,
                agents_online,
            },
        }
    }

    // ---- conversations ----

    fn conversation_for(
        &self,
        tx: &Transaction<'_>,
        visitor: &VisitorId,
    ) -> Result<Conversation, StoreError> {
        if let Some(c) = store::conversation_by_visitor(tx, visitor)? {
            return Ok(c);
        }
        let c = Conversation {
            id: ConversationId(format!("c_{}", random_hex(8))),
            visitor_id: visitor.clone(),
            token: random_hex(24),
            state: ConversationState::Bot,
            reason: Default::default(),
            message_to_agent: None,
            waiting_since_ms: now_ms(),
            agent_id: None,
            head_seq: 0,
        };
        store::insert_conversation(tx, &c)?;
        Ok(c)
    }

    fn summary(
        &self,
        tx: &Transaction<'_>,
        c: &Conversation,
    ) -> Result<ConversationSummary, StoreError> {
        let mut state = c.state.clone();
        if let ConversationState::Queued { position, .. } = &mut state {
            *position = queue_position(tx, c)?;
        }
        Ok(ConversationSummary {
            conversation_id: c.id.clone(),
            visitor_id: c.visitor_id.clone(),
            state,
            reason: c.reason,
            message_to_agent: c.message_to_agent.clone(),
            waiting_since: baton_protocol::time::rfc3339_from_unix_ms(c.waiting_since_ms),
            preview: store::last_visitor_text(tx, &c.id)?,
        })
    }

    /// One bot turn over `POST /webhooks/rest/webhook`: records the visitor message and the
    /// built-in bot's answer in the conversation (the transcript an agent later sees).
    ///
    /// If the conversation is with an agent (a widget that missed the switch), the message is
    /// delivered to the agent instead and the answer is empty: nothing is lost.
    pub fn bot_turn(&self, req: &BotRequest) -> Result<Vec<BotMessage>, Refusal> {
        let text = check_text(&req.message)?.to_owned();
        let client_msg_id = req
            .metadata
            .as_ref()
            .and_then(|m| m.wcp.as_ref())
            .and_then(|w| w.client_msg_id.clone());
        let answer = self.config.bot.answer(&req.sender, &text);
        let now = now_ms();
        let (conv_id, answer) = self.store.tx(|tx| -> Result<_, Refusal> {
            let mut conv = self.conversation_for(tx, &req.sender)?;
            if let Some(id) = &client_msg_id
                && store::seq_of_client_msg(tx, &conv.id, id)?.is_some()
            {
                // A retry of a message already answered: answer again without storing twice.
                return Ok((conv.id, answer.clone()));
            }
            if transition(&conv.state, &Input::ReturnToBot).is_ok() {
                step(&mut conv, &Input::ReturnToBot)?;
                store::append_event(tx, &mut conv, EventBody::ReturnedToBot, None, now)?;
            }
            let with_agent =
                conv.state.transport() == baton_protocol::state::Transport::AgentSocket;
            store::append_event(
                tx,
                &mut conv,
                visitor_message(&text, client_msg_id.clone()),
                client_msg_id.as_ref(),
                now,
            )?;
            let answer = if with_agent { vec![] } else { answer };
            for m in &answer {
                if let Some(text) = &m.text {
                    let body = EventBody::Message {
                        role: Role::Bot,
                        text: text.clone(),
                        client_msg_id: None,
                        agent: None,
                        buttons: m.buttons.clone().unwrap_or_default(),
                    };
                    store::append_event(tx, &mut conv, body, None, now)?;
                }
            }
            store::update_conversation(tx, &conv)?;
            Ok((conv.id, answer))
        })?;
        self.hub.notify(Notice::Conversation(conv_id));
        Ok(answer)
    }

    /// A handover request (overflow menu, or a bot directive the widget received).
    pub fn request_handover(
        &self,
        visitor: &VisitorId,
        d: &HandoverDirective,
    ) -> Result<HandoverResponse, Refusal> {
        let status = self.status()?;
        let decision = self.decide(&status);
        let now = now_ms();
        let (conv, summary) = self.store.tx(|tx| -> Result<_, Refusal> {
            let mut conv = self.conversation_for(tx, visitor)?;
            if conv.state.transport() == baton_protocol::state::Transport::AgentSocket {
                // Already queued or with an agent: asking again is answered, not repeated.
                return Ok((conv, None));
            }
            step(&mut conv, &Input::RequestHandover(d.reason))?;
            conv.reason = d.reason;
            conv.message_to_agent = d.message_to_agent.clone();
            conv.waiting_since_ms = now;
            let requested = EventBody::HandoverRequested {
                reason: d.reason,
                message_to_agent: d.message_to_agent.clone(),
            };
            store::append_event(tx, &mut conv, requested, None, now)?;
            step(&mut conv, &Input::Offload(decision.clone()))?;
            let position = queue_position(tx, &conv)?;
            if let ConversationState::Queued { position: p, .. } = &mut conv.state {
                *p = position;
            }
            let outcome = EventBody::HandoverOutcome {
                outcome: conv.state.clone(),
            };
            store::append_event(tx, &mut conv, outcome, None, now)?;
            store::update_conversation(tx, &conv)?;
            let summary = matches!(conv.state, ConversationState::Queued { .. })
                .then(|| self.summary(tx, &conv))
                .transpose()?;
            Ok((conv, summary))
        })?;
        self.hub.notify(Notice::Conversation(conv.id.clone()));
        if let Some(s) = summary {
            self.hub.notify(Notice::Waiting(s));
        }
        let t = &self.config.texts;
        let message = match &conv.state {
            ConversationState::Queued {
                agents_online: Some(false),
                ..
            } => t.waiting_no_agents.clone(),
            ConversationState::Queued { .. } | ConversationState::AgentJoined { .. } => d
                .agent_available
                .as_ref()
                .map_or_else(|| t.waiting.clone(), |o| o.message.clone()),
            ConversationState::Closed { .. } => t.closed.clone(),
            ConversationState::Disabled => t.disabled.clone(),
            _ => d
                .agent_unavailable
                .as_ref()
                .map_or_else(|| t.unavailable.clone(), |o| o.message.clone()),
        };
        let session = (conv.state.transport() == baton_protocol::state::Transport::AgentSocket)
            .then(|| VisitorSession {
                conversation_id: conv.id.clone(),
                token: conv.token.clone(),
                head_seq: conv.head_seq,
            });
        Ok(HandoverResponse {
            state: conv.state,
            message,
            status,
            session,
        })
    }

    /// The conversation a visitor token opens.
    pub fn visitor_conversation(&self, token: &str) -> Result<Option<Conversation>, Refusal> {
        Ok(self
            .store
            .tx(|tx| store::conversation_by_token(tx, token))?)
    }

    /// A conversation by id.
    pub fn conversation(&self, id: &ConversationId) -> Result<Conversation, Refusal> {
        self.store.tx(|tx| load(tx, id))
    }

    /// Durable events after `after`, at most `limit`.
    pub fn events_after(
        &self,
        id: &ConversationId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, Refusal> {
        Ok(self
            .store
            .tx(|tx| store::events_after(tx, id, after, limit))?)
    }

    /// The 1-based queue position of a conversation, if queued.
    pub fn queue_position(&self, id: &ConversationId) -> Result<Option<u32>, Refusal> {
        Ok(self.store.tx(|tx| match store::conversation(tx, id)? {
            Some(c) => queue_position(tx, &c),
            None => Ok(None),
        })?)
    }

    /// A visitor message over the socket (queued or with an agent). While queued, the bot
    /// still answers it.
    pub fn visitor_message(
        &self,
        id: &ConversationId,
        client_msg_id: &ClientMsgId,
        text: &str,
    ) -> Result<Stored, Refusal> {
        let text = check_text(text)?;
        let now = now_ms();
        let stored = self.store.tx(|tx| -> Result<_, Refusal> {
            let mut conv = load(tx, id)?;
            if let Some(seq) = store::seq_of_client_msg(tx, id, client_msg_id)? {
                return Ok(Stored {
                    seq,
                    duplicate: true,
                });
            }
            let queued = match &conv.state {
                ConversationState::Queued { .. } => true,
                ConversationState::AgentJoined { .. } => false,
                other => {
                    return Err(Refusal::new(
                        ErrorCode::InvalidState,
                        format!(
                            "the conversation is `{}`; send this message to the bot endpoint",
                            other.name()
                        ),
                    ));
                }
            };
            let ev = store::append_event(
                tx,
                &mut conv,
                visitor_message(text, Some(client_msg_id.clone())),
                Some(client_msg_id),
                now,
            )?;
            if queued {
                let answer = self.config.bot.answer(&conv.visitor_id, text);
                let reply = if answer.iter().any(|m| m.handover().is_some()) {
                    // Already waiting: say so instead of starting a second handover.
                    EventBody::Message {
                        role: Role::System,
                        text: self.config.texts.waiting.clone(),
                        client_msg_id: None,
                        agent: None,
                        buttons: vec![],
                    }
                } else {
                    let m = &answer[0];
                    EventBody::Message {
                        role: Role::Bot,
                        text: m.text.clone().unwrap_or_default(),
                        client_msg_id: None,
                        agent: None,
                        buttons: m.buttons.clone().unwrap_or_default(),
                    }
                };
                store::append_event(tx, &mut conv, reply, None, now)?;
            }
            store::update_conversation(tx, &conv)?;
            Ok(Stored {
                seq: ev.seq,
                duplicate: false,
            })
        })?;
        if !stored.duplicate {
            self.hub.notify(Notice::Conversation(id.clone()));
        }
        Ok(stored)
    }

    /// The visitor withdraws a queued request.
    pub fn cancel(&self, id: &ConversationId) -> Result<(), Refusal> {
        self.store.tx(|tx| -> Result<_, Refusal> {
            let mut conv = load(tx, id)?;
            step(&mut conv, &Input::VisitorCancelled)?;
            store::append_event(tx, &mut conv, EventBody::HandoverCancelled, None, now_ms())?;
            store::update_conversation(tx, &conv)?;
            Ok(())
        })?;
        self.hub.notify(Notice::Conversation(id.clone()));
        self.hub.notify(Notice::Dequeued(id.clone()));
        Ok(())
    }

    // ---- agents ----

    /// Checks a login; returns a new session token.
    pub fn login(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Option<(String, AgentRef)>, Refusal> {
        let Some((agent, hash)) = self
            .store
            .tx(|tx| store::agent_by_email(tx, email.trim()))?
        else {
            return Ok(None);
        };
        let ok = PasswordHash::new(&hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        if !ok {
            return Ok(None);
        }
        let token = random_hex(24);
        self.store
            .tx(|tx| store::insert_agent_session(tx, &token, &agent.id, now_ms()))?;
        Ok(Some((token, agent)))
    }

    /// The agent a session token belongs to.
    pub fn agent_by_token(&self, token: &str) -> Result<Option<AgentRef>, Refusal> {
        Ok(self.store.tx(|tx| store::agent_by_token(tx, token))?)
    }

    /// Waiting conversations and the agent's own, for the console's first frame.
    pub fn agent_lists(
        &self,
        agent: &AgentId,
    ) -> Result<(Vec<ConversationSummary>, Vec<ConversationSummary>), Refusal> {
        Ok(self.store.tx(|tx| {
            let waiting = store::conversations_in(tx, "queued", None)?;
            let mine = store::conversations_in(tx, "agent_joined", Some(agent))?;
            let waiting = waiting
                .iter()
                .map(|c| self.summary(tx, c))
                .collect::<Result<_, _>>()?;
            let mine = mine
                .iter()
                .map(|c| self.summary(tx, c))
                .collect::<Result<_, _>>()?;
            Ok::<_, StoreError>((waiting, mine))
        })?)
    }

    /// A conversation's summary and whole transcript.
    pub fn transcript(
        &self,
        id: &ConversationId,
    ) -> Result<(ConversationSummary, Vec<Event>), Refusal> {
        self.store.tx(|tx| -> Result<_, Refusal> {
            let conv = load(tx, id)?;
            Ok((
                self.summary(tx, &conv)?,
                store::events_after(tx, id, 0, usize::MAX >> 1)?,
            ))
        })
    }

    /// An agent takes a waiting conversation.
    pub fn accept(&self, agent: &AgentRef, id: &ConversationId) -> Result<(), Refusal> {
        self.store.tx(|tx| -> Result<_, Refusal> {
            let mut conv = load(tx, id)?;
            if let ConversationState::AgentJoined { agent: other } = &conv.state {
                return Err(Refusal::new(
                    ErrorCode::Conflict,
                    format!("{} already took this conversation", other.name),
                ));
            }
            step(&mut conv, &Input::AgentAccepted(agent.clone()))?;
            conv.agent_id = Some(agent.id.clone());
            store::append_event(
                tx,
                &mut conv,
                EventBody::AgentJoined {
                    agent: agent.clone(),
                },
                None,
                now_ms(),
            )?;
            store::update_conversation(tx, &conv)?;
            Ok(())
        })?;
        self.hub.notify(Notice::Conversation(id.clone()));
        self.hub.notify(Notice::Dequeued(id.clone()));
        Ok(())
    }

    fn owned(
        tx: &Transaction<'_>,
        agent: &AgentRef,
        id: &ConversationId,
    ) -> Result<Conversation, Refusal> {
        let conv = load(tx, id)?;
        match &conv.state {
            ConversationState::AgentJoined { agent: owner } if owner.id == agent.id => Ok(conv),
            other => Err(Refusal::new(
                ErrorCode::InvalidState,
                format!(
                    "you do not own this conversation (it is `{}`)",
                    other.name()
                ),
            )),
        }
    }

    /// An agent's reply.
    pub fn agent_message(
        &self,
        agent: &AgentRef,
        id: &ConversationId,
        client_msg_id: &ClientMsgId,
        text: &str,
    ) -> Result<Stored, Refusal> {
        let text = check_text(text)?;
        let stored = self.store.tx(|tx| -> Result<_, Refusal> {
            if let Some(seq) = store::seq_of_client_msg(tx, id, client_msg_id)? {
                return Ok(Stored {
                    seq,
                    duplicate: true,
                });
            }
            let mut conv = Self::owned(tx, agent, id)?;
            let body = EventBody::Message {
                role: Role::Agent,
                text: text.to_owned(),
                client_msg_id: Some(client_msg_id.clone()),
                agent: Some(agent.clone()),
                buttons: vec![],
            };
            let ev = store::append_event(tx, &mut conv, body, Some(client_msg_id), now_ms())?;
            store::update_conversation(tx, &conv)?;
            Ok(Stored {
                seq: ev.seq,
                duplicate: false,
            })
        })?;
        if !stored.duplicate {
            self.hub.notify(Notice::Conversation(id.clone()));
        }
        Ok(stored)
    }

    /// An agent ends a conversation; the visitor returns to the bot.
    pub fn end(&self, agent: &AgentRef, id: &ConversationId) -> Result<(), Refusal> {
        self.store.tx(|tx| -> Result<_, Refusal> {
            let mut conv = Self::owned(tx, agent, id)?;
            step(&mut conv, &Input::ChatEnded(EndedBy::Agent))?;
            store::append_event(
                tx,
                &mut conv,
                EventBody::ChatEnded { by: EndedBy::Agent },
                None,
                now_ms(),
            )?;
            store::update_conversation(tx, &conv)?;
            Ok(())
        })?;
        self.hub.notify(Notice::Conversation(id.clone()));
        Ok(())
    }
}

fn visitor_message(text: &str, client_msg_id: Option<ClientMsgId>) -> EventBody {
    EventBody::Message {
        role: Role::Visitor,
        text: text.to_owned(),
        client_msg_id,
        agent: None,
        buttons: vec![],
    }
}

/// A conversation, or a `not_found` refusal.
fn load(tx: &Transaction<'_>, id: &ConversationId) -> Result<Conversation, Refusal> {
    store::conversation(tx, id)?
        .ok_or_else(|| Refusal::new(ErrorCode::NotFound, format!("no conversation `{id}`")))
}

/// 1 + the number of queued conversations that asked earlier.
fn queue_position(tx: &Transaction<'_>, c: &Conversation) -> Result<Option<u32>, StoreError> {
    if !matches!(c.state, ConversationState::Queued { .. }) {
        return Ok(None);
    }
    let queued = store::conversations_in(tx, "queued", None)?;
    let ahead = queued
        .iter()
        .filter(|o| {
            o.id != c.id
                && (o.waiting_since_ms, o.id.as_str()) < (c.waiting_since_ms, c.id.as_str())
        })
        .count();
    Ok(Some(ahead as u32 + 1))
}
