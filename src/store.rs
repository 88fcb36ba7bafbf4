//! The conversation store: all widget state, and the only code that talks to the transport.
//!
//! Components read signals and call methods on `Chat`. The conversation state changes only
//! through `baton_protocol::decide::apply` on the durable events the server sends (the same
//! function the server runs), plus the ephemeral queue position through
//! `baton_protocol::state::transition`, so the widget cannot show a state the protocol does
//! not have.

use std::collections::HashMap;
use std::sync::Arc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use baton_protocol::bot::{
    BotMetadata, BotRequest, Button, HandoverDirective, MessageSource, WcpMetadata,
};
use baton_protocol::ids::{ClientMsgId, VisitorId};
use baton_protocol::state::{AgentRef, ConversationState, EndedBy, Input, Transport, transition};
use baton_protocol::status::{OffloadState, OffloadStatus};
use baton_protocol::texts::{Text, fill};
use baton_protocol::ws::{
    ErrorCode, Event, EventBody, HandoverRequest, HandoverResponse, Role, TYPING_EVERY_MS,
    TYPING_SHOWN_MS, VisitorFrame, VisitorServerFrame, VisitorSession,
};
use baton_protocol::{MAX_TEXT_BYTES, PROTOCOL_VERSION};

use baton_browser::{
    BrowserStorage, EventStream, FetchError, Socket, fetch_text, new_client_msg_id,
};
use baton_client::connection::{self, Action, Connection};
use baton_client::media::Media;
use baton_client::outbox::{Outbox, Pending};
use baton_client::timeline::{Step, Timeline};
use baton_client::wire::{self, BotItem};

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
    /// A bot line's image and carousel.
    pub media: Media,
}

/// Widget settings from the script tag.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Server origin, e.g. `https://chat.example.com`.
    pub server: String,
    /// Panel title.
    pub title: String,
}

/// The visitor's credential: its id (the Rasa `sender`) and the secret that proves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The visitor id, chosen by the server.
    pub visitor_id: VisitorId,
    /// The bearer token.
    pub token: String,
}

/// The store. `Copy`: every field is a handle.
#[derive(Clone, Copy)]
pub struct Chat {
    /// Everything that is not a signal (nothing on screen follows it), in one place: one
    /// stored value instead of twenty keeps the widget's wasm about 2 KB smaller.
    inner: StoredValue<Inner, LocalStorage>,
    /// The transcript, oldest first. Lines are shared, so showing the newest ones copies
    /// pointers, not texts.
    pub lines: RwSignal<Vec<Arc<Line>>>,
    /// How many of the newest lines are rendered (the DOM stays bounded however long the
    /// chat; "Show earlier messages" adds more).
    pub window: RwSignal<usize>,
    /// The conversation state, as the events applied so far leave it (with the live queue
    /// position). Only `apply_event` and queue frames change it.
    pub state: RwSignal<ConversationState>,
    /// A handover request is on its way to the server.
    pub requesting: RwSignal<bool>,
    /// The visitor wrote since the last handover outcome, so its sentence is no longer news.
    pub moved_on: RwSignal<bool>,
    /// The server's text for the current handover outcome.
    pub notice: RwSignal<Option<String>>,
    /// The estimated wait the server last gave with the queue position (seconds).
    pub wait_s: RwSignal<Option<u32>>,
    /// The leave-a-message form is open.
    pub leaving: RwSignal<bool>,
    /// A message was left (the form is not offered again).
    pub left: RwSignal<bool>,
    /// The last error worth telling the visitor about.
    pub error: RwSignal<Option<String>>,
    /// Whether the panel is open.
    pub open: RwSignal<bool>,
    /// Whether the overflow menu is open.
    pub menu_open: RwSignal<bool>,
    /// Waiting for the bot's answer.
    pub busy: RwSignal<bool>,
    /// The offloading status (open, closed, disabled, with the configured text), as last
    /// fetched or pushed.
    pub offload: RwSignal<Option<OffloadStatus>>,
    /// Messages of this visitor the server stored, in this conversation.
    pub written: RwSignal<usize>,
    /// The agent typing now, for a few seconds after its last typing frame.
    pub typing: RwSignal<Option<String>>,
    /// The agent has read the visitor's last message ("Seen").
    pub seen: RwSignal<bool>,
    /// After an agent chat: its agent, until the visitor asks for a person again (the
    /// rating and the transcript download are offered meanwhile).
    pub rate_for: RwSignal<Option<String>>,
    /// That chat is rated.
    pub rated: RwSignal<bool>,
}

/// The store's plain state: settings, credential, the socket's life and the bookkeeping of
/// the transcript. Only [`Chat::with`] and [`Chat::edit`] reach it, and neither is ever
/// called inside the other.
struct Inner {
    /// Settings.
    settings: Settings,
    /// This visitor's credential, once the server gave one (on first contact).
    credential: Option<Credential>,
    /// Visitor lines by idempotency key, so an echo or an ack finds its line without a scan.
    by_id: HashMap<ClientMsgId, ArcRwSignal<Delivery>>,
    /// Messages this visitor sent that the server has not stored yet (the client core's
    /// outbox, in `localStorage`): what each carries (a button's payload, not the title
    /// shown) for "Retry", and what a reload brings back as "Not sent".
    outbox: Outbox<BrowserStorage>,
    /// The outbox of an earlier page view was shown (once the history is in).
    outbox_restored: bool,
    /// The offloading status that text was given under (state, agents online): a status
    /// that differs makes the text stale.
    notice_basis: Option<(OffloadState, Option<bool>)>,
    /// When the status was last fetched (ms since the epoch).
    status_at: f64,
    /// The status pushed live while the panel is open with the bot.
    status_stream: Option<EventStream>,
    next_key: u64,
    /// The conversation as the events applied so far leave it.
    timeline: Timeline,
    session: Option<VisitorSession>,
    socket: Option<Socket>,
    /// The visitor socket's life: the client core's state machine decides when to open,
    /// say hello, resend, wait and retry, or give up; this store only carries it out.
    conn: Connection,
    handback: bool,
    /// Events up to this seq are a replay of history (after a reconnect or reload): they
    /// are shown and applied, but the side effects of a live change (closing the socket)
    /// wait until the replay is over.
    replay_until: u64,
    /// Whether the credential and session are kept in `localStorage` (tests keep none).
    persist: bool,
    /// A credential request is on its way.
    fetching_credential: bool,
    /// The conversation's history was asked for (once per page view).
    history_asked: bool,
    /// The history is being replayed over a short-lived socket; sends wait for it, so no
    /// line is shown twice or out of order.
    history_pending: bool,
    /// The conversation the socket welcomed us to.
    conversation: Option<baton_protocol::ids::ConversationId>,
    /// The site owner's texts by key (`GET /api/v1/widget`), set before the app mounts.
    texts: Vec<(String, String)>,
    /// The language of the texts (`de`, `ar`…), as the server chose it; empty when unknown.
    locale: String,
    /// Whether the page named it: then the bot is told to answer in it.
    locale_chosen: bool,
    /// The seq of the agent chat's end that `rate_for` is about.
    ended_seq: u64,
    /// How far the agent has read the conversation (seq).
    agent_read: u64,
    /// How far this visitor's reading was reported (seq).
    read_sent: u64,
    /// The seq of the newest line from the other side (agent, bot or notice).
    other_seq: u64,
    /// Counts typing frames, so only the last one's timer clears the indicator.
    typing_frames: u64,
    /// When this visitor's last typing frame was sent (ms since the epoch).
    typing_sent: f64,
    /// Messages the visitor must have written before "Request live agent" is offered
    /// (`u64::MAX`: never), from the same settings. (Types the store already has: each new
    /// signal type costs the widget bytes.)
    request_item_after: u64,
}

/// Lines rendered at first, and added by each "Show earlier messages".
pub const WINDOW: usize = 200;

const VISITOR_KEY: &str = "baton.visitor";
const OUTBOX_KEY: &str = "baton.outbox";
const TOKEN_KEY: &str = "baton.token";
const SESSION_KEY: &str = "baton.session";
/// The seq of the chat end last rated (so a reload does not ask again).
const RATED_KEY: &str = "baton.rated";

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

/// The credential kept from an earlier page view, if storage allows.
fn stored_credential() -> Option<Credential> {
    let s = local_storage()?;
    Some(Credential {
        visitor_id: VisitorId(s.get_item(VISITOR_KEY).ok()??),
        token: s.get_item(TOKEN_KEY).ok()??,
    })
}

/// The page the widget is embedded in, shown to the agent.
fn page_url() -> Option<String> {
    web_sys::window()?.location().href().ok()
}

/// Waits `ms` milliseconds (while another task fetches the credential).
async fn pause(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(p).await;
}

impl Chat {
    /// A store for this page view, keeping its credential in `localStorage`. If this visitor
    /// has an agent session from an earlier page view, it reconnects and replays the
    /// conversation, so a reload loses nothing.
    pub fn new(settings: Settings) -> Self {
        let chat = Self::with_outbox(settings, BrowserStorage::local());
        chat.edit(|st| st.persist = true);
        chat.edit(|st| st.credential = stored_credential());
        let saved = local_storage()
            .and_then(|s| s.get_item(SESSION_KEY).ok().flatten())
            .and_then(|json| wire::read_session(&json).ok());
        if let Some(mut session) = saved
            && chat.with(|st| {
                let c = &st.credential;
                c.as_ref().is_some_and(|c| c.token == session.token)
            })
        {
            session.head_seq = 0;
            chat.edit(|st| st.session = Some(session));
            chat.edit(|st| st.history_asked = true);
            chat.edit(|st| st.history_pending = true);
            chat.edit(|st| st.replay_until = u64::MAX);
            chat.drive(connection::Input::Start);
        }
        chat
    }

    /// Shows the conversation so far when the panel opens after a reload, whatever its phase:
    /// a visitor with a credential but no live session (talking to the bot, or after an agent
    /// chat) gets its history replayed over a socket that closes once the replay is over.
    pub fn load_history(&self) {
        if self.with(|st| st.history_asked) {
            return;
        }
        self.edit(|st| st.history_asked = true);
        if self.with(|st| Option::is_none(&st.credential)) {
            // No conversation yet: nothing to wait for.
            self.restore_outbox();
            return;
        }
        if self.with(|st| Option::is_some(&st.socket)) {
            // A session is already replaying; its end restores the outbox.
            return;
        }
        self.edit(|st| st.history_pending = true);
        self.edit(|st| st.replay_until = u64::MAX);
        self.drive(connection::Input::Start);
    }

    /// Fetches the offloading status (when the panel or the menu opens; at most every 10 s),
    /// so the menu and the status line say what the server would do.
    pub fn refresh_status(&self) {
        let now = js_sys::Date::now();
        if now - self.with(|st| st.status_at) < 10_000.0 {
            return;
        }
        self.edit(|st| st.status_at = now);
        let chat = *self;
        spawn_local(async move {
            let got = fetch_text(
                &chat.url(&format!(
                    "/api/v1/status?locale={}",
                    chat.with(|st| st.locale.clone())
                )),
                None,
                None,
            )
            .await;
            if let Some(status) = got.ok().and_then(|t| wire::read_status(&t).ok()) {
                chat.take_status(status);
            }
        });
    }

    /// Follows the status live (`GET /api/v1/status/events`) while `on`: the panel is open
    /// and the chat is with the bot (the visitor socket carries it otherwise), so the menu
    /// item, leave-a-message and the status line follow a supervisor's switch or the
    /// opening hours as they change.
    pub fn follow_status(&self, on: bool) {
        if !on {
            let stream = self.try_edit(|st| st.status_stream.take()).flatten();
            drop(stream);
            return;
        }
        if self.with(|st| st.status_stream.is_some()) {
            return;
        }
        let chat = *self;
        let url = self.url(&format!("/api/v1/status/events?locale={}", self.locale()));
        // Without one (an old browser), the status is read when the panel or menu opens.
        let stream = EventStream::open(&url, move |text| {
            if let Ok(status) = wire::read_status(&text) {
                chat.take_status(status);
            }
        });
        self.edit(|st| st.status_stream = stream.ok());
    }

    /// A newer offloading status. While queued, once it differs from the one the handover
    /// answer was given under (an agent came online since, or the last one left), its text
    /// takes the answer's place (which may have been the bot's own).
    pub fn take_status(&self, status: OffloadStatus) {
        let changed = self
            .with(|st| st.notice_basis)
            .is_none_or(|basis| basis != (status.state, status.agents_online));
        if changed && matches!(self.state.get_untracked(), ConversationState::Queued { .. }) {
            self.notice.set(None);
            self.edit(|st| st.notice_basis = None);
        }
        self.offload.set(Some(status));
    }

    /// Waits (at most a few seconds) for a history replay to finish.
    async fn history_loaded(&self) {
        for _ in 0..250 {
            if !self.with(|st| st.history_pending) {
                return;
            }
            pause(20).await;
        }
    }

    /// A store that keeps nothing in `localStorage` and has no credential yet (tests).
    pub fn detached(settings: Settings) -> Self {
        Self::with_outbox(settings, BrowserStorage::memory())
    }

    /// Like [`Chat::detached`], with the outbox kept in `storage` (tests of a reload).
    pub fn with_outbox(settings: Settings, storage: BrowserStorage) -> Self {
        Self {
            inner: StoredValue::new_local(Inner {
                settings,
                credential: None,
                by_id: HashMap::new(),
                outbox: Outbox::load(storage, OUTBOX_KEY),
                outbox_restored: false,
                notice_basis: None,
                status_at: f64::NEG_INFINITY,
                status_stream: None,
                next_key: 0,
                timeline: Timeline::new(),
                session: None,
                socket: None,
                conn: Connection::default(),
                handback: false,
                replay_until: 0,
                persist: false,
                fetching_credential: false,
                history_asked: false,
                history_pending: false,
                conversation: None,
                texts: vec![],
                locale: String::new(),
                locale_chosen: false,
                ended_seq: 0,
                agent_read: 0,
                read_sent: 0,
                other_seq: 0,
                typing_frames: 0,
                typing_sent: f64::NEG_INFINITY,
                request_item_after: 0,
            }),
            lines: RwSignal::new(vec![]),
            window: RwSignal::new(WINDOW),
            state: RwSignal::new(ConversationState::Bot),
            requesting: RwSignal::new(false),
            moved_on: RwSignal::new(false),
            notice: RwSignal::new(None),
            wait_s: RwSignal::new(None),
            leaving: RwSignal::new(false),
            left: RwSignal::new(false),
            error: RwSignal::new(None),
            open: RwSignal::new(false),
            menu_open: RwSignal::new(false),
            busy: RwSignal::new(false),
            offload: RwSignal::new(None),
            written: RwSignal::new(0),
            typing: RwSignal::new(None),
            seen: RwSignal::new(false),
            rate_for: RwSignal::new(None),
            rated: RwSignal::new(false),
        }
    }

    /// Reads the store's plain state.
    fn with<R>(&self, f: impl FnOnce(&Inner) -> R) -> R {
        self.inner.with_value(f)
    }

    /// Changes the store's plain state (never from inside [`Chat::with`]).
    fn edit<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        self.try_edit(f).unwrap_or_else(|| unreachable!())
    }

    /// Like [`Chat::edit`], or `None` once the store is gone (a late callback).
    fn try_edit<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
        self.inner.try_update_value(f)
    }

    /// The panel title from the script tag.
    pub fn title(&self) -> String {
        self.with(|st| st.settings.title.clone())
    }

    /// The texts' language (`de`, `ar`…) as the server chose it; empty when unknown.
    pub fn locale(&self) -> String {
        self.with(|st| st.locale.clone())
    }

    /// Sets the visitor's credential (tests of a returning visitor).
    pub fn set_credential(&self, c: Option<Credential>) {
        self.edit(|st| st.credential = c);
    }

    /// The site owner's text `t` (empty until the texts are in; the app mounts after).
    pub fn t(&self, t: Text) -> String {
        self.with(|st| {
            let all = &st.texts;
            {
                // The last of a repeated key wins, as in any JSON reader.
                all.iter()
                    .rev()
                    .find(|(k, _)| k == t.key())
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            }
        })
    }

    /// The text `t` with its placeholders filled.
    pub fn tf(&self, t: Text, values: &[(&str, &str)]) -> String {
        fill(&self.t(t), values)
    }

    /// Takes the texts and the menu item's rule from a `GET /api/v1/widget` answer.
    pub fn set_texts(&self, settings_json: &str) -> Result<(), String> {
        self.apply_settings(wire::read_widget_settings(settings_json)?);
        Ok(())
    }

    /// Takes the texts and the menu item's rule, already read.
    pub fn apply_settings(&self, settings: wire::WidgetSettings) {
        self.edit(|st| st.texts = settings.texts);
        self.edit(|st| st.locale = settings.locale);
        self.edit(|st| st.locale_chosen = settings.locale_chosen);
        self.edit(|st| {
            st.request_item_after = settings.request_item_after.map_or(u64::MAX, u64::from)
        });
    }

    /// Whether "Request live agent" is offered now (the site owner's rule: from the start,
    /// after so many messages, or never).
    pub fn request_item_offered(&self) -> bool {
        self.written.get() as u64 >= self.with(|st| st.request_item_after)
    }

    /// This visitor's credential: the one kept, or a new one from the server on first
    /// contact (`POST /api/v1/visitor`). Only one request is made at a time.
    async fn ensure_credential(&self) -> Result<Credential, String> {
        for _ in 0..500 {
            if let Some(c) = self.with(|st| st.credential.clone()) {
                return Ok(c);
            }
            if !self.with(|st| st.fetching_credential) {
                break;
            }
            pause(20).await;
        }
        if self.with(|st| st.fetching_credential) {
            // Never a second request while one is under way: two credentials would split the
            // conversation in two.
            return Err(self.t(Text::Slow));
        }
        self.edit(|st| st.fetching_credential = true);
        let got = fetch_text(&self.url("/api/v1/visitor"), Some("{}".into()), None).await;
        self.edit(|st| st.fetching_credential = false);
        let c = got
            .and_then(|t| wire::read_credentials(&t).map_err(|e| baton_browser::unexpected(&e)))
            .map_err(|e| self.fetch_error(e))?;
        let c = Credential {
            visitor_id: c.visitor_id,
            token: c.token,
        };
        if self.with(|st| st.persist)
            && let Some(s) = local_storage()
        {
            let _ = s.set_item(VISITOR_KEY, c.visitor_id.as_str());
            let _ = s.set_item(TOKEN_KEY, &c.token);
        }
        self.edit(|st| st.credential = Some(c.clone()));
        Ok(c)
    }

    /// Forgets a credential the server no longer knows (its database was reset); the next
    /// contact gets a new one, for a new conversation, so the log starts again from seq 0.
    fn forget_credential(&self) {
        self.edit(|st| st.credential = None);
        self.edit(|st| st.timeline = Timeline::new());
        self.written.set(0);
        self.state.set(ConversationState::Bot);
        self.edit(|st| st.session = None);
        self.edit(|st| st.replay_until = 0);
        if self.with(|st| st.persist)
            && let Some(s) = local_storage()
        {
            let _ = s.remove_item(VISITOR_KEY);
            let _ = s.remove_item(TOKEN_KEY);
            let _ = s.remove_item(SESSION_KEY);
        }
    }

    /// A failed request as the visitor is told it, in the widget's language. A refusal of
    /// what was entered keeps the server's own, more precise sentence when the widget is
    /// in English (the language the server writes them in).
    fn fetch_error(&self, e: FetchError) -> String {
        if e.status == Some(401) {
            self.forget_credential();
            return self.t(Text::SessionExpired);
        }
        match e.code.as_deref() {
            Some(code) => self.refused(wire::error_code_named(code), e.message),
            None => self.t(Text::Unreachable),
        }
    }

    /// A refusal with its code and the server's sentence, as the visitor is told it.
    fn refused(&self, code: ErrorCode, message: String) -> String {
        let text = crate::texts::refusal(code);
        if matches!(text, Text::CheckInput | Text::NotAllowed) && self.locale().starts_with("en") {
            return message;
        }
        self.t(text)
    }

    /// The texts' language, for the server (none when unknown).
    fn language(&self) -> Option<String> {
        Some(self.with(|st| st.locale.clone())).filter(|l| !l.is_empty())
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.with(|st| {
                let s = &st.settings;
                s.server.trim_end_matches('/').to_owned()
            })
        )
    }

    /// Appends a line and returns its delivery handle.
    #[allow(clippy::too_many_arguments)] // a line's fields, each named at the call
    pub fn push(
        &self,
        role: Role,
        text: String,
        author: Option<String>,
        client_msg_id: Option<ClientMsgId>,
        buttons: Vec<Button>,
        media: Media,
        delivery: Delivery,
    ) -> ArcRwSignal<Delivery> {
        let key = self.with(|st| st.next_key);
        self.edit(|st| st.next_key = key + 1);
        if role == Role::Visitor && delivery == Delivery::Sent {
            self.written.update(|n| *n += 1);
        }
        let delivery = ArcRwSignal::new(delivery);
        if role == Role::Visitor
            && let Some(id) = &client_msg_id
        {
            self.edit(|st| {
                let m = &mut st.by_id;
                drop(m.insert(id.clone(), delivery.clone()))
            });
        }
        let line = Line {
            key,
            role,
            text,
            author,
            client_msg_id,
            delivery: delivery.clone(),
            buttons,
            media,
        };
        self.lines.update(|l| l.push(Arc::new(line)));
        delivery
    }

    /// The seq of the last durable event applied.
    pub fn last_seq(&self) -> u64 {
        self.with(|st| Timeline::head_seq(&st.timeline))
    }

    // ---- sending ----

    /// Sends what the visitor typed.
    /// Preview mode (`data-preview`): shows a state as the widget would, without the server,
    /// so a site owner rehearses every sentence; `say:…` sends a message to the real bot (to
    /// rehearse its triggers). Returns whether `what` was known.
    pub fn preview(&self, what: &str) -> bool {
        if let Some(text) = what.strip_prefix("say:") {
            self.open.set(true);
            self.send_text(text.to_owned());
            return true;
        }
        let agent = AgentRef {
            id: baton_protocol::ids::AgentId::from("a_preview"),
            name: "Dana".into(),
        };
        // Tomorrow, on the hour.
        let hour = 3_600_000.0;
        let tomorrow = ((js_sys::Date::now() / hour).floor() + 18.0) * hour;
        let next_open_at = String::from(js_sys::Date::new(&tomorrow.into()).to_iso_string());
        let queued = |position, online| ConversationState::Queued {
            position: Some(position),
            agents_online: Some(online),
        };
        let (state, offload, wait_s) = match what {
            "bot" => (ConversationState::Bot, OffloadState::Open, None),
            "queued" => (queued(3, true), OffloadState::Open, Some(240)),
            "no_agents" => (queued(1, false), OffloadState::Open, None),
            "agent" => (
                ConversationState::AgentJoined { agent },
                OffloadState::Open,
                None,
            ),
            "ended" => (
                ConversationState::Ended { by: EndedBy::Agent },
                OffloadState::Open,
                None,
            ),
            "closed" => (
                ConversationState::Closed {
                    next_open_at: Some(next_open_at.clone()),
                },
                OffloadState::Closed,
                None,
            ),
            "disabled" => (ConversationState::Disabled, OffloadState::Disabled, None),
            "unavailable" => (ConversationState::Unavailable, OffloadState::Open, None),
            _ => return false,
        };
        // The server's status would overwrite the forced one: not fetched in preview.
        self.edit(|st| st.status_at = f64::INFINITY);
        self.open.set(true);
        self.requesting.set(false);
        self.moved_on.set(false);
        self.notice.set(None);
        self.wait_s.set(wait_s);
        self.offload.set(Some(OffloadStatus {
            v: PROTOCOL_VERSION,
            state: offload,
            agents_online: Some(what != "no_agents"),
            queue_length: 0,
            next_open_at: (offload == OffloadState::Closed).then_some(next_open_at),
            message: None,
        }));
        self.state.set(state);
        true
    }

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
            self.error.set(Some(
                self.tf(Text::TooLong, &[("limit", &MAX_TEXT_BYTES.to_string())]),
            ));
            return;
        }
        self.error.set(None);
        if self.state.get_untracked().transport() == Transport::BotHttp {
            self.moved_on.set(true);
        }
        let id = new_client_msg_id();
        self.edit(|st| {
            let o = &mut st.outbox;
            {
                o.add(Pending {
                    client_msg_id: id.clone(),
                    conversation: None,
                    text: message.clone(),
                    shown: (shown != message).then(|| shown.clone()),
                    source: Some(source),
                })
            }
        });
        let delivery = self.push(
            Role::Visitor,
            shown,
            None,
            Some(id.clone()),
            vec![],
            Media::default(),
            Delivery::Pending,
        );
        // Not seen before it is even stored.
        self.seen.set(false);
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
                self.send_frame(&VisitorFrame::Message {
                    client_msg_id: id,
                    text: message,
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
            .with_untracked(|l| l.iter().rev().find(|l| l.key == key).cloned());
        if let Some(line) = line
            && let Some(id) = line.client_msg_id.clone()
        {
            line.delivery.set(Delivery::Pending);
            let (message, source) = self
                .with(|st| {
                    let o = &st.outbox;
                    {
                        o.pending()
                            .iter()
                            .find(|p| p.client_msg_id == id)
                            .map(|p| (p.text.clone(), p.source.unwrap_or(MessageSource::Text)))
                    }
                })
                .unwrap_or_else(|| (line.text.clone(), MessageSource::Text));
            self.deliver(id, message, source, line.delivery.clone());
        }
    }

    async fn bot_turn(
        self,
        id: ClientMsgId,
        message: String,
        source: MessageSource,
        delivery: ArcRwSignal<Delivery>,
    ) {
        self.busy.set(true);
        self.history_loaded().await;
        // After an agent chat ended, the next bot call says so (the bot may greet back).
        let event = self.with(|st| st.handback).then(|| "handback".to_owned());
        let locale = self.language().filter(|_| self.with(|st| st.locale_chosen));
        let key = id.clone();
        let answer = self
            .post_as_visitor(
                // Baton's own sentences (the bot unreachable) in the widget's language.
                &format!("/webhooks/rest/webhook?locale={}", self.locale()),
                Box::new(move |sender| {
                    wire::write_bot_request(&BotRequest {
                        sender,
                        message,
                        metadata: Some(BotMetadata {
                            wcp: Some(WcpMetadata {
                                v: PROTOCOL_VERSION,
                                client_msg_id: Some(key),
                                source: Some(source),
                                event,
                                page_url: page_url(),
                                locale,
                            }),
                        }),
                    })
                }),
            )
            .await
            .and_then(|t| {
                wire::read_bot_answer(&t)
                    .map_err(|e| self.fetch_error(baton_browser::unexpected(&e)))
            });
        self.busy.set(false);
        match answer {
            Ok(items) => {
                // Marked first: that counts it as written.
                self.mark(&id, Delivery::Sent);
                delivery.set(Delivery::Sent);
                self.edit(|st| st.handback = false);
                self.on_bot_answer(items);
            }
            Err(e) => {
                delivery.set(Delivery::Failed);
                self.error.set(Some(e));
            }
        }
    }

    /// Renders a bot answer and follows a handover directive in it.
    pub fn on_bot_answer(&self, items: Vec<BotItem>) {
        let mut directive = None;
        for item in items {
            if let Some(d) = item.handover {
                directive = Some(d);
            }
            if item.text.is_some() || item.buttons.is_some() || !item.media.is_empty() {
                self.push(
                    Role::Bot,
                    item.text.unwrap_or_default(),
                    None,
                    None,
                    item.buttons.unwrap_or_default(),
                    item.media,
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
        if !self.state.get_untracked().can_request_handover() || self.requesting.get_untracked() {
            return;
        }
        self.requesting.set(true);
        self.notice.set(None);
        let chat = *self;
        let locale = self.language();
        spawn_local(async move {
            chat.history_loaded().await;
            let result = chat
                .post_as_visitor(
                    "/api/v1/handover",
                    Box::new(move |visitor_id| {
                        wire::write_handover_request(&HandoverRequest {
                            visitor_id,
                            directive,
                            page_url: page_url(),
                            locale,
                        })
                    }),
                )
                .await
                .and_then(|t| {
                    wire::read_handover_response(&t)
                        .map_err(|e| chat.fetch_error(baton_browser::unexpected(&e)))
                });
            chat.requesting.set(false);
            match result {
                Ok(resp) => chat.on_handover(resp),
                Err(e) => chat.error.set(Some(e)),
            }
        });
    }

    /// Applies the server's handover answer: its events drive the state, and a session
    /// means the conversation now goes over the visitor socket.
    pub fn on_handover(&self, resp: HandoverResponse) {
        for event in resp.events {
            self.apply_event(event);
        }
        // After the events, which clear an earlier outcome's sentence.
        self.notice.set(Some(resp.message));
        self.edit(|st| st.notice_basis = Some((resp.status.state, resp.status.agents_online)));
        self.moved_on.set(false);
        if let Some(session) = resp.session
            && self.with(|st| Option::is_none(&st.socket))
        {
            self.keep_session(session);
            self.drive(connection::Input::Start);
        }
    }

    /// Leaves a message for agents (while nobody can chat); the form closes once it is stored.
    pub fn leave_message(&self, name: String, email: String, text: String) {
        let chat = *self;
        spawn_local(async move {
            let sent = chat
                .post_as_visitor(
                    "/api/v1/visitor/message",
                    Box::new(move |visitor_id| {
                        wire::write_leave_message(&baton_protocol::ws::LeaveMessageRequest {
                            visitor_id,
                            name,
                            email,
                            text,
                            page_url: page_url(),
                        })
                    }),
                )
                .await;
            if chat.done(sent, chat.left) {
                chat.leaving.set(false);
            }
        });
    }

    /// POSTs the body `body` writes for this visitor to `path`, with its credential (fetched
    /// on first contact): the answer's text, or the sentence the visitor is told. (One
    /// function for every such request keeps one future in the wasm, not one each.)
    async fn post_as_visitor(
        &self,
        path: &str,
        body: Box<dyn FnOnce(VisitorId) -> String>,
    ) -> Result<String, String> {
        let c = self.ensure_credential().await?;
        fetch_text(&self.url(path), Some(body(c.visitor_id)), Some(&c.token))
            .await
            .map_err(|e| self.fetch_error(e))
    }

    /// After a visitor's request: on success the error line clears and `flag` is set;
    /// otherwise the error is shown. Whether it succeeded.
    fn done(&self, sent: Result<String, String>, flag: RwSignal<bool>) -> bool {
        match sent {
            Ok(_) => {
                self.error.set(None);
                flag.set(true);
                true
            }
            Err(e) => {
                self.error.set(Some(e));
                false
            }
        }
    }

    /// Rates the agent chat that ended (1 to 5 stars, a comment); shows the thanks once the
    /// server stored it.
    pub fn rate(&self, stars: u8, comment: String) {
        let chat = *self;
        spawn_local(async move {
            let sent = chat
                .post_as_visitor(
                    "/api/v1/visitor/rating",
                    Box::new(move |visitor_id| {
                        wire::write_rating(&baton_protocol::ws::RatingRequest {
                            visitor_id,
                            stars,
                            comment: Some(comment).filter(|c| !c.trim().is_empty()),
                        })
                    }),
                )
                .await;
            if chat.done(sent, chat.rated)
                && chat.with(|st| st.persist)
                && let Some(s) = local_storage()
            {
                let _ = s.set_item(RATED_KEY, &chat.with(|st| st.ended_seq).to_string());
            }
        });
    }

    /// The transcript as a text file's contents: the title, then each line with its author.
    pub fn transcript_text(&self) -> String {
        let mut out = self.title();
        out.push_str("\n\n");
        self.lines.with_untracked(|lines| {
            for l in lines {
                let who = match l.role {
                    Role::Visitor => self.t(Text::AuthorYou),
                    Role::Bot => self.t(Text::AuthorBot),
                    Role::Agent => l
                        .author
                        .clone()
                        .unwrap_or_else(|| self.t(Text::AuthorAgent)),
                    Role::System => self.t(Text::AuthorNotice),
                };
                out.push_str(&who);
                out.push_str(": ");
                out.push_str(&l.text);
                out.push('\n');
            }
        });
        out
    }

    /// Withdraws a queued request.
    pub fn cancel_request(&self) {
        self.menu_open.set(false);
        self.send_frame(&VisitorFrame::Cancel);
    }

    /// Sends a frame if the socket is open (what is not sent stays in the outbox).
    fn send_frame(&self, frame: &VisitorFrame) {
        let text = wire::write_visitor_frame(frame);
        self.with(|st| {
            let s = &st.socket;
            {
                if let Some(s) = s {
                    s.send_text(&text);
                }
            }
        });
    }

    // ---- the agent socket ----

    /// Feeds the connection state machine and carries out what it says.
    fn drive(&self, input: connection::Input) {
        let action = self
            .try_edit(|st| {
                let c = &mut st.conn;
                c.handle(input, baton_browser::random())
            })
            .flatten();
        if let Some(action) = action {
            match action {
                Action::Open => self.open_socket(),
                Action::Hello => {
                    let last_seq = self.last_seq();
                    self.send_frame(&VisitorFrame::Hello { last_seq });
                }
                Action::ResendOutbox => {
                    // A history replay resends once it is over (and only what it did not show).
                    if !self.with(|st| st.history_pending) {
                        self.resend_outbox();
                    }
                }
                Action::RetryIn(wait) => {
                    let chat = *self;
                    set_timeout(move || chat.drive(connection::Input::RetryDue), wait);
                }
                Action::Close => {
                    // Silenced at once (no late news from it), dropped after the current
                    // callback returns (the socket may own it).
                    if let Some(old) = self.try_edit(|st| Option::take(&mut st.socket)).flatten() {
                        old.close();
                        spawn_local(async move { drop(old) });
                    }
                }
                Action::Forget => {
                    // The server no longer knows this credential: start afresh on the next
                    // contact.
                    self.forget_credential();
                    self.error.set(Some(self.t(Text::SessionExpired)));
                }
            }
        }
    }

    /// Opens the visitor socket: the live session's, or the credential's for a history replay.
    fn open_socket(&self) {
        let token = match self.with(|st| st.session.clone()) {
            Some(session) => Some(session.token),
            None if self.with(|st| st.history_pending) => self.with(|st| {
                let c = &st.credential;
                c.as_ref().map(|c| c.token.clone())
            }),
            None => None,
        };
        let Some(token) = token else {
            self.drive(connection::Input::Stop);
            return;
        };
        let url = self.url(&format!(
            "/api/v1/visitor/ws?token={token}&locale={}",
            self.with(|st| st.locale.clone())
        ));
        let chat = *self;
        let socket = Socket::open_text(
            &url,
            move || chat.drive(connection::Input::Opened),
            move |text| match wire::read_visitor_server_frame(&text) {
                Ok(frame) => chat.on_frame(frame),
                Err(e) => baton_browser::warn(&format!("baton: unreadable frame: {e}")),
            },
            move |code| spawn_local(async move { chat.on_socket_closed(code) }),
        );
        match socket {
            Ok(s) => self.edit(|st| st.socket = Some(s)),
            Err(e) => {
                self.error.set(Some(e));
                self.drive(connection::Input::Stop);
                if self.with(|st| st.history_pending) {
                    self.edit(|st| st.history_pending = false);
                    self.restore_outbox();
                }
            }
        }
    }

    fn on_socket_closed(&self, code: u16) {
        self.edit(|st| st.socket = None);
        // A history replay that failed is not retried: the chat works without it.
        if self.with(|st| st.history_pending) {
            self.edit(|st| st.history_pending = false);
            self.restore_outbox();
        }
        let over = self.with(|st| Option::is_none(&st.session))
            || code == baton_protocol::ws::close::NORMAL;
        if over && code != baton_protocol::ws::close::UNAUTHORIZED {
            self.drive(connection::Input::Stop);
        } else {
            // Refused (forget the credential), or dropped while waiting or chatting (retry
            // with back-off; hello{last_seq} replays what was missed).
            self.drive(connection::Input::Closed(code));
        }
    }

    /// Handles one frame from the visitor socket.
    pub fn on_frame(&self, frame: VisitorServerFrame) {
        match frame {
            VisitorServerFrame::Welcome {
                head_seq,
                conversation_id,
                read_seq,
                ..
            } => {
                self.edit(|st| st.conversation = Some(conversation_id));
                self.agent_read(read_seq);
                // Everything up to head_seq is history the server replays next; the state
                // follows from applying it, so the welcome's own state is not needed.
                self.edit(|st| st.replay_until = head_seq);
                self.drive(connection::Input::Welcomed);
                self.close_if_with_bot();
            }
            VisitorServerFrame::Event { event } => self.apply_event(event),
            VisitorServerFrame::Ack { client_msg_id, .. } => {
                self.mark(&client_msg_id, Delivery::Sent)
            }
            VisitorServerFrame::Queue { position, wait_s } => {
                // Ephemeral: only while queued; leaving the queue comes as an event.
                self.wait_s.set(wait_s);
                let current = self.state.get_untracked();
                if let Ok(next) = transition(&current, &Input::QueueUpdate(position)) {
                    self.state.set(next);
                }
            }
            VisitorServerFrame::Error {
                code,
                message,
                client_msg_id,
            } => {
                if let Some(id) = client_msg_id {
                    self.mark(&id, Delivery::Failed);
                }
                if code != ErrorCode::Unknown {
                    self.error.set(Some(self.refused(code, message)));
                }
            }
            VisitorServerFrame::Status { status } => {
                self.edit(|st| st.status_at = js_sys::Date::now());
                self.take_status(status);
            }
            VisitorServerFrame::Typing { agent } => {
                let n = self.edit(|st| {
                    st.typing_frames += 1;
                    st.typing_frames
                });
                self.typing.set(Some(agent.name));
                let chat = *self;
                set_timeout(
                    move || {
                        if chat.inner.try_with_value(|st| st.typing_frames) == Some(n) {
                            chat.typing.set(None);
                        }
                    },
                    std::time::Duration::from_millis(TYPING_SHOWN_MS.into()),
                );
            }
            VisitorServerFrame::Read { seq } => self.agent_read(seq),
            VisitorServerFrame::Pong | VisitorServerFrame::Unknown => {}
        }
    }

    /// The agent has read up to `seq`: "Seen" shows under the visitor's last message once
    /// that is covered.
    fn agent_read(&self, seq: u64) {
        let read = self.edit(|st| {
            st.agent_read = st.agent_read.max(seq);
            st.agent_read
        });
        let last = self.with(|st| st.timeline.view().last_visitor_seq);
        self.seen.set(last > 0 && read >= last);
    }

    /// Tells the agent how far the visitor has read, when a person is there to be told and
    /// the visitor can see the panel.
    pub fn report_read(&self) {
        let seq = self.last_seq();
        let visible = web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| !d.hidden());
        if self.open.get_untracked()
            && visible
            && matches!(
                self.state.get_untracked(),
                ConversationState::AgentJoined { .. }
            )
            && self.with(|st| st.other_seq > st.read_sent)
        {
            self.edit(|st| st.read_sent = seq);
            self.send_frame(&VisitorFrame::Read { seq });
        }
    }

    /// The visitor typed in the message box: the agent is told, at most every few seconds.
    pub fn typed(&self) {
        let now = js_sys::Date::now();
        if matches!(
            self.state.get_untracked(),
            ConversationState::AgentJoined { .. }
        ) && now - self.with(|st| st.typing_sent) >= f64::from(TYPING_EVERY_MS)
        {
            self.edit(|st| st.typing_sent = now);
            self.send_frame(&VisitorFrame::Typing);
        }
    }

    fn mark(&self, id: &ClientMsgId, d: Delivery) {
        if let Some(delivery) = self.with(|st| {
            let m = &st.by_id;
            m.get(id).cloned()
        }) {
            if d == Delivery::Sent && delivery.get_untracked() != Delivery::Sent {
                self.written.update(|n| *n += 1);
            }
            delivery.set(d);
        }
        if d == Delivery::Sent
            && self.with(|st| {
                let o = &st.outbox;
                o.contains(id)
            })
        {
            // Older messages still waiting were passed by this one: they stay on screen with
            // their Retry, but a reload will not bring them back after newer ones.
            self.edit(|st| {
                let o = &mut st.outbox;
                {
                    let older: Vec<ClientMsgId> = o
                        .pending()
                        .iter()
                        .map(|p| p.client_msg_id.clone())
                        .take_while(|p| p != id)
                        .collect();
                    for p in older.iter().chain([id]) {
                        o.settle(p);
                    }
                }
            });
        }
    }

    /// Brings back, once the history is in, what an earlier page view sent but the server
    /// never stored: each as "Not sent. Retry" (sent again only when the visitor says so, as
    /// the conversation may have moved on). What the history shows as stored is done.
    fn restore_outbox(&self) {
        // What the visitor wrote while the history was coming in waited to be sent; its lines
        // belong after the history, not above it.
        self.lines.update(|lines| {
            let (mut i, mut end) = (0, lines.len());
            while i < end {
                let l = &lines[i];
                if l.role == Role::Visitor && l.delivery.get_untracked() == Delivery::Pending {
                    let l = lines.remove(i);
                    lines.push(l);
                    end -= 1;
                } else {
                    i += 1;
                }
            }
        });
        if self.with(|st| st.outbox_restored) {
            return;
        }
        self.edit(|st| st.outbox_restored = true);
        let pending: Vec<Pending> = self.with(|st| {
            let o = &st.outbox;
            o.pending().to_vec()
        });
        for p in pending {
            let stored = self.with(|st| {
                let t = &st.timeline;
                t.has_message(Role::Visitor, &p.client_msg_id)
            });
            let shown = self.with(|st| {
                let m = &st.by_id;
                m.contains_key(&p.client_msg_id)
            });
            if stored {
                self.edit(|st| {
                    let o = &mut st.outbox;
                    drop(o.settle(&p.client_msg_id))
                });
            } else if !shown {
                self.push(
                    Role::Visitor,
                    p.shown.clone().unwrap_or_else(|| p.text.clone()),
                    None,
                    Some(p.client_msg_id.clone()),
                    vec![],
                    Media::default(),
                    Delivery::Failed,
                );
            }
        }
    }

    /// The outbox's messages whose lines say "Sending…" (not those an earlier page view left
    /// as "Not sent": the visitor decides about those), with their lines' delivery.
    fn on_their_way(&self) -> Vec<(Pending, ArcRwSignal<Delivery>)> {
        let pending: Vec<Pending> = self.with(|st| {
            let o = &st.outbox;
            o.pending().to_vec()
        });
        pending
            .into_iter()
            .filter_map(|p| {
                let d = self.with(|st| {
                    let m = &st.by_id;
                    m.get(&p.client_msg_id).cloned()
                })?;
                (d.get_untracked() == Delivery::Pending).then_some((p, d))
            })
            .collect()
    }

    /// Sends again, with their ids, the messages on their way.
    fn resend_outbox(&self) {
        for (p, _) in self.on_their_way() {
            self.send_frame(&VisitorFrame::Message {
                client_msg_id: p.client_msg_id,
                text: p.text,
            });
        }
    }

    /// After a history replay, a conversation that is back with the bot needs no socket; one
    /// that turns out to be queued or with an agent keeps it as its live session.
    fn close_if_with_bot(&self) {
        if self.last_seq() < self.with(|st| st.replay_until) {
            return;
        }
        self.edit(|st| st.history_pending = false);
        self.restore_outbox();
        if self.state.get_untracked().transport() == Transport::BotHttp {
            self.close_socket();
        } else if self.with(|st| Option::is_none(&st.session))
            && let (Some(c), Some(conversation_id)) = (
                self.with(|st| st.credential.clone()),
                self.with(|st| st.conversation.clone()),
            )
        {
            self.edit(|st| st.history_pending = false);
            self.keep_session(VisitorSession {
                conversation_id,
                token: c.token,
                head_seq: self.last_seq(),
            });
        }
        // What arrived while the page was away is read now, if the panel shows it.
        self.report_read();
    }

    /// Remembers the live session, so a reload reconnects and replays the conversation.
    fn keep_session(&self, session: VisitorSession) {
        if self.with(|st| st.persist)
            && let Some(storage) = local_storage()
        {
            let _ = storage.set_item(SESSION_KEY, &wire::write_session(&session));
        }
        self.edit(|st| st.session = Some(session));
    }

    fn close_socket(&self) {
        self.drive(connection::Input::Stop);
        self.edit(|st| st.session = None);
        self.edit(|st| st.history_pending = false);
        if self.with(|st| st.persist)
            && let Some(s) = local_storage()
        {
            let _ = s.remove_item(SESSION_KEY);
        }
    }

    /// Applies one durable event exactly once (events at or below the last seq are
    /// duplicates from a replay and change nothing): it shows its line, moves the state
    /// through the protocol's `apply`, and, when live, has its side effects.
    pub fn apply_event(&self, event: Event) {
        let before = self.state.get_untracked();
        let step = self
            .try_edit(|st| {
                let t = &mut st.timeline;
                t.apply(event.clone())
            })
            .unwrap_or(Step::Duplicate);
        match step {
            Step::Duplicate => return,
            Step::AddedRejected(r) => leptos::logging::warn!("baton: {r}"),
            Step::Added => {}
        }
        let applied = self.with(|st| {
            let t = &st.timeline;
            t.state().clone()
        });
        let next = match (&applied, &before) {
            // The stored outcome has no live position; keep the one the queue frames told.
            (
                ConversationState::Queued {
                    position: None,
                    agents_online,
                },
                ConversationState::Queued { position, .. },
            ) => ConversationState::Queued {
                position: *position,
                agents_online: *agents_online,
            },
            (s, _) => s.clone(),
        };
        // An outcome's sentence is news until the visitor writes to the bot again (live, `send`
        // says so; in a replay, the visitor's next message does).
        match &event.body {
            EventBody::Message {
                role: Role::Visitor,
                ..
            } if next.transport() == Transport::BotHttp => self.moved_on.set(true),
            EventBody::HandoverOutcome { .. }
            | EventBody::ChatEnded { .. }
            | EventBody::HandoverCancelled => {
                self.moved_on.set(false);
                // A new outcome (the queue closed or was switched off): the sentence of the
                // earlier one is stale; the configured one for the new state shows.
                self.notice.set(None);
            }
            _ => {}
        }
        self.show(&event.body, &before);
        match (&event.body, &before) {
            // An agent chat is over: it may be rated (once) and its transcript kept.
            (EventBody::ChatEnded { .. }, ConversationState::AgentJoined { agent }) => {
                let rated = self.with(|st| st.persist)
                    && local_storage()
                        .and_then(|s| s.get_item(RATED_KEY).ok().flatten())
                        .is_some_and(|seq| seq == event.seq.to_string());
                self.edit(|st| st.ended_seq = event.seq);
                self.rated.set(rated);
                self.rate_for.set(Some(agent.name.clone()));
            }
            (EventBody::HandoverRequested { .. }, _) => self.rate_for.set(None),
            _ => {}
        }
        match &event.body {
            EventBody::Message {
                role: Role::Visitor,
                ..
            } => self.agent_read(0),
            EventBody::Message { role, .. } => {
                self.edit(|st| st.other_seq = event.seq);
                // Its message is what it was typing.
                if *role == Role::Agent {
                    self.typing.set(None);
                }
            }
            _ => {}
        }
        if next != before {
            self.state.set(next.clone());
        }
        if event.seq > self.with(|st| st.replay_until) {
            self.follow(&before, &next);
            self.report_read();
        } else {
            self.close_if_with_bot();
        }
    }

    fn push_system(&self, text: String) {
        self.push(
            Role::System,
            text,
            None,
            None,
            vec![],
            Media::default(),
            Delivery::Sent,
        );
    }

    /// The transcript line an event shows, if any; `before` is the state it arrived in.
    fn show(&self, body: &EventBody, before: &ConversationState) {
        match body {
            EventBody::Message {
                role,
                text,
                client_msg_id,
                agent,
                buttons,
                image,
                attachment,
                ..
            } => {
                let media = baton_client::media::stored(image.as_deref(), attachment.as_ref());
                let ours = *role == Role::Visitor
                    && client_msg_id.as_ref().is_some_and(|id| {
                        self.with(|st| {
                            let m = &st.by_id;
                            m.contains_key(id)
                        })
                    });
                match client_msg_id {
                    // The echo of our own message (another tab would show it).
                    Some(id) if ours => self.mark(id, Delivery::Sent),
                    // A bot item with only a custom payload (or what cannot be shown).
                    _ if text.is_empty() && buttons.is_empty() && media.is_empty() => {}
                    _ => {
                        let author = agent.as_ref().map(|a| a.name.clone());
                        self.push(
                            *role,
                            text.clone(),
                            author,
                            client_msg_id.clone(),
                            buttons.clone(),
                            media,
                            Delivery::Sent,
                        );
                    }
                }
            }
            EventBody::AgentJoined { agent } => {
                self.push_system(self.tf(Text::AgentJoined, &[("agent", &agent.name)]))
            }
            EventBody::ChatEnded { by } => {
                let line = match (before, by) {
                    (_, EndedBy::Visitor) => self.t(Text::EndedByVisitor),
                    (ConversationState::AgentJoined { agent }, EndedBy::Agent) => {
                        self.tf(Text::EndedByAgent, &[("agent", &agent.name)])
                    }
                    _ => self.t(Text::EndedBySystem),
                };
                self.push_system(line);
            }
            EventBody::HandoverCancelled => self.push_system(self.t(Text::LeftQueue)),
            // The server's notice says it (a message of its own).
            EventBody::AgentLeft { .. }
            | EventBody::Transferred { .. }
            | EventBody::HandoverRequested { .. }
            | EventBody::HandoverOutcome { .. }
            | EventBody::ReturnedToBot
            | EventBody::Unknown => {}
        }
    }

    /// The side effects of a live state change: back with the bot, the socket is closed
    /// and, after an agent chat, the next bot call says it is a handback.
    fn follow(&self, before: &ConversationState, after: &ConversationState) {
        if before.transport() == Transport::AgentSocket && after.transport() == Transport::BotHttp {
            if matches!(after, ConversationState::Ended { .. }) {
                self.edit(|st| st.handback = true);
            }
            self.close_socket();
            // What was on its way to the agent and never acknowledged will not arrive now:
            // it is offered again (Retry sends it to the assistant).
            for (_, delivery) in self.on_their_way() {
                delivery.set(Delivery::Failed);
            }
        }
    }
}
