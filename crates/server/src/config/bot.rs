//! The `[bot]` section: the built-in bot's locales, intents, flows and fallback rules (or a
//! Rasa upstream instead), checked as strictly as the rest of the file.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Source, duration, set};

/// The bot: the built-in intents and flows, or a Rasa-compatible upstream.
#[derive(Clone, Debug)]
pub struct BotConfig {
    /// A Rasa REST endpoint to forward bot turns to, instead of the built-in bot.
    pub upstream: Option<String>,
    /// How long the upstream may take to answer.
    pub upstream_timeout: Duration,
    /// The languages the bot speaks; the first is the default.
    pub locales: Vec<String>,
    /// The matcher's confidence (0–1) an intent needs to be taken as understood.
    pub threshold: f32,
    /// Answer when nothing matches.
    pub not_understood: Localised,
    /// The intents, in priority order for equal scores.
    pub intents: Vec<Intent>,
    /// The flows intents may start.
    pub flows: Vec<Flow>,
    /// What happens when the bot does not understand.
    pub fallback: Fallback,
}

/// A text in several languages: `"…"` (every language) or `{ en = "…", de = "…" }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Localised(pub Vec<(String, String)>);

impl Localised {
    /// The same text in every language.
    pub fn one(text: &str) -> Self {
        Self(vec![(String::new(), text.to_owned())])
    }

    /// The text in `locale`, else in `default`, else the first one given.
    pub fn get<'a>(&'a self, locale: &str, default: &str) -> &'a str {
        let find = |l: &str| self.0.iter().find(|(k, _)| k == l || k.is_empty());
        find(locale)
            .or_else(|| find(default))
            .or(self.0.first())
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every language's text.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(_, v)| v.as_str())
    }

    /// Whether no text is given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One intent of the built-in bot.
#[derive(Clone, Debug)]
pub struct Intent {
    /// Name, unique; a button payload `/name` picks it.
    pub name: String,
    /// Shown on a suggestion button; the first example when not given.
    pub title: Localised,
    /// Example phrases with their language (`""`: any language).
    pub examples: Vec<(String, String)>,
    /// What the bot answers.
    pub answer: Response,
    /// Offered among the suggestions when the bot is unsure.
    pub suggest: bool,
    /// A flow this intent starts after its answer.
    pub flow: Option<String>,
    /// A handover this intent starts after its answer (the explicit-request trigger).
    pub handover: Option<HandoverStep>,
}

/// An answer in the Rasa response shapes: text with buttons, an image, a carousel.
#[derive(Clone, Debug, Default)]
pub struct Response {
    /// Text.
    pub text: Localised,
    /// Quick replies under the text.
    pub buttons: Vec<ButtonSpec>,
    /// An image URL.
    pub image: Option<String>,
    /// Cards, as a Rasa `generic` template attachment.
    pub carousel: Vec<Card>,
}

impl Response {
    fn is_empty(&self) -> bool {
        self.text.is_empty() && self.image.is_none() && self.carousel.is_empty()
    }
}

/// A button: its title per language and the payload it sends.
#[derive(Clone, Debug)]
pub struct ButtonSpec {
    /// Label.
    pub title: Localised,
    /// Sent as the visitor's next message (`/intent` picks an intent).
    pub payload: String,
}

/// One card of a carousel.
#[derive(Clone, Debug)]
pub struct Card {
    /// Title.
    pub title: Localised,
    /// Subtitle.
    pub subtitle: Localised,
    /// Image URL.
    pub image_url: Option<String>,
    /// Buttons.
    pub buttons: Vec<ButtonSpec>,
}

/// A handover the bot starts: what it says, the note for the agent, where it routes.
#[derive(Clone, Debug, Default)]
pub struct HandoverStep {
    /// Said to the visitor before handing over (nothing when empty).
    pub say: Localised,
    /// The note for the agent.
    pub message_to_agent: Option<String>,
    /// The queue (`default` when none).
    pub queue: Option<String>,
    /// The skill the agent needs.
    pub skill: Option<String>,
}

/// An ordered list of steps that asks, fills slots and may end in a handover.
#[derive(Clone, Debug)]
pub struct Flow {
    /// Name, unique.
    pub name: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One step of a flow; it runs only when every `when` slot has the given value.
#[derive(Clone, Debug)]
pub struct Step {
    /// Slot values this step needs (the branch).
    pub when: Vec<(String, String)>,
    /// What it does.
    pub action: StepAction,
}

/// What a step does.
#[derive(Clone, Debug)]
pub enum StepAction {
    /// Says something and goes on.
    Say(Response),
    /// Asks for a slot and waits for a valid answer.
    Ask {
        /// The slot it fills.
        slot: String,
        /// What a valid answer is.
        kind: SlotKind,
        /// The question.
        question: Response,
        /// Said before asking again after an invalid answer.
        invalid: Localised,
    },
    /// Hands over, with the slots filled so far.
    Handover(HandoverStep),
}

/// The built-in slot types.
#[derive(Clone, Debug, PartialEq)]
pub enum SlotKind {
    /// Any text up to 200 characters.
    Text,
    /// An e-mail address.
    Email,
    /// A phone number: 6 to 15 digits, with `+`, spaces, dashes, dots, slashes or brackets.
    Phone,
    /// A number.
    Number,
    /// One of the choices (offered as buttons; the title, the value or its number counts).
    Choice(Vec<Choice>),
}

/// One choice of a `choice` slot.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// Stored in the slot, and the button's payload.
    pub value: String,
    /// The button's label.
    pub title: Localised,
}

/// The fallback rules: what the bot does when it does not understand.
#[derive(Clone, Debug)]
pub struct Fallback {
    /// Hand over at the first message not understood ("enable human assistance").
    pub human_assistance: bool,
    /// Hand over after this many not-understood messages in a row (0: never).
    pub after_misses: u32,
    /// Hand over after this many invalid answers to one flow question (0: never).
    pub after_invalid: u32,
    /// Ask the visitor before a fallback handover.
    pub confirm: bool,
    /// The question.
    pub confirm_question: Localised,
    /// The yes button.
    pub yes: Localised,
    /// The no button.
    pub no: Localised,
    /// Said when the visitor answers no.
    pub declined: Localised,
    /// Offer at most this many closest intents as buttons when unsure (0: never).
    pub suggestions: u32,
    /// Said above the suggestions.
    pub suggestions_text: Localised,
    /// The button that asks for a person among the suggestions.
    pub human_button: Localised,
    /// The fallback handover itself.
    pub handover: HandoverStep,
}

// ---- as written ----

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBot {
    upstream: Option<Spanned<String>>,
    upstream_timeout: Option<Spanned<String>>,
    locales: Option<Spanned<Vec<String>>>,
    threshold: Option<Spanned<f64>>,
    not_understood: Option<Spanned<toml::Value>>,
    intents: Option<Vec<Spanned<RawIntent>>>,
    flows: Option<Vec<Spanned<RawFlow>>>,
    fallback: Option<RawFallback>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    name: Spanned<String>,
    title: Option<Spanned<toml::Value>>,
    examples: Spanned<toml::Value>,
    answer: Option<Spanned<toml::Value>>,
    buttons: Option<Vec<RawButton>>,
    image: Option<Spanned<String>>,
    carousel: Option<Vec<RawCard>>,
    suggest: Option<bool>,
    flow: Option<Spanned<String>>,
    #[serde(default)]
    handover: bool,
    message_to_agent: Option<String>,
    queue: Option<Spanned<String>>,
    skill: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawButton {
    title: Spanned<toml::Value>,
    payload: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCard {
    title: Spanned<toml::Value>,
    subtitle: Option<Spanned<toml::Value>>,
    image_url: Option<Spanned<String>>,
    buttons: Option<Vec<RawButton>>,
}

/// The routing keys of an intent, a step or the fallback.
#[derive(Default)]
struct RawHandover {
    message_to_agent: Option<String>,
    queue: Option<Spanned<String>>,
    skill: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    name: Spanned<String>,
    steps: Spanned<Vec<Spanned<RawStep>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    when: Option<BTreeMap<String, String>>,
    say: Option<Spanned<toml::Value>>,
    buttons: Option<Vec<RawButton>>,
    image: Option<Spanned<String>>,
    carousel: Option<Vec<RawCard>>,
    ask: Option<Spanned<String>>,
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    choices: Option<Vec<RawChoice>>,
    invalid: Option<Spanned<toml::Value>>,
    #[serde(default)]
    handover: bool,
    message_to_agent: Option<String>,
    queue: Option<Spanned<String>>,
    skill: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChoice {
    value: Spanned<String>,
    title: Option<Spanned<toml::Value>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFallback {
    human_assistance: Option<bool>,
    after_misses: Option<u32>,
    after_invalid: Option<u32>,
    confirm: Option<bool>,
    confirm_question: Option<Spanned<toml::Value>>,
    yes: Option<Spanned<toml::Value>>,
    no: Option<Spanned<toml::Value>>,
    declined: Option<Spanned<toml::Value>>,
    suggestions: Option<u32>,
    suggestions_text: Option<Spanned<toml::Value>>,
    human_button: Option<Spanned<toml::Value>>,
    say: Option<Spanned<toml::Value>>,
    message_to_agent: Option<String>,
    queue: Option<Spanned<String>>,
    skill: Option<Spanned<String>>,
}

impl BotConfig {
    /// Nothing set: the embedded defaults fill every value.
    pub(super) fn empty() -> Self {
        Self {
            upstream: None,
            upstream_timeout: Duration::ZERO,
            locales: vec![],
            threshold: 0.0,
            not_understood: Localised::default(),
            intents: vec![],
            flows: vec![],
            fallback: Fallback {
                human_assistance: false,
                after_misses: 0,
                after_invalid: 0,
                confirm: false,
                confirm_question: Localised::default(),
                yes: Localised::default(),
                no: Localised::default(),
                declined: Localised::default(),
                suggestions: 0,
                suggestions_text: Localised::default(),
                human_button: Localised::default(),
                handover: HandoverStep::default(),
            },
        }
    }

    /// The default language.
    pub fn default_locale(&self) -> &str {
        self.locales.first().map_or("en", String::as_str)
    }

    /// The configured language a BCP 47 tag asks for (`de-AT` → `de`), if any.
    pub fn locale_for(&self, tag: &str) -> Option<&str> {
        let tag = tag.trim().to_ascii_lowercase();
        let lang = tag.split(['-', '_']).next().unwrap_or("");
        self.locales
            .iter()
            .find(|l| **l == tag)
            .or_else(|| self.locales.iter().find(|l| **l == lang))
            .map(String::as_str)
    }

    /// A flow by name.
    pub fn flow(&self, name: &str) -> Option<&Flow> {
        self.flows.iter().find(|f| f.name == name)
    }

    pub(super) fn overlay(&mut self, src: &Source<'_>, b: RawBot) -> Result<(), ConfigError> {
        if let Some(up) = b.upstream {
            let v = up.get_ref().trim();
            self.upstream = if v.is_empty() {
                None
            } else {
                crate::bot::RasaUpstream::new(v, Duration::from_secs(1))
                    .map_err(|e| src.error(Some(up.span()), e))?;
                Some(v.to_owned())
            };
        }
        if let Some(t) = b.upstream_timeout {
            self.upstream_timeout = duration(src, &t)?;
        }
        if let Some(l) = b.locales {
            let mut out: Vec<String> = vec![];
            for tag in l.get_ref() {
                let tag = tag.trim().to_ascii_lowercase();
                if !is_locale(&tag) {
                    return Err(src.error(
                        Some(l.span()),
                        format!("`{tag}` is not a language tag like `en`, `de` or `pt-br`"),
                    ));
                }
                if out.contains(&tag) {
                    return Err(src.error(Some(l.span()), format!("`{tag}` is listed twice")));
                }
                out.push(tag);
            }
            if out.is_empty() {
                return Err(src.error(Some(l.span()), "name at least one language"));
            }
            self.locales = out;
        }
        if let Some(t) = b.threshold {
            let v = *t.get_ref();
            if !(0.05..=1.0).contains(&v) {
                return Err(src.error(
                    Some(t.span()),
                    "threshold is a confidence between 0.05 and 1.0 (for example 0.6)",
                ));
            }
            self.threshold = v as f32;
        }
        let cx = Cx {
            src,
            locales: self.locales.clone(),
            picks: Default::default(),
        };
        if let Some(t) = b.not_understood {
            self.not_understood = cx.text(&t, "not_understood")?;
        }
        if let Some(f) = b.fallback {
            let fb = &mut self.fallback;
            set(&mut fb.human_assistance, f.human_assistance);
            set(&mut fb.after_misses, f.after_misses);
            set(&mut fb.after_invalid, f.after_invalid);
            set(&mut fb.confirm, f.confirm);
            set(&mut fb.suggestions, f.suggestions);
            for (slot, value, key) in [
                (
                    &mut fb.confirm_question,
                    f.confirm_question,
                    "confirm_question",
                ),
                (&mut fb.yes, f.yes, "yes"),
                (&mut fb.no, f.no, "no"),
                (&mut fb.declined, f.declined, "declined"),
                (
                    &mut fb.suggestions_text,
                    f.suggestions_text,
                    "suggestions_text",
                ),
                (&mut fb.human_button, f.human_button, "human_button"),
            ] {
                if let Some(v) = value {
                    *slot = cx.text(&v, key)?;
                }
            }
            if let Some(v) = f.say {
                fb.handover.say = cx.text(&v, "say")?;
            }
            let routed = cx.handover(RawHandover {
                message_to_agent: f.message_to_agent,
                queue: f.queue,
                skill: f.skill,
            })?;
            if routed.message_to_agent.is_some() {
                fb.handover.message_to_agent = routed.message_to_agent;
            }
            if routed.queue.is_some() {
                fb.handover.queue = routed.queue;
            }
            if routed.skill.is_some() {
                fb.handover.skill = routed.skill;
            }
        }
        let mut flow_refs = vec![];
        if let Some(intents) = b.intents {
            let mut out: Vec<Intent> = Vec::with_capacity(intents.len());
            for spanned in intents {
                let span = spanned.span();
                let i = spanned.into_inner();
                let name = i.name.get_ref().trim().to_owned();
                if !is_name(&name) {
                    return Err(src.error(
                        Some(i.name.span()),
                        format!("intent name `{name}` must be letters, digits, `_` or `-`"),
                    ));
                }
                if out.iter().any(|o| o.name == name) {
                    return Err(src.error(
                        Some(i.name.span()),
                        format!("intent `{name}` is defined twice"),
                    ));
                }
                let examples = cx.examples(&i.examples, &name)?;
                let answer =
                    cx.response(i.answer.as_ref(), "answer", i.buttons, i.image, i.carousel)?;
                let routing = RawHandover {
                    message_to_agent: i.message_to_agent,
                    queue: i.queue,
                    skill: i.skill,
                };
                if answer.is_empty() && i.flow.is_none() {
                    return Err(src.error(
                        Some(span),
                        format!("intent `{name}` has no answer (give `answer`, or a `flow`)"),
                    ));
                }
                let title = cx.opt_text(i.title.as_ref(), "title")?;
                let flow = i.flow.map(|f| {
                    flow_refs.push((f.get_ref().trim().to_owned(), Some(f.span())));
                    f.get_ref().trim().to_owned()
                });
                let handover = if i.handover {
                    Some(cx.handover(routing)?)
                } else {
                    cx.no_routing(&routing, "handover = true")?;
                    None
                };
                if handover.is_some() && flow.is_some() {
                    return Err(src.error(
                        Some(span),
                        format!(
                            "intent `{name}` both hands over and starts a flow: end the flow with a \
                             handover step instead"
                        ),
                    ));
                }
                out.push(Intent {
                    name,
                    title,
                    examples,
                    answer,
                    suggest: i.suggest.unwrap_or(true),
                    flow,
                    handover,
                });
            }
            self.intents = out;
        }
        if let Some(flows) = b.flows {
            let mut out: Vec<Flow> = Vec::with_capacity(flows.len());
            for spanned in flows {
                let f = spanned.into_inner();
                let name = f.name.get_ref().trim().to_owned();
                if !is_name(&name) {
                    return Err(src.error(
                        Some(f.name.span()),
                        format!("flow name `{name}` must be letters, digits, `_` or `-`"),
                    ));
                }
                if out.iter().any(|o| o.name == name) {
                    return Err(src.error(
                        Some(f.name.span()),
                        format!("flow `{name}` is defined twice"),
                    ));
                }
                let steps_span = f.steps.span();
                let mut steps: Vec<Step> = vec![];
                for step in f.steps.into_inner() {
                    steps.push(cx.step(step, &steps)?);
                }
                if steps.is_empty() {
                    return Err(src.error(Some(steps_span), format!("flow `{name}` has no steps")));
                }
                out.push(Flow { name, steps });
            }
            self.flows = out;
        }
        // Every `/intent` a button of this file sends names an intent (a typo, or intents
        // replaced without their buttons, would otherwise answer "not understood").
        for (intent, span) in cx.picks.borrow().iter() {
            if !self.intents.iter().any(|i| i.name == *intent) {
                return Err(src.error(
                    Some(span.clone()),
                    format!(
                        "this button sends `/{intent}`, but no [[bot.intents]] is named `{intent}` \
                         (a payload starting with `/` picks the intent of that name)"
                    ),
                ));
            }
        }
        // Every flow an intent names exists (intents or flows may come from either file).
        for intent in &self.intents {
            if let Some(flow) = &intent.flow
                && self.flow(flow).is_none()
            {
                let span = flow_refs
                    .iter()
                    .find(|(f, _)| f == flow)
                    .and_then(|(_, s)| s.clone());
                return Err(src.error(
                    span,
                    format!(
                        "intent `{}` starts flow `{flow}`, which is not defined under [[bot.flows]]",
                        intent.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// What parsing a value needs: the file (for lines) and the configured languages; it
/// collects the `/intent` payloads of the file's buttons, checked once every intent is known.
struct Cx<'a, 'b> {
    src: &'a Source<'b>,
    locales: Vec<String>,
    picks: std::cell::RefCell<Vec<(String, std::ops::Range<usize>)>>,
}

impl Cx<'_, '_> {
    fn err(&self, span: std::ops::Range<usize>, reason: impl Into<String>) -> ConfigError {
        self.src.error(Some(span), reason)
    }

    /// `"…"` or `{ en = "…", de = "…" }`, every language one of `locales`, none empty.
    fn text(&self, v: &Spanned<toml::Value>, key: &str) -> Result<Localised, ConfigError> {
        let bad = || {
            self.err(
                v.span(),
                format!("`{key}` is a text, or a table of texts by language like {{ en = \"…\", de = \"…\" }}"),
            )
        };
        let out = match v.get_ref() {
            toml::Value::String(s) => Localised::one(s),
            toml::Value::Table(t) => {
                let mut out = vec![];
                for (lang, text) in t {
                    let text = text.as_str().ok_or_else(bad)?;
                    self.check_locale(v.span(), lang)?;
                    out.push((lang.clone(), text.to_owned()));
                }
                Localised(out)
            }
            _ => return Err(bad()),
        };
        if out.0.is_empty() || out.all().any(|t| t.trim().is_empty()) {
            return Err(self.err(v.span(), format!("`{key}` may not be empty")));
        }
        Ok(out)
    }

    /// An optional text: empty when not given.
    fn opt_text(
        &self,
        v: Option<&Spanned<toml::Value>>,
        key: &str,
    ) -> Result<Localised, ConfigError> {
        v.map_or(Ok(Localised::default()), |t| self.text(t, key))
    }

    /// A response from its keys: `text` (under `key`), `buttons`, `image`, `carousel`.
    fn response(
        &self,
        text: Option<&Spanned<toml::Value>>,
        key: &str,
        buttons: Option<Vec<RawButton>>,
        image: Option<Spanned<String>>,
        carousel: Option<Vec<RawCard>>,
    ) -> Result<Response, ConfigError> {
        Ok(Response {
            text: self.opt_text(text, key)?,
            buttons: self.buttons(buttons)?,
            image: self.url(image)?,
            carousel: self.cards(carousel)?,
        })
    }

    fn check_locale(&self, span: std::ops::Range<usize>, lang: &str) -> Result<(), ConfigError> {
        if self.locales.iter().any(|l| l == lang) {
            Ok(())
        } else {
            Err(self.err(
                span,
                format!(
                    "`{lang}` is not one of the bot's languages ([bot] locales = [{}])",
                    self.locales
                        .iter()
                        .map(|l| format!("\"{l}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
    }

    /// `["…"]` (any language) or `{ en = ["…"], de = ["…"] }`.
    fn examples(
        &self,
        v: &Spanned<toml::Value>,
        intent: &str,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let bad = || {
            self.err(
                v.span(),
                format!(
                    "`examples` of intent `{intent}` is a list of phrases, or a table of lists by \
                     language like {{ en = [\"…\"], de = [\"…\"] }}"
                ),
            )
        };
        let list = |lang: &str, a: &toml::Value| -> Result<Vec<(String, String)>, ConfigError> {
            a.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|e| {
                    e.as_str()
                        .map(|s| (lang.to_owned(), s.trim().to_owned()))
                        .ok_or_else(bad)
                })
                .filter(|r| r.as_ref().map_or(true, |(_, s)| !s.is_empty()))
                .collect()
        };
        let out = match v.get_ref() {
            a @ toml::Value::Array(_) => list("", a)?,
            toml::Value::Table(t) => {
                for lang in t.keys() {
                    self.check_locale(v.span(), lang)?;
                }
                // In the order of `locales`, not of the table.
                let mut out = vec![];
                for lang in &self.locales {
                    if let Some(a) = t.get(lang) {
                        out.extend(list(lang, a)?);
                    }
                }
                out
            }
            _ => return Err(bad()),
        };
        if out.is_empty() {
            return Err(self.err(v.span(), format!("intent `{intent}` has no examples")));
        }
        Ok(out)
    }

    fn buttons(&self, raw: Option<Vec<RawButton>>) -> Result<Vec<ButtonSpec>, ConfigError> {
        raw.unwrap_or_default()
            .into_iter()
            .map(|b| {
                let payload = b.payload.get_ref().trim();
                if payload.is_empty() {
                    return Err(self.err(b.payload.span(), "a button's payload may not be empty"));
                }
                if let Some(intent) = payload.strip_prefix('/')
                    && !intent.starts_with("baton_")
                {
                    self.picks
                        .borrow_mut()
                        .push((intent.to_owned(), b.payload.span()));
                }
                Ok(ButtonSpec {
                    title: self.text(&b.title, "title")?,
                    payload: payload.to_owned(),
                })
            })
            .collect()
    }

    fn url(&self, v: Option<Spanned<String>>) -> Result<Option<String>, ConfigError> {
        match v {
            None => Ok(None),
            Some(u) => {
                let s = u.get_ref().trim();
                if s.starts_with("https://") || s.starts_with("http://") {
                    Ok(Some(s.to_owned()))
                } else {
                    Err(self.err(u.span(), format!("`{s}` is not an http(s):// URL")))
                }
            }
        }
    }

    fn cards(&self, raw: Option<Vec<RawCard>>) -> Result<Vec<Card>, ConfigError> {
        raw.unwrap_or_default()
            .into_iter()
            .map(|c| {
                Ok(Card {
                    title: self.text(&c.title, "title")?,
                    subtitle: self.opt_text(c.subtitle.as_ref(), "subtitle")?,
                    image_url: self.url(c.image_url)?,
                    buttons: self.buttons(c.buttons)?,
                })
            })
            .collect()
    }

    fn handover(&self, h: RawHandover) -> Result<HandoverStep, ConfigError> {
        let name = |v: Option<Spanned<String>>, what: &str| match v {
            None => Ok(None),
            Some(s) => {
                let t = s.get_ref().trim();
                if is_name(t) && t.len() <= 64 {
                    Ok(Some(t.to_owned()))
                } else {
                    Err(self.err(
                        s.span(),
                        format!("a {what} is up to 64 letters, digits, `_` or `-`"),
                    ))
                }
            }
        };
        Ok(HandoverStep {
            say: Localised::default(),
            message_to_agent: h
                .message_to_agent
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty()),
            queue: name(h.queue, "queue")?,
            skill: name(h.skill, "skill")?,
        })
    }

    /// Routing keys only make sense with a handover.
    fn no_routing(&self, h: &RawHandover, needs: &str) -> Result<(), ConfigError> {
        if let Some(s) = h.queue.as_ref().or(h.skill.as_ref()) {
            return Err(self.err(s.span(), format!("`queue` and `skill` need `{needs}`")));
        }
        Ok(())
    }

    fn step(&self, spanned: Spanned<RawStep>, before: &[Step]) -> Result<Step, ConfigError> {
        let span = spanned.span();
        let s = spanned.into_inner();
        let routing = RawHandover {
            message_to_agent: s.message_to_agent,
            queue: s.queue,
            skill: s.skill,
        };
        let asked = |slot: &str| {
            before.iter().any(|b| match &b.action {
                StepAction::Ask { slot: s, .. } => s == slot,
                _ => false,
            })
        };
        let mut when = vec![];
        for (slot, value) in s.when.unwrap_or_default() {
            if !asked(&slot) {
                return Err(self.err(
                    span.clone(),
                    format!("`when` names slot `{slot}`, which no earlier step asks for"),
                ));
            }
            when.push((slot, value));
        }
        // `say` is the whole step, the question of an `ask`, or what a handover says first.
        let kinds = usize::from(s.ask.is_some()) + usize::from(s.handover);
        if kinds > 1 || (kinds == 0 && s.say.is_none()) {
            return Err(self.err(
                span,
                "a step does one thing: `say = …`, `ask = \"slot\"` (with its question in \
                 `say`) or `handover = true`",
            ));
        }
        let action = if let Some(slot) = s.ask {
            let name = slot.get_ref().trim().to_owned();
            if !is_name(&name) || name.len() > 64 {
                return Err(self.err(
                    slot.span(),
                    format!("slot name `{name}` must be up to 64 letters, digits, `_` or `-`"),
                ));
            }
            let asks = before
                .iter()
                .filter(|b| matches!(b.action, StepAction::Ask { .. }))
                .count();
            if asks >= baton_protocol::decide::MAX_SLOTS {
                return Err(self.err(
                    slot.span(),
                    format!(
                        "a flow asks for at most {} slots (they go to the agent with the handover)",
                        baton_protocol::decide::MAX_SLOTS
                    ),
                ));
            }
            if asked(&name) {
                return Err(self.err(slot.span(), format!("slot `{name}` is asked for twice")));
            }
            let kind = match s.kind.as_ref().map(|k| k.get_ref().trim()) {
                None | Some("text") => SlotKind::Text,
                Some("email") => SlotKind::Email,
                Some("phone") => SlotKind::Phone,
                Some("number") => SlotKind::Number,
                Some("choice") => {
                    let choices: Vec<Choice> = s
                        .choices
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| {
                            let value = c.value.get_ref().trim().to_owned();
                            if value.is_empty() || value.len() > 200 || value.starts_with('/') {
                                return Err(self.err(
                                    c.value.span(),
                                    "a choice's value is 1 to 200 bytes and does not start with \
                                     `/` (that is an intent's payload)",
                                ));
                            }
                            Ok(Choice {
                                title: match &c.title {
                                    Some(t) => self.text(t, "title")?,
                                    None => Localised::one(&value),
                                },
                                value,
                            })
                        })
                        .collect::<Result<_, _>>()?;
                    if choices.len() < 2 {
                        return Err(self.err(
                            span,
                            format!("slot `{name}` is a choice: give at least two `choices`"),
                        ));
                    }
                    SlotKind::Choice(choices)
                }
                Some(other) => {
                    return Err(self.err(
                        s.kind.as_ref().map_or(span, |k| k.span()),
                        format!(
                            "`{other}` is not a slot type: text, email, phone, number or choice"
                        ),
                    ));
                }
            };
            let Some(q) = &s.say else {
                return Err(self.err(
                    span,
                    format!("the step that asks for `{name}` needs its question as `say = …`"),
                ));
            };
            let question = self.response(Some(q), "say", s.buttons, s.image, s.carousel)?;
            let invalid = match &s.invalid {
                Some(t) => self.text(t, "invalid")?,
                None if kind == SlotKind::Text => Localised::default(),
                None => {
                    return Err(self.err(
                        span,
                        format!(
                            "the step that asks for `{name}` needs `invalid = …`, said when an \
                             answer is not valid"
                        ),
                    ));
                }
            };
            self.no_routing(&routing, "handover = true")?;
            StepAction::Ask {
                slot: name,
                kind,
                question,
                invalid,
            }
        } else if s.handover {
            let say = self.opt_text(s.say.as_ref(), "say")?;
            StepAction::Handover(HandoverStep {
                say,
                ..self.handover(routing)?
            })
        } else {
            self.no_routing(&routing, "handover = true")?;
            let say = s.say.as_ref().expect("counted above");
            StepAction::Say(self.response(Some(say), "say", s.buttons, s.image, s.carousel)?)
        };
        if s.invalid.is_some() && !matches!(action, StepAction::Ask { .. }) {
            return Err(self.err(span, "`invalid` belongs to a step that asks (`ask = …`)"));
        }
        Ok(Step { when, action })
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

fn is_locale(s: &str) -> bool {
    let mut parts = s.split('-');
    let lang = parts.next().unwrap_or("");
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}
