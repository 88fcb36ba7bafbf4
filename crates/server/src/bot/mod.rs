//! The bot behind one trait: the built-in intent bot, or any Rasa-compatible REST bot
//! upstream. The service calls it after the visitor's message is stored and outside any
//! transaction, and stores whatever it answers.

mod builtin;
mod rasa;

use std::future::Future;
use std::pin::Pin;

use baton_protocol::bot::{BotMessage, BotRequest};

pub use builtin::BuiltinBot;
pub use rasa::RasaUpstream;

/// Why the bot gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotError(pub String);

impl std::fmt::Display for BotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A boxed bot future.
pub type BotFut<'a> = Pin<Box<dyn Future<Output = Result<Vec<BotMessage>, BotError>> + Send + 'a>>;

/// Answers visitor messages, in the Rasa REST shape. An empty answer is a legal answer.
pub trait Bot: Send + Sync + 'static {
    /// `built-in` or `rasa`.
    fn kind(&self) -> &'static str;
    /// The answer to one visitor message.
    fn answer<'a>(&'a self, req: &'a BotRequest) -> BotFut<'a>;
}
