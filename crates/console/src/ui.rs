//! The console's components. They read the store and call its methods; all party text is
//! rendered as text nodes.

use leptos::ev;
use leptos::prelude::*;

use baton_protocol::ids::ConversationId;
use baton_protocol::state::ConversationState;
use baton_protocol::status::OffloadState;
use baton_protocol::ws::{ConversationSummary, Event, EventBody, Role};

use crate::store::{Console, Link};

/// Login screen or the workspace.
#[component]
pub fn App() -> impl IntoView {
    let c = expect_context::<Console>();
    // The tab says how much waits for the agent (chats in the queue, unread messages), so a
    // console in a background tab still shows news; a reload recounts from the server.
    Effect::new(move |_| {
        let news = c.unread_total() + c.waiting.with(|w| w.len() as u32);
        if let Some(d) = web_sys::window().and_then(|w| w.document()) {
            d.set_title(&if news > 0 {
                format!("({news}) Baton agent console")
            } else {
                "Baton agent console".to_owned()
            });
        }
    });
    view! {
        <Show when=move || c.link.get() != Link::LoggedOut fallback=|| view! { <Login/> }>
            <Workspace/>
        </Show>
    }
}

/// The login form.
#[component]
fn Login() -> impl IntoView {
    let c = expect_context::<Console>();
    let (email, set_email) = signal(String::new());
    let (password, set_password) = signal(String::new());
    view! {
        <main class="console-login">
            <h1>"Baton agent console"</h1>
            <form on:submit=move |ev: ev::SubmitEvent| {
                ev.prevent_default();
                c.login(email.get_untracked(), password.get_untracked());
            }>
                <label for="email">"E-mail"</label>
                <input id="email" type="email" autocomplete="username" required
                    on:input=move |ev| set_email.set(event_target_value(&ev))/>
                <label for="password">"Password"</label>
                <input id="password" type="password" autocomplete="current-password" required
                    on:input=move |ev| set_password.set(event_target_value(&ev))/>
                <button type="submit" class="console-button">"Log in"</button>
                {move || c.error.get().map(|e| view! { <p class="console-error" role="alert">{e}</p> })}
            </form>
        </main>
    }
}

/// Queue on the left, the open conversation on the right.
#[component]
fn Workspace() -> impl IntoView {
    let c = expect_context::<Console>();
    let who = move || c.agent.get().map(|a| a.name).unwrap_or_default();
    let link = move || match c.link.get() {
        Link::Online => "Online",
        Link::Connecting => "Connecting…",
        Link::LoggedOut => "Offline",
    };
    view! {
        <div class="console">
            <header class="console-header">
                <h1>"Baton"</h1>
                <span class="console-header__who">{who}" · "<span role="status">{link}</span></span>
                <Offloading/>
                <button type="button" class="console-link console-messages-button"
                    aria-pressed=move || c.show_messages.get().to_string()
                    on:click=move |_| {
                        let show = !c.show_messages.get_untracked();
                        c.show_messages.set(show);
                        if show { c.load_messages(); }
                    }>
                    "Messages"
                </button>
                <button type="button" class="console-link" on:click=move |_| c.logout()>"Log out"</button>
            </header>
            {move || c.error.get().map(|e| view! {
                <p class="console-error" role="alert">{e}" "
                    <button type="button" class="console-link" on:click=move |_| c.error.set(None)>"Dismiss"</button>
                </p>
            })}
            <nav class="console-sidebar" aria-label="Conversations">
                <ConversationList title="Waiting" list=c.waiting empty="Nobody is waiting."/>
                <ConversationList title="My chats" list=c.mine empty="No open chats."/>
            </nav>
            {move || if c.show_messages.get() {
                view! { <Messages/> }.into_any()
            } else {
                view! { <ConversationPane/> }.into_any()
            }}
        </div>
    }
}

/// Whether visitors can reach a person now, and a supervisor's switch.
#[component]
fn Offloading() -> impl IntoView {
    let c = expect_context::<Console>();
    let state = move || c.status.get().map(|s| s.state);
    let label = move || match state() {
        Some(OffloadState::Open) => "Live chat open",
        Some(OffloadState::Closed) => "Live chat closed (outside opening hours)",
        Some(OffloadState::Disabled) => "Live chat switched off",
        None => "",
    };
    let off = move || state() == Some(OffloadState::Disabled);
    view! {
        <span class="console-offloading" role="status">{label}</span>
        <Show when=move || c.supervisor.get()>
            <button type="button" class="console-link console-switch"
                on:click=move |_| c.switch_offloading(off())>
                {move || if off() { "Switch live chat on" } else { "Switch live chat off" }}
            </button>
        </Show>
    }
}

/// The messages visitors left while nobody could chat, newest first, each with "Mark done".
#[component]
fn Messages() -> impl IntoView {
    let c = expect_context::<Console>();
    view! {
        <main class="console-pane console-messages">
            <h2>"Messages left by visitors"</h2>
            <Show when=move || c.messages.get().is_empty()>
                <p class="console-muted">"No open messages."</p>
            </Show>
            <ul class="console-messages__list">
                <For each=move || c.messages.get() key=|m| m.id children=move |m| {
                    let id = m.id;
                    view! {
                        <li class="console-message-left">
                            <p class="console-message-left__who">
                                <strong>{m.name}</strong>" · "{m.email}" · "{m.created_at}
                            </p>
                            {m.page_url.map(|u| view! { <p class="console-muted">{u}</p> })}
                            <p class="console-message-left__text">{m.text}</p>
                            <button type="button" class="console-button console-done"
                                on:click=move |_| c.mark_done(id)>"Mark done"</button>
                        </li>
                    }
                }/>
            </ul>
        </main>
    }
}

/// A list of conversations.
#[component]
fn ConversationList(
    title: &'static str,
    list: RwSignal<Vec<ConversationSummary>>,
    empty: &'static str,
) -> impl IntoView {
    let c = expect_context::<Console>();
    view! {
        <section class="console-list">
            <h2>{title}" ("{move || list.get().len()}")"</h2>
            <Show when=move || list.get().is_empty()>
                <p class="console-muted">{empty}</p>
            </Show>
            <ul>
                <For each=move || list.get() key=|s| (s.conversation_id.clone(), s.preview.clone()) children=move |s| {
                    let id = s.conversation_id.clone();
                    let selected = {
                        let id = id.clone();
                        move || c.selected.get().as_ref() == Some(&id)
                    };
                    let unread = {
                        let id = id.clone();
                        Memo::new(move |_| c.unread.with(|u| u.get(&id).copied().unwrap_or(0)))
                    };
                    view! {
                        <li>
                            <button type="button" class="console-list__item" aria-current=move || selected().then_some("true")
                                on:click=move |_| c.open(id.clone())>
                                <span class="console-list__visitor">{format!("Visitor {}", short(s.visitor_id.as_str()))}</span>
                                <span class="console-list__queue">{routing(s.queue.as_deref(), s.skill.as_deref())}</span>
                                <span class="console-list__preview">{s.preview.clone().unwrap_or_default()}</span>
                                <Show when=move || { unread.get() > 0 }>
                                    <span class="console-unread">{move || format!("{} unread", unread.get())}</span>
                                </Show>
                            </button>
                        </li>
                    }
                }/>
            </ul>
        </section>
    }
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("v_").unwrap_or(id);
    &id[..id.len().min(8)]
}

/// The selected conversation: transcript, Accept / End, and the reply box.
#[component]
fn ConversationPane() -> impl IntoView {
    let c = expect_context::<Console>();
    let current = Memo::new(move |_| {
        let id = c.selected.get()?;
        let thread = c.transcripts.with(|t| t.get(&id).cloned())?;
        Some((
            id,
            thread.state,
            thread.timeline.events().to_vec(),
            thread.visitor_read,
        ))
    });
    view! {
        <main class="console-pane">
            {move || match current.get() {
                None => view! { <p class="console-muted">"Select a conversation to read its transcript."</p> }.into_any(),
                Some((id, state, events, visitor_read)) => view! { <Conversation id state events visitor_read/> }.into_any(),
            }}
        </main>
    }
}

/// One conversation.
#[component]
fn Conversation(
    id: ConversationId,
    state: ConversationState,
    events: Vec<Event>,
    visitor_read: u64,
) -> impl IntoView {
    let c = expect_context::<Console>();
    let mine = match &state {
        ConversationState::AgentJoined { agent } => c
            .agent
            .with_untracked(|a| a.as_ref().is_some_and(|a| a.id == agent.id)),
        _ => false,
    };
    // What the bot handed over with: its note, the slots it collected, and where it routed.
    let (note, slots, route) = events
        .iter()
        .rev()
        .find_map(|e| match &e.body {
            EventBody::HandoverRequested {
                message_to_agent,
                slots,
                queue,
                skill,
                ..
            } => Some((
                message_to_agent.clone(),
                slots.clone(),
                Some(routing(queue.as_deref(), skill.as_deref())),
            )),
            _ => None,
        })
        .unwrap_or_default();
    let slots = (!slots.is_empty()).then(|| {
        view! {
            <dl class="console-slots" aria-label="Collected by the bot">
                {slots
                    .into_iter()
                    .map(|s| view! { <dt>{s.name}</dt><dd>{s.value}</dd> })
                    .collect_view()}
            </dl>
        }
    });
    // "Seen" under the agent's last line, once the visitor has read it.
    let seen = events
        .iter()
        .rev()
        .find_map(|e| match &e.body {
            EventBody::Message { role, .. } => Some((*role, e.seq)),
            _ => None,
        })
        .is_some_and(|(role, seq)| role == Role::Agent && visitor_read >= seq);
    let typing_id = id.clone();
    let typing = move || c.typing.with(|t| t.contains_key(&typing_id));
    let (draft, set_draft) = signal(String::new());
    let reply_id = id.clone();
    let typed_id = id.clone();
    let send = move || {
        let text = draft.get_untracked();
        if !text.trim().is_empty() {
            c.reply(reply_id.clone(), text);
            set_draft.set(String::new());
        }
    };
    let send2 = send.clone();
    let accept_id = id.clone();
    let end_id = id.clone();
    let unsent_id = id.clone();
    view! {
        <section class="console-conversation" aria-label="Conversation">
            <header class="console-conversation__header">
                <h2>{format!("Conversation {}", short(id.as_str()))}</h2>
                <span class="console-state">{state_label(&state)}</span>
                {route.map(|r| view! { <span class="console-route">{r}</span> })}
                {matches!(state, ConversationState::Queued { .. }).then(|| view! {
                    <button type="button" class="console-button console-accept" on:click=move |_| c.accept(accept_id.clone())>"Accept"</button>
                })}
                {mine.then(|| view! {
                    <button type="button" class="console-button console-button--secondary console-end" on:click=move |_| c.end(end_id.clone())>"End chat"</button>
                })}
            </header>
            {note.map(|n| view! { <p class="console-note"><strong>"Note from the bot: "</strong>{n}</p> })}
            {slots}
            <div class="console-transcript" role="log" aria-label="Transcript">
                <ol class="console-transcript__list">
                    {events.into_iter().filter_map(line).collect_view()}
                    {move || c.unsent(&unsent_id).into_iter().map(|text| view! {
                        <li class="console-message console-message--agent console-message--pending">
                            <span class="console-message__who">"You · sending…"</span>
                            <p class="console-message__text">{text}</p>
                        </li>
                    }).collect_view()}
                </ol>
                {seen.then(|| view! { <p class="console-seen">"Seen"</p> })}
                <p class="console-typing" role="status">
                    {move || typing().then_some("The visitor is typing…")}
                </p>
            </div>
            {mine.then(|| view! {
                <form class="console-reply" on:submit=move |ev: ev::SubmitEvent| { ev.prevent_default(); send(); }>
                    <label for="reply" class="console-visually-hidden">"Reply"</label>
                    <textarea id="reply" rows="2" placeholder="Write a reply…" prop:value=move || draft.get()
                        on:input=move |ev| { set_draft.set(event_target_value(&ev)); c.typed(&typed_id); }
                        on:keydown=move |ev: ev::KeyboardEvent| if ev.key() == "Enter" && !ev.shift_key() { ev.prevent_default(); send2(); }
                    ></textarea>
                    <button type="submit" class="console-button">"Send"</button>
                </form>
            })}
        </section>
    }
}

/// Where a handover was routed: `Queue sales`, `Queue sales · needs german`.
fn routing(queue: Option<&str>, skill: Option<&str>) -> String {
    let queue = format!("Queue {}", queue.unwrap_or("default"));
    match skill {
        Some(skill) => format!("{queue} · needs {skill}"),
        None => queue,
    }
}

fn state_label(s: &ConversationState) -> String {
    match s {
        ConversationState::Queued {
            position: Some(p), ..
        } => format!("Waiting (#{p})"),
        ConversationState::Queued { .. } => "Waiting".into(),
        ConversationState::AgentJoined { agent } => format!("With {}", agent.name),
        ConversationState::Ended { .. } => "Ended".into(),
        other => other.name().replace('_', " "),
    }
}

/// A transcript line for a durable event, or nothing for bookkeeping events.
fn line(e: Event) -> Option<impl IntoView> {
    let (class, who, text) = match e.body {
        EventBody::Message {
            role, text, agent, ..
        } => {
            let (class, who) = match role {
                Role::Visitor => ("visitor", "Visitor".to_owned()),
                Role::Bot => ("bot", "Bot".to_owned()),
                Role::Agent => (
                    "agent",
                    agent.map(|a| a.name).unwrap_or_else(|| "Agent".into()),
                ),
                Role::System => ("system", "Notice".to_owned()),
            };
            (class, who, text)
        }
        EventBody::HandoverRequested {
            reason,
            reason_text,
            ..
        } => (
            "system",
            "Handover".into(),
            match reason_text {
                Some(t) => format!(
                    "Handover requested ({}: {})",
                    reason.as_str().replace('_', " "),
                    t.replace('_', " ")
                ),
                None => format!("Handover requested ({})", reason.as_str().replace('_', " ")),
            },
        ),
        EventBody::AgentJoined { agent } => (
            "system",
            "Handover".into(),
            format!("{} joined", agent.name),
        ),
        EventBody::AgentLeft { agent } => (
            "system",
            "Handover".into(),
            format!("{} went offline; the chat is back in the queue", agent.name),
        ),
        EventBody::ChatEnded { .. } => (
            "system",
            "Handover".into(),
            "Chat ended; the visitor is back with the bot".into(),
        ),
        EventBody::HandoverCancelled => (
            "system",
            "Handover".into(),
            "The visitor left the queue".into(),
        ),
        EventBody::ReturnedToBot => ("system", "Handover".into(), "Back with the bot".into()),
        EventBody::HandoverOutcome { .. } | EventBody::Unknown => return None,
    };
    Some(view! {
        <li class=format!("console-message console-message--{class}")>
            <span class="console-message__who">{who}</span>
            <p class="console-message__text">{text}</p>
        </li>
    })
}
