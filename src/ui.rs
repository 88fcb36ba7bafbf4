//! The widget's components. They read the store's signals and call its methods; none of them
//! touches the network. Every text from a bot, agent or visitor is a text node.

use leptos::ev;
use leptos::prelude::*;
use wasm_bindgen::JsValue;

use baton_client::media::{Card, CardButton};
use baton_protocol::bot::HandoverDirective;
use baton_protocol::state::ConversationState;
use baton_protocol::status::OffloadState;
use baton_protocol::ws::Role;

use baton_protocol::texts::Text;

use crate::store::{Chat, Delivery, Line};
use crate::texts;

/// The widget root: the launcher and, when open, the panel.
#[component]
pub fn App() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let root = NodeRef::<leptos::html::Div>::new();
    follow_visual_viewport(root);
    // The conversation so far is fetched when the visitor first opens the panel.
    Effect::new(move |_| {
        if chat.open.get() {
            chat.load_history();
            chat.refresh_status();
            chat.report_read();
        }
    });
    // Back to a tab that was hidden: what the agent wrote meanwhile is read now.
    let _ = window_event_listener_untyped("visibilitychange", move |_| chat.report_read());
    // Live status while the panel is open with the bot (the socket carries it otherwise).
    Effect::new(move |_| {
        let with_bot = chat
            .state
            .with(|s| s.transport() == baton_protocol::state::Transport::BotHttp);
        chat.follow_status(chat.open.get() && with_bot);
    });
    view! {
        <div
            class=move || if chat.open.get() { "baton baton--open" } else { "baton" }
            node_ref=root
        >
            <Show when=move || chat.open.get()>
                <Panel/>
            </Show>
            <Launcher/>
        </div>
    }
}

/// Keeps `--baton-vh` / `--baton-vtop` on the widget root at the visual viewport's height and
/// offset, so a full-screen panel on a phone shrinks above the on-screen keyboard instead of
/// hiding its composer behind it. (Set through the CSSOM, which a strict CSP allows.)
fn follow_visual_viewport(root: NodeRef<leptos::html::Div>) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Some(vv) = web_sys::window().and_then(|w| w.visual_viewport()) else {
        return;
    };
    let update = {
        let vv = vv.clone();
        move || {
            if let Some(el) = root.try_get_untracked().flatten() {
                let style = web_sys::HtmlElement::style(&el);
                // Whole pixels: formatting an f64 would add 14 KB of float printing.
                let px = |v: f64| format!("{}px", v.round() as i32);
                let _ = style.set_property("--baton-vh", &px(vv.height()));
                let _ = style.set_property("--baton-vtop", &px(vv.offset_top()));
            }
        }
    };
    Effect::new({
        let update = update.clone();
        move |_| {
            if root.get().is_some() {
                update();
            }
        }
    });
    // The widget lives as long as the page, so its listener does too.
    let listener = Closure::<dyn Fn()>::new(update);
    for event in ["resize", "scroll"] {
        let _ = vv.add_event_listener_with_callback(event, listener.as_ref().unchecked_ref());
    }
    listener.forget();
}

/// Focuses an element once the DOM has settled (after a `Show` mounted or unmounted it).
fn focus_soon(el: impl Fn() -> Option<web_sys::HtmlElement> + 'static) {
    request_animation_frame(move || {
        if let Some(el) = el() {
            let _ = el.focus();
        }
    });
}

/// The round button that opens and closes the panel. Closing the panel, however it happens,
/// brings the focus back here.
#[component]
fn Launcher() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let button = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |was_open: Option<bool>| {
        let open = chat.open.get();
        if was_open == Some(true) && !open {
            focus_soon(move || button.try_get_untracked().flatten().map(Into::into));
        }
        open
    });
    view! {
        <button
            type="button"
            class="baton-launcher"
            node_ref=button
            aria-label=move || chat.t(if chat.open.get() { Text::CloseChat } else { Text::OpenChat })
            aria-expanded=move || chat.open.get().to_string()
            on:click=move |_| chat.open.update(|o| *o = !*o)
        >
            <svg viewBox="0 0 24 24" aria-hidden="true">
                <path d="M4 4h16v12H7l-3 3z"></path>
            </svg>
        </button>
    }
}

/// The chat panel: header with the overflow menu, status line, transcript, composer.
#[component]
fn Panel() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let title = chat.title();
    let label = title.clone();
    let on_keydown = move |ev: ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            if chat.menu_open.get_untracked() {
                chat.menu_open.set(false);
            } else {
                chat.open.set(false);
            }
        }
    };
    view! {
        <section class="baton-panel" role="dialog" aria-label=label on:keydown=on_keydown>
            <header class="baton-panel__header">
                <div class="baton-panel__heading">
                    <h2 class="baton-panel__title">{title}</h2>
                    <p class="baton-panel__subtitle">{move || chat.t(texts::header_label(&chat.state.get()))}</p>
                </div>
                <OverflowMenu/>
                <button
                    type="button"
                    class="baton-icon-button"
                    aria-label=chat.t(Text::CloseChat)
                    on:click=move |_| chat.open.set(false)
                >
                    "×"
                </button>
            </header>
            <StatusLine/>
            <LeaveMessage/>
            <Transcript/>
            <Composer/>
        </section>
    }
}

/// Formats an RFC 3339 instant in the visitor's locale and time zone, to the minute
/// ("Monday, November 23, 2026 at 2:00 AM").
fn format_local(at: &str, locale: &str) -> String {
    let date = js_sys::Date::new(&JsValue::from_str(at));
    if date.get_time().is_nan() {
        return at.to_owned();
    }
    let options = js_sys::Object::new();
    for (key, value) in [("dateStyle", "full"), ("timeStyle", "short")] {
        let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
    }
    let locale = if locale.is_empty() { "default" } else { locale };
    date.to_locale_string(locale, &options).into()
}

/// The honest one-liner for the current state (waiting, closed, disabled, ...), announced
/// politely to screen readers; errors are announced assertively.
#[component]
fn StatusLine() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let text = Memo::new(move |_| {
        let state = chat.state.get();
        let notice = chat.notice.get();
        let offload = chat.offload.get();
        // The server's text from the handover answer, or after a reload the configured one
        // from the status.
        let configured = notice
            .as_deref()
            .or_else(|| texts::configured(&state, offload.as_ref()));
        let requesting = chat.requesting.get();
        let line = texts::shown_status(
            &state,
            requesting,
            chat.moved_on.get(),
            configured,
            |at| format_local(at, &chat.locale()),
            &|t| chat.t(t),
        )?;
        Some(match requesting {
            true => line,
            false => texts::with_wait(line, &state, chat.wait_s.get(), &|t| chat.t(t)),
        })
    });
    view! {
        <div class="baton-status" role="status">
            {move || text.get().map(|t| view! { <p class="baton-status__text">{t}</p> })}
        </div>
        <div class="baton-error" role="alert">
            {move || chat.error.get().map(|e| view! { <p class="baton-error__text">{e}</p> })}
        </div>
    }
}

/// Leave a message, offered while nobody can chat (closed, disabled, or nobody could take the
/// chat): a button, then a small form (name, e-mail, message); once stored, a thank-you line.
#[component]
fn LeaveMessage() -> impl IntoView {
    let chat = expect_context::<Chat>();
    // Nobody can come, and not with (or waiting for) a person.
    let offered = move || match chat.state.get() {
        ConversationState::Closed { .. }
        | ConversationState::Disabled
        | ConversationState::Unavailable => true,
        ConversationState::Queued { .. } | ConversationState::AgentJoined { .. } => false,
        _ => chat
            .offload
            .with(|o| o.as_ref().is_some_and(|s| s.state != OffloadState::Open)),
    };
    let first = NodeRef::<leptos::html::Input>::new();
    let open_form = move |_| {
        chat.leaving.set(true);
        focus_soon(move || first.try_get_untracked().flatten().map(Into::into));
    };
    // Hidden rather than unmounted (switching views costs the widget kilobytes).
    view! {
        <div class="baton-leave" hidden=move || !chat.left.get() && !offered()>
            <p class="baton-leave__sent" role="status">
                {move || chat.left.get().then(|| chat.t(Text::LeaveSent))}
            </p>
            <button type="button" class="baton-link" on:click=open_form
                hidden=move || chat.left.get() || chat.leaving.get()>
                {chat.t(Text::LeaveMessage)}
            </button>
            <form class="baton-leave__form" hidden=move || chat.left.get() || !chat.leaving.get()
                on:submit=move |ev| {
                    ev.prevent_default();
                    // The fields, read once on submit (no signal per keystroke).
                    let form: web_sys::HtmlFormElement = event_target(&ev);
                    let field = |i: u32| {
                        form.elements()
                            .item(i)
                            .and_then(|e| js_sys::Reflect::get(&e, &"value".into()).ok())
                            .and_then(|v| v.as_string())
                            .unwrap_or_default()
                    };
                    chat.leave_message(field(0), field(1), field(2));
                }>
                <label for="baton-leave-name">{chat.t(Text::LeaveName)}</label>
                <input id="baton-leave-name" node_ref=first required maxlength="100"
                    autocomplete="name"/>
                <label for="baton-leave-email">{chat.t(Text::LeaveEmail)}</label>
                <input id="baton-leave-email" type="email" required autocomplete="email"/>
                <label for="baton-leave-text">{chat.t(Text::LeaveText)}</label>
                <textarea id="baton-leave-text" required rows="3" maxlength="4096"></textarea>
                <div class="baton-leave__actions">
                    <button type="submit" class="baton-leave__send">{chat.t(Text::LeaveSend)}</button>
                    <button type="button" class="baton-link" on:click=move |_| chat.leaving.set(false)>
                        {chat.t(Text::LeaveCancel)}
                    </button>
                </div>
            </form>
        </div>
    }
}

/// The transcript, newest at the bottom. Only the newest [`crate::store::WINDOW`] lines (or
/// more, on request) are in the DOM, and following the newest line reads the layout at most
/// once per frame, however many lines arrive.
#[component]
fn Transcript() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let log = NodeRef::<leptos::html::Div>::new();
    // Whether the view follows the newest line: true unless the visitor scrolled up.
    let follow = StoredValue::new(true);
    let scheduled = StoredValue::new(false);
    Effect::new(move |_| {
        chat.lines.track();
        chat.busy.track();
        if follow.get_value() && !scheduled.get_value() {
            scheduled.set_value(true);
            request_animation_frame(move || {
                // The panel may have closed meanwhile: its node and values are gone then.
                if scheduled.try_set_value(false).is_none()
                    && follow.try_get_value() == Some(true)
                    && let Some(el) = log.try_get_untracked().flatten()
                {
                    el.set_scroll_top(el.scroll_height());
                }
            });
        }
    });
    let on_scroll = move |_| {
        if let Some(el) = log.try_get_untracked().flatten() {
            follow.set_value(el.scroll_height() - el.scroll_top() - el.client_height() < 48);
        }
    };
    let hidden = move || {
        chat.lines
            .with(|l| l.len())
            .saturating_sub(chat.window.get())
    };
    let shown = move || {
        let window = chat.window.get();
        chat.lines
            .with(|l| l[l.len().saturating_sub(window)..].to_vec())
    };
    view! {
        <div class="baton-transcript" role="log" aria-label=chat.t(Text::Conversation) tabindex="0" node_ref=log on:scroll=on_scroll>
            // Hidden rather than unmounted: a `Show` costs the widget about a kilobyte.
            <button
                type="button"
                class="baton-link baton-earlier"
                hidden=move || hidden() == 0
                on:click=move |_| {
                    follow.set_value(false);
                    chat.window.update(|w| *w += crate::store::WINDOW);
                }
            >
                {move || chat.tf(Text::ShowEarlier, &[("count", &hidden().to_string())])}
            </button>
            <ol class="baton-transcript__list">
                <For each=shown key=|line| line.key children=move |line| view! { <Message line=line/> }/>
            </ol>
            // "Seen" under the visitor's last message, once the agent has read it (announced).
            <p class="baton-seen" role="status">
                {move || {
                    (chat.seen.get() && chat.lines.with(|l| l.last().is_some_and(|l| l.role == Role::Visitor)))
                        .then(|| chat.t(Text::Seen))
                }}
            </p>
            <AfterChat/>
            <p class="baton-typing" role="status">
                {move || match chat.typing.get() {
                    _ if chat.busy.get() => Some(chat.t(Text::Typing)),
                    Some(agent) => Some(chat.tf(Text::AgentTyping, &[("agent", &agent)])),
                    None => None,
                }}
            </p>
        </div>
    }
}

/// After an agent chat: rate it (1 to 5 stars, a comment) and download the transcript as a
/// text file (built when the link is followed, as a `data:` address: no Blob or object URL).
///
/// Built with DOM calls into one element rather than with `view!`: as a typed view this small
/// form cost the widget 4 KB brotli (each element type is compiled on its own), about a
/// quarter of that this way. Texts are text nodes and attributes, as everywhere.
#[component]
fn AfterChat() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let root = NodeRef::<leptos::html::Div>::new();
    // The closures behind the listeners live as long as the panel.
    let listeners = StoredValue::new_local(Vec::new());
    Effect::new(move |built: Option<bool>| {
        if built == Some(true) {
            return true;
        }
        let Some(div) = root.get() else {
            return false;
        };
        untrack(|| after_chat(chat, &div, listeners));
        true
    });
    view! { <div class="baton-after" node_ref=root hidden=move || chat.rate_for.with(Option::is_none)></div> }
}

/// The closures behind DOM listeners, kept (and dropped) with the component.
type Listeners =
    StoredValue<Vec<wasm_bindgen::closure::Closure<dyn Fn(web_sys::Event)>>, LocalStorage>;

/// An element with attributes, appended to `parent`.
fn child(parent: &web_sys::Element, tag: &str, attrs: &[(&str, &str)]) -> web_sys::Element {
    let el = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.create_element(tag).ok())
        .expect("a document");
    for (k, v) in attrs {
        let _ = el.set_attribute(k, v);
    }
    let _ = parent.append_child(&el);
    el
}

/// Listens to `event` on `el` for as long as the panel lives.
fn listen(
    el: &web_sys::Element,
    event: &str,
    f: impl Fn(web_sys::Event) + 'static,
    keep: Listeners,
) {
    use wasm_bindgen::JsCast;
    let f = wasm_bindgen::closure::Closure::<dyn Fn(web_sys::Event)>::new(f);
    let _ = el.add_event_listener_with_callback(event, f.as_ref().unchecked_ref());
    keep.update_value(|k| k.push(f));
}

fn after_chat(chat: Chat, div: &web_sys::Element, keep: Listeners) {
    let form = child(div, "form", &[("class", "baton-rate")]);
    let stars = child(&form, "fieldset", &[("class", "baton-rate__stars")]);
    let legend = child(&stars, "legend", &[]);
    for n in ["1", "2", "3", "4", "5"] {
        let label = child(&stars, "label", &[("class", "baton-rate__star")]);
        // The input's own name is the sentence; the star is what the eye sees.
        let name = chat.tf(Text::RateStars, &[("stars", n)]);
        child(
            &label,
            "input",
            &[
                ("type", "radio"),
                ("name", "baton-stars"),
                ("value", n),
                ("required", ""),
                ("aria-label", &name),
            ],
        );
        child(&label, "span", &[]).set_text_content(Some("★"));
    }
    child(&form, "label", &[("for", "baton-rate-comment")])
        .set_text_content(Some(&chat.t(Text::RateComment)));
    child(
        &form,
        "textarea",
        &[
            ("id", "baton-rate-comment"),
            ("rows", "2"),
            ("maxlength", "1000"),
        ],
    );
    child(
        &form,
        "button",
        &[("type", "submit"), ("class", "baton-leave__send")],
    )
    .set_text_content(Some(&chat.t(Text::RateSend)));
    let thanks = child(
        div,
        "p",
        &[("class", "baton-rate__thanks"), ("role", "status")],
    );
    let link = child(
        div,
        "a",
        &[
            ("class", "baton-link baton-download"),
            ("download", "chat-transcript.txt"),
            ("href", "data:,"),
        ],
    );
    link.set_text_content(Some(&chat.t(Text::Download)));
    let value = |form: &web_sys::Element, css: &str| {
        form.query_selector(css)
            .ok()
            .flatten()
            .and_then(|e| js_sys::Reflect::get(&e, &"value".into()).ok())
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let rated = form.clone();
    listen(
        &form,
        "submit",
        move |ev| {
            ev.prevent_default();
            if let Ok(stars) = value(&rated, "input:checked").parse() {
                chat.rate(stars, value(&rated, "textarea"));
            }
        },
        keep,
    );
    let a = link.clone();
    listen(
        &link,
        "click",
        move |_| {
            let text = String::from(js_sys::encode_uri_component(&chat.transcript_text()));
            let _ = a.set_attribute("href", &format!("data:text/plain;charset=utf-8,{text}"));
        },
        keep,
    );
    let fresh = form.clone();
    Effect::new(move |_| {
        let agent = chat.rate_for.get().unwrap_or_default();
        legend.set_text_content(Some(&chat.tf(Text::RatePrompt, &[("agent", &agent)])));
        // Another chat to rate: no stars or comment from the last one.
        use wasm_bindgen::JsCast;
        fresh.unchecked_ref::<web_sys::HtmlFormElement>().reset();
    });
    Effect::new(move |_| {
        let done = chat.rated.get();
        let _ = form.toggle_attribute_with_force("hidden", done);
        thanks.set_text_content(done.then(|| chat.t(Text::RateThanks)).as_deref());
    });
}

/// One card of a bot's carousel: its buttons answer the bot, its links open a new tab.
fn card(card: Card) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let image = card.image_url.map(|src| {
        // The title says what it shows.
        view! { <img class="baton-card__image" src=src alt="" referrerpolicy="no-referrer"/> }
    });
    let subtitle = card
        .subtitle
        .map(|s| view! { <p class="baton-card__subtitle">{s}</p> });
    let buttons = card
        .buttons
        .into_iter()
        .map(|b| match b {
            CardButton::Reply(b) => {
                let title = b.title.clone();
                view! {
                    <button type="button" class="baton-chip" on:click=move |_| chat.send_button(&b)>
                        {title}
                    </button>
                }
                .into_any()
            }
            CardButton::Link { title, url } => view! {
                <a class="baton-chip" href=url target="_blank" rel="noopener noreferrer">{title}</a>
            }
            .into_any(),
        })
        .collect_view();
    view! {
        <li class="baton-card">
            {image}
            <p class="baton-card__title">{card.title}</p>
            {subtitle}
            <div class="baton-message__buttons">{buttons}</div>
        </li>
    }
}

/// One transcript line.
#[component]
fn Message(line: std::sync::Arc<Line>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let (class, who) = match line.role {
        Role::Visitor => (
            "baton-message baton-message--visitor",
            chat.t(Text::AuthorYou),
        ),
        Role::Bot => ("baton-message baton-message--bot", chat.t(Text::AuthorBot)),
        Role::Agent => (
            "baton-message baton-message--agent",
            line.author
                .clone()
                .unwrap_or_else(|| chat.t(Text::AuthorAgent)),
        ),
        Role::System => (
            "baton-message baton-message--system",
            chat.t(Text::AuthorNotice),
        ),
    };
    let key = line.key;
    let delivery = line.delivery.clone();
    let buttons = (!line.buttons.is_empty()).then(|| {
        let chips = line
            .buttons
            .iter()
            .cloned()
            .map(|b| {
                let title = b.title.clone();
                view! {
                    <button type="button" class="baton-chip" on:click=move |_| chat.send_button(&b)>
                        {title}
                    </button>
                }
            })
            .collect_view();
        view! { <div class="baton-message__buttons">{chips}</div> }
    });
    let text = (!line.text.is_empty())
        .then(|| view! { <p class="baton-message__text">{line.text.clone()}</p> });
    let image = line.media.image.clone().map(|src| {
        view! {
            <img class="baton-message__image" src=src alt=chat.t(Text::Image)
                referrerpolicy="no-referrer"/>
        }
    });
    let cards = (!line.media.cards.is_empty()).then(|| {
        let cards = line.media.cards.iter().cloned().map(card).collect_view();
        // Scrolls sideways: focusable, so the arrow keys scroll it too.
        view! { <ul class="baton-cards" tabindex="0" aria-label=chat.t(Text::Cards)>{cards}</ul> }
    });
    view! {
        <li class=class>
            <span class="baton-message__author">{who}</span>
            {text}
            {image}
            {cards}
            {buttons}
            {move || match delivery.get() {
                Delivery::Sent => None,
                Delivery::Pending => Some(view! { <span class="baton-message__meta">{chat.t(Text::Sending)}</span> }.into_any()),
                Delivery::Failed => Some(
                    view! {
                        <span class="baton-message__meta baton-message__meta--failed">
                            {chat.t(Text::NotSent)}
                            " "
                            <button type="button" class="baton-link" on:click=move |_| chat.retry(key)>
                                {chat.t(Text::Retry)}
                            </button>
                        </span>
                    }
                    .into_any(),
                ),
            }}
        </li>
    }
}

/// The enabled items of a menu, in order.
fn enabled_items(list: &web_sys::HtmlElement) -> Vec<web_sys::HtmlElement> {
    use wasm_bindgen::JsCast;
    let Ok(nodes) = list.query_selector_all("[role=menuitem]:not(:disabled)") else {
        return vec![];
    };
    (0..nodes.length())
        .filter_map(|i| nodes.get(i)?.dyn_into().ok())
        .collect()
}

/// Which item gets the focus when the menu opens.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    First,
    Last,
}

/// The "⋯" menu, a WAI-ARIA menu button: Request live agent, and Cancel request while queued.
/// Enter, Space or ArrowDown open it on the first enabled item, ArrowUp on the last; arrows,
/// Home and End move; Escape closes it and returns to the button; Tab or a click elsewhere
/// closes it; disabled items are skipped.
#[component]
fn OverflowMenu() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let button = NodeRef::<leptos::html::Button>::new();
    let list = NodeRef::<leptos::html::Ul>::new();
    let container = NodeRef::<leptos::html::Div>::new();
    let edge = StoredValue::new(Edge::First);
    // Move focus into the menu when it opens (the list itself if no item is enabled).
    Effect::new(move |_| {
        if chat.menu_open.get() {
            chat.refresh_status();
            let at = edge.get_value();
            focus_soon(move || {
                let list: web_sys::HtmlElement = list.try_get_untracked().flatten()?.into();
                let items = enabled_items(&list);
                let item = match at {
                    Edge::First => items.first(),
                    Edge::Last => items.last(),
                };
                Some(item.cloned().unwrap_or(list))
            });
        }
    });
    let open_at = move |at: Edge| {
        edge.set_value(at);
        chat.menu_open.set(true);
    };
    let close = move |refocus: bool| {
        chat.menu_open.set(false);
        if refocus && let Some(b) = button.get_untracked() {
            let _ = b.focus();
        }
    };
    let on_button_key = move |ev: ev::KeyboardEvent| match ev.key().as_str() {
        "ArrowDown" | "ArrowUp" => {
            ev.prevent_default();
            let at = if ev.key() == "ArrowUp" {
                Edge::Last
            } else {
                Edge::First
            };
            if chat.menu_open.get_untracked() {
                chat.menu_open.set(false);
            }
            open_at(at);
        }
        // Enter and Space click the button, which opens on the first item.
        _ => {}
    };
    let on_menu_key = move |ev: ev::KeyboardEvent| {
        let Some(list) = list.get_untracked() else {
            return;
        };
        let items = enabled_items(&list);
        let target = ev.target();
        let current = items.iter().position(|i| {
            target
                .as_ref()
                .is_some_and(|t| AsRef::<JsValue>::as_ref(t) == AsRef::<JsValue>::as_ref(i))
        });
        let n = items.len();
        let to = match ev.key().as_str() {
            "ArrowDown" => current.map_or(0, |i| (i + 1) % n.max(1)),
            "ArrowUp" => current.map_or(n.saturating_sub(1), |i| (i + n - 1) % n.max(1)),
            "Home" => 0,
            "End" => n.saturating_sub(1),
            "Escape" => {
                ev.prevent_default();
                // Only the menu closes, not the panel.
                ev.stop_propagation();
                close(true);
                return;
            }
            "Tab" => {
                // The default action moves on from the button, as if the menu were not there.
                close(true);
                return;
            }
            _ => return,
        };
        ev.prevent_default();
        if let Some(item) = items.get(to) {
            let _ = item.focus();
        }
    };
    let on_focusout = move |ev: ev::FocusEvent| {
        use wasm_bindgen::JsCast;
        let inside = ev
            .related_target()
            .and_then(|t| t.dyn_into::<web_sys::Node>().ok())
            .is_some_and(|n| {
                container
                    .get_untracked()
                    .is_some_and(|c| c.contains(Some(&n)))
            });
        if inside || !chat.menu_open.get_untracked() {
            return;
        }
        // The focused item was disabled or hidden under the visitor's hands (a status came,
        // the conversation moved on): the focus stays in the menu, on what is left.
        let lost = ev.related_target().is_none()
            && ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                // (A hidden item is disabled too.)
                .is_some_and(|el| el.has_attribute("disabled"));
        let gone = container
            .get_untracked()
            .is_some_and(|c| c.has_attribute("hidden"));
        if lost && !gone {
            focus_soon(move || {
                let list: web_sys::HtmlElement = list.try_get_untracked().flatten()?.into();
                Some(enabled_items(&list).first().cloned().unwrap_or(list))
            });
        } else {
            // A click elsewhere, or the whole menu went away (nothing left to offer).
            chat.menu_open.set(false);
        }
    };
    let blocked = Memo::new(move |_| {
        texts::request_blocked(
            &chat.state.get(),
            chat.requesting.get(),
            chat.offload.get().as_ref(),
            |at| format_local(at, &chat.locale()),
            &|t| chat.t(t),
        )
    });
    let queued = move || matches!(chat.state.get(), ConversationState::Queued { .. });
    view! {
        // Only when it has an item: "Request live agent" may be offered later or never, and
        // "Cancel request" is there only while queued.
        <div
            class="baton-menu"
            hidden=move || !(chat.request_item_offered() || queued())
            node_ref=container
            on:focusout=on_focusout
        >
            <button
                type="button"
                class="baton-icon-button"
                node_ref=button
                aria-label=chat.t(Text::MoreOptions)
                aria-haspopup="menu"
                aria-controls="baton-menu"
                aria-expanded=move || chat.menu_open.get().to_string()
                // The focus stays where it is on a click, so an open menu does not lose it
                // (and close) before the click toggles it.
                on:mousedown=|ev: ev::MouseEvent| ev.prevent_default()
                on:click=move |_| {
                    if chat.menu_open.get_untracked() {
                        chat.menu_open.set(false);
                    } else {
                        open_at(Edge::First);
                    }
                }
                on:keydown=on_button_key
            >
                "⋯"
            </button>
            // Hidden while closed rather than unmounted (a `Show` costs the widget a kilobyte).
            <ul
                id="baton-menu"
                class="baton-menu__list"
                role="menu"
                hidden=move || !chat.menu_open.get()
                aria-label=chat.t(Text::ChatOptions)
                tabindex="-1"
                node_ref=list
                on:keydown=on_menu_key
            >
                // Hidden (and so skipped) until the site owner's rule offers it.
                <li role="none" hidden=move || !chat.request_item_offered()>
                    <button
                        type="button"
                        role="menuitem"
                        class="baton-menu__item"
                        tabindex="-1"
                        aria-label=chat.t(Text::RequestAgent)
                        disabled=move || {
                            blocked.with(Option::is_some) || !chat.request_item_offered()
                        }
                        aria-describedby=move || {
                            blocked.with(Option::is_some).then_some("baton-menu-reason")
                        }
                        on:click=move |_| {
                            close(true);
                            chat.request_agent(HandoverDirective::default());
                        }
                    >
                        {chat.t(Text::RequestAgent)}
                        {move || {
                            blocked
                                .get()
                                .map(|why| {
                                    view! {
                                        <span class="baton-menu__reason" id="baton-menu-reason">
                                            {why}
                                        </span>
                                    }
                                })
                        }}
                    </button>
                </li>
                // Only while queued (hidden and disabled otherwise, so skipped).
                <li role="none" hidden=move || !queued()>
                    <button
                        type="button"
                        role="menuitem"
                        class="baton-menu__item"
                        tabindex="-1"
                        disabled=move || !queued()
                        on:click=move |_| {
                            close(true);
                            chat.cancel_request();
                        }
                    >
                        {chat.t(Text::CancelRequest)}
                    </button>
                </li>
            </ul>
        </div>
    }
}

/// The message box. Enter sends, Shift+Enter makes a new line.
#[component]
fn Composer() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let (draft, set_draft) = signal(String::new());
    let input = NodeRef::<leptos::html::Textarea>::new();
    // The panel opens with the focus in the message box.
    focus_soon(move || input.try_get_untracked().flatten().map(Into::into));
    let submit = move || {
        let text = draft.get_untracked();
        if !text.trim().is_empty() {
            chat.send_text(text);
            set_draft.set(String::new());
        }
    };
    view! {
        <form class="baton-composer" on:submit=move |ev| {
            ev.prevent_default();
            submit();
        }>
            <label class="baton-visually-hidden" for="baton-input">{chat.t(Text::MessageLabel)}</label>
            <textarea
                id="baton-input"
                class="baton-composer__input"
                node_ref=input
                rows="1"
                placeholder=chat.t(Text::Placeholder)
                maxlength="4096"
                prop:value=move || draft.get()
                on:input=move |ev| {
                    set_draft.set(event_target_value(&ev));
                    chat.typed();
                }
                on:keydown=move |ev: ev::KeyboardEvent| {
                    if ev.key() == "Enter" && !ev.shift_key() {
                        ev.prevent_default();
                        submit();
                    }
                }
            ></textarea>
            <button type="submit" class="baton-composer__send">{chat.t(Text::Send)}</button>
        </form>
    }
}
