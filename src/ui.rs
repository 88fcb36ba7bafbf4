//! The widget's components. They read the store's signals and call its methods; none of them
//! touches the network. Every text from a bot, agent or visitor is a text node.

use leptos::ev;
use leptos::prelude::*;
use wasm_bindgen::JsValue;

use baton_protocol::bot::HandoverDirective;
use baton_protocol::state::ConversationState;
use baton_protocol::ws::Role;

use crate::store::{Chat, Delivery, Line};
use crate::texts;

/// The widget root: the launcher and, when open, the panel.
#[component]
pub fn App() -> impl IntoView {
    let chat = expect_context::<Chat>();
    view! {
        <div class="baton">
            <Show when=move || chat.open.get()>
                <Panel/>
            </Show>
            <Launcher/>
        </div>
    }
}

/// The round button that opens and closes the panel.
#[component]
fn Launcher() -> impl IntoView {
    let chat = expect_context::<Chat>();
    view! {
        <button
            type="button"
            class="baton-launcher"
            aria-label=move || if chat.open.get() { "Close chat" } else { "Open chat" }
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
    let title = chat.settings.with_value(|s| s.title.clone());
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
                    <p class="baton-panel__subtitle">{move || texts::header_label(&chat.state.get())}</p>
                </div>
                <OverflowMenu/>
                <button
                    type="button"
                    class="baton-icon-button"
                    aria-label="Close chat"
                    on:click=move |_| chat.open.set(false)
                >
                    "×"
                </button>
            </header>
            <StatusLine/>
            <Transcript/>
            <Composer/>
        </section>
    }
}

/// Formats an RFC 3339 instant in the visitor's locale and time zone.
fn format_local(at: &str) -> String {
    let date = js_sys::Date::new(&JsValue::from_str(at));
    if date.get_time().is_nan() {
        return at.to_owned();
    }
    date.to_locale_string("default", &JsValue::UNDEFINED).into()
}

/// The honest one-liner for the current state (waiting, closed, disabled, ...), announced
/// politely to screen readers; errors are announced assertively.
#[component]
fn StatusLine() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let text = Memo::new(move |_| {
        texts::shown_status(
            &chat.state.get(),
            chat.requesting.get(),
            chat.moved_on.get(),
            chat.notice.get().as_deref(),
            format_local,
        )
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

/// The transcript, newest at the bottom.
#[component]
fn Transcript() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let log = NodeRef::<leptos::html::Div>::new();
    // Keep the newest message in view (syncing the DOM, not computing state).
    Effect::new(move |_| {
        chat.lines.track();
        chat.busy.track();
        if let Some(el) = log.get() {
            el.set_scroll_top(el.scroll_height());
        }
    });
    view! {
        <div class="baton-transcript" role="log" aria-label="Conversation" tabindex="0" node_ref=log>
            <ol class="baton-transcript__list">
                <For each=move || chat.lines.get() key=|line| line.key children=move |line| view! { <Message line=line/> }/>
            </ol>
            <Show when=move || chat.busy.get()>
                <p class="baton-typing">"The assistant is typing…"</p>
            </Show>
        </div>
    }
}

/// One transcript line.
#[component]
fn Message(line: Line) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let (modifier, who) = match line.role {
        Role::Visitor => ("visitor", "You".to_owned()),
        Role::Bot => ("bot", "Assistant".to_owned()),
        Role::Agent => (
            "agent",
            line.author.clone().unwrap_or_else(|| "Agent".into()),
        ),
        Role::System => ("system", "Notice".to_owned()),
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
    view! {
        <li class=format!("baton-message baton-message--{modifier}")>
            <span class="baton-message__author">{who}</span>
            <p class="baton-message__text">{line.text}</p>
            {buttons}
            {move || match delivery.get() {
                Delivery::Sent => None,
                Delivery::Pending => Some(view! { <span class="baton-message__meta">"Sending…"</span> }.into_any()),
                Delivery::Failed => Some(
                    view! {
                        <span class="baton-message__meta baton-message__meta--failed">
                            "Not sent. "
                            <button type="button" class="baton-link" on:click=move |_| chat.retry(key)>
                                "Retry"
                            </button>
                        </span>
                    }
                    .into_any(),
                ),
            }}
        </li>
    }
}

/// The "⋯" menu: Request live agent, and Cancel request while queued.
#[component]
fn OverflowMenu() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let first = NodeRef::<leptos::html::Button>::new();
    // Move focus into the menu when it opens, as the menu pattern expects.
    Effect::new(move |_| {
        if chat.menu_open.get()
            && let Some(b) = first.get()
        {
            let _ = b.focus();
        }
    });
    let can_request = move || chat.state.get().can_request_handover();
    let queued = move || matches!(chat.state.get(), ConversationState::Queued { .. });
    view! {
        <div class="baton-menu">
            <button
                type="button"
                class="baton-icon-button"
                aria-label="More options"
                aria-haspopup="menu"
                aria-expanded=move || chat.menu_open.get().to_string()
                on:click=move |_| chat.menu_open.update(|o| *o = !*o)
            >
                "⋯"
            </button>
            <Show when=move || chat.menu_open.get()>
                <ul class="baton-menu__list" role="menu" aria-label="Chat options">
                    <li role="none">
                        <button
                            type="button"
                            role="menuitem"
                            class="baton-menu__item"
                            node_ref=first
                            disabled=move || !can_request()
                            on:click=move |_| chat.request_agent(HandoverDirective::default())
                        >
                            "Request live agent"
                        </button>
                    </li>
                    <Show when=queued>
                        <li role="none">
                            <button
                                type="button"
                                role="menuitem"
                                class="baton-menu__item"
                                on:click=move |_| chat.cancel_request()
                            >
                                "Cancel request"
                            </button>
                        </li>
                    </Show>
                </ul>
            </Show>
        </div>
    }
}

/// The message box. Enter sends, Shift+Enter makes a new line.
#[component]
fn Composer() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let (draft, set_draft) = signal(String::new());
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
            <label class="baton-visually-hidden" for="baton-input">"Message"</label>
            <textarea
                id="baton-input"
                class="baton-composer__input"
                rows="1"
                placeholder="Write a message…"
                maxlength="4096"
                prop:value=move || draft.get()
                on:input=move |ev| set_draft.set(event_target_value(&ev))
                on:keydown=move |ev: ev::KeyboardEvent| {
                    if ev.key() == "Enter" && !ev.shift_key() {
                        ev.prevent_default();
                        submit();
                    }
                }
            ></textarea>
            <button type="submit" class="baton-composer__send">"Send"</button>
        </form>
    }
}
