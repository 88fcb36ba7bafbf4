//! Configuration: embedded defaults (`default.toml`) with an optional file on top.
//!
//! Every mistake in a config file is reported at start as `file:line:column: reason`, both
//! for TOML syntax and for values that parse but make no sense (a window that closes before
//! it opens, an unknown key, an intent without examples).

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use baton_protocol::schedule::{self, Schedule};
use serde::Deserialize;
use toml::Spanned;

/// The defaults, compiled in. Also the reference for `docs/configuration.md`.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// SQLite file.
    pub database: PathBuf,
    /// Built widget files.
    pub widget_dir: PathBuf,
    /// Built console files.
    pub console_dir: PathBuf,
    /// Handover rules.
    pub offloading: Offloading,
    /// Visitor-facing texts per state.
    pub texts: Texts,
    /// Agent accounts ensured at start.
    pub agents: Vec<AgentAccount>,
    /// The built-in bot.
    pub bot: BotConfig,
}

/// Handover rules.
#[derive(Clone, Debug)]
pub struct Offloading {
    /// `false` = offloading disabled.
    pub enabled: bool,
    /// Opening hours.
    pub schedule: Schedule,
    /// What to do when no agent is logged in.
    pub when_no_agents: NoAgentsPolicy,
}

/// What a handover does when no agent is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoAgentsPolicy {
    /// Queue anyway; the next agent to log in sees it.
    Queue,
    /// Refuse: the conversation becomes `unavailable` and stays with the bot.
    Unavailable,
}

/// Visitor-facing texts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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
}

/// An agent login.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentAccount {
    /// Login e-mail.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Password; stored only as an Argon2 hash.
    pub password: String,
}

/// The built-in bot.
#[derive(Clone, Debug)]
pub struct BotConfig {
    /// Answer when no intent matches.
    pub not_understood: String,
    /// The intents, in priority order for equal matches.
    pub intents: Vec<Intent>,
}

/// One intent of the built-in bot.
#[derive(Clone, Debug)]
pub struct Intent {
    /// Name, unique.
    pub name: String,
    /// Lower-case phrases; the longest contained phrase wins.
    pub examples: Vec<String>,
    /// The answer text.
    pub answer: String,
    /// Whether matching this intent hands over to a person.
    pub handover: bool,
    /// Note for the agent when it hands over.
    pub message_to_agent: Option<String>,
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
    offloading: Option<RawOffloading>,
    texts: Option<RawTexts>,
    agents: Option<Vec<AgentAccount>>,
    bot: Option<RawBot>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    database: Option<PathBuf>,
    widget_dir: Option<PathBuf>,
    console_dir: Option<PathBuf>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffloading {
    enabled: Option<bool>,
    hours: Option<Vec<Spanned<String>>>,
    utc_offset: Option<Spanned<String>>,
    when_no_agents: Option<NoAgentsPolicy>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTexts {
    waiting: Option<String>,
    waiting_no_agents: Option<String>,
    closed: Option<String>,
    disabled: Option<String>,
    unavailable: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBot {
    not_understood: Option<String>,
    intents: Option<Vec<Spanned<RawIntent>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    name: Spanned<String>,
    examples: Spanned<Vec<String>>,
    answer: String,
    #[serde(default)]
    handover: bool,
    message_to_agent: Option<String>,
}

/// Where a parsed file came from, to turn byte spans into lines.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
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

    fn parse(&self) -> Result<RawConfig, ConfigError> {
        toml::from_str(self.text).map_err(|e| self.error(e.span(), e.message().trim().to_owned()))
    }
}

impl Config {
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
        };
        let base = defaults.parse()?;
        let user_src = Source { path, text };
        let user = user_src.parse()?;
        // Validate each value against the file it came from, so errors point at the right line.
        let mut cfg = resolve(&defaults, base)?;
        overlay(&user_src, &mut cfg, user)?;
        Ok(cfg)
    }
}

fn resolve(src: &Source<'_>, raw: RawConfig) -> Result<Config, ConfigError> {
    // Start from empty values; the embedded defaults fill every one (a unit test checks).
    let mut cfg = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        database: PathBuf::new(),
        widget_dir: PathBuf::new(),
        console_dir: PathBuf::new(),
        offloading: Offloading {
            enabled: true,
            schedule: Schedule::default(),
            when_no_agents: NoAgentsPolicy::Queue,
        },
        texts: Texts {
            waiting: String::new(),
            waiting_no_agents: String::new(),
            closed: String::new(),
            disabled: String::new(),
            unavailable: String::new(),
        },
        agents: vec![],
        bot: BotConfig {
            not_understood: String::new(),
            intents: vec![],
        },
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
        set(&mut cfg.database, s.database);
        set(&mut cfg.widget_dir, s.widget_dir);
        set(&mut cfg.console_dir, s.console_dir);
    }
    if let Some(o) = raw.offloading {
        set(&mut cfg.offloading.enabled, o.enabled);
        set(&mut cfg.offloading.when_no_agents, o.when_no_agents);
        if let Some(offset) = o.utc_offset {
            cfg.offloading.schedule.utc_offset_minutes =
                schedule::parse_offset(offset.get_ref())
                    .map_err(|e| src.error(Some(offset.span()), e))?;
        }
        if let Some(hours) = o.hours {
            cfg.offloading.schedule.windows = hours
                .iter()
                .map(|h| {
                    schedule::parse_window(h.get_ref()).map_err(|e| src.error(Some(h.span()), e))
                })
                .collect::<Result<_, _>>()?;
        }
    }
    if let Some(t) = raw.texts {
        set(&mut cfg.texts.waiting, t.waiting);
        set(&mut cfg.texts.waiting_no_agents, t.waiting_no_agents);
        set(&mut cfg.texts.closed, t.closed);
        set(&mut cfg.texts.disabled, t.disabled);
        set(&mut cfg.texts.unavailable, t.unavailable);
    }
    if let Some(agents) = raw.agents {
        cfg.agents = agents;
    }
    if let Some(b) = raw.bot {
        set(&mut cfg.bot.not_understood, b.not_understood);
        if let Some(intents) = b.intents {
            let mut out: Vec<Intent> = Vec::with_capacity(intents.len());
            for spanned in intents {
                let span = spanned.span();
                let i = spanned.into_inner();
                let name = i.name.get_ref().trim().to_owned();
                if name.is_empty() {
                    return Err(src.error(Some(i.name.span()), "intent name is empty"));
                }
                if out.iter().any(|o| o.name == name) {
                    return Err(src.error(
                        Some(i.name.span()),
                        format!("intent `{name}` is defined twice"),
                    ));
                }
                let examples: Vec<String> = i
                    .examples
                    .get_ref()
                    .iter()
                    .map(|e| e.trim().to_lowercase())
                    .filter(|e| !e.is_empty())
                    .collect();
                if examples.is_empty() {
                    return Err(src.error(
                        Some(i.examples.span()),
                        format!("intent `{name}` has no examples"),
                    ));
                }
                if i.answer.trim().is_empty() {
                    return Err(
                        src.error(Some(span), format!("intent `{name}` has an empty answer"))
                    );
                }
                out.push(Intent {
                    name,
                    examples,
                    answer: i.answer,
                    handover: i.handover,
                    message_to_agent: i.message_to_agent,
                });
            }
            cfg.bot.intents = out;
        }
    }
    Ok(())
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
        assert!(c.bot.intents.iter().any(|i| i.handover));
        assert_eq!(c.agents.len(), 1);
        assert!(!c.texts.waiting.is_empty() && !c.texts.unavailable.is_empty());
        assert!(!c.database.as_os_str().is_empty() && !c.bot.not_understood.is_empty());
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let c = load("[offloading]\nenabled = false\nhours = [\"mon-fri 08:00-18:00\"]\nutc_offset = \"+01:00\"\n").unwrap();
        assert!(!c.offloading.enabled);
        assert_eq!(c.offloading.schedule.utc_offset_minutes, 60);
        assert_eq!(c.offloading.schedule.windows.len(), 1);
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

        let e = load("[offloading]\nenabeld = true\n").unwrap_err();
        assert!(e.starts_with("baton.toml:2:"), "{e}");
        assert!(e.contains("enabeld"), "{e}");

        let e = load("[bot]\nnot_understood = \"?\"\n[[bot.intents]]\nname = \"x\"\nexamples = []\nanswer = \"a\"\n").unwrap_err();
        assert!(e.starts_with("baton.toml:5:"), "{e}");
        assert!(e.contains("no examples"), "{e}");

        let e = load("[texts\nwaiting = 1\n").unwrap_err();
        assert!(e.starts_with("baton.toml:1:"), "{e}");
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
