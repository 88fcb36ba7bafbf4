//! Configuration: embedded defaults (`default.toml`) with an optional file on top.
//!
//! Every mistake in a config file is reported at start as `file:line:column: reason`, both
//! for TOML syntax and for values that parse but make no sense (a window that closes before
//! it opens, an unknown key, an intent without examples).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_protocol::status::{NoAgentsPolicy, OffloadState, RequestItem};
use baton_protocol::texts::{self, Text};
use serde::Deserialize;

use crate::hours::{self, Hours};
pub use crate::store::{AgentRole, Scope};
use toml::Spanned;

mod bot;

use bot::RawBot;
pub use bot::{
    BotConfig, ButtonSpec, Card, Choice, Fallback, Flow, HandoverStep, Intent, Localised, Response,
    SlotKind, Step, StepAction,
};

/// The defaults, compiled in. Also the reference for `docs/configuration.md`.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// A SQLite file path, or a `postgres://` URL.
    pub database: String,
    /// Connections to the database (PostgreSQL; SQLite readers are capped at 8).
    pub database_pool: u32,
    /// Empty for the in-process bus, or a `nats://` URL.
    pub bus: String,
    /// Subject prefix on NATS.
    pub bus_prefix: String,
    /// Built widget files.
    pub widget_dir: PathBuf,
    /// Built console files.
    pub console_dir: PathBuf,
    /// Origins whose pages may embed the widget (`None` = any origin).
    pub allowed_origins: Option<Vec<String>>,
    /// Take the client address from `X-Forwarded-For` (behind a trusted load balancer).
    pub trust_forwarded_for: bool,
    /// Open connections at most; more are closed at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// An idle keep-alive connection, or a socket that stopped answering pings, is closed
    /// after this long.
    pub idle_timeout: Duration,
    /// Agent sessions end after this long without use.
    pub agent_session_ttl: Duration,
    /// Bearer token for `GET /metrics`; `None` serves no metrics.
    pub metrics_token: Option<String>,
    /// Rate limits.
    pub limits: Limits,
    /// Handover rules.
    pub offloading: Offloading,
    /// When the widget offers "Request live agent".
    pub request_item: RequestItem,
    /// Visitor-facing texts, in `texts_locale`.
    pub texts: Texts,
    /// The language of `[texts]`.
    pub texts_locale: String,
    /// Other languages (`[texts.de]`, …): complete sets, each the `[texts]` with the
    /// language's own on top.
    pub texts_by_locale: Vec<(String, Texts)>,
    /// The languages' own texts as configured, before they are completed.
    locale_texts: BTreeMap<String, BTreeMap<String, String>>,
    /// `[texts]` as the configuration file sets it (over the embedded defaults).
    user_texts: BTreeMap<String, String>,
    /// Agent accounts ensured at start.
    pub agents: Vec<AgentAccount>,
    /// Per-queue rules and texts (`[queues.NAME]`); a queue not listed follows the defaults.
    pub queues: BTreeMap<String, QueueRules>,
    /// Replies agents insert with `/name` (`[[canned]]`).
    pub canned: Vec<baton_protocol::ws::CannedReply>,
    /// The bot.
    pub bot: BotConfig,
}

/// `[offloading]`: whether and when a handover can happen.
#[derive(Clone, Debug, PartialEq)]
pub struct Offloading {
    /// `false` = disabled until a supervisor switches it on.
    pub enabled: bool,
    /// Opening hours.
    pub hours: Hours,
    /// What a handover does when none of its agents is online.
    pub when_no_agents: NoAgentsPolicy,
    /// What happens to chats still queued when the hours close.
    pub at_closing: AtClosing,
    /// How long an agent stays online after its last console closed (a reload, a flaky
    /// network) before its chats count as left.
    pub console_grace: Duration,
    /// What happens to an agent's chats when the agent went offline.
    pub agent_gone: AgentGone,
    /// How many chats an agent may have at once, unless its account says otherwise; 0 is
    /// no limit.
    pub max_chats: u32,
    /// How long a chat may wait for an agent before the visitor is told nobody can come in
    /// time (and offered to leave a message); `None` waits for ever.
    pub queue_timeout: Option<Duration>,
}

/// What happens to a chat whose agent went offline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentGone {
    /// Back to its queue, at the place its request had, with its whole transcript.
    #[default]
    Requeue,
    /// The chat ends and the bot answers again.
    End,
}

/// What happens to a queued chat at closing time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AtClosing {
    /// It stays queued; agents still online may take it, others see it tomorrow.
    #[default]
    Keep,
    /// The visitor is told the team is away and returns to the bot.
    ReturnToBot,
}

/// Rate limits, per replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Messages (bot turns, socket messages, handover requests) per visitor per minute.
    pub visitor_per_minute: u32,
    /// Requests to the visitor endpoints per client address per minute.
    pub ip_per_minute: u32,
    /// New visitors per client address per hour.
    pub new_visitors_per_hour: u32,
    /// Failed logins for one e-mail or address before each further attempt waits.
    pub login_failures: u32,
}

/// Visitor-facing texts: the ones the server itself uses, by name, and every one (for
/// `GET /api/v1/widget`) by key.
#[derive(Clone, Debug)]
pub struct Texts {
    /// Queued, agents online.
    pub waiting: String,
    /// Queued, nobody online.
    pub waiting_no_agents: String,
    /// Outside opening hours.
    pub closed: String,
    /// Offloading switched off.
    pub disabled: String,
    /// No agent can be assigned.
    pub unavailable: String,
    /// The bot could not be reached.
    pub bot_unavailable: String,
    /// Every text by its key (`baton_protocol::texts::Text::key`).
    pub all: BTreeMap<String, String>,
}

impl Texts {
    /// The text for `t`.
    pub fn get(&self, t: Text) -> &str {
        self.all.get(t.key()).map_or("", String::as_str)
    }

    fn refresh(&mut self) {
        self.waiting = self.get(Text::Waiting).to_owned();
        self.waiting_no_agents = self.get(Text::WaitingNoAgents).to_owned();
        self.closed = self.get(Text::Closed).to_owned();
        self.disabled = self.get(Text::Disabled).to_owned();
        self.unavailable = self.get(Text::Unavailable).to_owned();
        self.bot_unavailable = self.get(Text::BotUnavailable).to_owned();
    }

    /// Sets texts from a `[texts]` table: every key must be a known text, and a text may use
    /// only its own placeholders.
    fn overlay(
        &mut self,
        src: &Source<'_>,
        table: BTreeMap<String, Spanned<String>>,
    ) -> Result<(), ConfigError> {
        for (key, value) in table {
            check_text(src, &key, &value)?;
            self.all.insert(key, value.into_inner());
        }
        self.refresh();
        Ok(())
    }

    /// The sentence a status of `state` tells visitors.
    pub fn status_message(&self, state: OffloadState, agents_online: bool) -> String {
        match state {
            OffloadState::Open if !agents_online => self.waiting_no_agents.clone(),
            OffloadState::Open => self.waiting.clone(),
            OffloadState::Closed => self.closed.clone(),
            OffloadState::Disabled => self.disabled.clone(),
        }
    }
}

/// Whether a language is written right to left.
pub fn right_to_left(locale: &str) -> bool {
    let primary = locale.split(['-', '_']).next().unwrap_or("");
    ["ar", "he", "fa", "ur", "yi", "ps"]
        .iter()
        .any(|l| primary.eq_ignore_ascii_case(l))
}

/// A language tag such as `de`, `pt-BR` or `zh-Hant`.
fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Checks one `[texts]` entry: a known text, not empty, only its own placeholders.
fn check_text(src: &Source<'_>, key: &str, value: &Spanned<String>) -> Result<(), ConfigError> {
    let Some(text) = Text::ALL.iter().find(|t| t.key() == key) else {
        return Err(src.error(
            Some(value.span()),
            format!(
                "`{key}` is not a text; the texts are: {}",
                Text::ALL
                    .iter()
                    .map(|t| t.key())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    let v = value.get_ref();
    if v.trim().is_empty() {
        return Err(src.error(Some(value.span()), format!("`{key}` may not be empty")));
    }
    if let Some(bad) = texts::used_placeholders(v)
        .into_iter()
        .find(|p| !text.placeholders().contains(p))
    {
        let allowed = match text.placeholders() {
            [] => "none".to_owned(),
            ps => ps
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        return Err(src.error(
            Some(value.span()),
            format!("`{{{bad}}}` is not filled in `{key}` (it may use: {allowed})"),
        ));
    }
    Ok(())
}

/// An agent login.
#[derive(Clone, Debug)]
pub struct AgentAccount {
    /// Login e-mail.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Password; stored only as an Argon2 hash.
    pub password: String,
    /// The queues and skills it serves.
    pub scope: Scope,
    /// Agent or supervisor.
    pub role: AgentRole,
    /// Its own limit of chats at once (`None`: `[offloading] max_chats`).
    pub max_chats: Option<u32>,
}

/// One queue's rules and texts; `None` follows `[offloading]` and `[texts]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueRules {
    /// Assignment: wait for offline agents too (`queue`) or only online ones (`unavailable`).
    pub when_no_agents: Option<NoAgentsPolicy>,
    /// Queued, an agent of this queue online.
    pub waiting: Option<Localised>,
    /// Queued, none of this queue's agents online.
    pub waiting_no_agents: Option<Localised>,
    /// Refused: no agent of this queue online and it takes online agents only.
    pub unavailable: Option<Localised>,
    /// A notice in the transcript when an agent takes the chat; `{agent}` is its name.
    pub assigned: Option<Localised>,
}

impl Config {
    /// Completes each language's texts. `[texts]` is the embedded defaults, then the
    /// embedded texts of its language (when `locale` names another), then the file's
    /// `[texts]`; every other language is that with its own texts on top.
    fn complete_locales(&mut self, embedded_locale: &str) {
        // When `[texts]` changed language, the embedded texts stay on offer in theirs.
        if self.texts_locale != embedded_locale {
            self.locale_texts
                .entry(embedded_locale.to_owned())
                .or_insert_with(|| self.texts.all.clone());
        }
        if let Some(own) = self.locale_texts.get(&self.texts_locale) {
            self.texts
                .all
                .extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let user = std::mem::take(&mut self.user_texts);
        self.texts.all.extend(user);
        self.texts.refresh();
        self.texts_by_locale = self
            .locale_texts
            .iter()
            .filter(|(lang, _)| **lang != self.texts_locale)
            .map(|(lang, own)| {
                let mut t = self.texts.clone();
                t.all
                    .extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
                t.refresh();
                (lang.clone(), t)
            })
            .collect();
    }

    /// The texts for a visitor's language (`de-AT`, `de`, `ar`…): the exact language, else
    /// its primary language, else `[texts]`. Returns the language chosen and its texts.
    pub fn texts_for(&self, wanted: Option<&str>) -> (&str, &Texts) {
        let wanted = wanted.unwrap_or("").trim();
        let primary = wanted.split(['-', '_']).next().unwrap_or("");
        let all = std::iter::once((self.texts_locale.as_str(), &self.texts))
            .chain(self.texts_by_locale.iter().map(|(l, t)| (l.as_str(), t)));
        let mut fallback = None;
        for (lang, texts) in all {
            if lang.eq_ignore_ascii_case(wanted) {
                return (lang, texts);
            }
            if fallback.is_none() && !primary.is_empty() && lang.eq_ignore_ascii_case(primary) {
                fallback = Some((lang, texts));
            }
        }
        fallback.unwrap_or((self.texts_locale.as_str(), &self.texts))
    }

    /// The rules of a queue (the defaults when it has no `[queues.NAME]`).
    pub fn queue(&self, name: &str) -> &QueueRules {
        static NONE: QueueRules = QueueRules {
            when_no_agents: None,
            waiting: None,
            waiting_no_agents: None,
            unavailable: None,
            assigned: None,
        };
        self.queues.get(name).unwrap_or(&NONE)
    }
}

/// A configuration error with its place in the file.
#[derive(Debug)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, 0 when not tied to a line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.reason)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.column,
                self.reason
            )
        }
    }
}

impl std::error::Error for ConfigError {}

// ---- the file as written: every key optional, unknown keys refused ----

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: Option<RawServer>,
    limits: Option<RawLimits>,
    offloading: Option<RawOffloading>,
    texts: Option<BTreeMap<String, Spanned<toml::Value>>>,
    agents: Option<Vec<RawAgent>>,
    queues: Option<BTreeMap<Spanned<String>, RawQueue>>,
    canned: Option<Vec<RawCanned>>,
    bot: Option<RawBot>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCanned {
    name: Spanned<String>,
    text: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    email: String,
    name: String,
    password: String,
    queues: Option<Vec<Spanned<String>>>,
    skills: Option<Vec<Spanned<String>>>,
    role: Option<AgentRole>,
    max_chats: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    when_no_agents: Option<NoAgentsPolicy>,
    waiting: Option<Spanned<toml::Value>>,
    waiting_no_agents: Option<Spanned<toml::Value>>,
    unavailable: Option<Spanned<toml::Value>>,
    assigned: Option<Spanned<toml::Value>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    database: Option<Spanned<String>>,
    database_pool: Option<u32>,
    bus: Option<Spanned<String>>,
    bus_prefix: Option<Spanned<String>>,
    widget_dir: Option<PathBuf>,
    console_dir: Option<PathBuf>,
    allowed_origins: Option<Vec<Spanned<String>>>,
    trust_forwarded_for: Option<bool>,
    max_connections: Option<Spanned<usize>>,
    header_timeout: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    agent_session_ttl: Option<Spanned<String>>,
    metrics_token: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    visitor_per_minute: Option<u32>,
    ip_per_minute: Option<u32>,
    new_visitors_per_hour: Option<u32>,
    login_failures: Option<u32>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffloading {
    enabled: Option<bool>,
    hours: Option<Vec<Spanned<String>>>,
    utc_offset: Option<Spanned<String>>,
    time_zone: Option<Spanned<String>>,
    closed: Option<Vec<Spanned<String>>>,
    at_closing: Option<AtClosing>,
    console_grace: Option<Spanned<String>>,
    agent_gone: Option<AgentGone>,
    max_chats: Option<Spanned<i64>>,
    queue_timeout: Option<Spanned<String>>,
    when_no_agents: Option<NoAgentsPolicy>,
    request_item: Option<Spanned<String>>,
}

/// Where a parsed file came from, to turn byte spans into lines.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
    /// The embedded defaults (whose `[texts]` every language's texts start from).
    embedded: bool,
}

impl Source<'_> {
    fn error(&self, span: Option<Range<usize>>, reason: impl Into<String>) -> ConfigError {
        let (line, column) = match span {
            Some(span) => {
                let before = &self.text[..span.start.min(self.text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                (line, column)
            }
            None => (0, 0),
        };
        ConfigError {
            path: self.path.to_owned(),
            line,
            column,
            reason: reason.into(),
        }
    }

    /// Where `key = …` is written under the table header `header`, if it is.
    fn entry_span(&self, header: &str, key: &str) -> Option<Range<usize>> {
        let start = self.text.find(header)? + header.len();
        let section = &self.text[start..];
        let end = section.find("\n[").unwrap_or(section.len());
        let mut offset = start;
        for line in section[..end].split_inclusive('\n') {
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix(key)
                && rest.trim_start().starts_with('=')
            {
                let at = offset + (line.len() - trimmed.len());
                return Some(at..at + key.len());
            }
            offset += line.len();
        }
        None
    }

    fn parse(&self) -> Result<RawConfig, ConfigError> {
        toml::from_str(self.text).map_err(|e| self.error(e.span(), e.message().trim().to_owned()))
    }
}

impl Config {
    /// Checks what single keys cannot: combinations (after flags are applied).
    pub fn check(&self) -> Result<(), String> {
        if !self.bus.is_empty() && !self.database.starts_with("postgres") {
            return Err(
                "bus = \"nats://…\" is for several replicas, and replicas cannot share a SQLite \
                 file: set [server] database (or --database) to a postgres:// URL"
                    .into(),
            );
        }
        Ok(())
    }

    /// The embedded defaults alone.
    pub fn defaults() -> Self {
        Self::load_str(Path::new("<defaults>"), "").expect("embedded defaults are valid")
    }

    /// Reads a config file on top of the defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: 0,
            column: 0,
            reason: format!("cannot read: {e}"),
        })?;
        Self::load_str(path, &text)
    }

    /// Reads config text (named `path` in errors) on top of the defaults.
    pub fn load_str(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let defaults = Source {
            path: Path::new("<embedded default.toml>"),
            text: DEFAULT_TOML,
            embedded: true,
        };
        let base = defaults.parse()?;
        let user_src = Source {
            path,
            text,
            embedded: false,
        };
        let user = user_src.parse()?;
        // Validate each value against the file it came from, so errors point at the right line.
        let mut cfg = resolve(&defaults, base)?;
        let embedded_locale = cfg.texts_locale.clone();
        overlay(&user_src, &mut cfg, user)?;
        cfg.complete_locales(&embedded_locale);
        Ok(cfg)
    }
}

fn resolve(src: &Source<'_>, raw: RawConfig) -> Result<Config, ConfigError> {
    // Start from empty values; the embedded defaults fill every one (a unit test checks).
    let mut cfg = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        database: String::new(),
        database_pool: 0,
        bus: String::new(),
        bus_prefix: String::new(),
        widget_dir: PathBuf::new(),
        console_dir: PathBuf::new(),
        allowed_origins: None,
        trust_forwarded_for: false,
        max_connections: 0,
        header_timeout: Duration::ZERO,
        idle_timeout: Duration::ZERO,
        agent_session_ttl: Duration::ZERO,
        metrics_token: None,
        limits: Limits {
            visitor_per_minute: 0,
            ip_per_minute: 0,
            new_visitors_per_hour: 0,
            login_failures: 0,
        },
        offloading: Offloading {
            enabled: true,
            hours: Hours::default(),
            when_no_agents: NoAgentsPolicy::Queue,
            at_closing: AtClosing::Keep,
            console_grace: Duration::from_secs(20),
            agent_gone: AgentGone::Requeue,
            max_chats: 5,
            queue_timeout: Some(Duration::from_secs(600)),
        },
        request_item: RequestItem::Always,
        texts: Texts {
            waiting: String::new(),
            waiting_no_agents: String::new(),
            closed: String::new(),
            disabled: String::new(),
            unavailable: String::new(),
            bot_unavailable: String::new(),
            all: BTreeMap::new(),
        },
        texts_locale: String::new(),
        texts_by_locale: vec![],
        locale_texts: BTreeMap::new(),
        user_texts: BTreeMap::new(),
        agents: vec![],
        queues: BTreeMap::new(),
        canned: vec![],
        bot: BotConfig::empty(),
    };
    overlay(src, &mut cfg, raw)?;
    Ok(cfg)
}

fn overlay(src: &Source<'_>, cfg: &mut Config, raw: RawConfig) -> Result<(), ConfigError> {
    if let Some(s) = raw.server {
        if let Some(listen) = s.listen {
            cfg.listen = listen.get_ref().parse().map_err(|_| {
                src.error(
                    Some(listen.span()),
                    format!(
                        "`{}` is not an address like `127.0.0.1:8080`",
                        listen.get_ref()
                    ),
                )
            })?;
        }
        if let Some(db) = s.database {
            let v = db.get_ref().trim();
            if v.is_empty() {
                return Err(src.error(
                    Some(db.span()),
                    "database is empty: give a SQLite file path or a postgres:// URL",
                ));
            }
            cfg.database = v.to_owned();
        }
        if let Some(n) = s.database_pool {
            cfg.database_pool = n.max(1);
        }
        if let Some(bus) = s.bus {
            let v = bus.get_ref().trim();
            if !(v.is_empty() || v == "in-process" || v.starts_with("nats://")) {
                return Err(src.error(
                    Some(bus.span()),
                    format!("`{v}` is not a bus: use \"in-process\" or a nats:// URL"),
                ));
            }
            cfg.bus = if v == "in-process" {
                String::new()
            } else {
                v.to_owned()
            };
        }
        if let Some(prefix) = s.bus_prefix {
            let v = prefix.get_ref();
            if v.is_empty()
                || !v.split('.').all(|t| {
                    !t.is_empty()
                        && t.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                })
            {
                return Err(src.error(
                    Some(prefix.span()),
                    format!("`{v}` is not a NATS subject prefix like `baton` or `acme.chat`"),
                ));
            }
            cfg.bus_prefix = v.clone();
        }
        set(&mut cfg.widget_dir, s.widget_dir);
        set(&mut cfg.console_dir, s.console_dir);
        if let Some(origins) = s.allowed_origins {
            cfg.allowed_origins = parse_origins(src, &origins)?;
        }
        set(&mut cfg.trust_forwarded_for, s.trust_forwarded_for);
        if let Some(n) = s.max_connections {
            if *n.get_ref() < 16 {
                return Err(src.error(Some(n.span()), "max_connections must be at least 16"));
            }
            cfg.max_connections = *n.get_ref();
        }
        if let Some(t) = s.header_timeout {
            cfg.header_timeout = duration(src, &t)?;
        }
        if let Some(t) = s.idle_timeout {
            cfg.idle_timeout = duration(src, &t)?;
        }
        if let Some(t) = s.agent_session_ttl {
            cfg.agent_session_ttl = duration(src, &t)?;
        }
        if let Some(t) = s.metrics_token {
            cfg.metrics_token = (!t.trim().is_empty()).then(|| t.trim().to_owned());
        }
    }
    if let Some(l) = raw.limits {
        set(&mut cfg.limits.visitor_per_minute, l.visitor_per_minute);
        set(&mut cfg.limits.ip_per_minute, l.ip_per_minute);
        set(
            &mut cfg.limits.new_visitors_per_hour,
            l.new_visitors_per_hour,
        );
        set(&mut cfg.limits.login_failures, l.login_failures);
    }
    if let Some(o) = raw.offloading {
        set(&mut cfg.offloading.enabled, o.enabled);
        set(&mut cfg.offloading.when_no_agents, o.when_no_agents);
        if let Some(item) = o.request_item {
            cfg.request_item =
                RequestItem::parse(item.get_ref()).map_err(|e| src.error(Some(item.span()), e))?;
        }
        set(&mut cfg.offloading.at_closing, o.at_closing);
        set(&mut cfg.offloading.agent_gone, o.agent_gone);
        if let Some(n) = o.max_chats {
            cfg.offloading.max_chats = chat_limit(src, &n)?;
        }
        if let Some(t) = o.queue_timeout {
            cfg.offloading.queue_timeout = if t.get_ref().trim() == "off" {
                None
            } else {
                Some(duration(src, &t)?)
            };
        }
        if let Some(g) = o.console_grace {
            cfg.offloading.console_grace = duration(src, &g)?;
        }
        match (o.time_zone, o.utc_offset) {
            (Some(zone), Some(offset)) => {
                return Err(src.error(
                    Some(offset.span()),
                    format!(
                        "both time_zone = \"{}\" and utc_offset are set: keep one (time_zone \
                         follows daylight saving time)",
                        zone.get_ref()
                    ),
                ));
            }
            (Some(zone), None) => {
                cfg.offloading.hours.zone = hours::parse_zone(zone.get_ref())
                    .map_err(|e| src.error(Some(zone.span()), e))?;
            }
            (None, Some(offset)) => {
                cfg.offloading.hours.zone = hours::fixed_zone(offset.get_ref())
                    .map_err(|e| src.error(Some(offset.span()), e))?;
            }
            (None, None) => {}
        }
        if let Some(list) = o.hours {
            cfg.offloading.hours.windows = list
                .iter()
                .map(|h| hours::parse_window(h.get_ref()).map_err(|e| src.error(Some(h.span()), e)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(list) = o.closed {
            cfg.offloading.hours.closed = list
                .iter()
                .map(|c| {
                    hours::parse_closure(c.get_ref()).map_err(|e| src.error(Some(c.span()), e))
                })
                .collect::<Result<_, _>>()?;
        }
    }
    if let Some(t) = raw.texts {
        let mut own = BTreeMap::new();
        for (key, entry) in t {
            let span = entry.span();
            match entry.into_inner() {
                toml::Value::String(v) if key == "locale" => {
                    let v = Spanned::new(span, v);
                    let tag = v.get_ref().trim();
                    if !is_language_tag(tag) {
                        return Err(src.error(
                            Some(v.span()),
                            format!("`{tag}` is not a language tag like `en` or `pt-BR`"),
                        ));
                    }
                    cfg.texts_locale = tag.to_owned();
                }
                toml::Value::String(v) => {
                    own.insert(key, Spanned::new(span, v));
                }
                toml::Value::Table(table) => {
                    if !is_language_tag(&key) {
                        return Err(src.error(
                            Some(span),
                            format!(
                                "[texts.{key}]: `{key}` is not a language tag like `de` or \
                                 `pt-BR` (and not a text either)"
                            ),
                        ));
                    }
                    let mine = cfg.locale_texts.entry(key.clone()).or_default();
                    for (k, v) in table {
                        // toml's values keep no place: find the line by its key.
                        let at = src
                            .entry_span(&format!("[texts.{key}]"), &k)
                            .unwrap_or(span.clone());
                        let toml::Value::String(v) = v else {
                            return Err(src.error(Some(at), format!("`{k}` must be a text")));
                        };
                        let v = Spanned::new(at, v);
                        check_text(src, &k, &v)?;
                        mine.insert(k, v.into_inner());
                    }
                }
                _ => {
                    return Err(src.error(
                        Some(span),
                        format!("`{key}` must be a text, or a table of a language's texts"),
                    ));
                }
            }
        }
        if src.embedded {
            cfg.texts.overlay(src, own)?;
        } else {
            // On top of the language's own defaults (see `complete_locales`).
            for (k, v) in own {
                check_text(src, &k, &v)?;
                cfg.user_texts.insert(k, v.into_inner());
            }
        }
    }
    if let Some(agents) = raw.agents {
        cfg.agents = agents
            .into_iter()
            .map(|a| {
                Ok(AgentAccount {
                    email: a.email,
                    name: a.name,
                    password: a.password,
                    scope: Scope {
                        queues: names(src, "queue", a.queues.unwrap_or_default())?,
                        skills: names(src, "skill", a.skills.unwrap_or_default())?,
                    },
                    role: a.role.unwrap_or_default(),
                    max_chats: a.max_chats.map(|n| chat_limit(src, &n)).transpose()?,
                })
            })
            .collect::<Result<_, ConfigError>>()?;
    }
    for (name, q) in raw.queues.unwrap_or_default() {
        let (span, name) = (name.span(), name.into_inner());
        if name.trim() != name || name.is_empty() || name.len() > 64 {
            return Err(src.error(
                Some(span),
                format!("`{name}` is not a queue name (1 to 64 bytes, no spaces around it)"),
            ));
        }
        let rules = cfg.queues.entry(name).or_default();
        set(&mut rules.when_no_agents, q.when_no_agents.map(Some));
        for (slot, value, placeholders) in [
            (&mut rules.waiting, q.waiting, &[][..]),
            (&mut rules.waiting_no_agents, q.waiting_no_agents, &[]),
            (&mut rules.unavailable, q.unavailable, &[]),
            (&mut rules.assigned, q.assigned, &["agent"]),
        ] {
            if let Some(v) = value {
                *slot = Some(queue_text(src, &v, placeholders)?);
            }
        }
    }
    if let Some(list) = raw.canned {
        // A file's own list replaces the built-in one.
        let mut canned: Vec<baton_protocol::ws::CannedReply> = vec![];
        for c in list {
            let name = c.name.get_ref().trim();
            if name.is_empty()
                || name.len() > 32
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(src.error(
                    Some(c.name.span()),
                    format!(
                        "`{name}` is not a canned reply's name: 1 to 32 letters, digits, `-` or `_` (agents type it after `/`)"
                    ),
                ));
            }
            if canned.iter().any(|k| k.name == name) {
                return Err(src.error(
                    Some(c.name.span()),
                    format!("there is already a canned reply named `{name}`"),
                ));
            }
            let text = c.text.get_ref().trim();
            if text.is_empty() || text.len() > baton_protocol::MAX_TEXT_BYTES {
                return Err(src.error(
                    Some(c.text.span()),
                    format!(
                        "a canned reply's text is 1 to {} bytes",
                        baton_protocol::MAX_TEXT_BYTES
                    ),
                ));
            }
            canned.push(baton_protocol::ws::CannedReply {
                name: name.to_owned(),
                text: text.to_owned(),
            });
        }
        cfg.canned = canned;
    }
    if let Some(b) = raw.bot {
        cfg.bot.overlay(src, b)?;
    }
    Ok(())
}

/// A number of chats at once: 0 (no limit) to 100.
fn chat_limit(src: &Source<'_>, n: &Spanned<i64>) -> Result<u32, ConfigError> {
    u32::try_from(*n.get_ref())
        .ok()
        .filter(|n| *n <= 100)
        .ok_or_else(|| {
            src.error(
                Some(n.span()),
                "`max_chats` is a number of chats at once, 0 (no limit) to 100",
            )
        })
}

/// Parses `30s`, `10m`, `12h` and the like; zero is refused.
fn duration(src: &Source<'_>, value: &Spanned<String>) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(value.get_ref().trim()).map_err(|e| {
        src.error(
            Some(value.span()),
            format!(
                "`{}` is not a duration like `30s` or `12h`: {e}",
                value.get_ref()
            ),
        )
    })?;
    if d.is_zero() {
        return Err(src.error(Some(value.span()), "a duration of zero is not allowed"));
    }
    Ok(d)
}

/// Queue or skill names: trimmed, 1 to 64 bytes (what a handover directive may carry), each
/// once.
fn names(
    src: &Source<'_>,
    what: &str,
    list: Vec<Spanned<String>>,
) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for n in list {
        let v = n.get_ref().trim();
        if v.is_empty() || v.len() > 64 {
            return Err(src.error(
                Some(n.span()),
                format!("a {what} name is 1 to 64 bytes, not `{v}`"),
            ));
        }
        if out.iter().any(|o| o == v) {
            return Err(src.error(Some(n.span()), format!("{what} `{v}` is listed twice")));
        }
        out.push(v.to_owned());
    }
    Ok(out)
}

/// A queue's text, or its texts by language: each not empty, and with only the
/// placeholders it can fill.
fn queue_text(
    src: &Source<'_>,
    v: &Spanned<toml::Value>,
    allowed: &[&str],
) -> Result<Localised, ConfigError> {
    let span = v.span();
    let one = |lang: &str, text: &toml::Value| -> Result<(String, String), ConfigError> {
        let toml::Value::String(text) = text else {
            return Err(src.error(
                Some(span.clone()),
                "a queue's text is a text, or a table of texts by language \
                 (`{ en = \"…\", de = \"…\" }`)",
            ));
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(src.error(Some(span.clone()), "a queue's text may not be empty"));
        }
        if let Some(bad) = texts::used_placeholders(text)
            .into_iter()
            .find(|p| !allowed.contains(p))
        {
            return Err(src.error(
                Some(span.clone()),
                match allowed {
                    [] => {
                        format!("`{{{bad}}}` is not filled here (this text has no placeholders)")
                    }
                    _ => format!("`{{{bad}}}` is not filled here (it may use: {{agent}})"),
                },
            ));
        }
        Ok((lang.to_owned(), text.to_owned()))
    };
    match v.get_ref() {
        toml::Value::Table(by_lang) => {
            if by_lang.is_empty() {
                return Err(src.error(Some(span), "a queue's texts by language may not be empty"));
            }
            by_lang
                .iter()
                .map(|(lang, text)| {
                    if !is_language_tag(lang) {
                        return Err(src.error(
                            Some(span.clone()),
                            format!("`{lang}` is not a language tag like `en` or `pt-BR`"),
                        ));
                    }
                    one(lang, text)
                })
                .collect::<Result<_, _>>()
                .map(Localised)
        }
        text => Ok(Localised(vec![one("", text)?])),
    }
}

/// `["*"]` means any origin; otherwise each entry is `scheme://host[:port]`.
fn parse_origins(
    src: &Source<'_>,
    origins: &[Spanned<String>],
) -> Result<Option<Vec<String>>, ConfigError> {
    if origins.iter().any(|o| o.get_ref().trim() == "*") {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(origins.len());
    for o in origins {
        let v = o.get_ref().trim().trim_end_matches('/');
        let ok = v.split_once("://").is_some_and(|(scheme, host)| {
            matches!(scheme, "http" | "https")
                && !host.is_empty()
                && !host.contains(['/', '?', '#', ' '])
        });
        if !ok {
            return Err(src.error(
                Some(o.span()),
                format!(
                    "`{v}` is not an origin like `https://shop.example.com` (or \"*\" for any)"
                ),
            ));
        }
        out.push(v.to_ascii_lowercase());
    }
    Ok(Some(out))
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, String> {
        Config::load_str(Path::new("baton.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_valid_and_complete() {
        let c = Config::defaults();
        assert!(c.offloading.enabled);
        assert!(c.bot.intents.iter().any(|i| i.handover.is_some()));
        assert_eq!(c.agents.len(), 1);
        assert!(!c.texts.waiting.is_empty() && !c.texts.unavailable.is_empty());
        assert!(!c.database.is_empty() && !c.bot.not_understood.is_empty());
        assert_eq!(c.allowed_origins, None, "any origin by default");
        assert!(c.bus.is_empty(), "in-process bus by default");
        assert!(c.max_connections >= 16 && !c.header_timeout.is_zero());
        assert!(!c.idle_timeout.is_zero() && !c.agent_session_ttl.is_zero());
        assert!(c.limits.visitor_per_minute > 0 && c.limits.login_failures > 0);
        assert!(c.bot.upstream.is_none() && !c.bot.upstream_timeout.is_zero());
        assert!(!c.texts.bot_unavailable.is_empty() && c.database_pool > 0);
        // Every text the widget shows has a default, using only its own placeholders.
        for t in Text::ALL {
            let text = c.texts.get(*t);
            assert!(!text.is_empty(), "default.toml has no text `{}`", t.key());
            for p in t.placeholders() {
                assert!(
                    text.contains(&format!("{{{p}}}")),
                    "`{}` lacks {{{p}}}",
                    t.key()
                );
            }
        }
        assert_eq!(c.texts.all.len(), Text::ALL.len());
    }

    #[test]
    fn texts_are_checked_and_override_the_defaults() {
        let c =
            load("[texts]\nwaiting = \"Bitte warten.\"\nqueue_position = \"Platz {position}.\"\n")
                .unwrap();
        assert_eq!(c.texts.waiting, "Bitte warten.");
        assert_eq!(c.texts.get(Text::Waiting), "Bitte warten.");
        assert_eq!(c.texts.get(Text::QueuePosition), "Platz {position}.");
        assert_eq!(
            c.texts.get(Text::Send),
            Config::defaults().texts.get(Text::Send)
        );
        for (text, line, needle) in [
            ("[texts]\n\nwaitng = \"x\"\n", 3, "`waitng` is not a text"),
            ("[texts]\nsend = \"  \"\n", 2, "may not be empty"),
            (
                "[texts]\nqueue_position = \"Number {n}\"\n",
                2,
                "`{n}` is not filled in `queue_position` (it may use: {position})",
            ),
            ("[texts]\nsend = \"Send {x}\"\n", 2, "(it may use: none)"),
            ("[texts]\nsend = 3\n", 2, "must be a text"),
            ("[texts]\nlocale = \"German\"\n", 2, "not a language tag"),
            (
                "[texts.deutsch]\nsend = \"x\"\n",
                1,
                "`deutsch` is not a language tag",
            ),
            (
                "[texts.de]\nsend = \"Los\"\n\nsendd = \"x\"\n",
                4,
                "`sendd` is not a text",
            ),
            ("[texts.de]\nsend = \"Los {x}\"\n", 2, "(it may use: none)"),
        ] {
            let e = load(text).unwrap_err();
            assert!(e.starts_with(&format!("baton.toml:{line}:")), "{e}");
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn texts_come_in_languages_and_the_closest_one_is_chosen() {
        let c = load("[texts.de]\nsend = \"Los\"\n[texts]\nwaiting = \"Hang on.\"\n").unwrap();
        let (lang, de) = c.texts_for(Some("de-AT"));
        assert_eq!(lang, "de");
        assert_eq!(de.get(Text::Send), "Los", "the file's German");
        assert_eq!(
            de.get(Text::MessageLabel),
            "Nachricht",
            "the embedded German"
        );
        assert!(
            de.waiting.starts_with("Bitte warten"),
            "German, not the English override"
        );
        let (lang, en) = c.texts_for(Some("fr-FR"));
        assert_eq!((lang, en.waiting.as_str()), ("en", "Hang on."));
        assert_eq!(c.texts_for(None).0, "en");
        assert_eq!(c.texts_for(Some("AR")).0, "ar");
        assert!(right_to_left("ar") && right_to_left("he-IL") && !right_to_left("de"));

        // `[texts]` in another language: its own defaults, then the file's texts.
        let c = load("[texts]\nlocale = \"de\"\nwaiting = \"Moment bitte.\"\n").unwrap();
        assert_eq!(c.texts_for(None).0, "de");
        assert_eq!(c.texts.waiting, "Moment bitte.");
        assert_eq!(c.texts.get(Text::Send), "Senden");
        assert_eq!(c.texts_for(Some("en")).0, "en");
        assert_eq!(c.texts_for(Some("en")).1.get(Text::Send), "Send");

        // The embedded languages name every text, so none falls back to English.
        let d = Config::defaults();
        for lang in ["de", "ar"] {
            let own = &d.locale_texts[lang];
            let missing: Vec<_> = Text::ALL
                .iter()
                .filter(|t| !own.contains_key(t.key()))
                .map(|t| t.key())
                .collect();
            assert!(missing.is_empty(), "[texts.{lang}] lacks {missing:?}");
        }
    }

    #[test]
    fn server_settings_are_checked() {
        let c = load(
            "[server]\ndatabase = \"postgres://db/baton\"\nbus = \"nats://127.0.0.1:4222\"\n\
             allowed_origins = [\"https://Shop.example.com/\", \"http://localhost:3000\"]\n\
             agent_session_ttl = \"2h\"\n[bot]\nupstream = \"http://rasa:5005\"\n",
        )
        .unwrap();
        assert_eq!(c.database, "postgres://db/baton");
        assert_eq!(c.bus, "nats://127.0.0.1:4222");
        assert_eq!(
            c.allowed_origins,
            Some(vec![
                "https://shop.example.com".to_owned(),
                "http://localhost:3000".to_owned()
            ])
        );
        assert_eq!(c.agent_session_ttl, Duration::from_secs(7200));
        assert_eq!(c.bot.upstream.as_deref(), Some("http://rasa:5005"));
        assert_eq!(
            load("[offloading]\nrequest_item = \"after 2 messages\"\n")
                .unwrap()
                .request_item,
            RequestItem::AfterMessages(2)
        );
        assert_eq!(
            load("[server]\nallowed_origins = [\"*\"]\n")
                .unwrap()
                .allowed_origins,
            None
        );

        for (text, line, needle) in [
            (
                "[server]\nallowed_origins = [\"shop.example.com\"]\n",
                2,
                "not an origin",
            ),
            ("[server]\n\nbus = \"redis://x\"\n", 3, "not a bus"),
            ("[server]\nidle_timeout = \"soon\"\n", 2, "not a duration"),
            ("[server]\nmax_connections = 3\n", 2, "at least 16"),
            ("[bot]\nupstream = \"rasa:5005\"\n", 2, "not an http:// URL"),
            ("[limits]\nper_minute = 3\n", 2, "per_minute"),
            (
                "[offloading]\nrequest_item = \"after three messages\"\n",
                2,
                "`three` is not a number",
            ),
        ] {
            let e = load(text).unwrap_err();
            assert!(e.starts_with(&format!("baton.toml:{line}:")), "{e}");
            assert!(e.contains(needle), "{e}");
        }
    }

    /// Every mistake in the bot's section names its line and says what is wrong.
    #[test]
    fn bot_mistakes_name_the_line_and_the_reason() {
        let flow = |steps: &str| {
            format!(
                "[[bot.flows]]\nname = \"f\"\n[[bot.flows.steps]]\n{steps}\n[[bot.flows.steps]]\nhandover = true\n"
            )
        };
        for (text, line, needle) in [
            ("[bot]\nthreshold = 2.0\n".to_owned(), 2, "between 0.05 and 1.0"),
            ("[bot]\nlocales = [\"english\"]\n".to_owned(), 2, "not a language tag"),
            ("[bot]\nlocales = []\n".to_owned(), 2, "at least one language"),
            (
                "[bot]\nnot_understood = { fr = \"Pardon ?\" }\n".to_owned(),
                2,
                "`fr` is not one of the bot's languages",
            ),
            ("[bot]\nnot_understood = 3\n".to_owned(), 2, "a text, or a table of texts"),
            ("[bot.fallback]\nconfirm_questoin = \"?\"\n".to_owned(), 2, "confirm_questoin"),
            ("[bot.fallback]\nyes = \"\"\n".to_owned(), 2, "may not be empty"),
            (
                "[[bot.intents]]\nname = \"a\"\nexamples = [\"x\"]\nflow = \"nope\"\n".to_owned(),
                4,
                "flow `nope`, which is not defined",
            ),
            (
                "[[bot.intents]]\nname = \"a b\"\nexamples = [\"x\"]\nanswer = \"y\"\n".to_owned(),
                2,
                "letters, digits",
            ),
            (
                "[[bot.intents]]\nname = \"a\"\nexamples = { en = \"x\" }\nanswer = \"y\"\n".to_owned(),
                3,
                "a list of phrases",
            ),
            (
                "[[bot.intents]]\nname = \"a\"\nexamples = [\"x\"]\nanswer = \"y\"\nqueue = \"sales\"\n".to_owned(),
                5,
                "need `handover = true`",
            ),
            (
                "[[bot.intents]]\nname = \"a\"\nexamples = [\"x\"]\nimage = \"logo.png\"\n".to_owned(),
                4,
                "not an http(s):// URL",
            ),
            (
                "[[bot.intents]]\nname = \"plans\"\nexamples = [\"x\"]\nanswer = \"y\"\ncarousel = [\n  { title = \"Basic\", buttons = [{ title = \"Choose\", payload = \"/pricing\" }] },\n]\n".to_owned(),
                6,
                "no [[bot.intents]] is named `pricing`",
            ),
            (flow("ask = \"e\"\ntype = \"email\"\nsay = \"?\""), 3, "needs `invalid"),
            (flow("ask = \"e\"\ntype = \"date\"\nsay = \"?\""), 5, "not a slot type"),
            (flow("ask = \"e\"\nhandover = true"), 3, "a step does one thing"),
            (flow("ask = \"e\""), 3, "needs its question"),
            (flow("say = \"hi\"\nwhen = { topic = \"x\" }"), 3, "no earlier step asks"),
            (
                flow("ask = \"c\"\ntype = \"choice\"\nsay = \"?\"\ninvalid = \"!\"\nchoices = [{ value = \"a\" }]"),
                3,
                "at least two `choices`",
            ),
            (
                flow("ask = \"c\"\ntype = \"choice\"\nsay = \"?\"\ninvalid = \"!\"\nchoices = [{ value = \"/a\" }, { value = \"b\" }]"),
                8,
                "does not start with `/`",
            ),
        ] {
            let e = load(&text).unwrap_err();
            assert!(e.starts_with(&format!("baton.toml:{line}:")), "{text}\n→ {e}");
            assert!(e.contains(needle), "{text}\n→ {e}");
        }
        // A flow that asks for more slots than a handover carries is refused.
        let mut many = String::from("[[bot.flows]]\nname = \"f\"\n");
        for i in 0..=baton_protocol::decide::MAX_SLOTS {
            many.push_str(&format!(
                "[[bot.flows.steps]]\nask = \"s{i}\"\nsay = \"?\"\n"
            ));
        }
        assert!(load(&many).unwrap_err().contains("at most 20 slots"));
    }

    #[test]
    fn agents_serve_queues_and_skills_and_queues_have_their_own_rules() {
        let c = load(
            "[[agents]]\nemail = \"s@x\"\nname = \"Sam\"\npassword = \"p\"\nqueues = [\"sales\", \" eu \"]\nskills = [\"german\"]\nrole = \"supervisor\"\n\
             [[agents]]\nemail = \"a@x\"\nname = \"Ada\"\npassword = \"p\"\n\
             [queues.sales]\nwhen_no_agents = \"unavailable\"\nassigned = \"{agent} from sales is here.\"\n",
        )
        .unwrap();
        assert_eq!(c.agents[0].scope.queues, ["sales", "eu"]);
        assert_eq!(c.agents[0].scope.skills, ["german"]);
        assert_eq!(c.agents[0].role, AgentRole::Supervisor);
        assert_eq!(c.agents[1].scope, Scope::default(), "every queue");
        assert_eq!(c.agents[1].role, AgentRole::Agent);
        let sales = c.queue("sales");
        assert_eq!(sales.when_no_agents, Some(NoAgentsPolicy::Unavailable));
        assert_eq!(
            sales.assigned.as_ref().map(|t| t.get("de", "en")),
            Some("{agent} from sales is here.")
        );
        assert_eq!(sales.waiting, None, "falls back to [texts]");
        assert_eq!(c.queue("elsewhere"), &QueueRules::default());

        let agent = "[[agents]]\nemail = \"s@x\"\nname = \"S\"\npassword = \"p\"\n";
        for (text, line, needle) in [
            (
                format!("{agent}queues = [\"\"]\n"),
                5,
                "a queue name is 1 to 64 bytes",
            ),
            (
                format!("{agent}skills = [\"de\", \"de\"]\n"),
                5,
                "skill `de` is listed twice",
            ),
            (
                format!("{agent}role = \"boss\"\n"),
                5,
                "unknown variant `boss`",
            ),
            (
                format!("{agent}queue = [\"x\"]\n"),
                5,
                "unknown field `queue`",
            ),
            (
                "[queues.sales]\nassigned = \"{name} is here\"\n".into(),
                2,
                "`{name}` is not filled here",
            ),
            (
                "[queues.sales]\nwaiting = \"{agent}\"\n".into(),
                2,
                "has no placeholders",
            ),
            (
                "[queues.sales]\nunavailable = \" \"\n".into(),
                2,
                "may not be empty",
            ),
            (
                "[queues.sales]\nwhen_no_agents = \"wait\"\n".into(),
                2,
                "unknown variant `wait`",
            ),
            (
                "[queues.sales]\nwaitng = \"x\"\n".into(),
                2,
                "unknown field `waitng`",
            ),
            (
                "[queues.\" sales\"]\nwaiting = \"x\"\n".into(),
                1,
                "is not a queue name",
            ),
        ] {
            let e = load(&text).unwrap_err();
            assert!(
                e.starts_with(&format!("baton.toml:{line}:")),
                "{text}\n→ {e}"
            );
            assert!(e.contains(needle), "{text}\n→ {e}");
        }
    }

    #[test]
    fn the_configuration_page_shows_the_defaults_as_they_are() {
        let doc = include_str!("../../../docs/configuration.md");
        let block = doc
            .split("## The defaults\n\n```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/configuration.md has the defaults block");
        assert_eq!(
            block, DEFAULT_TOML,
            "update docs/configuration.md from default.toml"
        );
    }

    #[test]
    fn the_readme_example_is_a_valid_configuration() {
        let readme = include_str!("../../../README.md");
        let example = readme
            .split("## Configuration")
            .nth(1)
            .and_then(|rest| rest.split("```toml\n").nth(1))
            .and_then(|rest| rest.split("```").next())
            .expect("README has a configuration example");
        let c = load(example).unwrap_or_else(|e| panic!("README example: {e}"));
        assert_eq!(c.offloading.hours.zone.iana_name(), Some("Europe/Berlin"));
        assert_eq!(c.offloading.hours.closed.len(), 2);
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let c = load("[offloading]\nenabled = false\nhours = [\"mon-fri 08:00-18:00\"]\nutc_offset = \"+01:00\"\n").unwrap();
        assert!(!c.offloading.enabled);
        assert_eq!(
            c.offloading.hours.zone,
            crate::hours::fixed_zone("+01:00").unwrap()
        );
        assert_eq!(c.offloading.hours.windows.len(), 1);
        assert_eq!(c.offloading.at_closing, AtClosing::Keep);
        assert_eq!(c.texts.waiting, Config::defaults().texts.waiting);
    }

    #[test]
    fn errors_name_the_line_and_the_reason() {
        let e =
            load("[offloading]\nenabled = true\nhours = [\"mon-fri 18:00-08:00\"]\n").unwrap_err();
        assert!(e.starts_with("baton.toml:3:"), "{e}");
        assert!(e.contains("closes before it opens"), "{e}");

        let e = load("[server]\n\nlisten = \"localhost\"\n").unwrap_err();
        assert!(e.starts_with("baton.toml:3:"), "{e}");
        assert!(e.contains("not an address"), "{e}");

        let e =
            load("[[agents]]\nemail = \"a@x\"\nname = \"A\"\npassword = \"pw\"\nmax_chats = 101\n")
                .unwrap_err();
        assert!(e.starts_with("baton.toml:5:"), "{e}");
        assert!(e.contains("0 (no limit) to 100"), "{e}");

        // Canned replies: a name agents can type, each once, and a text.
        for (text, line, needle) in [
            (
                "[[canned]]\nname = \"good day\"\ntext = \"Hi\"\n",
                2,
                "is not a canned reply's name",
            ),
            (
                "[[canned]]\nname = \"hi\"\ntext = \"Hi\"\n[[canned]]\nname = \"hi\"\ntext = \"Hello\"\n",
                5,
                "already a canned reply named `hi`",
            ),
            (
                "[[canned]]\nname = \"hi\"\ntext = \"  \"\n",
                3,
                "1 to 4096 bytes",
            ),
        ] {
            let e = load(text).unwrap_err();
            assert!(
                e.starts_with(&format!("baton.toml:{line}:")),
                "{text}\n→ {e}"
            );
            assert!(e.contains(needle), "{text}\n→ {e}");
        }
        let own = Config::load_str(
            Path::new("baton.toml"),
            "[[canned]]\nname = \"refund\"\ntext = \" Your refund is on its way. \"\n",
        )
        .unwrap();
        assert_eq!(
            own.canned,
            [baton_protocol::ws::CannedReply {
                name: "refund".into(),
                text: "Your refund is on its way.".into()
            }],
            "a file's own list replaces the built-in one"
        );
        assert_eq!(Config::defaults().canned.len(), 3);

        let e = load("[offloading]\nenabeld = true\n").unwrap_err();
        assert!(e.starts_with("baton.toml:2:"), "{e}");
        assert!(e.contains("enabeld"), "{e}");

        let e = load("[bot]\nnot_understood = \"?\"\n[[bot.intents]]\nname = \"x\"\nexamples = []\nanswer = \"a\"\n").unwrap_err();
        assert!(e.starts_with("baton.toml:5:"), "{e}");
        assert!(e.contains("no examples"), "{e}");

        let e = load("[texts\nwaiting = 1\n").unwrap_err();
        assert!(e.starts_with("baton.toml:1:"), "{e}");

        for (text, line, needle) in [
            (
                "[offloading]\ntime_zone = \"Europe/Berln\"\n",
                2,
                "not an IANA time zone",
            ),
            (
                "[offloading]\ntime_zone = \"Europe/Berlin\"\nutc_offset = \"+01:00\"\n",
                3,
                "keep one",
            ),
            (
                "[offloading]\nclosed = [\"2026-12-24\", \"24.12.\"]\n",
                2,
                "not a date",
            ),
            (
                "[offloading]\nat_closing = \"drop\"\n",
                2,
                "unknown variant `drop`",
            ),
        ] {
            let e = load(text).unwrap_err();
            assert!(
                e.starts_with(&format!("baton.toml:{line}:")),
                "{text}\n→ {e}"
            );
            assert!(e.contains(needle), "{text}\n→ {e}");
        }
        let c = load("[offloading]\ntime_zone = \"America/New_York\"\nclosed = [\"2026-07-03 12:00-24:00\"]\nat_closing = \"return_to_bot\"\n").unwrap();
        assert_eq!(
            c.offloading.hours.zone.iana_name(),
            Some("America/New_York")
        );
        assert_eq!(c.offloading.hours.closed[0].from, 720);
        assert_eq!(c.offloading.at_closing, AtClosing::ReturnToBot);
    }

    #[test]
    fn a_real_file_is_named_in_its_errors() {
        let path =
            std::env::temp_dir().join(format!("baton-config-test-{}.toml", std::process::id()));
        std::fs::write(&path, "[offloading]\nutc_offset = \"CET\"\n").unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            e,
            format!(
                "{}:2:14: `CET` is not a UTC offset like `+01:00` or `-05:30`",
                path.display()
            )
        );

        let missing = Config::load(Path::new("/nonexistent/baton.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("/nonexistent/baton.toml: cannot read:"),
            "{missing}"
        );
    }
}
