//! The built-in bot: intents matched with a confidence score, answers in the Rasa response
//! shapes, flows that ask for slots, and the fallback rules that hand over to a person.
//!
//! The bot keeps no state of its own: what it remembers of a conversation (the language,
//! misses in a row, an open flow and its slots, a pending yes/no question) is [`Memory`],
//! which the service stores with the conversation between turns, so any replica can answer
//! the next message.

use baton_protocol::bot::{
    BotMessage, BotRequest, Button, HandoverDirective, HandoverReason, Routing, Slot,
};
use baton_protocol::ids::VisitorId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::matcher::{Matcher, Scored, words};
use super::{Bot, BotAnswer, BotFut};
use crate::config::{BotConfig, ButtonSpec, HandoverStep, Intent, Response, SlotKind, StepAction};

/// Payload of the confirmation question's yes button.
pub const YES: &str = "/baton_yes";
/// Payload of the confirmation question's no button.
pub const NO: &str = "/baton_no";
/// Payload of the "talk to a person" button among suggestions.
pub const HUMAN: &str = "/baton_human";

/// The least score an intent needs to be suggested.
const SUGGEST_FLOOR: f32 = 0.3;

/// What started a handover; recorded as its `reason_text`. The bot starts the first five;
/// the service records the other two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The visitor asked for a person in words (an intent with `handover = true`) or by the
    /// suggestions' "talk to a person" button.
    ExplicitRequest,
    /// "Enable human assistance": the bot did not understand and hands over at once.
    NotUnderstood,
    /// Too many messages not understood in a row.
    FallbackMisses,
    /// Too many invalid answers to one flow question.
    FallbackInvalid,
    /// A flow reached its handover step.
    Flow,
    /// The widget's **Request live agent** menu item.
    MenuItem,
    /// A Rasa upstream's directive that names no trigger of its own.
    Upstream,
}

impl Trigger {
    /// The wire name, stored as the handover's `reason_text`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExplicitRequest => "explicit_request",
            Self::NotUnderstood => "not_understood",
            Self::FallbackMisses => "fallback_misses",
            Self::FallbackInvalid => "fallback_invalid",
            Self::Flow => "flow",
            Self::MenuItem => "menu_item",
            Self::Upstream => "upstream",
        }
    }

    fn reason(self) -> HandoverReason {
        match self {
            Self::ExplicitRequest | Self::MenuItem => HandoverReason::UserRequest,
            Self::NotUnderstood | Self::FallbackMisses | Self::FallbackInvalid => {
                HandoverReason::BotCannotHandle
            }
            Self::Flow => HandoverReason::Policy,
            Self::Upstream => HandoverReason::Other,
        }
    }
}

/// What the bot remembers of one conversation between turns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// The visitor's language, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Messages not understood in a row.
    #[serde(default)]
    pub misses: u32,
    /// Suggestions were offered since the last message understood.
    #[serde(default)]
    pub suggested: bool,
    /// The flow in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowState>,
    /// A fallback handover waiting for the visitor's yes or no.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirming: Option<Trigger>,
}

/// A flow in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowState {
    /// Its name.
    pub name: String,
    /// The step that waits for an answer.
    pub step: usize,
    /// Invalid answers to that step so far.
    pub invalid: u32,
    /// Slots filled so far, in order.
    pub slots: Vec<Slot>,
}

/// The configured bot, as a [`Bot`].
pub struct BuiltinBot {
    cfg: BotConfig,
    matcher: Matcher,
}

impl BuiltinBot {
    /// Prepares the matcher for the configured intents.
    pub fn new(cfg: BotConfig) -> Self {
        let examples: Vec<(usize, Option<usize>, &str)> = cfg
            .intents
            .iter()
            .enumerate()
            .flat_map(|(i, intent)| {
                intent
                    .examples
                    .iter()
                    .map(move |(lang, phrase)| (i, lang, phrase))
            })
            .map(|(i, lang, phrase)| {
                (
                    i,
                    cfg.locales.iter().position(|l| l == lang),
                    phrase.as_str(),
                )
            })
            .collect();
        let matcher = Matcher::new(cfg.intents.len(), &examples);
        Self { cfg, matcher }
    }

    /// Every intent's score for a message, best first.
    #[cfg(test)]
    pub fn rank(&self, message: &str) -> Vec<Scored> {
        self.matcher.rank(message, Some(0))
    }

    /// The intent a message is taken as (a `/name` payload picks one directly), if the
    /// matcher is confident enough.
    #[cfg(test)]
    pub fn classify(&self, message: &str) -> Option<&Intent> {
        if let Some(name) = message.trim().strip_prefix('/') {
            return self.cfg.intents.iter().find(|i| i.name == name);
        }
        self.rank(message)
            .first()
            .filter(|s| s.score >= self.cfg.threshold)
            .map(|s| &self.cfg.intents[s.intent])
    }

    /// One turn: the answer items and what to remember.
    pub fn turn(&self, req: &BotRequest, memory: Option<&str>) -> (Vec<BotMessage>, Memory) {
        let mut mem: Memory = memory
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default();
        let wcp = req.metadata.as_ref().and_then(|m| m.wcp.as_ref());
        if wcp.and_then(|w| w.event.as_deref()) == Some("handback") {
            // Back from an agent: whatever was open before the handover is over.
            mem = Memory {
                locale: mem.locale,
                ..Memory::default()
            };
        }
        // A language the bot speaks, named by the widget, wins; any other leaves detection on.
        let told = wcp
            .and_then(|w| w.locale.as_deref())
            .and_then(|l| self.cfg.locale_for(l));
        if let Some(l) = told {
            mem.locale = Some(l.to_owned());
        }
        let told_locale = told.is_some();
        let mut turn = Turn {
            bot: self,
            to: &req.sender,
            out: vec![],
            mem,
        };
        turn.run(req.message.trim(), told_locale);
        (turn.out, turn.mem)
    }
}

struct Turn<'a> {
    bot: &'a BuiltinBot,
    to: &'a VisitorId,
    out: Vec<BotMessage>,
    mem: Memory,
}

impl<'a> Turn<'a> {
    /// The configuration, borrowed for the whole turn (not from `self`, so no clones are
    /// needed while the memory changes).
    fn cfg(&self) -> &'a BotConfig {
        &self.bot.cfg
    }

    /// The open flow's current step, if the configuration still has it.
    fn open_step(&self) -> Option<&'a StepAction> {
        let state = self.mem.flow.as_ref()?;
        let step = self.cfg().flow(&state.name)?.steps.get(state.step)?;
        Some(&step.action)
    }

    fn locale(&self) -> String {
        self.mem
            .locale
            .clone()
            .unwrap_or_else(|| self.cfg().default_locale().to_owned())
    }

    fn text(&self, t: &crate::config::Localised) -> String {
        t.get(&self.locale(), self.cfg().default_locale())
            .to_owned()
    }

    fn buttons(&self, specs: &[ButtonSpec]) -> Vec<Button> {
        specs
            .iter()
            .map(|b| Button {
                title: self.text(&b.title),
                payload: b.payload.clone(),
            })
            .collect()
    }

    fn say(&mut self, text: String, buttons: Vec<Button>) {
        if text.is_empty() && buttons.is_empty() {
            return;
        }
        self.out.push(BotMessage {
            buttons: (!buttons.is_empty()).then_some(buttons),
            ..BotMessage::text(self.to, text)
        });
    }

    /// A configured response: text with buttons, then an image, then a carousel.
    fn respond(&mut self, r: &Response, extra: Vec<Button>) {
        let mut buttons = self.buttons(&r.buttons);
        buttons.extend(extra);
        self.say(self.text(&r.text), buttons);
        if let Some(image) = &r.image {
            self.out.push(BotMessage {
                recipient_id: Some(self.to.clone()),
                image: Some(image.clone()),
                ..BotMessage::default()
            });
        }
        if !r.carousel.is_empty() {
            let elements: Vec<Value> = r
                .carousel
                .iter()
                .map(|c| {
                    let mut card = json!({
                        "title": self.text(&c.title),
                        "buttons": self.buttons(&c.buttons).iter().map(|b| json!({
                            "title": b.title, "payload": b.payload, "type": "postback"
                        })).collect::<Vec<_>>(),
                    });
                    if !c.subtitle.is_empty() {
                        card["subtitle"] = self.text(&c.subtitle).into();
                    }
                    if let Some(u) = &c.image_url {
                        card["image_url"] = u.clone().into();
                    }
                    card
                })
                .collect();
            self.out.push(BotMessage {
                recipient_id: Some(self.to.clone()),
                attachment: Some(json!({
                    "type": "template",
                    "payload": { "template_type": "generic", "elements": elements },
                })),
                ..BotMessage::default()
            });
        }
    }

    fn run(&mut self, msg: &str, told_locale: bool) {
        let ranked = if msg.starts_with('/') {
            vec![]
        } else {
            let current = self.locale();
            self.bot
                .matcher
                .rank(msg, self.cfg().locales.iter().position(|l| *l == current))
        };
        let confident = ranked
            .first()
            .copied()
            .filter(|s| s.score >= self.cfg().threshold);
        if let Some(trigger) = self.mem.confirming.take() {
            match yes_or_no(msg) {
                Some(true) => return self.fallback_handover(trigger),
                Some(false) => {
                    let declined = self.text(&self.cfg().fallback.declined);
                    self.say(declined, vec![]);
                    self.mem.misses = 0;
                    self.mem.suggested = false;
                    if let Some(f) = &mut self.mem.flow {
                        f.invalid = 0;
                        self.reask();
                    }
                    return;
                }
                None => {}
            }
        }
        if msg == HUMAN {
            return self.handover(Trigger::ExplicitRequest, &self.cfg().fallback.handover);
        }
        let picked = msg
            .strip_prefix('/')
            .and_then(|name| self.cfg().intents.iter().position(|i| i.name == name));
        if self.mem.flow.is_some() && picked.is_none() && self.answer_flow(msg, confident) {
            return;
        }
        // The language of the phrase that matched, unless the widget said which it is.
        if picked.is_none()
            && !told_locale
            && let Some(l) = confident.and_then(|s| s.locale)
        {
            self.mem.locale = Some(self.cfg().locales[l].clone());
        }
        let intent = picked.or(confident.map(|s| s.intent));
        match intent {
            Some(i) => {
                self.mem.misses = 0;
                self.mem.suggested = false;
                let intent = &self.cfg().intents[i];
                // A handover takes an open flow's slots along; any other intent leaves it.
                if intent.handover.is_none() {
                    self.mem.flow = None;
                }
                self.respond(&intent.answer, vec![]);
                if let Some(flow) = &intent.flow {
                    self.mem.flow = Some(FlowState {
                        name: flow.clone(),
                        step: 0,
                        invalid: 0,
                        slots: vec![],
                    });
                    self.run_flow();
                } else if let Some(step) = &intent.handover {
                    self.handover(Trigger::ExplicitRequest, step);
                }
            }
            None => self.not_understood(&ranked),
        }
    }

    /// The visitor's answer to the open flow's question. `false` when the message is not an
    /// answer but should be read as an intent (only a handover intent interrupts a flow).
    fn answer_flow(&mut self, msg: &str, confident: Option<Scored>) -> bool {
        let Some(StepAction::Ask {
            slot,
            kind,
            invalid,
            ..
        }) = self.open_step()
        else {
            // No flow, or the configuration changed under an open one: forget it.
            self.mem.flow = None;
            return false;
        };
        // "I'd rather talk to a person" is no answer, even to a question that takes any text:
        // hand over with what is filled so far.
        if let Some(intent) = confident
            .map(|s| &self.cfg().intents[s.intent])
            .filter(|i| i.handover.is_some())
        {
            // Its answer first, as outside a flow ("Let me check whether someone…").
            self.respond(&intent.answer, vec![]);
            if let Some(step) = &intent.handover {
                self.handover(Trigger::ExplicitRequest, step);
            }
            return true;
        }
        match validate(kind, msg, &self.locale(), self.cfg().default_locale()) {
            Ok(value) => {
                let f = self.mem.flow.as_mut().expect("checked above");
                f.slots.retain(|s| s.name != *slot);
                f.slots.push(Slot {
                    name: slot.clone(),
                    value,
                });
                f.step += 1;
                f.invalid = 0;
                self.run_flow();
                true
            }
            Err(()) => {
                let limit = self.cfg().fallback.after_invalid;
                let f = self.mem.flow.as_mut().expect("checked above");
                f.invalid += 1;
                if limit > 0 && f.invalid >= limit {
                    self.fallback(Trigger::FallbackInvalid);
                } else {
                    let t = self.text(invalid);
                    self.say(t, vec![]);
                    self.reask();
                }
                true
            }
        }
    }

    /// Asks the open flow's current question again.
    fn reask(&mut self) {
        if let Some(StepAction::Ask { question, kind, .. }) = self.open_step() {
            self.ask(question, kind);
        }
    }

    fn ask(&mut self, question: &Response, kind: &SlotKind) {
        let choices = match kind {
            SlotKind::Choice(cs) => cs
                .iter()
                .map(|c| Button {
                    title: self.text(&c.title),
                    payload: c.value.clone(),
                })
                .collect(),
            _ => vec![],
        };
        self.respond(question, choices);
    }

    /// Runs the open flow from its current step until it asks, hands over or ends.
    fn run_flow(&mut self) {
        let cfg = self.cfg();
        loop {
            let Some(state) = &self.mem.flow else {
                return;
            };
            let Some(step) = cfg.flow(&state.name).and_then(|f| f.steps.get(state.step)) else {
                // The flow is done (or no longer configured).
                self.mem.flow = None;
                return;
            };
            let holds = step.when.iter().all(|(slot, value)| {
                state
                    .slots
                    .iter()
                    .any(|s| &s.name == slot && s.value.eq_ignore_ascii_case(value))
            });
            if holds {
                match &step.action {
                    StepAction::Say(r) => self.respond(r, vec![]),
                    StepAction::Ask { question, kind, .. } => return self.ask(question, kind),
                    StepAction::Handover(h) => return self.handover(Trigger::Flow, h),
                }
            }
            self.mem.flow.as_mut().expect("some").step += 1;
        }
    }

    fn not_understood(&mut self, ranked: &[Scored]) {
        self.mem.misses += 1;
        let fb = &self.cfg().fallback;
        let reached = fb.after_misses > 0 && self.mem.misses >= fb.after_misses;
        let due = fb.human_assistance || reached;
        let suggestions: Vec<Button> = ranked
            .iter()
            .filter(|s| s.score >= SUGGEST_FLOOR)
            .map(|s| &self.cfg().intents[s.intent])
            .filter(|i| i.suggest && i.handover.is_none())
            .take(fb.suggestions as usize)
            .map(|i| Button {
                title: self.intent_title(i),
                payload: format!("/{}", i.name),
            })
            .collect();
        let offer = !suggestions.is_empty() && !self.mem.suggested;
        if due && !offer {
            let trigger = if fb.human_assistance {
                Trigger::NotUnderstood
            } else {
                Trigger::FallbackMisses
            };
            return self.fallback(trigger);
        }
        if offer {
            self.mem.suggested = true;
            let mut buttons = suggestions;
            buttons.push(Button {
                title: self.text(&fb.human_button),
                payload: HUMAN.into(),
            });
            let text = if due {
                self.text(&fb.suggestions_text)
            } else {
                format!(
                    "{} {}",
                    self.text(&self.cfg().not_understood),
                    self.text(&fb.suggestions_text)
                )
            };
            self.say(text, buttons);
        } else {
            let t = self.text(&self.cfg().not_understood);
            self.say(t, vec![]);
        }
    }

    fn intent_title(&self, i: &Intent) -> String {
        if !i.title.is_empty() {
            return self.text(&i.title);
        }
        let locale = self.locale();
        let example = i
            .examples
            .iter()
            .find(|(l, _)| *l == locale)
            .or(i.examples.first())
            .map_or(i.name.as_str(), |(_, e)| e.as_str());
        let mut c = example.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default()
    }

    /// A fallback handover, after asking first when so configured.
    fn fallback(&mut self, trigger: Trigger) {
        if self.cfg().fallback.confirm {
            let fb = &self.cfg().fallback;
            let buttons = vec![
                Button {
                    title: self.text(&fb.yes),
                    payload: YES.into(),
                },
                Button {
                    title: self.text(&fb.no),
                    payload: NO.into(),
                },
            ];
            let q = self.text(&fb.confirm_question);
            self.say(q, buttons);
            self.mem.confirming = Some(trigger);
        } else {
            self.fallback_handover(trigger);
        }
    }

    fn fallback_handover(&mut self, trigger: Trigger) {
        self.handover(trigger, &self.cfg().fallback.handover);
    }

    /// Says the step's text and adds the directive, with the slots of the open flow.
    fn handover(&mut self, trigger: Trigger, step: &HandoverStep) {
        let say = self.text(&step.say);
        self.say(say, vec![]);
        let slots = self.mem.flow.take().map(|f| f.slots).unwrap_or_default();
        self.mem.misses = 0;
        self.mem.suggested = false;
        self.mem.confirming = None;
        let directive = HandoverDirective {
            reason: trigger.reason(),
            reason_text: Some(trigger.as_str().to_owned()),
            message_to_agent: step.message_to_agent.clone(),
            routing: (step.queue.is_some() || step.skill.is_some()).then(|| Routing {
                queue: step.queue.clone(),
                skill: step.skill.clone(),
            }),
            slots,
            ..HandoverDirective::default()
        };
        self.out.push(BotMessage {
            recipient_id: Some(self.to.clone()),
            custom: Some(directive.to_custom()),
            ..BotMessage::default()
        });
    }
}

/// `Some(true)` for a yes, `Some(false)` for a no (buttons or words, English or German).
fn yes_or_no(msg: &str) -> Option<bool> {
    match msg {
        YES => return Some(true),
        NO => return Some(false),
        _ => {}
    }
    const YES_WORDS: &[&str] = &[
        "yes",
        "yeah",
        "yep",
        "yup",
        "y",
        "sure",
        "ok",
        "okay",
        "please",
        "of",
        "course",
        "ja",
        "jawohl",
        "klar",
        "gerne",
        "gern",
        "bitte",
        "natuerlich",
        "jep",
        "okay",
    ];
    const NO_WORDS: &[&str] = &[
        "no", "nope", "nah", "n", "not", "now", "thanks", "thank", "you", "nein", "nee", "ne",
        "danke", "lieber", "nicht", "jetzt",
    ];
    let w = words(msg);
    if w.is_empty() {
        None
    } else if w.iter().all(|x| YES_WORDS.contains(&x.as_str())) {
        Some(true)
    } else if w.iter().all(|x| NO_WORDS.contains(&x.as_str())) {
        Some(false)
    } else {
        None
    }
}

/// An e-mail address as the flows' `email` slot takes it (domain in lower case), or `None`.
pub fn valid_email(s: &str) -> Option<String> {
    validate(&SlotKind::Email, s, "en", "en").ok()
}

/// An answer checked against a slot's type, normalised; `Err` when it is not valid.
pub(crate) fn validate(
    kind: &SlotKind,
    answer: &str,
    locale: &str,
    default: &str,
) -> Result<String, ()> {
    let a = answer.trim();
    if a.is_empty() || a.starts_with('/') {
        return Err(());
    }
    match kind {
        SlotKind::Text => (a.chars().count() <= 200).then(|| a.to_owned()).ok_or(()),
        SlotKind::Email => {
            let (local, domain) = a.split_once('@').ok_or(())?;
            let ok = !local.is_empty()
                && local.len() <= 64
                && !a.chars().any(char::is_whitespace)
                && !domain.contains('@')
                && domain.len() <= 253
                && domain.contains('.')
                && domain.split('.').all(|l| {
                    !l.is_empty()
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.chars().all(|c| c.is_alphanumeric() || c == '-')
                })
                && domain
                    .rsplit('.')
                    .next()
                    .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(char::is_alphabetic));
            ok.then(|| format!("{local}@{}", domain.to_lowercase()))
                .ok_or(())
        }
        SlotKind::Phone => {
            let plus = a.starts_with('+');
            let body = if plus { &a[1..] } else { a };
            if !body
                .chars()
                .all(|c| c.is_ascii_digit() || " -./()".contains(c))
            {
                return Err(());
            }
            let digits: String = body.chars().filter(char::is_ascii_digit).collect();
            (6..=15)
                .contains(&digits.len())
                .then(|| if plus { format!("+{digits}") } else { digits })
                .ok_or(())
        }
        SlotKind::Number => {
            let n = if a.contains(',') && !a.contains('.') {
                a.replacen(',', ".", 1)
            } else {
                a.to_owned()
            };
            match n.parse::<f64>() {
                Ok(v) if v.is_finite() && n.len() <= 64 => Ok(n),
                _ => Err(()),
            }
        }
        SlotKind::Choice(choices) => {
            // A value or a title first (a value may itself be a number), then a position.
            let said = words(a).join(" ");
            let by_name = choices.iter().find(|c| {
                words(&c.value).join(" ") == said
                    || c.title.all().any(|t| words(t).join(" ") == said)
                    || words(c.title.get(locale, default)).join(" ") == said
            });
            let by_position = a
                .parse::<usize>()
                .ok()
                .and_then(|k| k.checked_sub(1))
                .and_then(|k| choices.get(k));
            by_name.or(by_position).map(|c| c.value.clone()).ok_or(())
        }
    }
}

impl Bot for BuiltinBot {
    fn kind(&self) -> &'static str {
        "built-in"
    }

    fn remembers(&self) -> bool {
        true
    }

    fn answer<'a>(&'a self, req: &'a BotRequest, memory: Option<String>) -> BotFut<'a> {
        let (items, mem) = self.turn(req, memory.as_deref());
        let memory = serde_json::to_string(&mem).ok();
        Box::pin(async move { Ok(BotAnswer { items, memory }) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use baton_protocol::bot::{BotMetadata, WcpMetadata};

    fn bot() -> BuiltinBot {
        BuiltinBot::new(Config::defaults().bot)
    }

    fn bot_with(toml: &str) -> BuiltinBot {
        BuiltinBot::new(
            Config::load_str(std::path::Path::new("test.toml"), toml)
                .unwrap_or_else(|e| panic!("{e}"))
                .bot,
        )
    }

    /// A conversation with the bot: each turn feeds the memory of the last.
    struct Chat<'a> {
        bot: &'a BuiltinBot,
        memory: Option<String>,
        locale: Option<&'static str>,
    }

    impl<'a> Chat<'a> {
        fn new(bot: &'a BuiltinBot) -> Self {
            Self {
                bot,
                memory: None,
                locale: None,
            }
        }

        fn say(&mut self, msg: &str) -> Vec<BotMessage> {
            let req = BotRequest {
                sender: "v_1".into(),
                message: msg.into(),
                metadata: self.locale.map(|l| BotMetadata {
                    wcp: Some(WcpMetadata {
                        v: 1,
                        locale: Some(l.into()),
                        ..WcpMetadata::default()
                    }),
                }),
            };
            let (items, mem) = self.bot.turn(&req, self.memory.as_deref());
            self.memory = Some(serde_json::to_string(&mem).unwrap());
            items
        }

        fn memory(&self) -> Memory {
            serde_json::from_str(self.memory.as_deref().unwrap()).unwrap()
        }
    }

    fn texts(items: &[BotMessage]) -> Vec<&str> {
        items.iter().filter_map(|i| i.text.as_deref()).collect()
    }

    fn payloads(items: &[BotMessage]) -> Vec<&str> {
        items
            .iter()
            .flat_map(|i| i.buttons.iter().flatten())
            .map(|b| b.payload.as_str())
            .collect()
    }

    fn directive(items: &[BotMessage]) -> Option<HandoverDirective> {
        items.iter().find_map(BotMessage::handover)
    }

    #[test]
    fn classifies_by_score_and_payload() {
        let bot = bot();
        let name = |m: &str| bot.classify(m).map(|i| i.name.as_str());
        assert_eq!(name("Hello there!"), Some("greet"));
        assert_eq!(name("What are your OPENING HOURS?"), Some("hours"));
        assert_eq!(name("hours opening your are what"), Some("hours"));
        assert_eq!(name("opning hours"), Some("hours"));
        assert_eq!(name("I want to talk to a person"), Some("human"));
        for ask in [
            "can I talk to someone please",
            "I need customer service",
            "get me a representative",
            "Ich möchte mit einem Menschen sprechen",
            "Kann ich mit einem Mitarbeiter reden?",
            "Kundenservice bitte!",
            "Ich will mit jemandem sprechen",
        ] {
            assert_eq!(name(ask), Some("human"), "{ask}");
        }
        assert_eq!(name("/pricing"), Some("pricing"));
        assert_eq!(name("/nonexistent"), None);
        assert_eq!(name("quantum chromodynamics"), None);
        assert_eq!(name("this"), None, "`this` is not `hi`");
    }

    /// The labelled corpus: English and German messages written without looking at the
    /// examples. Prints the accuracy; fails if it drops below what the matcher reaches today.
    #[test]
    fn matcher_accuracy() {
        let bot = bot();
        let corpus = include_str!("utterances.tsv");
        let mut by_locale: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
        let mut misses = vec![];
        for line in corpus.lines() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut cols = line.split('\t');
            let (label, locale, text) = (
                cols.next().unwrap(),
                cols.next().unwrap(),
                cols.next()
                    .unwrap_or_else(|| panic!("three columns: {line}")),
            );
            let got = bot.classify(text).map_or("none", |i| i.name.as_str());
            let e = by_locale.entry(locale).or_default();
            e.1 += 1;
            if got == label {
                e.0 += 1;
            } else {
                misses.push(format!("  {locale} {label:>8} → {got:<8} {text}"));
            }
        }
        let (mut right, mut all) = (0, 0);
        for (locale, (r, n)) in &by_locale {
            println!(
                "matcher accuracy {locale}: {r}/{n} = {:.1} %",
                100.0 * *r as f64 / *n as f64
            );
            right += r;
            all += n;
        }
        let accuracy = right as f64 / all as f64;
        println!(
            "matcher accuracy overall: {right}/{all} = {:.1} % (threshold {})",
            100.0 * accuracy,
            bot.cfg.threshold
        );
        println!("wrong:\n{}", misses.join("\n"));
        assert!(all >= 300, "the corpus has {all} utterances");
        assert!(
            accuracy >= 0.78,
            "accuracy fell to {:.1} %",
            100.0 * accuracy
        );
    }

    #[test]
    fn explicit_request_hands_over_in_the_visitors_language() {
        let bot = bot();
        let mut chat = Chat::new(&bot);
        let items = chat.say("Ich möchte mit einem Mitarbeiter sprechen");
        assert!(texts(&items)[0].starts_with("Ich schaue"), "{items:?}");
        let d = directive(&items).expect("a handover");
        assert_eq!(d.reason, HandoverReason::UserRequest);
        assert_eq!(d.reason_text.as_deref(), Some("explicit_request"));
        assert_eq!(
            d.message_to_agent.as_deref(),
            Some("The visitor asked for a person.")
        );
        // The widget's language wins over the phrase's.
        let mut chat = Chat::new(&bot);
        chat.locale = Some("de-AT");
        assert!(texts(&chat.say("hello"))[0].starts_with("Hallo!"));
    }

    /// Every fallback switch, alone and combined: what the first and second message not
    /// understood bring.
    #[test]
    fn fallback_triggers_follow_their_switches() {
        struct Case {
            toml: &'static str,
            first: Option<&'static str>,
            second: Option<&'static str>,
        }
        let base = "[bot.fallback]\nsuggestions = 0\nconfirm = false\n";
        let cases = [
            // Defaults as shipped, minus suggestions and confirmation: two misses hand over.
            Case {
                toml: "",
                first: None,
                second: Some("fallback_misses"),
            },
            Case {
                toml: "after_misses = 0\n",
                first: None,
                second: None,
            },
            Case {
                toml: "after_misses = 3\n",
                first: None,
                second: None,
            },
            Case {
                toml: "after_misses = 1\n",
                first: Some("fallback_misses"),
                second: Some("fallback_misses"),
            },
            Case {
                toml: "human_assistance = true\nafter_misses = 0\n",
                first: Some("not_understood"),
                second: Some("not_understood"),
            },
        ];
        for case in cases {
            let bot = bot_with(&format!("{base}{}", case.toml));
            let mut chat = Chat::new(&bot);
            let first = chat.say("xyzzy plugh");
            let first_trigger = directive(&first).and_then(|d| d.reason_text);
            assert_eq!(first_trigger.as_deref(), case.first, "{}", case.toml);
            if first_trigger.is_none() {
                assert_eq!(
                    texts(&first),
                    ["Sorry, I didn't get that."],
                    "{}",
                    case.toml
                );
            }
            let second = chat.say("frobnicate the quux");
            let d = directive(&second);
            assert_eq!(
                d.as_ref().and_then(|d| d.reason_text.as_deref()),
                case.second,
                "{}",
                case.toml
            );
            if let Some(d) = d {
                assert_eq!(d.reason, HandoverReason::BotCannotHandle);
                assert_eq!(texts(&second), ["Let's send you to an available agent."]);
            }
        }
        // A message understood in between starts the count again.
        let bot = bot_with(base);
        let mut chat = Chat::new(&bot);
        chat.say("xyzzy");
        chat.say("what does it cost");
        assert!(directive(&chat.say("xyzzy")).is_none());
        assert!(directive(&chat.say("xyzzy")).is_some());
    }

    /// Every trigger the built-in bot starts, through whole conversations: the handover it
    /// records (its `reason_text`), and no handover once its switch is off. The menu item and
    /// a Rasa upstream's directive are not the bot's: `it/handover.rs` and `it/bot.rs`.
    #[test]
    fn every_bot_trigger_is_recorded_and_its_switch_turns_it_off() {
        const QUIET: &str = "[bot.fallback]\nsuggestions = 0\nconfirm = false\n";
        // Your own intents replace the built-in ones: a "person" intent that only answers.
        const NO_PEOPLE: &str = "[[bot.intents]]\nname = \"human\"\n\
            examples = [\"talk to a person\", \"I want to talk to a person\"]\n\
            answer = \"Nobody here but me.\"\n[bot.fallback]\nafter_misses = 0\n";
        let flow = ["call me back", "Ada", "ada@example.org"];
        let invalid = ["call me back", "Ada", "nope", "still no", "no idea"];
        let cases: &[(&str, &str, &[&str], Option<&str>)] = &[
            (
                "asked for, in English",
                "",
                &["I want to talk to a person"],
                Some("explicit_request"),
            ),
            (
                "asked for, in German",
                "",
                &["Kann ich mit einem Mitarbeiter sprechen?"],
                Some("explicit_request"),
            ),
            (
                "the suggestions' person button",
                "",
                &["/baton_human"],
                Some("explicit_request"),
            ),
            (
                "asking, switched off",
                NO_PEOPLE,
                &["I want to talk to a person"],
                None,
            ),
            (
                "human assistance",
                "[bot.fallback]\nsuggestions = 0\nconfirm = false\nhuman_assistance = true\n",
                &["xyzzy"],
                Some("not_understood"),
            ),
            ("human assistance off (default)", QUIET, &["xyzzy"], None),
            (
                "two misses",
                QUIET,
                &["xyzzy", "plugh"],
                Some("fallback_misses"),
            ),
            (
                "misses, switched off",
                "[bot.fallback]\nafter_misses = 0\n",
                &["xyzzy", "plugh", "frob"],
                None,
            ),
            (
                "two misses, confirmed",
                "[bot.fallback]\nsuggestions = 0\n",
                &["xyzzy", "plugh", "yes"],
                Some("fallback_misses"),
            ),
            (
                "two misses, declined",
                "[bot.fallback]\nsuggestions = 0\n",
                &["xyzzy", "plugh", "/baton_no"],
                None,
            ),
            (
                "three invalid answers",
                QUIET,
                &invalid,
                Some("fallback_invalid"),
            ),
            (
                "invalid answers, switched off",
                "[bot.fallback]\nafter_invalid = 0\n",
                &invalid,
                None,
            ),
            (
                "the end of a flow",
                QUIET,
                &[flow[0], flow[1], flow[2], "Help with Baton"],
                Some("flow"),
            ),
            ("a flow not finished yet", QUIET, &flow, None),
        ];
        for (what, toml, messages, expected) in cases {
            let bot = bot_with(toml);
            let mut chat = Chat::new(&bot);
            let mut handed = None;
            for m in messages.iter() {
                if let Some(d) = directive(&chat.say(m)) {
                    handed = Some(d.reason_text.unwrap_or_default());
                }
            }
            assert_eq!(handed.as_deref(), *expected, "{what}");
        }
    }

    #[test]
    fn confirmation_asks_first_and_no_returns_to_the_bot() {
        let bot = bot_with("[bot.fallback]\nsuggestions = 0\n");
        // A language the bot does not speak leaves detection on.
        let mut chat = Chat::new(&bot);
        chat.locale = Some("fr");
        assert!(texts(&chat.say("Guten Tag"))[0].starts_with("Hallo!"));
        let mut chat = Chat::new(&bot);
        chat.say("xyzzy");
        let asked = chat.say("xyzzy");
        assert_eq!(texts(&asked), ["Do you want to talk to a human agent?"]);
        assert_eq!(payloads(&asked), [YES, NO]);
        assert!(directive(&asked).is_none());
        // No: back to the bot, the count starts again.
        let no = chat.say(NO);
        assert_eq!(texts(&no), ["All right, I'm still here. Ask me anything."]);
        assert!(directive(&no).is_none());
        assert_eq!(chat.memory().misses, 0);
        assert!(directive(&chat.say("xyzzy")).is_none());
        chat.say("xyzzy");
        // Yes, typed in German: the handover, with the trigger that asked.
        let yes = chat.say("ja gerne");
        let d = directive(&yes).expect("a handover after yes");
        assert_eq!(d.reason_text.as_deref(), Some("fallback_misses"));
        // Anything else is a new message: the question is dropped.
        let mut chat = Chat::new(&bot);
        chat.say("xyzzy");
        chat.say("xyzzy");
        assert!(texts(&chat.say("what does it cost"))[0].starts_with("Baton is free"));
        assert_eq!(chat.memory().confirming, None);
    }

    #[test]
    fn suggestions_come_before_a_fallback_handover_and_can_be_switched_off() {
        let bot = bot_with("[bot.fallback]\nconfirm = false\n");
        let mut chat = Chat::new(&bot);
        // Close to "pricing" but not sure enough.
        let unsure = "business";
        let scored = bot.rank(unsure);
        assert!(
            scored[0].score < bot.cfg.threshold && scored[0].score >= SUGGEST_FLOOR,
            "{scored:?}"
        );
        let first = chat.say(unsure);
        assert!(texts(&first)[0].starts_with("Sorry, I didn't get that. Did you mean"));
        assert_eq!(payloads(&first), ["/hours", HUMAN]);
        // The second miss hands over: suggestions were offered once.
        let second = chat.say(unsure);
        assert_eq!(
            directive(&second).and_then(|d| d.reason_text).as_deref(),
            Some("fallback_misses")
        );
        // Picking a suggestion answers it.
        let mut chat = Chat::new(&bot);
        chat.say(unsure);
        assert!(texts(&chat.say("/hours"))[0].starts_with("Our team answers"));
        // "Talk to a person" among them is an explicit request.
        let mut chat = Chat::new(&bot);
        chat.say(unsure);
        let d = directive(&chat.say(HUMAN)).unwrap();
        assert_eq!(d.reason_text.as_deref(), Some("explicit_request"));
        // Switched off: the plain answer.
        let off = bot_with("[bot.fallback]\nsuggestions = 0\n");
        let items = Chat::new(&off).say(unsure);
        assert_eq!(texts(&items), ["Sorry, I didn't get that."]);
        assert!(payloads(&items).is_empty());
        // With human assistance, suggestions first, then the handover.
        let ha = bot_with("[bot.fallback]\nhuman_assistance = true\nconfirm = false\n");
        let mut chat = Chat::new(&ha);
        let first = chat.say(unsure);
        assert_eq!(texts(&first), ["Did you mean one of these?"]);
        assert_eq!(
            directive(&chat.say(unsure))
                .and_then(|d| d.reason_text)
                .as_deref(),
            Some("not_understood")
        );
    }

    #[test]
    fn a_flow_captures_slots_reasks_and_hands_over_with_them() {
        let bot = bot();
        let mut chat = Chat::new(&bot);
        assert_eq!(
            texts(&chat.say("please call me back")),
            ["Sure. What's your name?"]
        );
        assert_eq!(
            texts(&chat.say("Ada Lovelace")),
            ["Which e-mail address can we reach you at?"]
        );
        let bad = chat.say("ada at example");
        assert_eq!(
            texts(&bad),
            [
                "That doesn't look like an e-mail address.",
                "Which e-mail address can we reach you at?"
            ]
        );
        assert_eq!(chat.memory().flow.unwrap().invalid, 1);
        let topic = chat.say("Ada@Example.ORG");
        assert_eq!(texts(&topic), ["What is it about?"]);
        assert_eq!(payloads(&topic), ["sales", "support"]);
        // The branch: sales goes to the sales queue.
        let done = chat.say("Buying Baton");
        assert_eq!(texts(&done), ["Thanks! Someone from sales will take over."]);
        let d = directive(&done).unwrap();
        assert_eq!(d.reason, HandoverReason::Policy);
        assert_eq!(d.reason_text.as_deref(), Some("flow"));
        assert_eq!(d.routing.unwrap().queue.as_deref(), Some("sales"));
        let slots: Vec<(&str, &str)> = d
            .slots
            .iter()
            .map(|s| (s.name.as_str(), s.value.as_str()))
            .collect();
        assert_eq!(
            slots,
            [
                ("name", "Ada Lovelace"),
                ("email", "Ada@example.org"),
                ("topic", "sales")
            ]
        );
        assert_eq!(chat.memory().flow, None);
        // The other branch, by the choice's number.
        let mut chat = Chat::new(&bot);
        chat.say("call me back");
        chat.say("Bob");
        chat.say("bob@example.com");
        let d = directive(&chat.say("2")).unwrap();
        assert_eq!(d.routing.unwrap().queue.as_deref(), Some("support"));
    }

    #[test]
    fn invalid_answers_fall_back_and_a_person_can_be_asked_for_mid_flow() {
        let bot = bot_with("[bot.fallback]\nconfirm = false\n");
        let mut chat = Chat::new(&bot);
        chat.say("call me back");
        chat.say("Ada");
        chat.say("nope");
        chat.say("still no");
        let third = chat.say("no idea");
        let d = directive(&third).expect("the third invalid answer hands over");
        assert_eq!(d.reason_text.as_deref(), Some("fallback_invalid"));
        assert_eq!(d.slots.len(), 1, "the name so far goes along");
        // Switched off: ask again for ever.
        let patient = bot_with("[bot.fallback]\nafter_invalid = 0\n");
        let mut chat = Chat::new(&patient);
        chat.say("call me back");
        chat.say("Ada");
        for _ in 0..5 {
            assert!(directive(&chat.say("nope")).is_none());
        }
        // Asking for a person in the middle of a flow hands over with what is filled, with
        // the intent's answer as outside a flow.
        let asked = chat.say("I want to talk to a human");
        assert_eq!(
            texts(&asked),
            ["Let me check whether someone from the team can take over."]
        );
        let d = directive(&asked).unwrap();
        assert_eq!(d.reason_text.as_deref(), Some("explicit_request"));
        assert_eq!(d.slots[0].value, "Ada");
        // Also where any text would do as an answer, and by the intent's button.
        let mut chat = Chat::new(&patient);
        chat.say("call me back");
        let d = directive(&chat.say("I want to talk to a human")).unwrap();
        assert!(d.slots.is_empty(), "not taken as the name: {:?}", d.slots);
        let mut chat = Chat::new(&patient);
        chat.say("call me back");
        chat.say("Ada");
        let d = directive(&chat.say("/human")).unwrap();
        assert_eq!(d.slots[0].value, "Ada", "the button keeps the slots too");
        // With confirmation, "no" asks the question again.
        let asking = bot_with("[bot.fallback]\nafter_invalid = 1\n");
        let mut chat = Chat::new(&asking);
        chat.say("call me back");
        chat.say("Ada");
        assert_eq!(
            texts(&chat.say("nope")),
            ["Do you want to talk to a human agent?"]
        );
        assert_eq!(
            texts(&chat.say("no")),
            [
                "All right, I'm still here. Ask me anything.",
                "Which e-mail address can we reach you at?"
            ]
        );
        assert!(chat.memory().flow.is_some());
    }

    #[test]
    fn a_handback_forgets_the_open_flow() {
        let bot = bot();
        let mut chat = Chat::new(&bot);
        chat.say("call me back");
        assert!(chat.memory().flow.is_some());
        let req = BotRequest {
            sender: "v_1".into(),
            message: "hello".into(),
            metadata: Some(BotMetadata {
                wcp: Some(WcpMetadata {
                    v: 1,
                    event: Some("handback".into()),
                    ..WcpMetadata::default()
                }),
            }),
        };
        let (items, mem) = bot.turn(&req, chat.memory.as_deref());
        assert!(texts(&items)[0].starts_with("Hi!"));
        assert_eq!(mem.flow, None);
    }

    #[test]
    fn answers_take_the_rasa_shapes() {
        let bot = bot();
        let items = Chat::new(&bot).say("what features does it have");
        assert_eq!(payloads(&items)[..2], ["/pricing", "/contact"]);
        let carousel = items.iter().find_map(|i| i.attachment.as_ref()).unwrap();
        assert_eq!(carousel["type"], "template");
        assert_eq!(carousel["payload"]["template_type"], "generic");
        assert_eq!(
            carousel["payload"]["elements"][0]["title"],
            "Bot and people"
        );
        let with_image = bot_with(
            "[[bot.intents]]\nname = \"logo\"\nexamples = [\"logo\"]\nimage = \"https://example.com/logo.png\"\n",
        );
        let items = Chat::new(&with_image).say("logo");
        assert_eq!(
            items[0].image.as_deref(),
            Some("https://example.com/logo.png")
        );
    }

    #[test]
    fn slot_types_validate_and_normalise() {
        let v = |k: &SlotKind, a: &str| validate(k, a, "en", "en");
        assert_eq!(
            v(&SlotKind::Email, " a.b@Example.COM "),
            Ok("a.b@example.com".into())
        );
        for bad in ["a@b", "a b@c.de", "@c.de", "a@@c.de", "a@c.d3", "a@-c.de"] {
            assert_eq!(v(&SlotKind::Email, bad), Err(()), "{bad}");
        }
        assert_eq!(
            v(&SlotKind::Phone, "+49 (30) 123-456"),
            Ok("+4930123456".into())
        );
        assert_eq!(v(&SlotKind::Phone, "12345"), Err(()));
        assert_eq!(v(&SlotKind::Phone, "call me"), Err(()));
        assert_eq!(v(&SlotKind::Number, "3,5"), Ok("3.5".into()));
        assert_eq!(v(&SlotKind::Number, "three"), Err(()));
        let numbers = SlotKind::Choice(
            ["5", "4", "3"]
                .iter()
                .map(|n| crate::config::Choice {
                    value: (*n).into(),
                    title: crate::config::Localised::one(n),
                })
                .collect(),
        );
        assert_eq!(
            v(&numbers, "3"),
            Ok("3".into()),
            "a value before a position"
        );
        assert_eq!(v(&numbers, "9"), Err(()));
        assert_eq!(
            v(&SlotKind::Number, &format!("0.{}1", "0".repeat(2000))),
            Err(())
        );
        assert_eq!(v(&SlotKind::Text, "   "), Err(()));
        assert_eq!(v(&SlotKind::Text, &"x".repeat(201)), Err(()));
    }

    use std::collections::BTreeMap;
}
