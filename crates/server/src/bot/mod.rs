//! The bot behind one trait: the built-in intent bot, or any Rasa-compatible REST bot
//! upstream. The service calls it after the visitor's message is stored and outside any
//! transaction, and stores whatever it answers.

mod builtin;
mod matcher;
mod rasa;

use std::future::Future;
use std::pin::Pin;

use baton_protocol::bot::{BotMessage, BotRequest};

pub use builtin::{BuiltinBot, Trigger, valid_email};
pub use rasa::RasaUpstream;

/// Why the bot gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotError(pub String);

impl std::fmt::Display for BotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bot's answer to one message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BotAnswer {
    /// The items, in the Rasa REST shape (an empty answer is a legal answer).
    pub items: Vec<BotMessage>,
    /// What the bot wants to remember of the conversation until its next turn (`None`:
    /// keep what was remembered).
    pub memory: Option<String>,
}

/// A boxed bot future.
pub type BotFut<'a> = Pin<Box<dyn Future<Output = Result<BotAnswer, BotError>> + Send + 'a>>;

/// Answers visitor messages, in the Rasa REST shape.
pub trait Bot: Send + Sync + 'static {
    /// `built-in` or `rasa`.
    fn kind(&self) -> &'static str;
    /// Whether the bot keeps a memory per conversation (the service then loads and stores
    /// it around each turn; a bot that keeps its own, like Rasa's tracker, says no).
    fn remembers(&self) -> bool {
        false
    }
    /// The answer to one visitor message, given what the bot remembered of the
    /// conversation.
    fn answer<'a>(&'a self, req: &'a BotRequest, memory: Option<String>) -> BotFut<'a>;
}
