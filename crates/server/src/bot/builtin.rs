//! The built-in demo bot: intents matched by example phrases, read from the config.

use baton_protocol::bot::{BotMessage, BotRequest, HandoverDirective, HandoverReason};
use baton_protocol::ids::VisitorId;

use super::{Bot, BotFut};
use crate::config::{BotConfig, Intent};

/// The configured intents, as a [`Bot`].
pub struct BuiltinBot(pub BotConfig);

/// Lower-cases and keeps only words, so `"Hello, there!"` becomes `" hello there "`.
fn normalise(s: &str) -> String {
    let mut out = String::from(" ");
    for word in s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        out.push_str(&word.to_lowercase());
        out.push(' ');
    }
    out
}

impl BotConfig {
    /// The intent for a message: a `/name` payload picks it directly (the Rasa button
    /// convention); otherwise the intent with the longest example phrase contained in the
    /// message wins, and the first of equals.
    pub fn classify(&self, message: &str) -> Option<&Intent> {
        if let Some(name) = message.trim().strip_prefix('/') {
            return self.intents.iter().find(|i| i.name == name);
        }
        let text = normalise(message);
        let mut best: Option<(&Intent, usize)> = None;
        for intent in &self.intents {
            for ex in &intent.examples {
                let ex = normalise(ex);
                if text.contains(&ex) && best.is_none_or(|(_, len)| ex.len() > len) {
                    best = Some((intent, ex.len()));
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// The bot's answer, in the Rasa REST shape.
    pub fn answer(&self, sender: &VisitorId, message: &str) -> Vec<BotMessage> {
        match self.classify(message) {
            None => vec![BotMessage::text(sender, &self.not_understood)],
            Some(intent) => {
                let mut out = vec![BotMessage::text(sender, &intent.answer)];
                if intent.handover {
                    let directive = HandoverDirective {
                        reason: HandoverReason::UserRequest,
                        message_to_agent: intent.message_to_agent.clone(),
                        ..HandoverDirective::default()
                    };
                    out.push(BotMessage {
                        recipient_id: Some(sender.clone()),
                        custom: Some(directive.to_custom()),
                        ..BotMessage::default()
                    });
                }
                out
            }
        }
    }
}

impl Bot for BuiltinBot {
    fn kind(&self) -> &'static str {
        "built-in"
    }

    fn answer<'a>(&'a self, req: &'a BotRequest) -> BotFut<'a> {
        let answer = self.0.answer(&req.sender, &req.message);
        Box::pin(async move { Ok(answer) })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn classifies_by_longest_phrase_and_payload() {
        let bot = Config::defaults().bot;
        let name = |m: &str| bot.classify(m).map(|i| i.name.as_str());
        assert_eq!(name("Hello there!"), Some("greet"));
        assert_eq!(name("What are your OPENING HOURS?"), Some("hours"));
        assert_eq!(name("I want to talk to a person"), Some("human"));
        // Other ways of asking for a person, in English and in German.
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
        // Whole words only: "this" does not contain the example "hi".
        assert_eq!(name("this"), None);
    }

    #[test]
    fn the_human_intent_carries_a_handover_directive() {
        let bot = Config::defaults().bot;
        let v = "v_1".into();
        let answer = bot.answer(&v, "can I speak to someone");
        assert_eq!(answer.len(), 2);
        assert!(answer[0].text.is_some());
        assert!(answer[1].handover().is_some());
        let not_understood = bot.answer(&v, "xyzzy");
        assert_eq!(
            not_understood[0].text.as_deref(),
            Some(bot.not_understood.as_str())
        );
        assert!(not_understood.iter().all(|m| m.handover().is_none()));
    }
}
