//! Every sentence a visitor reads in the widget, by name. The site owner sets them in the
//! server's `[texts]` (defaults in its `default.toml`); the widget fetches them from
//! `GET /api/v1/widget` and ships no copy of them. A text may hold placeholders such as
//! `{agent}`, filled in by the widget; each text may use only its own.

macro_rules! texts {
    ($($(#[$doc:meta])* $variant:ident = $key:literal $([$($ph:literal),*])?,)*) => {
        /// A visitor-facing text.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Text {
            $($(#[$doc])* $variant,)*
        }

        impl Text {
            /// Every text.
            pub const ALL: &'static [Text] = &[$(Text::$variant,)*];

            /// Its key in `[texts]` and in `GET /api/v1/widget`.
            pub fn key(self) -> &'static str {
                match self {
                    $(Text::$variant => $key,)*
                }
            }

            /// The placeholders it may use, without braces.
            pub fn placeholders(self) -> &'static [&'static str] {
                match self {
                    $(Text::$variant => &[$($($ph),*)?],)*
                }
            }
        }
    };
}

texts! {
    /// Queued, agents online (also the status line's text while queued).
    Waiting = "waiting",
    /// Queued, nobody online.
    WaitingNoAgents = "waiting_no_agents",
    /// Outside opening hours.
    Closed = "closed",
    /// Offloading switched off.
    Disabled = "disabled",
    /// No agent can be assigned.
    Unavailable = "unavailable",
    /// The bot could not be reached (stored in the transcript by the server).
    BotUnavailable = "bot_unavailable",
    /// A handover request is on its way.
    Checking = "checking",
    /// Added to the waiting text when first in line.
    QueueNext = "queue_next",
    /// Added to the waiting text with the place in line.
    QueuePosition = "queue_position" ["position"],
    /// Added to the waiting text with the estimated wait, in whole minutes (at least 1).
    QueueWait = "queue_wait" ["minutes"],
    /// Closed or disabled: the button that opens the leave-a-message form.
    LeaveMessage = "leave_message",
    /// The form's name field.
    LeaveName = "leave_name",
    /// The form's e-mail field.
    LeaveEmail = "leave_email",
    /// The form's message field.
    LeaveText = "leave_text",
    /// The form's send button.
    LeaveSend = "leave_send",
    /// The form's cancel button.
    LeaveCancel = "leave_cancel",
    /// After the message was stored.
    LeaveSent = "leave_sent",
    /// Added to the closed text when the next opening is known.
    BackAt = "back_at" ["when"],
    /// The status line with an agent.
    ChattingWith = "chatting_with" ["agent"],
    /// The status line after an agent chat.
    Ended = "ended",
    /// The menu item's reason while queued.
    AlreadyQueued = "already_queued",
    /// Header label while waiting.
    LabelWaiting = "label_waiting",
    /// Header label with an agent.
    LabelAgent = "label_agent",
    /// Header label with the bot.
    LabelBot = "label_bot",
    /// Transcript: an agent joined.
    AgentJoined = "agent_joined" ["agent"],
    /// Transcript: the agent ended the chat.
    EndedByAgent = "ended_by_agent" ["agent"],
    /// Transcript: the visitor ended the chat.
    EndedByVisitor = "ended_by_visitor",
    /// Transcript: the server ended the chat.
    EndedBySystem = "ended_by_system",
    /// Transcript: the visitor left the queue.
    LeftQueue = "left_queue",
    /// Transcript (written by the server): nobody took the chat in time.
    QueueTimeout = "queue_timeout",
    /// Transcript (written by the server): the agent went offline; back in the queue.
    AgentLeft = "agent_left" ["agent"],
    /// Transcript (written by the server): the agent went offline; the chat ended.
    AgentLeftEnded = "agent_left_ended" ["agent"],
    /// Transcript (written by the server): the agent handed the chat to another agent.
    Transferred = "transferred" ["from", "to"],
    /// Transcript (written by the server): the agent handed the chat back to a queue.
    TransferredQueue = "transferred_queue" ["agent"],
    /// The launcher, closed.
    OpenChat = "open_chat",
    /// The launcher and the close button, open.
    CloseChat = "close_chat",
    /// The menu button.
    MoreOptions = "more_options",
    /// The menu.
    ChatOptions = "chat_options",
    /// The menu item that asks for a person.
    RequestAgent = "request_agent",
    /// The menu item that leaves the queue.
    CancelRequest = "cancel_request",
    /// The text box's label.
    MessageLabel = "message_label",
    /// The text box's placeholder.
    Placeholder = "placeholder",
    /// The send button.
    Send = "send",
    /// Author of the visitor's lines.
    AuthorYou = "author_you",
    /// Author of the bot's lines.
    AuthorBot = "author_bot",
    /// Author of an agent's lines when the agent has no name.
    AuthorAgent = "author_agent",
    /// Author of notices.
    AuthorNotice = "author_notice",
    /// A message on its way.
    Sending = "sending",
    /// A message that was not sent.
    NotSent = "not_sent",
    /// Sends it again.
    Retry = "retry",
    /// The transcript's label.
    Conversation = "conversation",
    /// While the bot is answering.
    Typing = "typing",
    /// While the agent is typing.
    AgentTyping = "agent_typing" ["agent"],
    /// Under the visitor's last message once the agent has read it.
    Seen = "seen",
    /// Shows older lines of a long transcript.
    ShowEarlier = "show_earlier" ["count"],
    /// A message over the size limit.
    TooLong = "too_long" ["limit"],
    /// The server no longer knows this visitor.
    SessionExpired = "session_expired",
    /// The chat server cannot be reached (the widget's own fetch failed).
    Unreachable = "unreachable",
    /// The chat server is slow to hand out a visitor credential.
    Slow = "slow",
    /// The server failed, or answered something the widget cannot read.
    ServerError = "server_error",
    /// A rate limit refused the request.
    RateLimited = "rate_limited",
    /// The request is not allowed now (e.g. "Request live agent" before the site's rule
    /// offers it).
    NotAllowed = "not_allowed",
    /// The server refused what was entered (e.g. the leave-a-message form).
    CheckInput = "check_input",
    /// After an agent chat: the rating's question.
    RatePrompt = "rate_prompt" ["agent"],
    /// The name of one choice of stars, for screen readers.
    RateStars = "rate_stars" ["stars"],
    /// The rating's optional comment field.
    RateComment = "rate_comment",
    /// The rating's send button.
    RateSend = "rate_send",
    /// After the rating was stored.
    RateThanks = "rate_thanks",
    /// After an agent chat: saves the transcript as a text file.
    Download = "download",
    /// A bot image's text alternative (Rasa images carry none).
    Image = "image",
    /// The label of a bot carousel (a row of cards).
    Cards = "cards",
}

/// `text` with its `{placeholders}` filled from `values` (unknown ones are left as written).
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
    // One pass, no pattern search (the widget's size budget counts every KB).
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        let value = rest[1..].find('}').and_then(|close| {
            let name = &rest[1..1 + close];
            let v = values.iter().find(|(n, _)| *n == name)?.1;
            Some((v, close + 2))
        });
        match value {
            Some((v, len)) => {
                out.push_str(v);
                rest = &rest[len..];
            }
            None => {
                out.push('{');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `{names}` a text uses.
pub fn used_placeholders(text: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        match rest.find(['}', '{']) {
            Some(close) if rest.as_bytes()[close] == b'}' => {
                out.push(&rest[..close]);
                rest = &rest[close + 1..];
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_snake_case_and_placeholders_fill() {
        let mut keys: Vec<&str> = Text::ALL.iter().map(|t| t.key()).collect();
        assert!(
            keys.iter()
                .all(|k| k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), Text::ALL.len());
        assert_eq!(Text::QueuePosition.placeholders(), ["position"]);
        assert_eq!(
            fill(
                "You are number {position} in line, {x}.",
                &[("position", "3")]
            ),
            "You are number 3 in line, {x}."
        );
        assert_eq!(used_placeholders("a {b} {c {d}} e{"), ["b", "d"]);
        assert_eq!(
            fill("{a}{a} {b} {{a}} {", &[("a", "1"), ("b", "{a}")]),
            "11 {a} {1} {"
        );
        assert_eq!(fill("é{x}ü", &[("x", "ö")]), "éöü");
    }
}
