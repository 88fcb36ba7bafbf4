//! The bot endpoint: the Rasa REST channel shape, extended only where Rasa tolerates it
//! (`metadata` in requests, `custom` in responses), so a stock Rasa server works as Baton's
//! bot with no change.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{ClientMsgId, VisitorId};

/// `POST /webhooks/rest/webhook` request body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BotRequest {
    /// The visitor id; Rasa keys its tracker by it.
    pub sender: VisitorId,
    /// The visitor's text, or a button payload.
    pub message: String,
    /// Baton's extras live under `metadata.wcp`; Rasa stores metadata without reading it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BotMetadata>,
}

/// The `metadata` object of a bot request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BotMetadata {
    /// Baton's namespaced extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wcp: Option<WcpMetadata>,
}

/// Baton's fields in a bot request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WcpMetadata {
    /// Protocol version.
    pub v: u32,
    /// Idempotency key of this visitor message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<ClientMsgId>,
    /// How the message was produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<MessageSource>,
    /// Set to `handback` on the first bot call after an agent chat ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The page the visitor is on; recorded with a handover the bot's answer starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    /// The visitor's language (a BCP 47 tag such as `de` or `en-GB`), when the widget knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// Where a visitor message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageSource {
    /// Typed in the composer.
    Text,
    /// A bot button was pressed; `message` is its payload.
    Button,
    /// Sent by the widget itself (an init payload); not shown.
    Init,
}

/// One item of the bot's answer (the answer is a JSON array of these).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BotMessage {
    /// The visitor id the item is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<VisitorId>,
    /// Plain text. Never interpreted as HTML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Quick-reply buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buttons: Option<Vec<Button>>,
    /// An image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// An attachment, passed through untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Value>,
    /// Custom JSON; Baton reads a handover directive from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
}

/// A bot button: the title is shown, the payload is sent back as the next message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// Label shown to the visitor.
    pub title: String,
    /// Sent to the bot as `message` when pressed.
    pub payload: String,
}

/// Why a handover was asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoverReason {
    /// The visitor asked for a person (an intent, or the overflow menu).
    #[default]
    UserRequest,
    /// The bot did not understand, repeatedly.
    BotCannotHandle,
    /// A bot flow reached a node that hands over by design.
    Policy,
    /// Any other reason.
    #[serde(other)]
    Other,
}

impl HandoverReason {
    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRequest => "user_request",
            Self::BotCannotHandle => "bot_cannot_handle",
            Self::Policy => "policy",
            Self::Other => "other",
        }
    }
}

/// A text shown to the visitor for one outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeText {
    /// The text; plain, never HTML.
    pub message: String,
}

/// Routing hints for the agent side.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    /// Queue name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Required skill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
}

/// The handover directive, carried in a bot answer's `custom` as `{"type":"handover", ...}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverDirective {
    /// Why.
    #[serde(default)]
    pub reason: HandoverReason,
    /// Free text for reporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_text: Option<String>,
    /// Shown to the agent, never to the visitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_to_agent: Option<String>,
    /// Shown to the visitor while waiting for an agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_available: Option<OutcomeText>,
    /// Shown to the visitor when no agent can be had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_unavailable: Option<OutcomeText>,
    /// Queue and skill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
    /// New header title (also the legacy chatroom field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Legacy chatroom field: a Rasa host to switch to. Recorded; Baton hands over to its own
    /// agent side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_host: Option<String>,
    /// What the bot collected from the visitor (a flow's slots), for the agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<Slot>,
}

/// One value the bot collected, such as `email = "ada@example.com"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// The slot's name, as configured.
    pub name: String,
    /// What the visitor answered (normalised by the slot's type).
    pub value: String,
}

impl HandoverDirective {
    /// Reads a directive from a bot item's `custom` value: either Baton's
    /// `{"type":"handover", ...}` or the legacy chatroom `{"handoff_host": ..., "title": ...}`.
    /// Anything else is not a directive.
    pub fn from_custom(custom: &Value) -> Option<Self> {
        let obj = custom.as_object()?;
        match obj.get("type").and_then(Value::as_str) {
            Some("handover") => serde_json::from_value(custom.clone()).ok(),
            Some(_) => None,
            None if obj.contains_key("handoff_host") => {
                let mut d: Self = serde_json::from_value(custom.clone()).ok()?;
                d.reason = HandoverReason::Policy;
                Some(d)
            }
            None => None,
        }
    }

    /// The directive as a `custom` value, with its `type` tag.
    pub fn to_custom(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("directive serialises");
        if let Value::Object(map) = &mut v {
            map.insert("type".into(), Value::from("handover"));
            map.insert("v".into(), Value::from(crate::PROTOCOL_VERSION));
        }
        v
    }
}

impl BotMessage {
    /// A plain text item.
    pub fn text(recipient: &VisitorId, text: impl Into<String>) -> Self {
        Self {
            recipient_id: Some(recipient.clone()),
            text: Some(text.into()),
            ..Self::default()
        }
    }

    /// The handover directive in this item, if any.
    pub fn handover(&self) -> Option<HandoverDirective> {
        self.custom
            .as_ref()
            .and_then(HandoverDirective::from_custom)
    }
}

/// The JSON error body every Baton HTTP endpoint returns on a 4xx/5xx.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// A stable machine-readable code, e.g. `bad_request`.
    pub error: String,
    /// What is wrong, for a person.
    pub message: String,
}
