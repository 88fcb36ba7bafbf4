//! The console's components. They read the store and call its methods; all party text is
//! rendered as text nodes.

use leptos::ev;
use leptos::prelude::*;

use baton_protocol::ids::{AgentId, ConversationId};
use baton_protocol::state::ConversationState;
use baton_protocol::status::OffloadState;
use baton_protocol::ws::{ConversationSummary, Event, EventBody, Presence, Role};

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
        <div class="console" data-notifications=move || c.notifications.get().to_string()>
            <header class="console-header">
                <h1>"Baton"</h1>
                <span class="console-header__who">{who}" · "<span role="status">{link}</span></span>
                <label class="console-presence">"Status "
                    <select class="console-presence__select"
                        prop:value=move || if c.away.get() { "away" } else { "online" }
                        on:change=move |ev| c.set_away(event_target_value(&ev) == "away")>
                        <option value="online">"Online"</option>
                        <option value="away">"Away"</option>
                    </select>
                </label>
                <Offloading/>
                <button type="button" class="console-link console-sound"
                    aria-pressed=move || c.sound.get().to_string()
                    on:click=move |_| c.set_sound(!c.sound.get_untracked())>
                    "Sound"
                </button>
                <Show when=move || c.supervisor.get()>
                    <button type="button" class="console-link console-team-button"
                        aria-pressed=move || c.show_team.get().to_string()
                        on:click=move |_| c.show((!c.show_team.get_untracked()).then_some("team"))>
                        "Team"
                    </button>
                    <button type="button" class="console-link console-ratings-button"
                        aria-pressed=move || c.show_ratings.get().to_string()
                        on:click=move |_| c.show((!c.show_ratings.get_untracked()).then_some("ratings"))>
                        "Ratings"
                    </button>
                </Show>
                <button type="button" class="console-link console-messages-button"
                    aria-pressed=move || c.show_messages.get().to_string()
                    on:click=move |_| c.show((!c.show_messages.get_untracked()).then_some("messages"))>
                    "Messages"
                </button>
                <button type="button" class="console-link" on:click=move |_| c.logout()>"Log out"</button>
            </header>
            {move || c.error.get().map(|e| view! {
                <p class="console-error" role="alert">{e}" "
                    <button type="button" class="console-link" on:click=move |_| c.error.set(None)>"Dismiss"</button>
                </p>
            })}
            <div class="console-info" role="status">
                {move || c.info.get().map(|i| view! {
                    <p>{i}" "
                        <button type="button" class="console-link" on:click=move |_| c.info.set(None)>"Dismiss"</button>
                    </p>
                })}
            </div>
            <nav class="console-sidebar" aria-label="Conversations">
                <Offers/>
                <ConversationList title="Waiting" list=c.waiting empty="Nobody is waiting." waiting=true/>
                <ConversationList title="My chats" list=c.mine empty="No open chats." waiting=false/>
            </nav>
            {move || if c.show_messages.get() {
                view! { <Messages/> }.into_any()
            } else if c.show_team.get() && c.supervisor.get() {
                view! { <Team/> }.into_any()
            } else if c.show_ratings.get() && c.supervisor.get() {
                view! { <RatingsView/> }.into_any()
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

/// Chats other agents offer this one: who offers, the note, Take over / Decline.
#[component]
fn Offers() -> impl IntoView {
    let c = expect_context::<Console>();
    view! {
        <Show when=move || !c.offers.with(Vec::is_empty)>
            <section class="console-list console-offers" aria-label="Offered to you">
                <h2>"Offered to you"</h2>
                <ul>
                    <For each=move || c.offers.get() key=|o| o.conversation.conversation_id.clone() children=move |o| {
                        let (take, decline) = (o.conversation.conversation_id.clone(), o.conversation.conversation_id.clone());
                        view! {
                            <li class="console-offer">
                                <p class="console-offer__from">
                                    <strong>{o.from.name.clone()}</strong>
                                    {format!(" offers you the chat with Visitor {}", short(o.conversation.visitor_id.as_str()))}
                                </p>
                                <p class="console-list__queue">{routing(o.conversation.queue.as_deref(), o.conversation.skill.as_deref())}</p>
                                {o.note.clone().map(|n| view! { <p class="console-offer__note"><strong>"Note: "</strong>{n}</p> })}
                                <div class="console-offer__actions">
                                    <button type="button" class="console-button console-offer-accept"
                                        on:click=move |_| c.answer_offer(take.clone(), true)>"Take over"</button>
                                    <button type="button" class="console-button console-button--secondary console-offer-decline"
                                        on:click=move |_| c.answer_offer(decline.clone(), false)>"Decline"</button>
                                </div>
                            </li>
                        }
                    }/>
                </ul>
            </section>
        </Show>
    }
}

/// What a presence reads as.
fn presence_label(p: Presence) -> &'static str {
    match p {
        Presence::Online => "Online",
        Presence::Away => "Away",
        Presence::Offline => "Offline",
    }
}

/// A supervisor's view: every agent's presence and load, and every live chat with its agent
/// (opened read-only).
#[component]
fn Team() -> impl IntoView {
    let c = expect_context::<Console>();
    view! {
        <main class="console-pane console-team">
            <h2>"Team"</h2>
            <table class="console-team__agents">
                <caption class="console-visually-hidden">"Agents, their status and chats"</caption>
                <thead><tr><th scope="col">"Agent"</th><th scope="col">"Status"</th><th scope="col">"Chats"</th></tr></thead>
                <tbody>
                    <For each=move || c.team.get() key=|m| (m.agent.id.clone(), presence_label(m.presence), m.chats) children=move |m| {
                        let limit = if m.max_chats == 0 { "no limit".to_owned() } else { m.max_chats.to_string() };
                        view! {
                            <tr class=format!("console-team__agent console-team__agent--{}", presence_label(m.presence).to_lowercase())>
                                <th scope="row">{m.agent.name.clone()}{m.supervisor.then_some(" (supervisor)")}</th>
                                <td>{presence_label(m.presence)}</td>
                                <td>{format!("{} of {limit}", m.chats)}</td>
                            </tr>
                        }
                    }/>
                </tbody>
            </table>
            <h3>"Live chats"</h3>
            <Show when=move || c.live_chats.with(Vec::is_empty)>
                <p class="console-muted">"Nobody is chatting with an agent."</p>
            </Show>
            <ul class="console-team__chats">
                <For each=move || c.live_chats.get() key=|s| (s.conversation_id.clone(), state_label(&s.state)) children=move |s| {
                    let id = s.conversation_id.clone();
                    view! {
                        <li>
                            <button type="button" class="console-list__item console-live-chat"
                                on:click=move |_| { c.show(None); c.open(id.clone()); }>
                                <span class="console-list__visitor">{format!("Visitor {}", short(s.visitor_id.as_str()))}</span>
                                <span>{state_label(&s.state)}</span>
                                <span class="console-list__queue">{routing(s.queue.as_deref(), s.skill.as_deref())}</span>
                                <span class="console-list__preview">{s.preview.clone().unwrap_or_default()}</span>
                            </button>
                        </li>
                    }
                }/>
            </ul>
        </main>
    }
}

/// What visitors said of their agent chats (supervisors): the mean, and the latest ratings
/// with their comments, each opening its chat.
#[component]
fn RatingsView() -> impl IntoView {
    let c = expect_context::<Console>();
    view! {
        <main class="console-pane console-ratings">
            <h2>"Ratings"</h2>
            {move || c.ratings.get().map(|r| {
                let summary = match r.average {
                    Some(avg) => format!("{:.1} of 5 on average, from {} rated chats", avg, r.count),
                    None => "No chat has been rated yet.".to_owned(),
                };
                view! {
                    <p class="console-ratings__summary">{summary}</p>
                    <ul class="console-ratings__list">
                        {r.latest.into_iter().map(|x| {
                            let id = x.conversation_id.clone();
                            view! {
                                <li class="console-rating">
                                    <p class="console-rating__stars">
                                        <span aria-hidden="true">{"★".repeat(x.stars.into())}{"☆".repeat(5 - usize::from(x.stars.min(5)))}</span>
                                        <span class="console-visually-hidden">{format!("{} of 5 stars", x.stars)}</span>
                                        " · "{x.agent.name}" · "{local_time(&x.rated_at)}
                                    </p>
                                    {x.comment.map(|t| view! { <p class="console-rating__comment">{t}</p> })}
                                    <button type="button" class="console-link"
                                        on:click=move |_| { c.show(None); c.open(id.clone()); }>
                                        "Read the chat"
                                    </button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }
            })}
        </main>
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
    /// The queue: each item says how long it has waited, and why it came.
    waiting: bool,
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
                    let since = js_sys::Date::parse(&s.waiting_since);
                    let why = reason_label(&s);
                    view! {
                        <li>
                            <button type="button" class="console-list__item" aria-current=move || selected().then_some("true")
                                on:click=move |_| c.open(id.clone())>
                                <span class="console-list__visitor">{format!("Visitor {}", short(s.visitor_id.as_str()))}</span>
                                <span class="console-list__queue">{routing(s.queue.as_deref(), s.skill.as_deref())}</span>
                                {waiting.then(|| view! {
                                    <span class="console-list__waited">
                                        {move || waited(c.now_ms.get() - since)}" · "{why.clone()}
                                    </span>
                                })}
                                {waiting.then(|| s.message_to_agent.clone()).flatten().map(|n| view! {
                                    <span class="console-list__note">"Note: "{n}</span>
                                })}
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

/// How long a chat has waited, to the minute.
fn waited(ms: f64) -> String {
    let minutes = (ms / 60_000.0).floor().max(0.0) as u64;
    match minutes {
        0 => "waiting under a minute".into(),
        1 => "waiting 1 min".into(),
        m if m < 120 => format!("waiting {m} min"),
        m => format!("waiting {} h {} min", m / 60, m % 60),
    }
}

/// Why a chat came to a person: its trigger (`explicit_request`, `menu_item`…), in words.
fn reason_label(s: &ConversationSummary) -> String {
    let trigger = s
        .reason_text
        .clone()
        .unwrap_or_else(|| s.reason.as_str().to_owned());
    match trigger.as_str() {
        "explicit_request" | "user_request" => "asked for a person".into(),
        "menu_item" => "chose Request live agent".into(),
        "not_understood" | "fallback_misses" | "bot_cannot_handle" => {
            "the bot did not understand".into()
        }
        "fallback_invalid" => "answers the bot could not take".into(),
        "flow" => "the bot's flow handed over".into(),
        other => other.replace('_', " "),
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

/// One conversation: what the bot handed over with, the transcript, and (in a chat this
/// agent has) End, Transfer and the reply box with canned replies.
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
    // Another agent's chat, open to read (a supervisor, or an agent of its queue).
    let someone_elses = match &state {
        ConversationState::AgentJoined { agent } if !mine => Some(agent.name.clone()),
        _ => None,
    };
    // What the bot handed over with: its note, the slots it collected, where it routed, and
    // where the visitor was.
    let handed = events.iter().rev().find_map(|e| match &e.body {
        EventBody::HandoverRequested {
            message_to_agent,
            slots,
            queue,
            skill,
            page_url,
            locale,
            reason,
            reason_text,
        } => Some((
            message_to_agent.clone(),
            slots.clone(),
            routing(queue.as_deref(), skill.as_deref()),
            page_url.clone(),
            locale.clone(),
            reason_text
                .clone()
                .unwrap_or_else(|| reason.as_str().to_owned())
                .replace('_', " "),
            e.ts.clone(),
        )),
        _ => None,
    });
    let (note, slots, route, details) = match handed {
        Some((note, slots, route, page, locale, why, asked)) => (
            note,
            slots,
            Some(route),
            Some(view! {
                <dl class="console-details" aria-label="About the visitor">
                    <dt>"Asked"</dt><dd>{local_time(&asked)}" · "{why}</dd>
                    {page.map(|u| {
                        let href = u.clone();
                        view! {
                            <dt>"Page"</dt>
                            <dd><a href=href target="_blank" rel="noopener noreferrer">{u}</a></dd>
                        }
                    })}
                    {locale.map(|l| view! { <dt>"Language"</dt><dd>{l}</dd> })}
                </dl>
            }),
        ),
        None => (None, vec![], None, None),
    };
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
    let accept_id = id.clone();
    let end_id = id.clone();
    let unsent_id = id.clone();
    let offered_id = id.clone();
    let offered = move || {
        c.offered
            .with(|o| o.get(&offered_id).map(|a| a.name.clone()))
    };
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
            {details}
            {someone_elses.map(|name| view! {
                <p class="console-readonly">{format!("Read only: {name} has this chat.")}</p>
            })}
            {move || offered().map(|to| view! {
                <p class="console-offered" role="status">{format!("Offered to {to}; waiting for an answer.")}</p>
            })}
            {note.map(|n| view! { <p class="console-note"><strong>"Note from the bot: "</strong>{n}</p> })}
            {slots}
            {mine.then(|| view! { <Transfer id=id.clone()/> })}
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
            {mine.then(|| view! { <Reply id=id.clone()/> })}
        </section>
    }
}

/// An RFC 3339 instant in the agent's own time, to the minute.
fn local_time(at: &str) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(at));
    if date.get_time().is_nan() {
        return at.to_owned();
    }
    String::from(date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
}

/// Hand the chat on: to an agent who is online (an offer they accept or decline) or back to
/// a queue, with a note for whoever takes it.
#[component]
fn Transfer(id: ConversationId) -> impl IntoView {
    let c = expect_context::<Console>();
    let me = c.agent.get_untracked().map(|a| a.id);
    let agents = move || {
        c.team.with(|t| {
            t.iter()
                .filter(|m| m.presence == Presence::Online && Some(&m.agent.id) != me.as_ref())
                .map(|m| {
                    let room = if m.max_chats == 0 {
                        format!("{} chats", m.chats)
                    } else {
                        format!("{} of {} chats", m.chats, m.max_chats)
                    };
                    (
                        format!("agent:{}", m.agent.id.as_str()),
                        format!("{} ({room})", m.agent.name),
                    )
                })
                .collect::<Vec<_>>()
        })
    };
    let queues = move || c.queues.get();
    let details = NodeRef::<leptos::html::Details>::new();
    view! {
        <details class="console-transfer" node_ref=details>
            <summary class="console-transfer__toggle">"Transfer…"</summary>
            <form class="console-transfer__form" on:submit=move |ev: ev::SubmitEvent| {
                ev.prevent_default();
                let form: web_sys::HtmlFormElement = event_target(&ev);
                let field = |i: u32| {
                    form.elements()
                        .item(i)
                        .and_then(|e| js_sys::Reflect::get(&e, &"value".into()).ok())
                        .and_then(|v| v.as_string())
                        .unwrap_or_default()
                };
                let (to, note) = (field(0), field(1));
                if let Some(agent) = to.strip_prefix("agent:") {
                    c.transfer_to_agent(id.clone(), AgentId::from(agent), note);
                } else if let Some(queue) = to.strip_prefix("queue:") {
                    c.transfer_to_queue(id.clone(), queue.to_owned(), note);
                }
                if let Some(d) = details.get_untracked() {
                    d.set_open(false);
                }
            }>
                <label for="transfer-to">"To"</label>
                <select id="transfer-to" required>
                    <optgroup label="Agents online">
                        {move || agents().into_iter().map(|(value, label)| view! { <option value=value>{label}</option> }).collect_view()}
                    </optgroup>
                    <optgroup label="Back to a queue">
                        {move || queues().into_iter().map(|q| view! { <option value=format!("queue:{q}")>{format!("Queue {q}")}</option> }).collect_view()}
                    </optgroup>
                </select>
                <label for="transfer-note">"Note for whoever takes over"</label>
                <textarea id="transfer-note" rows="2" maxlength="4096"></textarea>
                <button type="submit" class="console-button console-transfer__send">"Transfer"</button>
            </form>
        </details>
    }
}

/// The reply box. Enter sends; `/` and a name offers the canned replies that match, which
/// the arrows choose and Enter or Tab inserts (the text box points at the listbox's active
/// option, and a status line says how to choose).
#[component]
fn Reply(id: ConversationId) -> impl IntoView {
    let c = expect_context::<Console>();
    let (draft, set_draft) = signal(String::new());
    // Which suggestion is active, and whether Escape put the list away for this draft.
    let (active, set_active) = signal(0usize);
    let (dismissed, set_dismissed) = signal(false);
    let suggestions = Memo::new(move |_| {
        let d = draft.get();
        let Some(typed) = d.strip_prefix('/') else {
            return vec![];
        };
        if dismissed.get() || typed.contains(char::is_whitespace) {
            return vec![];
        }
        c.canned.with(|list| {
            list.iter()
                .filter(|r| r.name.starts_with(typed))
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    let open = move || !suggestions.with(Vec::is_empty);
    let reply_id = id.clone();
    let send = move || {
        let text = draft.get_untracked();
        if !text.trim().is_empty() {
            c.reply(reply_id.clone(), text);
            set_draft.set(String::new());
        }
    };
    let send2 = send.clone();
    let insert = move |i: usize| {
        if let Some(r) = suggestions.with_untracked(|s| s.get(i).cloned()) {
            set_draft.set(r.text);
            set_active.set(0);
        }
    };
    let typed_id = id.clone();
    let on_key = move |ev: ev::KeyboardEvent| {
        let n = suggestions.with_untracked(Vec::len);
        match ev.key().as_str() {
            "ArrowDown" if n > 0 => {
                ev.prevent_default();
                set_active.update(|a| *a = (*a + 1) % n);
            }
            "ArrowUp" if n > 0 => {
                ev.prevent_default();
                set_active.update(|a| *a = (*a + n - 1) % n);
            }
            "Enter" | "Tab" if n > 0 && !ev.shift_key() => {
                ev.prevent_default();
                insert(active.get_untracked().min(n - 1));
            }
            "Escape" if n > 0 => {
                ev.prevent_default();
                set_dismissed.set(true);
            }
            "Enter" if !ev.shift_key() => {
                ev.prevent_default();
                send2();
            }
            _ => {}
        }
    };
    view! {
        <form class="console-reply" on:submit=move |ev: ev::SubmitEvent| { ev.prevent_default(); send(); }>
            <label for="reply" class="console-visually-hidden">"Reply (type / for canned replies)"</label>
            <div class="console-reply__box">
                <textarea id="reply" rows="2" placeholder="Write a reply… (/ for canned replies)"
                    aria-autocomplete="list" aria-controls="canned" aria-describedby="canned-hint"
                    aria-activedescendant=move || open().then(|| format!("canned-{}", active.get()))
                    prop:value=move || draft.get()
                    on:input=move |ev| {
                        set_draft.set(event_target_value(&ev));
                        set_active.set(0);
                        set_dismissed.set(false);
                        c.typed(&typed_id);
                    }
                    on:keydown=on_key
                ></textarea>
                <p id="canned-hint" class="console-visually-hidden" role="status">
                    {move || match suggestions.with(Vec::len) {
                        0 => String::new(),
                        n => format!("{n} canned replies: Up and Down choose, Enter or Tab inserts, Escape closes."),
                    }}
                </p>
                <ul id="canned" class="console-canned" role="listbox" aria-label="Canned replies" hidden=move || !open()>
                    {move || suggestions.get().into_iter().enumerate().map(|(i, r)| view! {
                        <li id=format!("canned-{i}") role="option" class="console-canned__option"
                            aria-selected=move || (active.get() == i).to_string()
                            on:mousedown=move |ev: ev::MouseEvent| { ev.prevent_default(); insert(i); }>
                            <strong>{format!("/{}", r.name)}</strong>" "{r.text}
                        </li>
                    }).collect_view()}
                </ul>
            </div>
            <button type="submit" class="console-button">"Send"</button>
        </form>
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
        EventBody::Transferred {
            from,
            to,
            queue,
            note,
        } => (
            "system",
            "Handover".into(),
            format!(
                "{} handed the chat to {}{}",
                from.name,
                match (to, queue) {
                    (Some(to), _) => to.name,
                    (None, Some(q)) => format!("queue {q}"),
                    (None, None) => "a queue".into(),
                },
                note.map(|n| format!(". Note: {n}")).unwrap_or_default()
            ),
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
