//! The conversation service: load → decide → commit → publish.
//!
//! Every change to a conversation goes through [`Service::execute`]: it reads the
//! conversation, asks the protocol's pure `decide` what the command does, numbers the events,
//! runs them through `apply` for the new state, and commits them only if nobody else wrote
//! in between (else it decides again on fresh state). Then it publishes a notice. HTTP
//! handlers and socket loops only translate to and from it; the bot is called between two
//! such steps, never inside one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use baton_protocol::bot::{BotMessage, BotMetadata, BotRequest, HandoverDirective, Routing};
use baton_protocol::decide::{self, Command, Context, Refusal, View};
use baton_protocol::ids::{AgentId, ClientMsgId, ConversationId, VisitorId};
use baton_protocol::state::{AgentRef, ConversationState, Transport};
use baton_protocol::status::{Offload, OffloadState, OffloadStatus, RequestItem};
use baton_protocol::texts::Text;
use baton_protocol::time::rfc3339_from_unix_ms;
use baton_protocol::ws::{
    ConversationSummary, ErrorCode, Event, EventBody, HandoverResponse, LoginResponse,
    OfferOutcome, Presence, Role, TeamMember, TransferOffer, VisitorCredentials, VisitorSession,
};
use baton_protocol::{MAX_CLIENT_MSG_ID_BYTES, PROTOCOL_VERSION};
use tokio::sync::watch;

use crate::auth::{self, LoginThrottle, Passwords};
use crate::bot::{Bot, BotAnswer, BuiltinBot, RasaUpstream, Trigger};
use crate::bus::{self, Bus, Notice, Topic};
use crate::clock::{Clock, SystemClock};
use crate::config::{AtClosing, Config, Localised};
use crate::hours::Opening;
use crate::limits::Limiter;
use crate::metrics;
use crate::queue::QueueWatch;
use crate::store::{
    self, AgentRecord, AgentRole, Commit, Conversation, NewConversation, Scope, Staff, Store,
    StoreError,
};

/// How often a commit is retried when another writer got there first.
const COMMIT_ATTEMPTS: usize = 16;

/// How often the offloading status is recomputed besides presence changes (opening hours
/// begin and end, a console's lease runs out).
const STATUS_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Parts a test may replace.
#[derive(Default)]
pub struct Deps {
    /// The clock (default: the system clock).
    pub clock: Option<Arc<dyn Clock>>,
    /// The bot (default: from the config).
    pub bot: Option<Arc<dyn Bot>>,
    /// This replica's name (default: random).
    pub replica: Option<String>,
}

/// Shared server state.
pub struct Service {
    /// Resolved configuration.
    pub config: Config,
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Notices between sockets and replicas.
    pub bus: Arc<dyn Bus>,
    /// The bot.
    pub bot: Arc<dyn Bot>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// This replica's name (in presence rows and logs).
    pub replica: String,
    /// Rate limits.
    pub limits: Limiter,
    /// Queue positions for this replica's visitor sockets.
    pub queues: QueueWatch,
    /// This replica's copies of recently changed conversations.
    cache: ConversationCache,
    /// The agents online (what each serves) and when that was read, and a generation that
    /// every presence change bumps (so a list read before a change is not kept after it).
    presence: std::sync::Mutex<(Option<(Online, i64)>, u64)>,
    passwords: Passwords,
    logins: LoginThrottle,
    shutdown: watch::Sender<bool>,
    /// The supervisors' offloading switch as last read from the store (every replica reads
    /// it on each status check and at once when told it changed).
    switch: std::sync::Mutex<Option<Switch>>,
    /// The offloading status as visitor sockets were last told it (queue length aside):
    /// recomputed when agent presence changes anywhere and every few seconds (opening hours,
    /// leases that ran out), and pushed to every visitor socket when it changes.
    status_told: watch::Sender<Option<OffloadStatus>>,
    /// Who was online when `status_told` was last set: a queued visitor's line follows its
    /// own queue's agents, which can come and go while the site-wide status stays the same.
    online_told: std::sync::Mutex<Option<Online>>,
    /// The team list as last read, with the presence generation and the time it was read:
    /// every console of this replica reads the team again after the same notice, and the
    /// first one's reading serves them all.
    team_kept: std::sync::Mutex<Option<(u64, i64, Arc<TeamLists>)>>,
}

/// Every agent with presence and load, the queues, and every live chat.
type TeamLists = (Vec<TeamMember>, Vec<String>, Vec<ConversationSummary>);

/// What each agent online serves.
type Online = Arc<Vec<Scope>>;

/// The settings key of the offloading switch.
const SWITCH_KEY: &str = "offloading";

/// A supervisor's offloading switch: it overrides `[offloading] enabled` until flipped again.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Switch {
    /// On or off.
    pub enabled: bool,
    /// The supervisor who flipped it.
    pub by: String,
    /// When (Unix ms; filled in from the store).
    #[serde(default)]
    pub at_ms: i64,
}

/// The outcome of [`Service::execute`].
#[derive(Debug)]
pub struct Executed {
    /// The conversation as it was read before deciding.
    pub before: Conversation,
    /// The state after the command.
    pub view: View,
    /// The events appended (empty when the command changed nothing).
    pub events: Vec<Event>,
    /// For a repeated idempotency key: the event stored the first time.
    pub duplicate: Option<Event>,
}

/// A stored message: its seq, and whether it had been stored before (a retry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Where the message is.
    pub seq: u64,
    /// True when the idempotency key had been stored already.
    pub duplicate: bool,
}

fn internal(e: StoreError) -> Refusal {
    tracing::error!("storage: {e}");
    Refusal::new(ErrorCode::Internal, "storage error; please retry")
}

fn not_found(what: impl std::fmt::Display) -> Refusal {
    Refusal::new(ErrorCode::NotFound, format!("no conversation `{what}`"))
}

/// The author and key under which a command's message is idempotent, with its text.
fn idempotency(cmd: &Command) -> Option<(String, &ClientMsgId, &str)> {
    match cmd {
        Command::VisitorMessage {
            text,
            client_msg_id: Some(id),
        } => Some(("visitor".into(), id, text)),
        Command::AgentMessage {
            agent,
            text,
            client_msg_id,
        } => Some((format!("agent:{}", agent.id), client_msg_id, text)),
        _ => None,
    }
}

fn message_text(e: &Event) -> Option<&str> {
    match &e.body {
        EventBody::Message { text, .. } => Some(text),
        _ => None,
    }
}

/// A stored bot or system line as a Rasa answer item.
fn as_bot_message(sender: &VisitorId, e: &Event) -> Option<BotMessage> {
    match &e.body {
        EventBody::Message {
            role: Role::Bot | Role::System,
            text,
            buttons,
            image,
            attachment,
            custom,
            ..
        } => Some(BotMessage {
            recipient_id: Some(sender.clone()),
            text: (!text.is_empty()).then(|| text.clone()),
            buttons: (!buttons.is_empty()).then(|| buttons.clone()),
            image: image.clone(),
            attachment: attachment.clone(),
            custom: custom.clone(),
        }),
        _ => None,
    }
}

/// Checks a Rasa `sender` / `visitor_id`.
fn check_visitor_id(v: &VisitorId) -> Result<(), Refusal> {
    let s = v.as_str();
    if s.trim().is_empty() {
        return Err(Refusal::new(
            ErrorCode::BadRequest,
            "sender (the visitor id) is empty",
        ));
    }
    if s.len() > MAX_CLIENT_MSG_ID_BYTES || s.chars().any(char::is_control) {
        return Err(Refusal::new(
            ErrorCode::BadRequest,
            format!(
                "sender must be at most {MAX_CLIENT_MSG_ID_BYTES} bytes without control characters"
            ),
        ));
    }
    Ok(())
}

impl Service {
    /// Opens the store and the bus, ensures the configured agent accounts, and starts the
    /// replica's background tasks (queue positions, limiter clean-up).
    pub async fn new(
        config: Config,
        deps: Deps,
    ) -> Result<Arc<Self>, Box<dyn std::error::Error + Send + Sync>> {
        config.check()?;
        let store = store::open(&config.database, config.database_pool)
            .await
            .map_err(|e| format!("cannot open database {}: {e}", config.database))?;
        let replica = deps
            .replica
            .unwrap_or_else(|| format!("r_{}", auth::random_hex(4)));
        let bus = bus::open(&config.bus, &config.bus_prefix, &replica).await?;
        let bot: Arc<dyn Bot> = match (deps.bot, &config.bot.upstream) {
            (Some(bot), _) => bot,
            (None, Some(url)) => Arc::new(RasaUpstream::new(url, config.bot.upstream_timeout)?),
            (None, None) => Arc::new(BuiltinBot::new(config.bot.clone())),
        };
        let svc = Arc::new(Self {
            limits: Limiter::new(&config.limits),
            logins: LoginThrottle::new(config.limits.login_failures),
            passwords: Passwords::new(2),
            queues: QueueWatch::default(),
            cache: ConversationCache::default(),
            presence: std::sync::Mutex::new((None, 0)),
            store: Arc::new(store),
            bus,
            bot,
            clock: deps.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            replica,
            config,
            shutdown: watch::channel(false).0,
            switch: std::sync::Mutex::new(None),
            status_told: watch::channel(None).0,
            online_told: std::sync::Mutex::new(None),
            team_kept: std::sync::Mutex::new(None),
        });
        svc.ensure_agents().await?;
        tokio::spawn(crate::queue::run(svc.clone()));
        // Any replica's console coming or going makes the kept count of agents stale.
        let weak = Arc::downgrade(&svc);
        // The status visitors see follows, within STATUS_RECHECK at worst.
        let mut presence = svc.bus.subscribe(&Topic::Presence);
        let mut stop = svc.shutdown_signal();
        svc.recheck_status().await;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(STATUS_RECHECK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let notice = tokio::select! {
                    n = presence.recv() => Some(n),
                    _ = tick.tick() => None,
                    _ = stop.changed() => return,
                };
                let Some(svc) = weak.upgrade() else { return };
                if !matches!(notice, None | Some(Notice::Offloading)) {
                    svc.presence_changed();
                }
                svc.recheck_status().await;
                // A chat starting or ending, or an agent going away, strands nobody and
                // times nothing out: those checks wait for a console to come or go, or the
                // next tick.
                if !matches!(notice, Some(Notice::Team)) {
                    svc.recheck_agents().await;
                    svc.recheck_queue_timeouts().await;
                }
            }
        });
        let weak = Arc::downgrade(&svc);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(svc) if !*svc.shutdown.borrow() => svc.limits.forget_idle(),
                    _ => return,
                }
            }
        });
        Ok(svc)
    }

    /// Now, from the injected clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A receiver that turns `true` when the server shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Tells every socket and background task to stop.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    // ---- the one way a conversation changes ----

    /// Load → decide → commit → publish, retried on a concurrent write.
    ///
    /// The first attempt may decide on this replica's cached copy of the conversation: a
    /// commit only succeeds if the stored head is still the one decided on, so a stale copy
    /// costs one retry, never a wrong event. Anything that is not a successful commit (a
    /// refusal, "nothing to do", a conflict) is decided again on a fresh read before it is
    /// answered. Likewise a repeated idempotency key is caught by the unique index at
    /// commit, and only then looked up.
    pub async fn execute(
        &self,
        id: &ConversationId,
        command: Command,
        reply_to: Option<u64>,
    ) -> Result<Executed, Refusal> {
        self.execute_within(id, command, reply_to, None).await
    }

    /// [`Service::execute`] for a command that gives `staff` one more chat: the commit is
    /// refused (`conflict`) when the agent already has its `max_chats` (its own, else the
    /// site's; 0: no limit), counted in the commit itself.
    pub async fn execute_for(
        &self,
        id: &ConversationId,
        command: Command,
        staff: &Staff,
    ) -> Result<Executed, Refusal> {
        let limit = staff.max_chats.unwrap_or(self.config.offloading.max_chats);
        let capacity = (limit > 0).then(|| store::Capacity {
            agent: staff.agent.id.clone(),
            limit,
        });
        self.execute_within(id, command, None, capacity).await
    }

    async fn execute_within(
        &self,
        id: &ConversationId,
        command: Command,
        reply_to: Option<u64>,
        capacity: Option<store::Capacity>,
    ) -> Result<Executed, Refusal> {
        if let Some((_, key, _)) = idempotency(&command) {
            decide::check_client_msg_id(key)?;
        }
        let mut fresh = false;
        for _ in 0..COMMIT_ATTEMPTS {
            let before = match self.cache.get(id).filter(|_| !fresh) {
                Some(c) => c,
                None => {
                    fresh = true;
                    self.load(id).await?
                }
            };
            if fresh
                && let Some((author, key, text)) = idempotency(&command)
                && before.view.head_seq > 0
            {
                let t = Instant::now();
                let previous = self
                    .store
                    .event_by_client_msg_id(id, &author, key)
                    .await
                    .map_err(internal)?;
                metrics::READ_CLIENT_MSG.since(t);
                if let Some(prev) = previous {
                    if message_text(&prev) != Some(text.trim()) {
                        return Err(Refusal::new(
                            ErrorCode::Conflict,
                            format!("client_msg_id `{key}` was already used for another text"),
                        ));
                    }
                    return Ok(Executed {
                        view: before.view.clone(),
                        before,
                        events: vec![],
                        duplicate: Some(prev),
                    });
                }
            }
            let now_ms = self.now_ms();
            // A handover is decided by its queue: the agents online who serve it, and the
            // queue's own assignment mode.
            // Only a handover request and its re-answer depend on it (the hot path skips the
            // opening hours).
            let mut offload = match command {
                Command::RequestHandover { .. } | Command::Unqueue => self.offload_at(now_ms),
                _ => Offload::open(),
            };
            let agents_online = match &command {
                Command::RequestHandover { directive, .. } => {
                    let queue = decide::queue_of(directive);
                    let skill = directive.routing.as_ref().and_then(|r| r.skill.as_deref());
                    if let Some(mode) = self.config.queue(&queue).when_no_agents {
                        offload.when_no_agents = mode;
                    }
                    self.agents_online_for(&queue, skill).await?
                }
                _ => 0,
            };
            let cx = Context {
                now_ms,
                offload: &offload,
                agents_online,
            };
            let bodies = match decide::decide(&before.view, &command, &cx) {
                Ok(bodies) if !bodies.is_empty() => bodies,
                _ if !fresh => {
                    // Only a successful commit trusts the cached copy.
                    fresh = true;
                    continue;
                }
                Ok(_) => {
                    return Ok(Executed {
                        view: before.view.clone(),
                        before,
                        events: vec![],
                        duplicate: None,
                    });
                }
                Err(refusal) => return Err(refusal),
            };
            let ts = rfc3339_from_unix_ms(now_ms);
            let mut view = before.view.clone();
            let events: Vec<Event> = bodies
                .into_iter()
                .zip(view.head_seq + 1..)
                .map(|(body, seq)| Event {
                    seq,
                    ts: ts.clone(),
                    body,
                })
                .collect();
            for e in &events {
                if let decide::Applied::Rejected(r) = decide::apply(&mut view, e) {
                    // decide only emits events its own state machine accepts.
                    tracing::error!("decided an event apply rejects: {r}");
                }
            }
            let commit = Commit {
                conversation: id.clone(),
                expected_head: before.view.head_seq,
                view: view.clone(),
                events,
                reply_to,
                now_ms,
                capacity: capacity.clone(),
            };
            let t = Instant::now();
            let committed = self.store.commit(&commit).await;
            metrics::COMMIT.since(t);
            match committed {
                Ok(new_handover) => {
                    self.cache.committed(&before, &commit);
                    self.publish(&before, &commit, new_handover).await;
                    return Ok(Executed {
                        before,
                        view,
                        events: commit.events,
                        duplicate: None,
                    });
                }
                Err(StoreError::Conflict) => {
                    self.cache.forget(id);
                    fresh = true;
                }
                Err(StoreError::Full(n)) => {
                    return Err(Refusal::new(
                        ErrorCode::Conflict,
                        format!(
                            "you have {n} chats open, your limit: end one before you take another"
                        ),
                    ));
                }
                Err(e) => {
                    self.cache.forget(id);
                    return Err(internal(e));
                }
            }
        }
        Err(Refusal::new(
            ErrorCode::Internal,
            "the conversation is changing too fast; please retry",
        ))
    }

    /// Reads a conversation from the store.
    async fn fresh(&self, id: &ConversationId) -> Result<Conversation, Refusal> {
        let t = Instant::now();
        let conv = self
            .store
            .conversation(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(id))?;
        metrics::READ_CONVERSATION.since(t);
        Ok(conv)
    }

    /// Reads a conversation from the store and keeps a copy.
    async fn load(&self, id: &ConversationId) -> Result<Conversation, Refusal> {
        let conv = self.fresh(id).await?;
        self.cache.put(conv.clone());
        Ok(conv)
    }

    /// The agents available now, by what each serves: a console open (leases in the store,
    /// so every replica agrees), not away, and room for one more chat. The list is kept for a
    /// moment: every replica drops it when any console comes or goes, an agent goes away or
    /// back, or a chat starts or ends (the presence topic's notices), and a lease that runs
    /// out shows within [`PRESENCE_FRESH_MS`].
    async fn online(&self) -> Result<Online, Refusal> {
        let now = self.now_ms();
        let generation = {
            let kept = self.presence.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((online, at)) = &kept.0
                && (0..PRESENCE_FRESH_MS).contains(&(now - at))
            {
                return Ok(online.clone());
            }
            kept.1
        };
        let t = Instant::now();
        let online = self.store.agents_online(now).await.map_err(internal)?;
        let loads: HashMap<AgentId, u32> = if online.is_empty() {
            HashMap::new()
        } else {
            self.store
                .agent_loads()
                .await
                .map_err(internal)?
                .into_iter()
                .collect()
        };
        metrics::PRESENCE.since(t);
        // Routing counts an agent who is there, not away, and has room for one more chat.
        let site_limit = self.config.offloading.max_chats;
        let online = Arc::new(
            online
                .into_iter()
                .filter(|a| {
                    let limit = a.max_chats.unwrap_or(site_limit);
                    !a.away && (limit == 0 || loads.get(&a.id).copied().unwrap_or(0) < limit)
                })
                .map(|a| a.scope)
                .collect(),
        );
        let mut kept = self.presence.lock().unwrap_or_else(|p| p.into_inner());
        if kept.1 == generation {
            kept.0 = Some((Arc::clone(&online), now));
        }
        Ok(online)
    }

    /// How many agents are online now, in any queue.
    pub async fn agents_online(&self) -> Result<u32, Refusal> {
        Ok(self.online().await?.len() as u32)
    }

    /// How many agents online now serve `queue` (and have `skill`, when one is needed).
    pub async fn agents_online_for(
        &self,
        queue: &str,
        skill: Option<&str>,
    ) -> Result<u32, Refusal> {
        Ok(self
            .online()
            .await?
            .iter()
            .filter(|s| s.covers(queue, skill))
            .count() as u32)
    }

    /// Whether an agent of this handover's queue (and skill) is online.
    async fn served(&self, h: Option<&store::Handover>) -> Result<bool, Refusal> {
        Ok(match h {
            Some(h) => self.agents_online_for(&h.queue, h.skill.as_deref()).await? > 0,
            None => self.agents_online().await? > 0,
        })
    }

    /// Forgets the kept count of agents online.
    pub fn presence_changed(&self) {
        let mut kept = self.presence.lock().unwrap_or_else(|p| p.into_inner());
        kept.0 = None;
        kept.1 += 1;
    }

    /// Wakes whoever shows this conversation, and its queue's watchers when it entered or
    /// left a queue.
    async fn publish(&self, before: &Conversation, commit: &Commit, new_handover: Option<i64>) {
        let t = Instant::now();
        self.publish_notices(before, commit, new_handover).await;
        metrics::PUBLISH.since(t);
    }

    /// How consoles list a conversation that just entered the queue: built once here from
    /// what the commit wrote, instead of by every console.
    async fn waiting_summary(
        &self,
        before: &Conversation,
        commit: &Commit,
        handover_id: i64,
    ) -> Option<ConversationSummary> {
        // The handover row as the commit wrote it.
        let handover = commit.events.iter().find_map(|e| match &e.body {
            EventBody::HandoverRequested {
                reason,
                message_to_agent,
                queue,
                skill,
                page_url,
                reason_text,
                slots,
                locale,
            } => Some(crate::store::Handover {
                id: handover_id,
                queue: queue
                    .clone()
                    .unwrap_or_else(|| decide::DEFAULT_QUEUE.into()),
                skill: skill.clone(),
                reason: *reason,
                message_to_agent: message_to_agent.clone(),
                page_url: page_url.clone(),
                reason_text: reason_text.clone(),
                slots: slots.clone(),
                locale: locale.clone(),
                requested_ms: commit.now_ms,
                accepted_ms: None,
                ended_ms: None,
                agent_id: None,
                outcome: "queued".into(),
            }),
            _ => None,
        })?;
        let position = self.store.queue_position(handover_id).await.ok()?;
        let online = self.served(Some(&handover)).await.ok()?;
        let mut conv = before.clone();
        conv.view = commit.view.clone();
        conv.handover = Some(handover);
        Some(self.summary(
            &conv,
            ConversationState::Queued {
                position,
                agents_online: Some(online),
            },
        ))
    }

    async fn publish_notices(
        &self,
        before: &Conversation,
        commit: &Commit,
        new_handover: Option<i64>,
    ) {
        let id = &commit.conversation;
        self.bus
            .publish(
                Topic::Conversation(id.clone()),
                Notice::Events {
                    conversation_id: id.clone(),
                    head_seq: commit.view.head_seq,
                    events: commit.events.clone(),
                },
            )
            .await;
        let mut queue = None;
        for e in &commit.events {
            match &e.body {
                EventBody::HandoverRequested { queue: q, .. } => queue = q.clone(),
                EventBody::HandoverOutcome {
                    outcome: ConversationState::Queued { .. },
                } => {}
                // Back in the queue after its agent went offline; or leaving it: accepted,
                // cancelled, or answered again (closed, disabled).
                // Handed back to a queue (perhaps another one).
                EventBody::Transferred { queue: Some(q), .. } => queue = Some(q.clone()),
                EventBody::AgentLeft { .. }
                | EventBody::HandoverCancelled
                | EventBody::AgentJoined { .. }
                | EventBody::HandoverOutcome { .. } => {
                    queue = queue.or_else(|| before.handover.as_ref().map(|h| h.queue.clone()));
                }
                _ => continue,
            }
        }
        // A chat started, ended or changed hands: loads and live chats changed; an offer
        // of the chat by the agent who had it is over.
        let agent_of = |s: &ConversationState| match s {
            ConversationState::AgentJoined { agent } => Some(agent.id.clone()),
            _ => None,
        };
        let (was, now) = (agent_of(&before.view.state), agent_of(&commit.view.state));
        if was != now {
            if was.is_some()
                && let Ok(Some(offer)) = self.store.take_offer(id).await
            {
                let outcome = if now.as_ref() == Some(&offer.to) {
                    OfferOutcome::Taken
                } else {
                    OfferOutcome::Withdrawn
                };
                self.offer_ended(&offer, outcome).await;
            }
            self.team_changed().await;
        }
        let queued_now = matches!(commit.view.state, ConversationState::Queued { .. });
        let was_queued = matches!(before.view.state, ConversationState::Queued { .. });
        if queued_now != was_queued
            && let Some(q) = queue
        {
            let waiting = match (queued_now, new_handover) {
                (true, Some(h)) => self.waiting_summary(before, commit, h).await.map(Box::new),
                _ => None,
            };
            self.bus
                .publish(
                    Topic::Queue(q),
                    Notice::Queue {
                        conversation_id: id.clone(),
                        left: !queued_now,
                        waiting,
                    },
                )
                .await;
        }
    }

    // ---- visitors ----

    /// A new visitor: a conversation guarded by a fresh credential.
    pub async fn new_visitor(&self) -> Result<VisitorCredentials, Refusal> {
        let token = auth::new_token();
        let visitor_id = VisitorId(format!("v_{}", auth::random_hex(16)));
        let hash = auth::token_hash(&token);
        let now_ms = self.now_ms();
        let id = ConversationId(format!("c_{}", auth::random_hex(12)));
        self.store
            .create_conversation(NewConversation {
                id: id.clone(),
                visitor_id: visitor_id.clone(),
                credential_hash: Some(hash.clone()),
                now_ms,
            })
            .await
            .map_err(internal)?;
        self.cache.credential(&hash, &id);
        self.cache.put(Conversation {
            id,
            visitor_id: visitor_id.clone(),
            has_credential: true,
            view: View::default(),
            handover: None,
            last_visitor_text: None,
            created_ms: now_ms,
            visitor_read_seq: 0,
            agent_read_seq: 0,
        });
        Ok(VisitorCredentials { visitor_id, token })
    }

    /// The conversation a visitor credential opens. A credential never moves to another
    /// conversation, so which one it opens is kept once known; the conversation itself comes
    /// from the cache when this replica has a copy.
    pub async fn visitor_by_token(&self, token: &str) -> Result<Conversation, Refusal> {
        let hash = auth::token_hash(token);
        if let Some(conv) = self.cache.by_credential(&hash) {
            return Ok(conv);
        }
        let conv = self
            .store
            .conversation_by_credential(&hash)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                Refusal::new(
                    ErrorCode::Unauthorized,
                    "unknown visitor credential; get a new one from POST /api/v1/visitor",
                )
            })?;
        self.cache.credential(&hash, &conv.id);
        self.cache.put(conv.clone());
        Ok(conv)
    }

    /// The conversation a bot request is for: the credential's, or, for a plain Rasa client
    /// that sends none, the sender's (created on first contact). A conversation that has a
    /// credential accepts nothing without it.
    async fn webhook_conversation(
        &self,
        sender: &VisitorId,
        bearer: Option<&str>,
        ip: std::net::IpAddr,
    ) -> Result<Conversation, Refusal> {
        check_visitor_id(sender)?;
        if let Some(token) = bearer {
            let conv = self.visitor_by_token(token).await?;
            if &conv.visitor_id != sender {
                return Err(Refusal::new(
                    ErrorCode::Forbidden,
                    "this credential belongs to another visitor",
                ));
            }
            return Ok(conv);
        }
        // A new plain sender is a new visitor, and counts as one against the address.
        if self
            .store
            .conversation_by_visitor(sender)
            .await
            .map_err(internal)?
            .is_none()
        {
            self.limits.new_visitor(ip).map_err(|l| {
                Refusal::new(
                    ErrorCode::RateLimited,
                    format!(
                        "too many new visitors from this address; wait {} s",
                        l.0.as_secs_f64().ceil() as u64
                    ),
                )
            })?;
        }
        let conv = self
            .store
            .conversation_for_sender(NewConversation {
                id: ConversationId(format!("c_{}", auth::random_hex(12))),
                visitor_id: sender.clone(),
                credential_hash: None,
                now_ms: self.now_ms(),
            })
            .await
            .map_err(internal)?;
        if conv.has_credential {
            return Err(Refusal::new(
                ErrorCode::Unauthorized,
                "this conversation needs its visitor credential (Authorization: Bearer …)",
            ));
        }
        Ok(conv)
    }

    /// One bot turn over `POST /webhooks/rest/webhook`: stores the visitor message, asks the
    /// bot, stores and returns its answer. A retry with the same `client_msg_id` gets the
    /// stored answer and asks the bot nothing. With an agent, the message goes to the agent
    /// and the answer is empty.
    pub async fn bot_turn(
        &self,
        req: &BotRequest,
        bearer: Option<&str>,
        ip: std::net::IpAddr,
        locale: Option<&str>,
    ) -> Result<Vec<BotMessage>, Refusal> {
        let conv = self.webhook_conversation(&req.sender, bearer, ip).await?;
        self.visitor_limit(&conv.visitor_id)?;
        let wcp = req.metadata.as_ref().and_then(|m| m.wcp.as_ref());
        let client_msg_id = wcp.and_then(|w| w.client_msg_id.clone());
        let ex = self
            .execute(
                &conv.id,
                Command::VisitorMessage {
                    text: req.message.clone(),
                    client_msg_id,
                },
                None,
            )
            .await?;
        if let Some(prev) = ex.duplicate {
            let answer = self
                .store
                .replies_to(&conv.id, prev.seq)
                .await
                .map_err(internal)?;
            return Ok(answer
                .iter()
                .filter_map(|e| as_bot_message(&req.sender, e))
                .collect());
        }
        if !ex.view.state.bot_answers() {
            return Ok(vec![]);
        }
        let seq = ex
            .events
            .iter()
            .rev()
            .find(|e| matches!(e.body, EventBody::Message { .. }))
            .map_or(ex.view.head_seq, |e| e.seq);
        let forwarded = BotRequest {
            sender: req.sender.clone(),
            message: req.message.trim().to_owned(),
            metadata: req.metadata.clone(),
        };
        self.run_bot(&conv, seq, forwarded, locale).await
    }

    /// Asks the bot about the visitor message at `seq`, stores the answer (or a notice that
    /// the bot is unreachable), and starts a handover if the answer carries a directive.
    pub async fn run_bot(
        &self,
        conv: &Conversation,
        seq: u64,
        req: BotRequest,
        locale: Option<&str>,
    ) -> Result<Vec<BotMessage>, Refusal> {
        // Baton's own sentences follow the widget's language (`?locale=`), else the one the
        // page told the bot.
        let locale = locale.or_else(|| {
            req.metadata
                .as_ref()
                .and_then(|m| m.wcp.as_ref())
                .and_then(|w| w.locale.as_deref())
        });
        let memory = if self.bot.remembers() {
            self.store.bot_memory(&conv.id).await.map_err(internal)?
        } else {
            None
        };
        let t = Instant::now();
        let answer = self.bot.answer(&req, memory).await;
        metrics::BOT.since(t);
        match answer {
            Ok(BotAnswer { items, memory }) => {
                self.execute(
                    &conv.id,
                    Command::BotAnswer {
                        items: items.clone(),
                    },
                    Some(seq),
                )
                .await?;
                // Remembered once the answer is stored: a retry of a message whose answer
                // was lost asks the bot again from the same memory.
                if let Some(m) = memory {
                    self.store
                        .set_bot_memory(&conv.id, &m, self.now_ms())
                        .await
                        .map_err(internal)?;
                }
                // The page the widget reported with this message, if it is a proper URL.
                let page_url = req
                    .metadata
                    .as_ref()
                    .and_then(|m| m.wcp.as_ref())
                    .and_then(|w| w.page_url.clone())
                    .filter(|u| decide::check_page_url(Some(u)).is_ok());
                if let Some(mut directive) = items.iter().find_map(BotMessage::handover) {
                    // Every handover records what triggered it: an upstream's directive
                    // says so when it does not name its own.
                    if directive.reason_text.is_none() && self.bot.kind() == "rasa" {
                        directive.reason_text = Some(Trigger::Upstream.as_str().into());
                    }
                    if let Err(r) = self
                        .execute_handover(&conv.id, directive, page_url, locale)
                        .await
                    {
                        tracing::warn!("the bot's handover for {} failed: {r}", conv.id);
                    }
                }
                Ok(items)
            }
            Err(e) => {
                tracing::warn!("bot ({}) failed for {}: {e}", self.bot.kind(), conv.id);
                let notice = self.config.texts_for(locale).1.bot_unavailable.clone();
                self.execute(
                    &conv.id,
                    Command::BotUnavailable {
                        notice: notice.clone(),
                    },
                    Some(seq),
                )
                .await?;
                Ok(vec![BotMessage::text(&req.sender, notice)])
            }
        }
    }

    fn visitor_limit(&self, v: &VisitorId) -> Result<(), Refusal> {
        self.limits.visitor(v.as_str()).map_err(|l| {
            Refusal::new(
                ErrorCode::RateLimited,
                format!(
                    "too many messages; wait {} s",
                    l.0.as_secs_f64().ceil() as u64
                ),
            )
        })
    }

    async fn execute_handover(
        &self,
        id: &ConversationId,
        directive: HandoverDirective,
        page_url: Option<String>,
        locale: Option<&str>,
    ) -> Result<Executed, Refusal> {
        // The language the visitor's texts come in: the closest one the server has.
        let locale = locale.map(|l| self.config.texts_for(Some(l)).0.to_owned());
        self.execute(
            id,
            Command::RequestHandover {
                directive,
                page_url,
                locale,
            },
            None,
        )
        .await
    }

    /// `POST /api/v1/handover`: the visitor asks for a person (or follows a bot directive).
    /// Asking again while waiting, or with nothing said since and the same answer, answers
    /// with the earlier request instead of repeating it.
    pub async fn handover(
        &self,
        token: &str,
        visitor: &VisitorId,
        directive: HandoverDirective,
        page_url: Option<String>,
        locale: Option<&str>,
    ) -> Result<HandoverResponse, Refusal> {
        check_visitor_id(visitor)?;
        let conv = self.visitor_by_token(token).await?;
        if &conv.visitor_id != visitor {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "this credential belongs to another visitor",
            ));
        }
        self.visitor_limit(visitor)?;
        // Read afresh: another replica may have stored the bot's handover a moment ago.
        let latest = self.fresh(&conv.id).await?;
        // A request of the visitor's own (not one the bot's answer already made, which this
        // call only follows) obeys the site owner's rule for the widget's menu item.
        if self.config.request_item != RequestItem::Always {
            let view = &latest.view;
            let own_request = !view.asked_since_last_message() && view.state.can_request_handover();
            let allowed = !own_request
                || match self.config.request_item.after() {
                    None => false,
                    Some(n) => self.visitor_messages_reach(&conv.id, n).await?,
                };
            if !allowed {
                return Err(Refusal::new(
                    ErrorCode::Forbidden,
                    "asking for a person is not offered here yet; the assistant can hand over",
                ));
            }
        }
        // What a visitor sends may not speak for the bot: the note for the agent and the
        // routing come only from bot answers the server stored itself.
        // A new request here is the visitor's own, from the widget's menu item (one the bot
        // started is already stored, and this call only follows it).
        // Following the bot's request, it is decided for the bot's queue again (so the same
        // answer repeats nothing).
        let routing = latest
            .handover
            .as_ref()
            .filter(|_| latest.view.asked_since_last_message())
            .map(|h| Routing {
                queue: Some(h.queue.clone()),
                skill: h.skill.clone(),
            });
        let directive = HandoverDirective {
            reason: directive.reason,
            reason_text: Some(Trigger::MenuItem.as_str().into()),
            agent_available: directive.agent_available,
            agent_unavailable: directive.agent_unavailable,
            title: directive.title,
            routing,
            ..HandoverDirective::default()
        };
        let texts = (
            directive.agent_available.clone(),
            directive.agent_unavailable.clone(),
        );
        let ex = self
            .execute_handover(&conv.id, directive, page_url, locale)
            .await?;
        // A handover the visitor started ends whatever the bot had open (a flow, a yes/no
        // question): after the agent chat the bot starts afresh, reload or not.
        if !ex.events.is_empty() && self.bot.remembers() {
            self.store
                .set_bot_memory(&conv.id, "{}", self.now_ms())
                .await
                .map_err(internal)?;
        }
        let events = match ex.view.last_request_seq {
            0 => vec![],
            // Just decided: the answer is the events themselves.
            seq if ex.events.first().is_some_and(|e| e.seq == seq) => ex.events.clone(),
            seq => self
                .store
                .events_after(&conv.id, seq - 1, 2)
                .await
                .map_err(internal)?,
        };
        let conv = self.fresh(&conv.id).await?;
        let state = self.live_state(&conv).await?;
        // The texts of the handover's queue, else the site's in the widget's language.
        let (lang, t) = self.config.texts_for(locale);
        let q = self
            .config
            .queue(conv.handover.as_ref().map_or("", |h| h.queue.as_str()));
        let or = |own: &Option<Localised>, site: &String| self.queue_text(own, site, lang);
        let message = match &state {
            ConversationState::Queued {
                agents_online: Some(false),
                ..
            } => or(&q.waiting_no_agents, &t.waiting_no_agents),
            ConversationState::Queued { .. } | ConversationState::AgentJoined { .. } => texts
                .0
                .map_or_else(|| or(&q.waiting, &t.waiting), |o| o.message),
            ConversationState::Closed { .. } => t.closed.clone(),
            ConversationState::Disabled => t.disabled.clone(),
            _ => texts
                .1
                .map_or_else(|| or(&q.unavailable, &t.unavailable), |o| o.message),
        };
        let session = (state.transport() == Transport::AgentSocket).then(|| VisitorSession {
            conversation_id: conv.id.clone(),
            token: token.to_owned(),
            head_seq: events.last().map_or(conv.view.head_seq, |e| e.seq),
        });
        let events = events.iter().map(Event::for_visitor).collect();
        let mut status = self.status().await?;
        self.localize(&mut status, locale);
        Ok(HandoverResponse {
            state,
            message,
            status,
            session,
            events,
        })
    }

    /// `POST /api/v1/visitor/message`: the visitor leaves a message for agents (when nobody
    /// can chat). Name, e-mail and text are checked; returns the message's id.
    pub async fn leave_message(
        &self,
        token: &str,
        req: baton_protocol::ws::LeaveMessageRequest,
    ) -> Result<i64, Refusal> {
        let conv = self.credential_of(token, &req.visitor_id).await?;
        let bad = |what: &str| Refusal::new(ErrorCode::BadRequest, what.to_owned());
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(bad("name: 1 to 100 characters, please"));
        }
        let email = crate::bot::valid_email(&req.email)
            .ok_or_else(|| bad("email: that does not look like an e-mail address"))?;
        let text = decide::check_text(&req.text)?.to_owned();
        decide::check_page_url(req.page_url.as_deref())?;
        let id = self
            .store
            .leave_message(
                &store::NewMessage {
                    conversation_id: conv.id.clone(),
                    name: name.to_owned(),
                    email,
                    text,
                    page_url: req.page_url,
                },
                self.now_ms(),
            )
            .await
            .map_err(internal)?;
        tracing::info!("message {id} left in {}", conv.id);
        Ok(id)
    }

    /// The conversation of a visitor's request: the credential's, which must be that
    /// visitor's, within the visitor's rate limit.
    async fn credential_of(
        &self,
        token: &str,
        visitor_id: &VisitorId,
    ) -> Result<Conversation, Refusal> {
        check_visitor_id(visitor_id)?;
        let conv = self.visitor_by_token(token).await?;
        if conv.visitor_id != *visitor_id {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "this credential belongs to another visitor",
            ));
        }
        self.visitor_limit(visitor_id)?;
        Ok(conv)
    }

    /// A visitor rates its agent chat that ended last (1 to 5 stars, an optional comment);
    /// rating again replaces it. Only an ended agent chat can be rated.
    pub async fn rate(
        &self,
        token: &str,
        req: baton_protocol::ws::RatingRequest,
    ) -> Result<(), Refusal> {
        let conv = self.credential_of(token, &req.visitor_id).await?;
        if !(1..=5).contains(&req.stars) {
            return Err(Refusal::new(ErrorCode::BadRequest, "stars: 1 to 5, please"));
        }
        let comment = match req.comment.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(c)
                if c.chars().count() > baton_protocol::ws::MAX_COMMENT_CHARS
                    || c.chars()
                        .any(|ch| ch.is_control() && !matches!(ch, '\n' | '\r' | '\t')) =>
            {
                return Err(Refusal::new(
                    ErrorCode::BadRequest,
                    format!(
                        "comment: at most {} characters of text, please",
                        baton_protocol::ws::MAX_COMMENT_CHARS
                    ),
                ));
            }
            Some(c) => Some(c.to_owned()),
        };
        // The chat rated is the latest handover's, once its agent chat is over.
        let conv = self.fresh(&conv.id).await?;
        let rateable = conv
            .handover
            .as_ref()
            .filter(|h| h.outcome == "ended")
            .and_then(|h| Some((h.id, h.agent_id.clone()?)));
        let Some((handover_id, agent_id)) = rateable else {
            return Err(Refusal::new(
                ErrorCode::InvalidState,
                "there is no ended chat with an agent to rate",
            ));
        };
        let name = self
            .store
            .agents()
            .await
            .map_err(internal)?
            .into_iter()
            .find(|a| a.id == agent_id)
            .map_or_else(|| "Agent".to_owned(), |a| a.name);
        self.store
            .rate(
                &store::NewRating {
                    handover_id,
                    conversation_id: conv.id.clone(),
                    agent: AgentRef { id: agent_id, name },
                    stars: req.stars,
                    comment,
                },
                self.now_ms(),
            )
            .await
            .map_err(internal)
    }

    /// The ratings, for a supervisor: how many, their mean, the latest 200.
    pub async fn ratings(&self, staff: &Staff) -> Result<baton_protocol::ws::Ratings, Refusal> {
        if staff.role != AgentRole::Supervisor {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "only supervisors read the ratings",
            ));
        }
        let (count, average, latest) = self.store.ratings(200).await.map_err(internal)?;
        Ok(baton_protocol::ws::Ratings {
            count,
            average,
            latest,
        })
    }

    /// The messages visitors left: open ones, or the latest 200 with those done.
    pub async fn left_messages(
        &self,
        include_done: bool,
    ) -> Result<Vec<baton_protocol::ws::LeftMessage>, Refusal> {
        self.store
            .left_messages(include_done, 200)
            .await
            .map_err(internal)
    }

    /// An agent marks a left message done.
    pub async fn mark_message_done(&self, staff: &Staff, id: i64) -> Result<(), Refusal> {
        let done = self
            .store
            .mark_message_done(id, &staff.agent.name, self.now_ms())
            .await
            .map_err(internal)?;
        if done {
            Ok(())
        } else {
            Err(not_found(format!("message {id}")))
        }
    }

    /// Whether the visitor has written at least `n` messages in a conversation (the log is
    /// read only as far as needed).
    async fn visitor_messages_reach(&self, id: &ConversationId, n: u32) -> Result<bool, Refusal> {
        let (mut after, mut count) = (0, 0);
        loop {
            if count >= n {
                return Ok(true);
            }
            let page = self
                .store
                .events_after(id, after, 500)
                .await
                .map_err(internal)?;
            let Some(last) = page.last() else {
                return Ok(false);
            };
            after = last.seq;
            count += page
                .iter()
                .filter(|e| {
                    matches!(
                        e.body,
                        EventBody::Message {
                            role: Role::Visitor,
                            ..
                        }
                    )
                })
                .count() as u32;
        }
    }

    /// A conversation's state as shown now: a queued one with its live position and
    /// whether any agent is online.
    pub async fn live_state(&self, conv: &Conversation) -> Result<ConversationState, Refusal> {
        Ok(match &conv.view.state {
            ConversationState::Queued { .. } => {
                let position = match &conv.handover {
                    Some(h) => self.store.queue_position(h.id).await.map_err(internal)?,
                    None => None,
                };
                ConversationState::Queued {
                    position,
                    agents_online: Some(self.served(conv.handover.as_ref()).await?),
                }
            }
            other => other.clone(),
        })
    }

    /// The offloading situation at `now_ms`: the supervisors' switch (else the configured
    /// `enabled`), then the opening hours.
    pub fn offload_at(&self, now_ms: i64) -> Offload {
        let o = &self.config.offloading;
        let enabled = self
            .switch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(o.enabled, |s| s.enabled);
        let (state, next_open_at) = if !enabled {
            (OffloadState::Disabled, None)
        } else {
            match o.hours.at(now_ms) {
                Opening::Open => (OffloadState::Open, None),
                Opening::Closed { next_open_ms } => (
                    OffloadState::Closed,
                    next_open_ms.map(|ms| o.hours.format_local(ms)),
                ),
            }
        };
        Offload {
            state,
            next_open_at,
            when_no_agents: o.when_no_agents,
        }
    }

    /// The supervisors' switch, as last read.
    pub fn switch(&self) -> Option<Switch> {
        self.switch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the switch from the store (another replica may have flipped it).
    async fn read_switch(&self) {
        match self.store.setting(SWITCH_KEY).await {
            Ok(row) => {
                let switch = row.and_then(|(value, at_ms)| {
                    serde_json::from_str::<Switch>(&value)
                        .ok()
                        .map(|s| Switch { at_ms, ..s })
                });
                // Not older than what this replica knows (a flip here may be newer than a
                // read that started before it).
                let mut kept = self.switch.lock().unwrap_or_else(|p| p.into_inner());
                if switch.as_ref().map(|s| s.at_ms) >= kept.as_ref().map(|s| s.at_ms) {
                    *kept = switch;
                }
            }
            Err(e) => tracing::warn!("offloading switch: {e}"),
        }
    }

    /// A supervisor switches offloading on or off for every replica. Switching off answers
    /// every queued visitor with `disabled` at once (they return to the bot).
    pub async fn set_offloading(&self, staff: &Staff, enabled: bool) -> Result<Switch, Refusal> {
        if staff.role != AgentRole::Supervisor {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "only a supervisor may switch offloading on or off",
            ));
        }
        let now = self.now_ms();
        let switch = Switch {
            enabled,
            by: staff.agent.name.clone(),
            at_ms: now,
        };
        let value =
            serde_json::to_string(&switch).map_err(|e| internal(StoreError::Db(e.to_string())))?;
        self.store
            .put_setting(SWITCH_KEY, &value, now)
            .await
            .map_err(internal)?;
        *self.switch.lock().unwrap_or_else(|p| p.into_inner()) = Some(switch.clone());
        tracing::info!(
            "offloading switched {} by {}",
            if enabled { "on" } else { "off" },
            staff.agent.name
        );
        self.bus.publish(Topic::Presence, Notice::Offloading).await;
        self.recheck_status().await;
        Ok(switch)
    }

    /// Answers every queued conversation again while offloading is switched off (or closed,
    /// if `at_closing` says so): the visitor is told and the bot takes over.
    async fn unqueue_all(&self, state: OffloadState) {
        let sweep = match state {
            OffloadState::Disabled => true,
            OffloadState::Closed => self.config.offloading.at_closing == AtClosing::ReturnToBot,
            OffloadState::Open => false,
        };
        if !sweep {
            return;
        }
        let waiting = match self.store.waiting().await {
            Ok(w) => w,
            Err(e) => return tracing::warn!("unqueue: {e}"),
        };
        for conv in waiting {
            if let Err(r) = self.execute(&conv.id, Command::Unqueue, None).await {
                tracing::warn!("unqueue {}: {r}", conv.id.as_str());
            }
        }
    }

    /// The status as one visitor is told it: in its language and, while it has a handover,
    /// for that handover's queue (`route`: queue and skill): whether one of its agents is
    /// online, in the queue's own texts.
    pub async fn status_for(
        &self,
        mut status: OffloadStatus,
        route: Option<&(String, Option<String>)>,
        locale: Option<&str>,
    ) -> OffloadStatus {
        match route {
            Some((queue, skill)) if status.state == OffloadState::Open => {
                let served = match self.agents_online_for(queue, skill.as_deref()).await {
                    Ok(n) => n > 0,
                    Err(_) => status.agents_online.unwrap_or(true),
                };
                let (lang, t) = self.config.texts_for(locale);
                let q = self.config.queue(queue);
                status.agents_online = Some(served);
                status.message = Some(if served {
                    self.queue_text(&q.waiting, &t.waiting, lang)
                } else {
                    self.queue_text(&q.waiting_no_agents, &t.waiting_no_agents, lang)
                });
            }
            _ => self.localize(&mut status, locale),
        }
        status
    }

    /// A queue's own text in `lang`, else the site's.
    fn queue_text(&self, own: &Option<Localised>, site: &str, lang: &str) -> String {
        own.as_ref()
            .map_or(site, |l| l.get(lang, &self.config.texts_locale))
            .to_owned()
    }

    /// Puts a status's sentence in a visitor's language.
    pub fn localize(&self, status: &mut OffloadStatus, locale: Option<&str>) {
        if locale.is_some() {
            let texts = self.config.texts_for(locale).1;
            status.message =
                Some(texts.status_message(status.state, status.agents_online.unwrap_or(true)));
        }
    }

    /// The offloading status now.
    pub async fn status(&self) -> Result<OffloadStatus, Refusal> {
        let now = self.now_ms();
        let queue_length = self.store.queue_length().await.map_err(internal)?;
        let online = self.agents_online().await?;
        let Offload {
            state,
            next_open_at,
            ..
        } = self.offload_at(now);
        let t = &self.config.texts;
        let message = match state {
            OffloadState::Open if online == 0 => t.waiting_no_agents.clone(),
            OffloadState::Open => t.waiting.clone(),
            OffloadState::Closed => t.closed.clone(),
            OffloadState::Disabled => t.disabled.clone(),
        };
        Ok(OffloadStatus {
            v: PROTOCOL_VERSION,
            state,
            agents_online: Some(online > 0),
            queue_length,
            next_open_at,
            message: Some(message),
        })
    }

    /// Recomputes the offloading status and, if what a visitor would be told changed (state,
    /// agents online, next opening, text), has every visitor socket push it.
    pub async fn recheck_status(&self) {
        self.read_switch().await;
        let Ok(status) = self.status().await else {
            return;
        };
        let (state, queued) = (status.state, status.queue_length);
        let online = self.online().await.ok();
        let moved = {
            let mut told = self.online_told.lock().unwrap_or_else(|p| p.into_inner());
            let moved = *told != online;
            *told = online;
            moved
        };
        self.status_told.send_if_modified(|told| {
            if !moved && told.as_ref().is_some_and(|t| t.tells_the_same(&status)) {
                return false;
            }
            *told = Some(status);
            true
        });
        // While switched off (or closed, when queued chats return to the bot) nothing stays
        // queued: checked every time, so a request that raced the switch is answered too.
        // After the new status is out, so a widget hears why before its chat leaves the queue.
        if queued > 0 {
            self.unqueue_all(state).await;
        }
    }

    /// The status visitor sockets are told, and its changes.
    pub fn status_changes(&self) -> watch::Receiver<Option<OffloadStatus>> {
        self.status_told.subscribe()
    }

    /// A visitor message over the socket. While the bot still answers (queued), its answer
    /// is fetched in the background and arrives as events.
    pub async fn visitor_message(
        self: &Arc<Self>,
        conv: &Conversation,
        client_msg_id: &ClientMsgId,
        text: &str,
        locale: Option<&str>,
    ) -> Result<Stored, Refusal> {
        self.visitor_limit(&conv.visitor_id)?;
        let ex = self
            .execute(
                &conv.id,
                Command::VisitorMessage {
                    text: text.to_owned(),
                    client_msg_id: Some(client_msg_id.clone()),
                },
                None,
            )
            .await?;
        if let Some(prev) = ex.duplicate {
            return Ok(Stored {
                seq: prev.seq,
                duplicate: true,
            });
        }
        let seq = ex.events.last().map_or(ex.view.head_seq, |e| e.seq);
        if ex.view.state.bot_answers() {
            let svc = self.clone();
            let conv = ex.before.clone();
            let locale = locale.map(str::to_owned);
            let req = BotRequest {
                sender: conv.visitor_id.clone(),
                message: text.trim().to_owned(),
                metadata: Some(BotMetadata {
                    wcp: Some(baton_protocol::bot::WcpMetadata {
                        v: PROTOCOL_VERSION,
                        client_msg_id: Some(client_msg_id.clone()),
                        source: None,
                        event: None,
                        page_url: conv.handover.as_ref().and_then(|h| h.page_url.clone()),
                        locale: None,
                    }),
                }),
            };
            tokio::spawn(async move {
                if let Err(r) = svc.run_bot(&conv, seq, req, locale.as_deref()).await {
                    tracing::warn!("bot turn for {} failed: {r}", conv.id);
                }
            });
        }
        Ok(Stored {
            seq,
            duplicate: false,
        })
    }

    /// Whether `agent` has the chat now (read afresh: a copy may predate a transfer made on
    /// another replica).
    async fn owned_by(&self, id: &ConversationId, agent: &AgentRef) -> Result<(), Refusal> {
        let owns = |c: &Conversation| matches!(&c.view.state, ConversationState::AgentJoined { agent: a } if a.id == agent.id);
        if owns(&self.fresh(id).await?) {
            Ok(())
        } else {
            Err(Refusal::new(
                ErrorCode::InvalidState,
                "you do not own this conversation",
            ))
        }
    }

    /// Someone types in a conversation: its visitor (`None`), or its agent, who must own it.
    /// Nothing is stored; whoever shows the conversation hears it.
    pub async fn typing(
        &self,
        id: &ConversationId,
        agent: Option<&AgentRef>,
    ) -> Result<(), Refusal> {
        if let Some(agent) = agent {
            self.owned_by(id, agent).await?;
        }
        self.bus
            .publish(
                Topic::Conversation(id.clone()),
                Notice::Typing {
                    conversation_id: id.clone(),
                    agent: agent.cloned(),
                },
            )
            .await;
        Ok(())
    }

    /// The visitor (`None`), or the agent who owns the chat, has read it up to `seq`. The mark
    /// is stored (it never moves back, nor past the log) and the other side is told.
    pub async fn read(
        &self,
        id: &ConversationId,
        agent: Option<&AgentRef>,
        seq: u64,
    ) -> Result<(), Refusal> {
        if let Some(agent) = agent {
            self.owned_by(id, agent).await?;
        }
        let by_agent = agent.is_some();
        if self
            .store
            .mark_read(id, agent.map(|a| &a.id), seq)
            .await
            .map_err(internal)?
        {
            self.bus
                .publish(
                    Topic::Conversation(id.clone()),
                    Notice::Read {
                        conversation_id: id.clone(),
                        by_agent,
                        seq,
                    },
                )
                .await;
        }
        Ok(())
    }

    /// The visitor leaves the queue.
    pub async fn cancel(&self, id: &ConversationId) -> Result<(), Refusal> {
        self.execute(id, Command::Cancel, None).await.map(drop)
    }

    /// Durable events after `after`, at most `limit`.
    pub async fn events_after(
        &self,
        id: &ConversationId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Event>, Refusal> {
        let t = Instant::now();
        let events = self
            .store
            .events_after(id, after, limit)
            .await
            .map_err(internal);
        metrics::READ_EVENTS.since(t);
        events
    }

    // ---- agents ----

    /// Creates or updates the configured agent accounts, and removes the ones no longer
    /// configured. A changed password or a removal ends the agent's sessions.
    async fn ensure_agents(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let now = self.now_ms();
        for a in &self.config.agents {
            let existing = self.store.agent_by_email(&a.email).await?;
            let same_login = match &existing {
                Some(e) => {
                    e.name == a.name
                        && self
                            .passwords
                            .verify(&a.password, Some(&e.password_hash))
                            .await
                }
                None => false,
            };
            if let Some(e) = &existing
                && same_login
                && e.scope == a.scope
                && e.role == a.role
                && e.max_chats == a.max_chats
            {
                continue;
            }
            let password_hash = match &existing {
                Some(e) if same_login => e.password_hash.clone(),
                _ => self.passwords.hash(&a.password).await?,
            };
            let record = AgentRecord {
                id: existing.as_ref().map_or_else(
                    || AgentId(format!("a_{}", auth::random_hex(6))),
                    |e| e.id.clone(),
                ),
                email: a.email.clone(),
                name: a.name.clone(),
                password_hash,
                scope: a.scope.clone(),
                role: a.role,
                max_chats: a.max_chats,
            };
            let stored = self.store.upsert_agent(&record, now).await?;
            // A new name or password ends the old sessions; new queues apply at the next
            // connection.
            if existing.is_some() && !same_login {
                self.revoke(&stored.id, None).await?;
            }
        }
        // Accounts added with `baton-server agent add` are not the configuration's to remove.
        for stored in self.store.agents_managed_by("config").await? {
            if !self.config.agents.iter().any(|a| a.email == stored.email) {
                tracing::info!(
                    "agent {} is no longer configured; removing it",
                    stored.email
                );
                self.store.remove_agent(&stored.id, now).await?;
                self.revoke(&stored.id, None).await?;
            }
        }
        Ok(())
    }

    /// Ends one session (`token_hash`) or every session of an agent, and closes their sockets
    /// on every replica.
    async fn revoke(&self, agent: &AgentId, token_hash: Option<String>) -> Result<(), StoreError> {
        if token_hash.is_none() {
            self.store.delete_sessions_of(agent).await?;
        }
        self.bus
            .publish(
                Topic::Agent(agent.clone()),
                Notice::Revoked {
                    agent_id: agent.clone(),
                    token_hash,
                },
            )
            .await;
        Ok(())
    }

    /// Starts a login attempt for these keys (address, e-mail); refused with the time to
    /// wait while they are held back.
    pub fn login_begin(&self, keys: &[String]) -> Result<(), i64> {
        self.logins.begin(keys, self.now_ms())
    }

    /// Checks a login; returns a new session. Unknown e-mails cost the same time as wrong
    /// passwords, and failures count towards the back-off of `keys`.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        keys: &[String],
    ) -> Result<Option<LoginResponse>, Refusal> {
        let agent = self
            .store
            .agent_by_email(email.trim())
            .await
            .map_err(internal)?;
        let ok = self
            .passwords
            .verify(password, agent.as_ref().map(|a| a.password_hash.as_str()))
            .await;
        // The attempt already counts as a failure (login_begin); only success clears it.
        let (true, Some(agent)) = (ok, agent) else {
            return Ok(None);
        };
        self.logins.succeeded(keys);
        let token = auth::new_token();
        let now = self.now_ms();
        let expires = now + self.session_ttl_ms();
        self.store
            .create_session(&auth::token_hash(&token), &agent.id, now, expires)
            .await
            .map_err(internal)?;
        // A new login starts online (away was for the last sitting).
        self.store
            .set_away(&agent.id, false)
            .await
            .map_err(internal)?;
        self.team_changed().await;
        Ok(Some(LoginResponse {
            token,
            agent: agent.as_ref(),
            expires_at: Some(rfc3339_from_unix_ms(expires)),
        }))
    }

    fn session_ttl_ms(&self) -> i64 {
        i64::try_from(self.config.agent_session_ttl.as_millis()).unwrap_or(i64::MAX / 2)
    }

    /// The agent of a live session, extending it (sliding expiry).
    pub async fn agent_by_token(&self, token: &str) -> Result<Option<Staff>, Refusal> {
        let now = self.now_ms();
        self.store
            .touch_session(&auth::token_hash(token), now, now + self.session_ttl_ms())
            .await
            .map_err(internal)
    }

    /// Ends a session; its sockets close on every replica.
    pub async fn logout(&self, token: &str) -> Result<bool, Refusal> {
        let hash = auth::token_hash(token);
        match self.store.delete_session(&hash).await.map_err(internal)? {
            Some(agent) => {
                self.revoke(&agent, Some(hash)).await.map_err(internal)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// A conversation as the console lists it.
    pub fn summary(&self, conv: &Conversation, state: ConversationState) -> ConversationSummary {
        let h = conv.handover.as_ref();
        ConversationSummary {
            conversation_id: conv.id.clone(),
            visitor_id: conv.visitor_id.clone(),
            state,
            reason: h.map(|h| h.reason).unwrap_or_default(),
            message_to_agent: h.and_then(|h| h.message_to_agent.clone()),
            waiting_since: rfc3339_from_unix_ms(h.map_or(conv.created_ms, |h| h.requested_ms)),
            preview: conv.last_visitor_text.clone(),
            queue: h.map(|h| h.queue.clone()),
            skill: h.and_then(|h| h.skill.clone()),
            page_url: h.and_then(|h| h.page_url.clone()),
            reason_text: h.and_then(|h| h.reason_text.clone()),
            slots: h.map(|h| h.slots.clone()).unwrap_or_default(),
            locale: h.and_then(|h| h.locale.clone()),
        }
    }

    /// The conversations waiting in the agent's queues (in queue order) and its own: one
    /// query each, however long the queue.
    pub async fn agent_lists(
        &self,
        staff: &Staff,
    ) -> Result<(Vec<ConversationSummary>, Vec<ConversationSummary>), Refusal> {
        let t = Instant::now();
        let waiting = self.store.waiting().await.map_err(internal)?;
        metrics::WAITING.since(t);
        let online = self.online().await?;
        let mut positions: HashMap<String, u32> = HashMap::new();
        let waiting = waiting
            .iter()
            .filter_map(|c| {
                let h = c.handover.as_ref()?;
                let p = positions.entry(h.queue.clone()).or_insert(0);
                *p += 1;
                let skill = h.skill.as_deref();
                staff.scope.covers(&h.queue, skill).then(|| {
                    self.summary(
                        c,
                        ConversationState::Queued {
                            position: Some(*p),
                            agents_online: Some(online.iter().any(|s| s.covers(&h.queue, skill))),
                        },
                    )
                })
            })
            .collect();
        let mine = self
            .store
            .owned_by(&staff.agent.id)
            .await
            .map_err(internal)?
            .iter()
            .map(|c| self.summary(c, c.view.state.clone()))
            .collect();
        Ok((waiting, mine))
    }

    /// One conversation's summary, with its live state.
    pub async fn conversation_summary(
        &self,
        id: &ConversationId,
    ) -> Result<(Conversation, ConversationSummary), Refusal> {
        let conv = self.fresh(id).await?;
        let state = self.live_state(&conv).await?;
        let summary = self.summary(&conv, state);
        Ok((conv, summary))
    }

    /// A conversation's summary and whole transcript, for an agent who may read it: one
    /// whose handover is in its queues (or was its own chat), or a supervisor; and how far
    /// its visitor has read it.
    pub async fn transcript(
        &self,
        staff: &Staff,
        id: &ConversationId,
    ) -> Result<(ConversationSummary, Vec<Event>, u64), Refusal> {
        let (conv, summary) = self.conversation_summary(id).await?;
        may_see(staff, &conv)?;
        let mut events = vec![];
        loop {
            let after = events.last().map_or(0, |e: &Event| e.seq);
            let page = self.events_after(id, after, 1000).await?;
            let n = page.len();
            events.extend(page);
            if n < 1000 {
                break;
            }
        }
        Ok((summary, events, conv.visitor_read_seq))
    }

    /// An agent takes a waiting conversation of its queues; the queue's `assigned` notice,
    /// if it has one, tells the visitor.
    pub async fn accept(&self, staff: &Staff, id: &ConversationId) -> Result<(), Refusal> {
        let conv = self.fresh(id).await?;
        may_see(staff, &conv)?;
        // In the visitor's language, when its widget said one.
        let notice = conv.handover.as_ref().and_then(|h| {
            let default = &self.config.texts_locale;
            let lang = h.locale.as_deref().unwrap_or(default);
            let text = self
                .config
                .queue(&h.queue)
                .assigned
                .as_ref()?
                .get(lang, default);
            Some(baton_protocol::texts::fill(
                text,
                &[("agent", &staff.agent.name)],
            ))
        });
        // At most `max_chats` at once, counted in the commit.
        self.execute_for(
            id,
            Command::Accept {
                agent: staff.agent.clone(),
                notice,
            },
            staff,
        )
        .await
        .map(drop)
    }

    /// An agent says it is away (routing stops counting it; its chats stay) or back.
    pub async fn set_away(&self, staff: &Staff, away: bool) -> Result<(), Refusal> {
        self.store
            .set_away(&staff.agent.id, away)
            .await
            .map_err(internal)?;
        self.team_changed().await;
        Ok(())
    }

    /// Presence, load or the live chats changed: every replica forgets its list of agents
    /// available, rechecks the status visitors see, and consoles refresh their team list.
    async fn team_changed(&self) {
        self.presence_changed();
        self.bus.publish(Topic::Presence, Notice::Team).await;
    }

    /// An agent hands a chat it has to another agent (an offer the other must accept; a
    /// new offer replaces an earlier one) or back to a queue (at once, at the place its
    /// request had).
    pub async fn transfer(
        &self,
        staff: &Staff,
        id: &ConversationId,
        to: Option<&AgentId>,
        queue: Option<&str>,
        note: Option<String>,
    ) -> Result<Option<AgentRef>, Refusal> {
        let conv = self.fresh(id).await?;
        let from = &staff.agent;
        match (to, queue) {
            (Some(to), None) => {
                let command = Command::Transfer {
                    from: from.clone(),
                    to: Some(AgentRef {
                        id: to.clone(),
                        name: String::new(),
                    }),
                    queue: None,
                    note: note.clone(),
                    notice: String::new(),
                };
                // Checked as the acceptance will be: the chat is this agent's, the note fits.
                decide::decide(
                    &conv.view,
                    &command,
                    &Context {
                        now_ms: self.now_ms(),
                        offload: &Offload::open(),
                        agents_online: 0,
                    },
                )?;
                let online = self
                    .store
                    .agents_online(self.now_ms())
                    .await
                    .map_err(internal)?;
                let target = self
                    .store
                    .agents()
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .find(|a| &a.id == to)
                    .ok_or_else(|| Refusal::new(ErrorCode::NotFound, "there is no such agent"))?;
                match online.iter().find(|a| &a.id == to) {
                    None => {
                        return Err(Refusal::new(
                            ErrorCode::InvalidState,
                            format!("{} is offline", target.name),
                        ));
                    }
                    Some(a) if a.away => {
                        return Err(Refusal::new(
                            ErrorCode::InvalidState,
                            format!("{} is away", target.name),
                        ));
                    }
                    Some(_) => {}
                }
                let note = note
                    .as_deref()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned);
                let offer = store::Offer {
                    conversation_id: id.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    note: note.clone(),
                    created_ms: self.now_ms(),
                };
                let earlier = match self.store.put_offer(&offer).await {
                    Ok(earlier) => earlier,
                    // The chat ended or moved on since it was read.
                    Err(StoreError::Conflict) => {
                        return Err(Refusal::new(
                            ErrorCode::InvalidState,
                            "you no longer have this chat",
                        ));
                    }
                    Err(e) => return Err(internal(e)),
                };
                if let Some(earlier) = earlier
                    && earlier.to != *to
                {
                    self.offer_ended(&earlier, OfferOutcome::Withdrawn).await;
                }
                let summary = self.summary(&conv, conv.view.state.clone());
                self.bus
                    .publish(
                        Topic::Agent(to.clone()),
                        Notice::Offer {
                            to: to.clone(),
                            offer: Box::new(TransferOffer {
                                conversation: summary,
                                from: from.clone(),
                                note,
                            }),
                        },
                    )
                    .await;
                Ok(Some(target.as_ref()))
            }
            (None, Some(queue)) => {
                // Only to a queue someone serves or the configuration names.
                let queue = queue.trim();
                let known = queue == decide::DEFAULT_QUEUE
                    || self.config.queues.contains_key(queue)
                    || self
                        .store
                        .agents()
                        .await
                        .map_err(internal)?
                        .iter()
                        .any(|a| {
                            a.scope.queues.is_empty() || a.scope.queues.iter().any(|q| q == queue)
                        });
                if !known {
                    return Err(Refusal::new(
                        ErrorCode::NotFound,
                        format!("there is no queue `{queue}`"),
                    ));
                }
                let notice =
                    self.visitor_text(&conv, Text::TransferredQueue, &[("agent", &from.name)]);
                self.execute(
                    id,
                    Command::Transfer {
                        from: from.clone(),
                        to: None,
                        queue: Some(queue.to_owned()),
                        note,
                        notice,
                    },
                    None,
                )
                .await
                .map(|_| None)
            }
            _ => Err(Refusal::new(
                ErrorCode::BadRequest,
                "a transfer names either an agent (`to`) or a queue",
            )),
        }
    }

    /// Tells both agents of an offer that it is over, and how.
    async fn offer_ended(&self, offer: &store::Offer, outcome: OfferOutcome) {
        let to = self
            .store
            .agents()
            .await
            .ok()
            .and_then(|all| all.into_iter().find(|a| a.id == offer.to))
            .map(|a| a.as_ref())
            .unwrap_or_else(|| AgentRef {
                id: offer.to.clone(),
                name: String::new(),
            });
        for who in [&offer.from.id, &offer.to] {
            self.bus
                .publish(
                    Topic::Agent(who.clone()),
                    Notice::OfferEnded {
                        conversation_id: offer.conversation_id.clone(),
                        to: to.clone(),
                        outcome,
                    },
                )
                .await;
        }
    }

    /// The chats offered to an agent, as its console lists them.
    pub async fn offers_to(&self, staff: &Staff) -> Result<Vec<TransferOffer>, Refusal> {
        let mut out = vec![];
        for offer in self
            .store
            .offers_to(&staff.agent.id)
            .await
            .map_err(internal)?
        {
            let conv = self.fresh(&offer.conversation_id).await?;
            out.push(TransferOffer {
                conversation: self.summary(&conv, conv.view.state.clone()),
                from: offer.from,
                note: offer.note,
            });
        }
        Ok(out)
    }

    /// The agent a chat was offered to takes it over (within its limit of chats) or
    /// declines; the offering agent is told either way.
    pub async fn answer_transfer(
        &self,
        staff: &Staff,
        id: &ConversationId,
        accept: bool,
    ) -> Result<(), Refusal> {
        let Some(offer) = self
            .store
            .take_offer_for(id, &staff.agent.id)
            .await
            .map_err(internal)?
        else {
            return Err(Refusal::new(
                ErrorCode::NotFound,
                "this chat is not offered to you (any more)",
            ));
        };
        if !accept {
            self.offer_ended(&offer, OfferOutcome::Declined).await;
            return Ok(());
        }
        let conv = self.fresh(id).await?;
        let notice = self.visitor_text(
            &conv,
            Text::Transferred,
            &[("from", &offer.from.name), ("to", &staff.agent.name)],
        );
        let taken = self
            .execute_for(
                id,
                Command::Transfer {
                    from: offer.from.clone(),
                    to: Some(staff.agent.clone()),
                    queue: None,
                    note: offer.note.clone(),
                    notice,
                },
                staff,
            )
            .await;
        match taken {
            Ok(_) => {
                self.offer_ended(&offer, OfferOutcome::Taken).await;
                Ok(())
            }
            Err(r) => {
                self.offer_ended(&offer, OfferOutcome::Declined).await;
                Err(match r.code {
                    ErrorCode::InvalidState => Refusal::new(
                        ErrorCode::InvalidState,
                        format!("{} no longer has this chat", offer.from.name),
                    ),
                    _ => r,
                })
            }
        }
    }

    /// Who is on the team: every agent with presence and load, the queues a chat can go
    /// to, and (for a supervisor) every live chat with its agent.
    pub async fn team(
        &self,
        staff: &Staff,
    ) -> Result<(Vec<TeamMember>, Vec<String>, Vec<ConversationSummary>), Refusal> {
        let lists = self.team_lists().await?;
        let (members, queues, chats) = &*lists;
        Ok((
            members.clone(),
            queues.clone(),
            if staff.role == AgentRole::Supervisor {
                chats.clone()
            } else {
                vec![]
            },
        ))
    }

    /// The team lists, read once per presence change (and at most every
    /// [`PRESENCE_FRESH_MS`]) for every console of this replica.
    async fn team_lists(&self) -> Result<Arc<TeamLists>, Refusal> {
        let now = self.now_ms();
        let generation = self.presence.lock().unwrap_or_else(|p| p.into_inner()).1;
        if let Some((g, at, lists)) = &*self.team_kept.lock().unwrap_or_else(|p| p.into_inner())
            && *g == generation
            && (0..PRESENCE_FRESH_MS).contains(&(now - at))
        {
            return Ok(lists.clone());
        }
        let agents = self.store.agents().await.map_err(internal)?;
        let online = self.store.agents_online(now).await.map_err(internal)?;
        let loads: HashMap<AgentId, u32> = self
            .store
            .agent_loads()
            .await
            .map_err(internal)?
            .into_iter()
            .collect();
        let mut members: Vec<TeamMember> = agents
            .iter()
            .map(|a| TeamMember {
                agent: a.as_ref(),
                presence: match online.iter().find(|o| o.id == a.id) {
                    Some(o) if o.away => Presence::Away,
                    Some(_) => Presence::Online,
                    None => Presence::Offline,
                },
                chats: loads.get(&a.id).copied().unwrap_or(0),
                max_chats: a.max_chats.unwrap_or(self.config.offloading.max_chats),
                supervisor: a.role == AgentRole::Supervisor,
            })
            .collect();
        let rank = |p: Presence| match p {
            Presence::Online => 0,
            Presence::Away => 1,
            Presence::Offline => 2,
        };
        members.sort_by(|a, b| {
            rank(a.presence)
                .cmp(&rank(b.presence))
                .then_with(|| a.agent.name.cmp(&b.agent.name))
        });
        let mut queues: Vec<String> = std::iter::once(decide::DEFAULT_QUEUE.to_owned())
            .chain(self.config.queues.keys().cloned())
            .chain(agents.iter().flat_map(|a| a.scope.queues.iter().cloned()))
            .collect();
        queues.sort();
        queues.dedup();
        let chats = self
            .store
            .live_chats()
            .await
            .map_err(internal)?
            .iter()
            .map(|c| self.summary(c, c.view.state.clone()))
            .collect();
        let lists = Arc::new((members, queues, chats));
        *self.team_kept.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((generation, now, lists.clone()));
        Ok(lists)
    }

    /// An agent's reply.
    pub async fn agent_message(
        &self,
        agent: &AgentRef,
        id: &ConversationId,
        client_msg_id: &ClientMsgId,
        text: &str,
    ) -> Result<Stored, Refusal> {
        let ex = self
            .execute(
                id,
                Command::AgentMessage {
                    agent: agent.clone(),
                    text: text.to_owned(),
                    client_msg_id: client_msg_id.clone(),
                },
                None,
            )
            .await?;
        Ok(match ex.duplicate {
            Some(prev) => Stored {
                seq: prev.seq,
                duplicate: true,
            },
            None => Stored {
                seq: ex.events.last().map_or(ex.view.head_seq, |e| e.seq),
                duplicate: false,
            },
        })
    }

    /// An agent ends a conversation; the visitor returns to the bot.
    pub async fn end(&self, agent: &AgentRef, id: &ConversationId) -> Result<(), Refusal> {
        self.execute(
            id,
            Command::End {
                agent: agent.clone(),
            },
            None,
        )
        .await
        .map(drop)
    }

    // ---- presence ----

    /// Records (or renews) a console connection's lease; a new connection tells every
    /// replica that presence changed.
    pub async fn presence_up(
        &self,
        connection: &str,
        agent: &AgentId,
        new: bool,
    ) -> Result<(), Refusal> {
        let now = self.now_ms();
        self.store
            .renew_presence(connection, agent, &self.replica, now + PRESENCE_LEASE_MS)
            .await
            .map_err(internal)?;
        if new {
            self.presence_changed();
            self.bus.publish(Topic::Presence, Notice::Presence).await;
        }
        Ok(())
    }

    /// A console connection closed: its agent stays online for the grace period (a reload
    /// comes back within it), then counts as gone.
    pub async fn presence_down(self: &Arc<Self>, connection: &str) {
        let grace = self.config.offloading.console_grace;
        if let Err(e) = self
            .store
            .drop_presence(connection, self.now_ms() + grace.as_millis() as i64)
            .await
        {
            tracing::warn!("presence: {e}");
        }
        self.presence_changed();
        self.bus.publish(Topic::Presence, Notice::Presence).await;
        // When the grace period is over, every replica looks again at once (the status its
        // visitors see, and the chats of an agent who did not come back).
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(grace + std::time::Duration::from_millis(100)).await;
            if let Some(svc) = weak.upgrade() {
                svc.presence_changed();
                svc.bus.publish(Topic::Presence, Notice::Presence).await;
            }
        });
    }

    /// A text the server writes into a conversation, in the language its handover recorded,
    /// with its placeholders filled.
    fn visitor_text(&self, conv: &Conversation, text: Text, fills: &[(&str, &str)]) -> String {
        let locale = conv.handover.as_ref().and_then(|h| h.locale.as_deref());
        baton_protocol::texts::fill(self.config.texts_for(locale).1.get(text), fills)
    }

    /// Chats nobody took within `[offloading] queue_timeout`: the visitor is told, in its
    /// language, and may leave a message or go on with the bot (the request is answered
    /// `unavailable`). Every replica may run this; a chat changes once.
    pub async fn recheck_queue_timeouts(&self) {
        let Some(timeout) = self.config.offloading.queue_timeout else {
            return;
        };
        let since = self.now_ms() - timeout.as_millis() as i64;
        let overdue = match self.store.overdue(since).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!("queue: cannot list chats waiting too long: {e}");
                return;
            }
        };
        for conv in overdue {
            let notice = self.visitor_text(&conv, Text::QueueTimeout, &[]);
            match self
                .execute(&conv.id, Command::QueueTimeout { notice }, None)
                .await
            {
                Ok(_) => tracing::info!("queue: conversation {} waited too long", conv.id.0),
                Err(r) => tracing::warn!("queue: conversation {}: {}", conv.id.0, r.message),
            }
        }
    }

    /// Chats whose agent went offline (no console lease left, the grace period over): the
    /// visitor is told, in its language, and the chat goes back to its queue with its whole
    /// transcript, or ends (`[offloading] agent_gone`). Every replica may run this; a chat
    /// changes once (the decider does nothing for a chat no longer with that agent).
    pub async fn recheck_agents(&self) {
        let stranded = match self.store.stranded(self.now_ms()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("agents: cannot list chats whose agent left: {e}");
                return;
            }
        };
        let end = self.config.offloading.agent_gone == crate::config::AgentGone::End;
        for conv in stranded {
            let ConversationState::AgentJoined { agent } = &conv.view.state else {
                continue;
            };
            let text = if end {
                Text::AgentLeftEnded
            } else {
                Text::AgentLeft
            };
            let command = Command::AgentGone {
                agent: agent.id.clone(),
                notice: self.visitor_text(&conv, text, &[("agent", &agent.name)]),
                end,
            };
            match self.execute(&conv.id, command, None).await {
                Ok(_) => tracing::info!(
                    "agents: {} went offline; conversation {} {}",
                    agent.name,
                    conv.id.0,
                    if end { "ended" } else { "is queued again" }
                ),
                Err(r) => tracing::warn!("agents: conversation {}: {}", conv.id.0, r.message),
            }
        }
    }
}

/// Whether an agent may see a conversation: a supervisor always; an agent when it is (or
/// was) its chat, or when its handover is in the agent's queues and skills.
fn may_see(staff: &Staff, conv: &Conversation) -> Result<(), Refusal> {
    let ok = staff.role == AgentRole::Supervisor
        || conv.handover.as_ref().is_some_and(|h| {
            h.agent_id.as_ref() == Some(&staff.agent.id)
                || staff.scope.covers(&h.queue, h.skill.as_deref())
        });
    if ok {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorCode::Forbidden,
            "this conversation is in a queue you do not serve",
        ))
    }
}

/// Copies of the conversations this replica changed lately, so the hot path (a message in
/// an ongoing chat) decides without reading the row first. Bounded: when full it starts
/// over. A copy can be stale when another replica wrote; `execute` copes (see there).
#[derive(Default)]
struct ConversationCache {
    map: std::sync::Mutex<HashMap<ConversationId, Conversation>>,
    /// Credential hash → the conversation it opens (never changes).
    credentials: std::sync::Mutex<HashMap<String, ConversationId>>,
}

/// Conversations kept at most.
const CACHE_CAPACITY: usize = 20_000;

impl ConversationCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, Conversation>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: &ConversationId) -> Option<Conversation> {
        self.lock().get(id).cloned()
    }

    fn put(&self, conv: Conversation) {
        let mut map = self.lock();
        if map.len() >= CACHE_CAPACITY {
            map.clear();
        }
        map.insert(conv.id.clone(), conv);
    }

    fn forget(&self, id: &ConversationId) {
        self.lock().remove(id);
    }

    fn credential(&self, hash: &str, id: &ConversationId) {
        let mut map = self.credentials.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_CAPACITY {
            map.clear();
        }
        map.insert(hash.to_owned(), id.clone());
    }

    /// The cached conversation a credential opens, when both are known here.
    fn by_credential(&self, hash: &str) -> Option<Conversation> {
        let id = self
            .credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .cloned()?;
        self.get(&id)
    }

    /// After a commit: a plain message only moves the view; anything about a handover
    /// changes the handover row too, which is read afresh next time.
    fn committed(&self, before: &Conversation, commit: &Commit) {
        let plain = commit
            .events
            .iter()
            .all(|e| matches!(e.body, EventBody::Message { .. } | EventBody::ReturnedToBot));
        if !plain {
            self.forget(&commit.conversation);
            return;
        }
        let mut conv = before.clone();
        conv.view = commit.view.clone();
        if let Some(text) = commit.events.iter().rev().find_map(|e| match &e.body {
            EventBody::Message {
                role: Role::Visitor,
                text,
                ..
            } => Some(text.clone()),
            _ => None,
        }) {
            conv.last_visitor_text = Some(text);
        }
        self.put(conv);
    }
}

/// How long a console connection counts as online without renewing its lease. A replica
/// that dies stops renewing, and its agents go offline this long after.
pub const PRESENCE_LEASE_MS: i64 = 30_000;
/// How often a console connection renews its lease (and checks its session).
pub const PRESENCE_RENEW_MS: u64 = 10_000;
/// How long a count of agents online is reused.
pub const PRESENCE_FRESH_MS: i64 = 2_000;
