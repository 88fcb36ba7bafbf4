//! Widget tests in a real headless Chromium (wasm-bindgen-test): mount into a fresh shadow
//! root, act, let Leptos settle, then check the DOM. The network is real too: the
//! "unreachable server" tests point the widget at a closed local port.
#![cfg(target_arch = "wasm32")]

use baton_client::wire::BotItem;
use baton_protocol::bot::HandoverReason;
use baton_protocol::ids::AgentId;
use baton_protocol::state::{AgentRef, ConversationState, EndedBy};
use baton_protocol::status::{OffloadState, OffloadStatus};
use baton_protocol::ws::{Event, EventBody, HandoverResponse, Role};
use baton_widget::{Chat, Settings, mount_in};
use leptos::prelude::{GetUntracked, Set};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::{Element, HtmlElement};

wasm_bindgen_test_configure!(run_in_browser);

/// A widget mounted in its own shadow root (appended to the body, never replacing it).
struct Mounted {
    root: web_sys::ShadowRoot,
    chat: Chat,
}

fn mount(server: &str) -> Mounted {
    mount_chat(detached(server))
}

/// A store for `server` that keeps nothing in `localStorage`.
fn detached(server: &str) -> Chat {
    Chat::detached(Settings {
        server: server.into(),
        title: "Support".into(),
    })
}

/// The server's default texts (its `default.toml`), as `GET /api/v1/widget` gives them: the
/// widget has none of its own.
fn default_texts() -> String {
    let toml = include_str!("../crates/server/src/default.toml");
    let section = toml
        .split("\n[texts]\n")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("default.toml has [texts]");
    let members: Vec<String> = section
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = \""))
        .map(|(k, v)| format!("\"{k}\":\"{v}"))
        .collect();
    format!("{{\"v\":1,\"texts\":{{{}}}}}", members.join(","))
}

/// A store with the default texts, as `mount` has it once they are in.
fn with_texts(chat: Chat) -> Chat {
    chat.set_texts(&default_texts()).unwrap();
    chat
}

fn mount_chat(chat: Chat) -> Mounted {
    mount_with(chat, &default_texts())
}

/// Mounts with the given `GET /api/v1/widget` answer.
fn mount_with(chat: Chat, settings: &str) -> Mounted {
    chat.set_texts(settings).unwrap();
    let document = web_sys::window().unwrap().document().unwrap();
    let host = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&host).unwrap();
    let root = host
        .attach_shadow(&web_sys::ShadowRootInit::new(web_sys::ShadowRootMode::Open))
        .unwrap();
    let container: HtmlElement = document.create_element("div").unwrap().unchecked_into();
    root.append_child(&container).unwrap();
    mount_in(container, chat);
    Mounted { root, chat }
}

/// Lets effects, renders and pending promises run.
async fn tick() {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 10)
            .unwrap();
    });
    JsFuture::from(p).await.unwrap();
}

impl Mounted {
    fn find(&self, selector: &str) -> Option<Element> {
        self.root.query_selector(selector).unwrap()
    }

    fn get(&self, selector: &str) -> Element {
        self.find(selector)
            .unwrap_or_else(|| panic!("no element matches {selector}"))
    }

    fn text(&self, selector: &str) -> String {
        self.find(selector)
            .and_then(|e| e.text_content())
            .unwrap_or_default()
    }

    fn click(&self, selector: &str) {
        self.get(selector).unchecked_into::<HtmlElement>().click();
    }

    async fn wait_for_text(&self, selector: &str, needle: &str) -> String {
        for _ in 0..200 {
            let t = self.text(selector);
            if t.contains(needle) {
                return t;
            }
            tick().await;
        }
        panic!(
            "{selector} never contained {needle:?}; it has {:?}",
            self.text(selector)
        );
    }
}

const NOWHERE: &str = "http://127.0.0.1:9";

#[wasm_bindgen_test]
async fn the_launcher_opens_the_panel_and_the_menu_offers_a_live_agent() {
    let w = mount(NOWHERE);
    tick().await;
    assert_eq!(
        w.get(".baton-launcher")
            .get_attribute("aria-label")
            .as_deref(),
        Some("Open chat")
    );
    assert!(w.find("[role=dialog]").is_none());

    w.click(".baton-launcher");
    tick().await;
    assert_eq!(
        w.get("[role=dialog]")
            .get_attribute("aria-label")
            .as_deref(),
        Some("Support")
    );
    assert_eq!(
        w.get(".baton-launcher")
            .get_attribute("aria-expanded")
            .as_deref(),
        Some("true")
    );

    w.click("[aria-label='More options']");
    tick().await;
    let item = w.get("[role=menu] [role=menuitem]");
    assert_eq!(item.text_content().unwrap().trim(), "Request live agent");
    assert!(!item.has_attribute("disabled"));
    // Focus moves into the menu, and Escape closes it.
    w.wait_focus("Request live agent").await;
    let esc = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &{
        let init = web_sys::KeyboardEventInit::new();
        init.set_key("Escape");
        init.set_bubbles(true);
        init
    })
    .unwrap();
    item.dispatch_event(&esc).unwrap();
    tick().await;
    assert!(w.find("[role=menu]:not([hidden])").is_none());
    assert!(
        w.find("[role=dialog]").is_some(),
        "the first Escape only closes the menu"
    );
}

/// Sends a key press to an element, as the browser does for the focused one.
fn key(target: &Element, key: &str) {
    let init = web_sys::KeyboardEventInit::new();
    init.set_key(key);
    init.set_bubbles(true);
    init.set_cancelable(true);
    let ev = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap();
    target.dispatch_event(&ev).unwrap();
}

impl Mounted {
    /// What has the focus in the widget: its class, label and text.
    fn focused(&self) -> String {
        self.root
            .active_element()
            .map(|e| {
                format!(
                    "{}|{}|{}",
                    e.class_name(),
                    e.get_attribute("aria-label").unwrap_or_default(),
                    e.text_content().unwrap_or_default().trim()
                )
            })
            .unwrap_or_default()
    }

    /// Waits (a frame or two) until the focus is on something matching `needle`.
    async fn wait_focus(&self, needle: &str) {
        for _ in 0..100 {
            if self.focused().contains(needle) {
                return;
            }
            tick().await;
        }
        panic!(
            "focus never reached {needle:?}; it is on {:?}",
            self.focused()
        );
    }

    fn active(&self) -> Element {
        self.root.active_element().expect("something has the focus")
    }
}

#[wasm_bindgen_test]
async fn the_menu_is_a_full_menu_button_and_the_focus_follows_the_panel() {
    let w = mount(NOWHERE);
    tick().await;
    // Opening the panel puts the focus in the message box.
    w.click(".baton-launcher");
    w.wait_focus("baton-composer__input").await;

    // ArrowDown on the button opens the menu on its first item; ArrowUp opens it on the last.
    let more = w.get("[aria-label='More options']");
    key(&more, "ArrowDown");
    w.wait_focus("Request live agent").await;
    assert_eq!(more.get_attribute("aria-expanded").as_deref(), Some("true"));
    // Arrows, Home and End move among the enabled items (one here), wrapping.
    key(&w.active(), "ArrowDown");
    w.wait_focus("Request live agent").await;
    key(&w.active(), "End");
    w.wait_focus("Request live agent").await;
    // Escape closes the menu only, and the focus returns to the button.
    key(&w.active(), "Escape");
    w.wait_focus("More options").await;
    tick().await;
    assert!(w.find("[role=menu]:not([hidden])").is_none());
    assert!(w.find("[role=dialog]").is_some());

    // While queued, "Request live agent" is disabled and skipped: the menu opens on "Cancel
    // request", whichever way it is opened.
    w.chat.state.set(ConversationState::Queued {
        position: Some(2),
        agents_online: Some(true),
    });
    tick().await;
    key(&more, "ArrowUp");
    w.wait_focus("Cancel request").await;
    key(&w.active(), "Home");
    w.wait_focus("Cancel request").await;
    assert!(
        w.get("[role=menuitem][disabled]")
            .text_content()
            .unwrap()
            .contains("Request live agent")
    );
    // Tab closes the menu (the focus moves on from the button).
    key(&w.active(), "Tab");
    tick().await;
    assert!(w.find("[role=menu]:not([hidden])").is_none());
    assert_eq!(
        more.get_attribute("aria-expanded").as_deref(),
        Some("false")
    );

    // A click elsewhere (the focus leaves the menu) closes it too.
    w.click("[aria-label='More options']");
    w.wait_focus("Cancel request").await;
    w.get(".baton-transcript")
        .unchecked_into::<HtmlElement>()
        .focus()
        .unwrap();
    tick().await;
    assert!(w.find("[role=menu]:not([hidden])").is_none());

    // Escape in the panel closes it and the focus returns to the launcher.
    key(&w.get(".baton-composer__input"), "Escape");
    w.wait_focus("baton-launcher").await;
    assert!(w.find("[role=dialog]").is_none());
}

#[wasm_bindgen_test]
async fn the_menu_says_why_a_person_cannot_come_and_the_status_text_is_the_servers() {
    let w = mount(NOWHERE);
    w.chat.open.set(true);
    tick().await;
    // Closed: the item is disabled, and says when the team is back.
    w.chat.offload.set(Some(OffloadStatus {
        next_open_at: Some("2026-11-23T09:00:00+01:00".into()),
        message: Some("The shop's team is away.".into()),
        ..status(OffloadState::Closed)
    }));
    w.click("[aria-label='More options']");
    tick().await;
    let item = w.get("[role=menuitem]");
    assert!(item.has_attribute("disabled"));
    let reason = w.text("#baton-menu-reason");
    assert!(
        reason.starts_with("The shop's team is away. We are back "),
        "{reason}"
    );
    assert_eq!(
        item.get_attribute("aria-describedby").as_deref(),
        Some("baton-menu-reason")
    );
    assert_eq!(
        item.get_attribute("aria-label").as_deref(),
        Some("Request live agent")
    );
    // With no enabled item, the focus goes to the menu itself, and Escape still closes it.
    w.wait_focus("baton-menu__list").await;
    key(&w.active(), "Escape");
    w.wait_focus("More options").await;

    // Disabled: its own configured sentence.
    w.chat.offload.set(Some(OffloadStatus {
        message: Some("Live chat is off today.".into()),
        ..status(OffloadState::Disabled)
    }));
    w.click("[aria-label='More options']");
    tick().await;
    assert_eq!(w.text("#baton-menu-reason"), "Live chat is off today.");
    key(&w.active(), "Escape");

    // Open: the item is enabled with no reason.
    w.chat.offload.set(Some(status(OffloadState::Open)));
    w.click("[aria-label='More options']");
    tick().await;
    assert!(!w.get("[role=menuitem]").has_attribute("disabled"));
    assert!(w.find("#baton-menu-reason").is_none());
    key(&w.active(), "Escape");

    // Queued after a reload (no handover answer to quote): the status line uses the server's
    // configured waiting text from the status, not the widget's fallback.
    w.chat.offload.set(Some(OffloadStatus {
        message: Some("Hang on, the shop's team is coming.".into()),
        ..status(OffloadState::Open)
    }));
    for e in request(
        1,
        ConversationState::Queued {
            position: None,
            agents_online: Some(true),
        },
    ) {
        w.chat.apply_event(e);
    }
    tick().await;
    assert_eq!(
        w.text(".baton-status"),
        "Hang on, the shop's team is coming."
    );
    w.click("[aria-label='More options']");
    tick().await;
    assert_eq!(
        w.text("#baton-menu-reason"),
        "You are already in the queue."
    );
}

#[wasm_bindgen_test]
async fn a_long_transcript_keeps_a_bounded_dom_and_shows_earlier_lines_on_request() {
    let w = mount(NOWHERE);
    w.chat.open.set(true);
    for i in 0..450 {
        w.chat.push(
            Role::Bot,
            format!("line {i}"),
            None,
            None,
            vec![],
            Default::default(),
            baton_widget::store::Delivery::Sent,
        );
    }
    tick().await;
    let count = |w: &Mounted| {
        w.root
            .query_selector_all(".baton-message")
            .unwrap()
            .length()
    };
    assert_eq!(count(&w), 200, "only the newest lines are in the DOM");
    assert_eq!(
        w.text(".baton-transcript__list li:last-child .baton-message__text"),
        "line 449"
    );
    assert_eq!(w.text(".baton-earlier"), "Show earlier messages (250)");
    w.click(".baton-earlier");
    tick().await;
    assert_eq!(count(&w), 400);
    assert_eq!(w.text(".baton-earlier"), "Show earlier messages (50)");
    w.click(".baton-earlier");
    tick().await;
    assert_eq!(count(&w), 450);
    assert!(w.get(".baton-earlier").has_attribute("hidden"));
    assert_eq!(
        w.text(".baton-transcript__list li:first-child .baton-message__text"),
        "line 0"
    );
}

#[wasm_bindgen_test]
async fn party_text_is_never_interpreted_as_html() {
    let w = mount(NOWHERE);
    w.chat.open.set(true);
    let evil = "<img src=x onerror=\"window.pwned=1\"><b>bold</b>";
    w.chat.on_bot_answer(vec![BotItem {
        text: Some(evil.into()),
        ..Default::default()
    }]);
    w.chat.apply_event(Event {
        seq: 1,
        ts: "t".into(),
        body: EventBody::text(Role::Agent, evil),
    });
    tick().await;
    let texts = w.root.query_selector_all(".baton-message__text").unwrap();
    assert_eq!(texts.length(), 2);
    for i in 0..texts.length() {
        assert_eq!(texts.item(i).unwrap().text_content().unwrap(), evil);
    }
    assert!(w.find(".baton-transcript img").is_none());
    assert!(w.find(".baton-transcript b").is_none());
}

#[wasm_bindgen_test]
async fn a_bot_picture_and_cards_are_drawn_with_web_addresses_only() {
    let w = mount(NOWHERE);
    w.chat.open.set(true);
    let answer = r#"[
      {"recipient_id": "v", "text": "Our plans", "image": "https://a.example/p.png"},
      {"recipient_id": "v", "attachment": {"type": "template", "payload": {"template_type": "generic", "elements": [
        {"title": "Basic <b>x</b>", "subtitle": "For one site", "image_url": "javascript:alert(1)",
         "buttons": [{"type": "postback", "title": "Choose", "payload": "/pricing"},
                     {"type": "web_url", "title": "Details", "url": "https://a.example/d"},
                     {"type": "web_url", "title": "Evil", "url": "javascript:alert(1)"}]},
        {"title": "Pro", "image_url": "https://a.example/pro.png"}]}}},
      {"recipient_id": "v", "image": "javascript:alert(1)"}
    ]"#;
    w.chat
        .on_bot_answer(baton_client::wire::read_bot_answer(answer).unwrap());
    tick().await;
    // The picture, with the site's text alternative; the bad one is not drawn at all.
    let images = w.root.query_selector_all(".baton-message__image").unwrap();
    assert_eq!(images.length(), 1);
    let img: Element = images.item(0).unwrap().unchecked_into();
    assert_eq!(img.get_attribute("src").unwrap(), "https://a.example/p.png");
    assert_eq!(
        img.get_attribute("alt").unwrap(),
        "Image from the assistant"
    );
    assert_eq!(
        w.root
            .query_selector_all(".baton-message")
            .unwrap()
            .length(),
        2
    );
    // The cards: a focusable, labelled row; titles as text, never HTML.
    let row = w.get(".baton-cards");
    assert_eq!(row.get_attribute("tabindex").as_deref(), Some("0"));
    assert_eq!(
        row.get_attribute("aria-label").as_deref(),
        Some("Options from the assistant")
    );
    let titles = w.root.query_selector_all(".baton-card__title").unwrap();
    assert_eq!(titles.length(), 2);
    assert_eq!(
        titles.item(0).unwrap().text_content().unwrap(),
        "Basic <b>x</b>"
    );
    assert!(w.find(".baton-cards b").is_none());
    assert_eq!(w.text(".baton-card__subtitle"), "For one site");
    let card_images = w.root.query_selector_all(".baton-card__image").unwrap();
    assert_eq!(card_images.length(), 1, "javascript: is dropped");
    let link = w.get(".baton-card a.baton-chip");
    assert_eq!(link.text_content().unwrap(), "Details");
    assert_eq!(link.get_attribute("href").unwrap(), "https://a.example/d");
    assert_eq!(link.get_attribute("target").unwrap(), "_blank");
    assert_eq!(link.get_attribute("rel").unwrap(), "noopener noreferrer");
    assert_eq!(
        w.root.query_selector_all(".baton-card a").unwrap().length(),
        1
    );

    // The same from a stored event (a reload, the visitor socket), read as the socket reads it.
    let frame = r#"{"type": "event", "event": {"seq": 1, "ts": "t", "type": "message", "role": "bot",
        "text": "", "attachment": {"type": "image", "payload": {"src": "https://a.example/s.png"}}}}"#;
    w.chat
        .on_frame(baton_client::wire::read_visitor_server_frame(frame).unwrap());
    tick().await;
    let images = w.root.query_selector_all(".baton-message__image").unwrap();
    assert_eq!(images.length(), 2);
    let stored: Element = images.item(1).unwrap().unchecked_into();
    assert_eq!(
        stored.get_attribute("src").unwrap(),
        "https://a.example/s.png"
    );
}

#[wasm_bindgen_test]
async fn refusals_are_told_in_the_widget_s_language_by_their_code() {
    use baton_protocol::ws::{ErrorCode, VisitorServerFrame};
    // German texts: the server's English sentence gives way to the site's text by code.
    let de = default_texts()
        .replacen("{\"v\":1,", "{\"v\":1,\"locale\":\"de\",", 1)
        .replace(
            "That was a lot at once. Please wait a moment and try again.",
            "Langsam bitte.",
        )
        .replace("That is not possible right now.", "Geht gerade nicht.");
    let w = mount_with(detached(NOWHERE), &de);
    w.chat.open.set(true);
    for (code, expected) in [
        (ErrorCode::RateLimited, "Langsam bitte."),
        (ErrorCode::Forbidden, "Geht gerade nicht."),
        (ErrorCode::InvalidState, "Geht gerade nicht."),
    ] {
        w.chat.on_frame(VisitorServerFrame::Error {
            code,
            message: "English words for developers".into(),
            client_msg_id: None,
        });
        tick().await;
        assert_eq!(w.text(".baton-error"), expected, "{code:?}");
    }
    // In English, a refusal of what was entered keeps the server's precise sentence.
    let en = default_texts().replacen("{\"v\":1,", "{\"v\":1,\"locale\":\"en\",", 1);
    let e = mount_with(detached(NOWHERE), &en);
    e.chat.open.set(true);
    e.chat.on_frame(VisitorServerFrame::Error {
        code: ErrorCode::BadRequest,
        message: "the e-mail address is not valid".into(),
        client_msg_id: None,
    });
    tick().await;
    assert_eq!(e.text(".baton-error"), "the e-mail address is not valid");
    e.chat.on_frame(VisitorServerFrame::Error {
        code: ErrorCode::Internal,
        message: "database is locked".into(),
        client_msg_id: None,
    });
    tick().await;
    assert_eq!(
        e.text(".baton-error"),
        "Something went wrong on our side. Please try again."
    );
}

fn status(state: OffloadState) -> OffloadStatus {
    OffloadStatus {
        v: 2,
        state,
        agents_online: Some(true),
        queue_length: 0,
        next_open_at: None,
        message: None,
    }
}

/// The two events of one handover request, at `seq` and `seq + 1`.
fn request(seq: u64, outcome: ConversationState) -> Vec<Event> {
    vec![
        Event {
            seq,
            ts: "t".into(),
            body: EventBody::HandoverRequested {
                reason: HandoverReason::UserRequest,
                reason_text: None,
                message_to_agent: None,
                queue: Some("default".into()),
                skill: None,
                page_url: None,
                slots: vec![],
                locale: None,
            },
        },
        Event {
            seq: seq + 1,
            ts: "t".into(),
            body: EventBody::HandoverOutcome { outcome },
        },
    ]
}

fn answer(
    outcome: ConversationState,
    message: &str,
    state: OffloadState,
    seq: u64,
) -> HandoverResponse {
    HandoverResponse {
        state: outcome.clone(),
        message: message.into(),
        status: status(state),
        session: None,
        events: request(seq, outcome),
    }
}

#[wasm_bindgen_test]
async fn a_queued_widget_keeps_the_answers_text_until_the_status_changes() {
    let w = mount(NOWHERE);
    w.chat.open.set(true);
    let queued = ConversationState::Queued {
        position: None,
        agents_online: Some(true),
    };
    // The bot's own waiting text comes with the handover answer.
    w.chat.on_handover(answer(
        queued,
        "Our florist will be with you.",
        OffloadState::Open,
        1,
    ));
    tick().await;
    assert_eq!(w.text(".baton-status"), "Our florist will be with you.");
    // The status pushed right after the socket's welcome is the same one: the text stays.
    w.chat.take_status(OffloadStatus {
        message: Some("Please wait.".into()),
        ..status(OffloadState::Open)
    });
    tick().await;
    assert_eq!(w.text(".baton-status"), "Our florist will be with you.");
    // The last agent leaves: the status changed, so its text is the news now.
    w.chat.take_status(OffloadStatus {
        agents_online: Some(false),
        message: Some("No agents right now; we will connect you.".into()),
        ..status(OffloadState::Open)
    });
    tick().await;
    assert_eq!(
        w.text(".baton-status"),
        "No agents right now; we will connect you."
    );
}

#[wasm_bindgen_test]
async fn each_offloading_state_shows_its_own_message() {
    let w = mount(NOWHERE);
    w.chat.open.set(true);
    tick().await;
    assert_eq!(
        w.text(".baton-status"),
        "",
        "no status line while the bot answers"
    );

    w.chat.on_handover(answer(
        ConversationState::Queued {
            position: Some(1),
            agents_online: Some(true),
        },
        "Please wait for a couple of minutes while a live agent connects to this chat session.",
        OffloadState::Open,
        1,
    ));
    tick().await;
    assert_eq!(
        w.text(".baton-status"),
        "Please wait for a couple of minutes while a live agent connects to this chat session. You are next in line."
    );
    assert_eq!(w.text(".baton-panel__subtitle"), "Waiting for an agent");

    // The visitor leaves the queue, then asks again outside opening hours.
    w.chat.apply_event(Event {
        seq: 3,
        ts: "t".into(),
        body: EventBody::HandoverCancelled,
    });
    w.chat.on_handover(answer(
        ConversationState::Closed {
            next_open_at: Some("2030-01-07T08:00:00+00:00".into()),
        },
        "We are closed.",
        OffloadState::Closed,
        4,
    ));
    tick().await;
    let closed = w.text(".baton-status");
    assert!(
        closed.starts_with("We are closed. We are back "),
        "{closed}"
    );
    assert!(
        closed.contains("2030"),
        "the next opening is shown: {closed}"
    );

    w.chat.on_handover(answer(
        ConversationState::Disabled,
        "Live chat is switched off.",
        OffloadState::Disabled,
        6,
    ));
    tick().await;
    assert_eq!(w.text(".baton-status"), "Live chat is switched off.");
    assert_eq!(w.text(".baton-panel__subtitle"), "Assistant");
    // The same events again (a repeated answer) change nothing.
    w.chat.on_handover(answer(
        ConversationState::Disabled,
        "Live chat is switched off.",
        OffloadState::Disabled,
        6,
    ));
    assert_eq!(w.chat.last_seq(), 7);
    // Once the visitor writes to the bot again, the outcome is no longer news.
    w.chat.moved_on.set(true);
    tick().await;
    assert_eq!(w.text(".baton-status"), "");
}

#[wasm_bindgen_test]
async fn durable_events_apply_once_and_drive_the_state() {
    let w = mount(NOWHERE);
    w.chat.open.set(true);
    for e in request(
        3,
        ConversationState::Queued {
            position: None,
            agents_online: Some(true),
        },
    ) {
        w.chat.apply_event(e);
    }
    assert!(matches!(
        w.chat.state.get_untracked(),
        ConversationState::Queued { .. }
    ));
    let dana = AgentRef {
        id: AgentId::from("a_1"),
        name: "Dana".into(),
    };
    let joined = Event {
        seq: 5,
        ts: "t".into(),
        body: EventBody::AgentJoined {
            agent: dana.clone(),
        },
    };
    w.chat.apply_event(joined.clone());
    w.chat.apply_event(joined); // replayed after a reconnect
    let hello = Event {
        seq: 6,
        ts: "t".into(),
        body: EventBody::Message {
            role: Role::Agent,
            text: "Hi, I'm Dana".into(),
            client_msg_id: None,
            agent: Some(dana),
            buttons: vec![],
            image: None,
            attachment: None,
            custom: None,
        },
    };
    w.chat.apply_event(hello.clone());
    w.chat.apply_event(hello);
    tick().await;
    assert_eq!(
        w.root
            .query_selector_all(".baton-message--agent")
            .unwrap()
            .length(),
        1
    );
    assert_eq!(
        w.root
            .query_selector_all(".baton-message--system")
            .unwrap()
            .length(),
        1
    );
    assert_eq!(
        w.text(".baton-message--agent .baton-message__author"),
        "Dana"
    );
    assert_eq!(w.text(".baton-status"), "You are chatting with Dana.");
    assert_eq!(w.text(".baton-panel__subtitle"), "Live agent");

    w.chat.apply_event(Event {
        seq: 7,
        ts: "t".into(),
        body: EventBody::ChatEnded { by: EndedBy::Agent },
    });
    tick().await;
    assert!(matches!(
        w.chat.state.get_untracked(),
        ConversationState::Ended { by: EndedBy::Agent }
    ));
    assert!(w.text(".baton-transcript").contains("Dana ended the chat."));
    assert!(w.text(".baton-status").contains("has ended"));
    // The menu offers a person again.
    w.click("[aria-label='More options']");
    tick().await;
    assert!(!w.get("[role=menuitem]").has_attribute("disabled"));
}

#[wasm_bindgen_test]
async fn an_unreachable_server_is_reported_and_nothing_is_lost() {
    let w = mount(NOWHERE);
    w.click(".baton-launcher");
    tick().await;
    let input: web_sys::HtmlTextAreaElement =
        w.get("textarea.baton-composer__input").unchecked_into();
    input.set_value("hello?");
    input
        .dispatch_event(&web_sys::Event::new("input").unwrap())
        .unwrap();
    w.click(".baton-composer__send");
    tick().await;
    assert_eq!(
        w.text(".baton-message--visitor .baton-message__text"),
        "hello?",
        "the message stays on screen"
    );
    w.wait_for_text(".baton-message--visitor", "Not sent").await;
    assert!(
        w.find(".baton-message--visitor .baton-link").is_some(),
        "with a Retry button"
    );
    w.wait_for_text(".baton-error", "cannot be reached").await;

    // Asking for a person against a dead server is honest too: back with the bot, with an error.
    w.click("[aria-label='More options']");
    tick().await;
    w.click("[role=menuitem]");
    tick().await;
    for _ in 0..200 {
        if w.chat.state.get_untracked() == ConversationState::Bot {
            break;
        }
        tick().await;
    }
    assert_eq!(w.chat.state.get_untracked(), ConversationState::Bot);
    assert!(w.text(".baton-error").contains("cannot be reached"));
}

#[wasm_bindgen_test]
async fn a_message_the_server_never_stored_comes_back_after_a_reload() {
    use baton_browser::BrowserStorage;
    use baton_client::outbox::MemoryStorage;
    let storage = MemoryStorage::default();
    let settings = || Settings {
        server: NOWHERE.into(),
        title: "Support".into(),
    };
    let w = mount_chat(Chat::with_outbox(
        settings(),
        BrowserStorage::from_memory(storage.clone()),
    ));
    w.chat.open.set(true);
    tick().await;
    w.chat.send_text("my order is late".into());
    w.wait_for_text(".baton-message--visitor", "Not sent").await;

    // The page is reloaded (a new store over the same storage): once the panel opens, the
    // message is back, not sent, with its Retry.
    let again = mount_chat(Chat::with_outbox(
        settings(),
        BrowserStorage::from_memory(storage.clone()),
    ));
    again.chat.open.set(true);
    again
        .wait_for_text(".baton-message--visitor", "my order is late")
        .await;
    assert!(again.text(".baton-message--visitor").contains("Not sent"));
    assert!(again.find(".baton-message--visitor .baton-link").is_some());
    assert_eq!(
        again
            .root
            .query_selector_all(".baton-message--visitor")
            .unwrap()
            .length(),
        1
    );
}

#[wasm_bindgen_test]
async fn every_sentence_is_the_site_owners() {
    // German texts from the server's configuration: the widget shows them, not its own.
    let german = default_texts().replace(
        "}}",
        ",\"send\":\"Senden\",\"request_agent\":\"Mit einem Menschen sprechen\",\
         \"placeholder\":\"Ihre Nachricht…\",\"open_chat\":\"Chat öffnen\",\
         \"agent_joined\":\"{agent} ist jetzt da.\"}}",
    );
    let chat = Chat::detached(Settings {
        server: NOWHERE.into(),
        title: "Hilfe".into(),
    });
    let w = mount_with(chat, &german);
    tick().await;
    assert_eq!(
        w.get(".baton-launcher")
            .get_attribute("aria-label")
            .as_deref(),
        Some("Chat öffnen")
    );
    w.chat.open.set(true);
    tick().await;
    assert_eq!(w.text(".baton-composer__send"), "Senden");
    assert_eq!(
        w.get(".baton-composer__input")
            .get_attribute("placeholder")
            .as_deref(),
        Some("Ihre Nachricht…")
    );
    w.get(".baton-menu .baton-icon-button")
        .unchecked_into::<HtmlElement>()
        .click();
    tick().await;
    assert!(
        w.text("[role=menuitem]")
            .contains("Mit einem Menschen sprechen")
    );
    w.chat.apply_event(Event {
        seq: 1,
        ts: "t".into(),
        body: EventBody::AgentJoined {
            agent: AgentRef {
                id: AgentId::from("a"),
                name: "Dana".into(),
            },
        },
    });
    tick().await;
    assert!(w.text(".baton-transcript").contains("Dana ist jetzt da."));
}

#[wasm_bindgen_test]
async fn the_focus_stays_in_the_menu_when_its_item_is_disabled_under_it() {
    let w = mount(NOWHERE);
    w.chat.open.set(true);
    tick().await;
    let more = w.get(".baton-menu .baton-icon-button");
    key(&more, "ArrowDown");
    w.wait_focus("Request live agent").await;
    // Live chat is switched off while the item has the focus: the menu stays open and the
    // focus moves to the menu itself (nothing in it can be chosen now), not to the page.
    w.chat.take_status(OffloadStatus {
        v: 2,
        state: OffloadState::Disabled,
        agents_online: Some(false),
        queue_length: 0,
        next_open_at: None,
        message: Some("Off today.".into()),
    });
    w.wait_focus("Chat options").await;
    assert!(w.chat.menu_open.get_untracked());
    key(&w.active(), "Escape");
    w.wait_focus("More options").await;
}

#[wasm_bindgen_test]
async fn a_message_on_its_way_to_an_agent_who_ended_the_chat_can_be_sent_again() {
    let w = mount(NOWHERE);
    w.chat.open.set(true);
    let dana = AgentRef {
        id: AgentId::from("a"),
        name: "Dana".into(),
    };
    let event = |seq, body| Event {
        seq,
        ts: "t".into(),
        body,
    };
    for e in request(
        1,
        ConversationState::Queued {
            position: Some(1),
            agents_online: Some(true),
        },
    ) {
        w.chat.apply_event(e);
    }
    w.chat
        .apply_event(event(3, EventBody::AgentJoined { agent: dana }));
    tick().await;
    assert!(matches!(
        w.chat.state.get_untracked(),
        ConversationState::AgentJoined { .. }
    ));
    // The socket is down: the message waits, "Sending…".
    w.chat.send_text("are you still there?".into());
    w.wait_for_text(".baton-message--visitor", "Sending").await;
    // The agent ended the chat before it arrived: it is offered again, not left pending.
    w.chat
        .apply_event(event(4, EventBody::ChatEnded { by: EndedBy::Agent }));
    w.wait_for_text(".baton-message--visitor", "Not sent").await;
    assert!(w.find(".baton-message--visitor .baton-link").is_some());
}

#[wasm_bindgen_test]
async fn a_message_typed_while_the_history_loads_comes_after_it() {
    use baton_protocol::ids::VisitorId;
    use baton_widget::store::Credential;
    // A returning visitor (a credential, no live session) opens the panel: the history is
    // replayed over a socket (here to a closed port, so it ends with the socket).
    let w = mount(NOWHERE);
    w.chat.set_credential(Some(Credential {
        visitor_id: VisitorId("v-1".into()),
        token: "t".into(),
    }));
    // (Called directly, so that nothing runs in between: the closed port fails fast.)
    w.chat.load_history();
    // Typed at once, then the history arrives: the new line must end up last.
    w.chat.send_text("typed early".into());
    for (seq, text) in [(1, "earlier question"), (2, "earlier answer")] {
        w.chat.apply_event(Event {
            seq,
            ts: "t".into(),
            body: EventBody::text(if seq == 1 { Role::Visitor } else { Role::Bot }, text),
        });
    }
    w.chat.open.set(true);
    w.wait_for_text(".baton-transcript__list li:last-child", "Not sent")
        .await;
    let texts: Vec<String> = {
        let nodes = w.root.query_selector_all(".baton-message__text").unwrap();
        (0..nodes.length())
            .map(|i| nodes.item(i).unwrap().text_content().unwrap())
            .collect()
    };
    assert_eq!(texts, ["earlier question", "earlier answer", "typed early"]);
}

#[wasm_bindgen_test]
async fn the_menu_item_follows_the_site_owners_rule() {
    let visitor_line = |seq: u64| Event {
        seq,
        ts: "t".into(),
        body: EventBody::text(Role::Visitor, format!("message {seq}")),
    };
    // After 2 messages: no menu at first (it would be empty), the item once 2 are stored.
    let w = mount_with(
        detached(NOWHERE),
        &default_texts().replacen("{", "{\"request_item_after\":2,", 1),
    );
    w.chat.open.set(true);
    tick().await;
    assert!(
        w.get(".baton-menu").has_attribute("hidden"),
        "no menu before 2 messages"
    );
    w.chat.apply_event(visitor_line(1));
    tick().await;
    assert!(w.get(".baton-menu").has_attribute("hidden"));
    w.chat.apply_event(visitor_line(2));
    tick().await;
    w.get(".baton-menu .baton-icon-button")
        .unchecked_into::<HtmlElement>()
        .click();
    tick().await;
    assert!(!w.get(".baton-menu").has_attribute("hidden"));
    assert!(w.text("[role=menuitem]").contains("Request live agent"));

    // Never: no menu with the bot; while queued (the bot handed over) only "Cancel request".
    let w = mount_with(
        detached(NOWHERE),
        &default_texts().replacen("{", "{\"request_item_after\":null,", 1),
    );
    w.chat.open.set(true);
    w.chat.apply_event(visitor_line(1));
    tick().await;
    assert!(
        w.get(".baton-menu").has_attribute("hidden"),
        "never: no menu with the bot"
    );
    for e in request(
        2,
        ConversationState::Queued {
            position: Some(1),
            agents_online: Some(true),
        },
    ) {
        w.chat.apply_event(e);
    }
    tick().await;
    w.get(".baton-menu .baton-icon-button")
        .unchecked_into::<HtmlElement>()
        .click();
    tick().await;
    let shown = "li:not([hidden]) > [role=menuitem]";
    assert_eq!(w.root.query_selector_all(shown).unwrap().length(), 1);
    assert_eq!(w.text(shown), "Cancel request");
}

#[wasm_bindgen_test]
fn every_state_has_its_own_sentence() {
    use baton_protocol::bot::HandoverReason;
    use baton_widget::texts::status_line;
    let chat = with_texts(detached(NOWHERE));
    let tx = |t| chat.t(t);
    let line = |s: &ConversationState, notice: Option<&str>| {
        status_line(s, notice, |at| format!("on {at}"), &tx)
    };
    assert_eq!(line(&ConversationState::Bot, None), None);
    assert!(
        line(
            &ConversationState::HandoverRequested {
                reason: HandoverReason::UserRequest
            },
            None
        )
        .unwrap()
        .starts_with("Checking")
    );
    assert_eq!(
        line(
            &ConversationState::Queued {
                position: Some(3),
                agents_online: Some(true)
            },
            Some("Hold on.")
        )
        .unwrap(),
        "Hold on. You are number 3 in line."
    );
    // The estimated wait goes after the place in line, in whole minutes, only while queued.
    use baton_widget::texts::with_wait;
    let queued = ConversationState::Queued {
        position: Some(2),
        agents_online: Some(true),
    };
    assert_eq!(
        with_wait("Hold on.".into(), &queued, Some(61), &tx),
        "Hold on. Estimated wait: about 2 min."
    );
    assert_eq!(
        with_wait("Hold on.".into(), &queued, Some(5), &tx),
        "Hold on. Estimated wait: about 1 min."
    );
    assert_eq!(with_wait("Hold on.".into(), &queued, None, &tx), "Hold on.");
    assert_eq!(
        with_wait(
            "Closed.".into(),
            &ConversationState::Disabled,
            Some(60),
            &tx
        ),
        "Closed."
    );
    let dana = AgentRef {
        id: AgentId::from("a"),
        name: "Dana".into(),
    };
    assert_eq!(
        line(&ConversationState::AgentJoined { agent: dana }, None).unwrap(),
        "You are chatting with Dana."
    );
    assert!(
        line(&ConversationState::Ended { by: EndedBy::Agent }, None)
            .unwrap()
            .contains("has ended")
    );
    assert_eq!(
        line(
            &ConversationState::Closed {
                next_open_at: Some("X".into())
            },
            Some("Closed.")
        )
        .unwrap(),
        "Closed. We are back on X."
    );
    assert_eq!(
        line(&ConversationState::Disabled, Some("Off today.")).unwrap(),
        "Off today."
    );
    assert!(
        line(&ConversationState::Unavailable, None)
            .unwrap()
            .starts_with("No agent")
    );

    // What the widget shows: "checking" while a request is on its way; an outcome's sentence
    // only until the visitor writes again (the bot has taken over by then); live states stay.
    use baton_widget::texts::shown_status;
    let shown = |s: &ConversationState, requesting, moved_on| {
        shown_status(
            s,
            requesting,
            moved_on,
            Some("Off."),
            |at| at.to_owned(),
            &tx,
        )
    };
    assert!(
        shown(&ConversationState::Bot, true, false)
            .unwrap()
            .starts_with("Checking")
    );
    assert_eq!(
        shown(&ConversationState::Disabled, false, false).as_deref(),
        Some("Off.")
    );
    assert_eq!(shown(&ConversationState::Disabled, false, true), None);
    assert_eq!(
        shown(
            &ConversationState::Ended { by: EndedBy::Agent },
            false,
            true
        ),
        None
    );
    assert!(
        shown(
            &ConversationState::Queued {
                position: None,
                agents_online: Some(true)
            },
            false,
            true
        )
        .is_some(),
        "waiting is still news after the visitor writes"
    );
}

#[wasm_bindgen_test]
async fn when_the_agent_leaves_the_visitor_reads_the_notice_and_waits_again() {
    let w = mount(NOWHERE);
    w.chat.open.set(true);
    for e in request(
        1,
        ConversationState::Queued {
            position: Some(1),
            agents_online: Some(true),
        },
    ) {
        w.chat.apply_event(e);
    }
    // As the visitor socket reads them: Dana joins, then her console is gone for good.
    for frame in [
        r#"{"type": "event", "event": {"seq": 3, "ts": "t", "type": "agent_joined", "agent": {"id": "a", "name": "Dana"}}}"#,
        r#"{"type": "event", "event": {"seq": 4, "ts": "t", "type": "message", "role": "system", "text": "Dana has left the chat. You are back in the queue."}}"#,
        r#"{"type": "event", "event": {"seq": 5, "ts": "t", "type": "agent_left", "agent": {"id": "a", "name": "Dana"}}}"#,
    ] {
        w.chat
            .on_frame(baton_client::wire::read_visitor_server_frame(frame).unwrap());
    }
    tick().await;
    assert!(
        matches!(
            w.chat.state.get_untracked(),
            ConversationState::Queued { .. }
        ),
        "{:?}",
        w.chat.state.get_untracked()
    );
    w.wait_for_text(
        ".baton-transcript__list li:last-child",
        "Dana has left the chat. You are back in the queue.",
    )
    .await;
    assert_eq!(w.text(".baton-panel__subtitle"), "Waiting for an agent");
    assert!(
        !w.text(".baton-status").contains("Dana"),
        "no longer chatting with Dana: {}",
        w.text(".baton-status")
    );
}

#[wasm_bindgen_test]
async fn the_agent_typing_and_seen_show_and_go() {
    let w = mount(NOWHERE);
    w.chat.open.set(true);
    for e in request(
        1,
        ConversationState::Queued {
            position: Some(1),
            agents_online: Some(true),
        },
    ) {
        w.chat.apply_event(e);
    }
    let frame = |text: &str| {
        w.chat
            .on_frame(baton_client::wire::read_visitor_server_frame(text).unwrap())
    };
    frame(
        r#"{"type": "event", "event": {"seq": 3, "ts": "t", "type": "agent_joined", "agent": {"id": "a", "name": "Dana"}}}"#,
    );
    frame(
        r#"{"type": "event", "event": {"seq": 4, "ts": "t", "type": "message", "role": "visitor", "text": "Where is my order?"}}"#,
    );
    tick().await;
    assert_eq!(
        w.text(".baton-seen"),
        "",
        "not seen before the agent reads it"
    );
    // The agent reads up to the visitor's line: "Seen" under it, in a status region.
    frame(r#"{"type": "read", "seq": 4}"#);
    tick().await;
    assert_eq!(w.text(".baton-seen"), "Seen");
    assert_eq!(
        w.get(".baton-seen").get_attribute("role").as_deref(),
        Some("status")
    );
    // The agent types: its name, in a status region; its message ends it.
    frame(r#"{"type": "typing", "agent": {"id": "a", "name": "Dana"}}"#);
    w.wait_for_text(".baton-typing", "Dana is typing…").await;
    assert_eq!(
        w.get(".baton-typing").get_attribute("role").as_deref(),
        Some("status")
    );
    frame(
        r#"{"type": "event", "event": {"seq": 5, "ts": "t", "type": "message", "role": "agent", "text": "Let me look.", "agent": {"id": "a", "name": "Dana"}}}"#,
    );
    tick().await;
    assert_eq!(w.text(".baton-typing"), "");
    // The last line is the agent's now: nothing to say "Seen" under.
    assert_eq!(w.text(".baton-seen"), "");
    // A new visitor line is not seen until read again.
    frame(
        r#"{"type": "event", "event": {"seq": 6, "ts": "t", "type": "message", "role": "visitor", "text": "Thanks"}}"#,
    );
    tick().await;
    assert_eq!(w.text(".baton-seen"), "");
    frame(r#"{"type": "read", "seq": 6}"#);
    tick().await;
    assert_eq!(w.text(".baton-seen"), "Seen");
    // An indicator with no message after it goes after a few seconds.
    frame(r#"{"type": "typing", "agent": {"id": "a", "name": "Dana"}}"#);
    w.wait_for_text(".baton-typing", "Dana is typing…").await;
    let p = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(
                &resolve,
                baton_protocol::ws::TYPING_SHOWN_MS as i32 + 200,
            )
            .unwrap();
    });
    JsFuture::from(p).await.unwrap();
    tick().await;
    assert_eq!(w.text(".baton-typing"), "");
}

#[wasm_bindgen_test]
async fn after_an_agent_chat_the_visitor_may_rate_it_and_keep_the_transcript() {
    let w = mount(NOWHERE);
    w.chat.open.set(true);
    for e in request(
        1,
        ConversationState::Queued {
            position: Some(1),
            agents_online: Some(true),
        },
    ) {
        w.chat.apply_event(e);
    }
    tick().await;
    assert!(
        w.get(".baton-after").has_attribute("hidden"),
        "nothing to rate before an agent chat"
    );
    for frame in [
        r#"{"type": "event", "event": {"seq": 3, "ts": "t", "type": "agent_joined", "agent": {"id": "a", "name": "Dana"}}}"#,
        r#"{"type": "event", "event": {"seq": 4, "ts": "t", "type": "message", "role": "agent", "text": "Your tent ships today.", "agent": {"id": "a", "name": "Dana"}}}"#,
        r#"{"type": "event", "event": {"seq": 5, "ts": "t", "type": "chat_ended", "by": "agent"}}"#,
    ] {
        w.chat
            .on_frame(baton_client::wire::read_visitor_server_frame(frame).unwrap());
    }
    tick().await;
    assert!(!w.get(".baton-after").has_attribute("hidden"));
    assert_eq!(w.text(".baton-rate legend"), "How was your chat with Dana?");
    // Five stars, each a named radio button; a comment; the download link.
    assert_eq!(
        w.root
            .query_selector_all(".baton-rate input[type=radio]")
            .unwrap()
            .length(),
        5
    );
    assert_eq!(
        w.get(".baton-rate input[value='4']")
            .get_attribute("aria-label")
            .as_deref(),
        Some("4 of 5 stars")
    );
    assert_eq!(
        w.get(".baton-download")
            .get_attribute("download")
            .as_deref(),
        Some("chat-transcript.txt")
    );
    let text = w.chat.transcript_text();
    assert!(text.starts_with("Support\n\n"), "{text}");
    assert!(text.contains("Dana: Your tent ships today.\n"), "{text}");
    assert!(text.contains("Notice: Dana ended the chat."), "{text}");
    // Following the link makes the file from the transcript as it is.
    w.click(".baton-download");
    let href = w.get(".baton-download").get_attribute("href").unwrap();
    assert!(
        href.starts_with("data:text/plain;charset=utf-8,Support"),
        "{href}"
    );
    assert!(href.contains("Your%20tent%20ships%20today."), "{href}");
    // A new request for a person puts the rating away.
    w.chat.apply_event(Event {
        seq: 6,
        ts: "t".into(),
        body: EventBody::ReturnedToBot,
    });
    w.chat.apply_event(Event {
        seq: 7,
        ts: "t".into(),
        body: EventBody::HandoverRequested {
            reason: HandoverReason::UserRequest,
            reason_text: None,
            message_to_agent: None,
            queue: None,
            skill: None,
            page_url: None,
            slots: vec![],
            locale: None,
        },
    });
    tick().await;
    assert!(w.get(".baton-after").has_attribute("hidden"));
    // A star chosen but not sent stays with that chat: the next chat's form starts empty.
    let star = w.get(".baton-rate input[value='3']");
    js_sys::Reflect::set(&star, &"checked".into(), &true.into()).unwrap();
    for frame in [
        r#"{"type": "event", "event": {"seq": 8, "ts": "t", "type": "handover_outcome", "outcome": {"state": "queued", "position": 1, "agents_online": true}}}"#,
        r#"{"type": "event", "event": {"seq": 9, "ts": "t", "type": "agent_joined", "agent": {"id": "s", "name": "Sam"}}}"#,
        r#"{"type": "event", "event": {"seq": 10, "ts": "t", "type": "chat_ended", "by": "agent"}}"#,
    ] {
        w.chat
            .on_frame(baton_client::wire::read_visitor_server_frame(frame).unwrap());
    }
    tick().await;
    assert_eq!(w.text(".baton-rate legend"), "How was your chat with Sam?");
    assert!(w.find(".baton-rate input:checked").is_none());
}
