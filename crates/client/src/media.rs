//! What a bot line shows besides its text: an image (Rasa's `image`, or an `attachment` of
//! type `image`) and a carousel of cards (an `attachment` in Rasa's generic template:
//! `{"type": "template", "payload": {"template_type": "generic", "elements": [...]}}`, each
//! element with `title`, `subtitle`, `image_url` and `buttons` of type `postback` or
//! `web_url`). Every address is `http(s)` or dropped: a bot's text is never code, and a
//! `javascript:` link never reaches the page.
//!
//! Read from the client's own JSON tree: a `serde_json::Value` tree would link serde_json's
//! map into the widget (6 KB of wasm). A stored message's `attachment` therefore reaches the
//! widget as its JSON text (see [`crate::wire`]), read again here by [`stored`].

use baton_protocol::bot::Button;

use crate::json::Json;

/// A carousel shows this many cards at most.
pub const MAX_CARDS: usize = 10;

/// Longest address kept.
const MAX_URL: usize = 2048;

/// An image and cards; both empty for a plain line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Media {
    /// An image's address.
    pub image: Option<String>,
    /// A carousel's cards, in order.
    pub cards: Vec<Card>,
}

impl Media {
    /// Whether there is nothing to show.
    pub fn is_empty(&self) -> bool {
        self.image.is_none() && self.cards.is_empty()
    }
}

/// One card of a carousel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Card {
    /// Its title (a card without one is skipped).
    pub title: String,
    /// A line under the title.
    pub subtitle: Option<String>,
    /// An image above the title.
    pub image_url: Option<String>,
    /// Its buttons.
    pub buttons: Vec<CardButton>,
}

/// A card's button: it answers the bot like a quick reply, or opens a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardButton {
    /// `postback`: sends its payload, showing its title.
    Reply(Button),
    /// `web_url`: opens the address in a new tab.
    Link {
        /// What it says.
        title: String,
        /// Where it goes (`http(s)` only).
        url: String,
    },
}

/// An `http(s)` address (the scheme in lower case, as Baton's own configuration has it),
/// else `None`.
pub fn web_url(s: &str) -> Option<String> {
    let s = s.trim();
    ((s.starts_with("https://") || s.starts_with("http://")) && s.len() <= MAX_URL)
        .then(|| s.to_owned())
}

fn text(v: &Json, key: &str) -> Option<String> {
    v.get(key)?
        .str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// What a stored bot message shows besides its text: its `image`, and its `attachment` as
/// the widget's reader keeps it (its JSON text).
pub fn stored(image: Option<&str>, attachment: Option<&serde_json::Value>) -> Media {
    let attachment = match attachment {
        Some(serde_json::Value::String(text)) => Json::parse(text).ok(),
        _ => None,
    };
    media(image, attachment.as_ref())
}

/// What a bot item shows besides its text.
pub fn media(image: Option<&str>, attachment: Option<&Json>) -> Media {
    let payload = attachment.and_then(|a| a.get("payload"));
    let kind = attachment.and_then(|a| a.get("type")).and_then(Json::str);
    let image = image.and_then(web_url).or_else(|| {
        let p = payload.filter(|_| kind == Some("image"))?;
        text(p, "src")
            .or_else(|| text(p, "url"))
            .as_deref()
            .and_then(web_url)
    });
    let cards = payload
        .filter(|_| kind == Some("template"))
        .and_then(|p| p.get("elements"))
        .and_then(Json::arr)
        .map(|elements| elements.iter().filter_map(card).take(MAX_CARDS).collect())
        .unwrap_or_default();
    Media { image, cards }
}

fn card(v: &Json) -> Option<Card> {
    Some(Card {
        title: text(v, "title")?,
        subtitle: text(v, "subtitle"),
        image_url: text(v, "image_url").as_deref().and_then(web_url),
        buttons: v
            .get("buttons")
            .and_then(Json::arr)
            .map(|b| b.iter().filter_map(card_button).collect())
            .unwrap_or_default(),
    })
}

fn card_button(v: &Json) -> Option<CardButton> {
    let title = text(v, "title")?;
    match v.get("type").and_then(Json::str) {
        Some("web_url") => Some(CardButton::Link {
            title,
            url: web_url(&text(v, "url")?)?,
        }),
        Some("postback") | None => Some(CardButton::Reply(Button {
            title,
            payload: text(v, "payload")?,
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's tree for a serde value (as the widget reads a bot answer).
    fn tree(v: serde_json::Value) -> Json {
        Json::parse(&v.to_string()).unwrap()
    }
    macro_rules! json {
        ($($t:tt)*) => { tree(serde_json::json!($($t)*)) };
    }

    #[test]
    fn only_web_addresses_are_kept() {
        assert_eq!(
            web_url(" https://a.example/x.png "),
            Some("https://a.example/x.png".into())
        );
        for bad in [
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "//a.example/x.png",
            "ftp://a.example/",
            "HTTPS://a.example/",
            " javascript:https://a.example/",
            "",
        ] {
            assert_eq!(web_url(bad), None, "{bad}");
        }
        assert_eq!(
            web_url(&format!("https://a.example/{}", "x".repeat(3000))),
            None
        );
    }

    #[test]
    fn a_generic_template_becomes_cards_and_an_image_attachment_an_image() {
        let carousel = json!({
            "type": "template",
            "payload": {"template_type": "generic", "elements": [
                {"title": "Basic", "subtitle": "For one site", "image_url": "https://a.example/b.png",
                 "buttons": [
                    {"type": "postback", "title": "Choose", "payload": "/plan{\"p\":\"basic\"}"},
                    {"type": "web_url", "title": "Details", "url": "https://a.example/basic"},
                    {"type": "web_url", "title": "Bad", "url": "javascript:alert(1)"},
                    {"type": "phone_number", "title": "Call", "payload": "+49"},
                 ]},
                {"subtitle": "no title: skipped"},
                {"title": "Pro", "image_url": "javascript:x"},
            ]}
        });
        let m = media(None, Some(&carousel));
        assert_eq!(m.image, None);
        assert_eq!(
            m.cards,
            vec![
                Card {
                    title: "Basic".into(),
                    subtitle: Some("For one site".into()),
                    image_url: Some("https://a.example/b.png".into()),
                    buttons: vec![
                        CardButton::Reply(Button {
                            title: "Choose".into(),
                            payload: "/plan{\"p\":\"basic\"}".into()
                        }),
                        CardButton::Link {
                            title: "Details".into(),
                            url: "https://a.example/basic".into()
                        },
                    ],
                },
                Card {
                    title: "Pro".into(),
                    ..Card::default()
                },
            ]
        );
        let image = json!({"type": "image", "payload": {"src": "https://a.example/i.png"}});
        assert_eq!(
            media(None, Some(&image)).image.as_deref(),
            Some("https://a.example/i.png")
        );
        assert_eq!(
            media(Some("https://a.example/own.png"), Some(&image))
                .image
                .as_deref(),
            Some("https://a.example/own.png")
        );
        assert!(media(Some("javascript:alert(1)"), None).is_empty());
        assert!(media(None, Some(&json!({"any": [1, 2.5, null]}))).is_empty());
        let many = serde_json::json!({"type": "template", "payload": {"elements":
            (0..20).map(|i| serde_json::json!({"title": format!("{i}")})).collect::<Vec<_>>()}});
        assert_eq!(media(None, Some(&tree(many))).cards.len(), MAX_CARDS);
        // A stored attachment, as the widget's reader keeps it (its JSON text).
        let text = serde_json::Value::String(image.to_string());
        assert_eq!(
            stored(None, Some(&text)).image.as_deref(),
            Some("https://a.example/i.png")
        );
        assert!(stored(None, Some(&serde_json::json!({"type": "image"}))).is_empty());
    }
}
