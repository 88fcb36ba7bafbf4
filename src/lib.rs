//! Baton's chat widget.
//!
//! `loader/baton.js` paints the launcher inside a shadow root and calls [`mount`]. The app is
//! a Leptos CSR tree: components in [`ui`] read and call the [`store::Chat`] store, which
//! alone talks to the network (through `baton_browser`). Bot, agent and visitor text is only ever rendered as text
//! nodes.

pub mod store;
pub mod texts;
pub mod ui;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

pub use store::{Chat, Settings};

/// The heap: Talc instead of Rust's default dlmalloc (smaller in the wasm, and faster).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

thread_local! {
    /// The mounted widget, for [`preview`].
    static MOUNTED: std::cell::Cell<Option<Chat>> = const { std::cell::Cell::new(None) };
}

/// Preview mode: shows a state without the server (`bot`, `queued`, `no_agents`, `agent`,
/// `ended`, `closed`, `disabled`, `unavailable`), or sends `say:…` to the bot. The loader
/// offers it as `window.batonPreview` when the script tag has `data-preview`.
#[wasm_bindgen]
pub fn preview(what: &str) -> bool {
    MOUNTED
        .with(|m| m.get())
        .is_some_and(|chat| chat.preview(what))
}

/// Mounts the widget into `root` (the loader's shadow root), talking to `server`, with the
/// site owner's texts (`settings`: the loader's `GET /api/v1/widget` answer).
/// `open` opens the panel at once (the visitor clicked the launcher while loading).
#[wasm_bindgen]
pub fn mount(
    root: web_sys::ShadowRoot,
    server: String,
    title: String,
    open: bool,
    settings: String,
) -> Result<(), JsValue> {
    // Read first: nothing is started or added to the page with settings it cannot use.
    let settings = baton_client::wire::read_widget_settings(&settings)?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let container: web_sys::HtmlElement = document.create_element("div")?.unchecked_into();
    container.set_class_name("baton-root");
    let chat = Chat::new(Settings { server, title });
    chat.apply_settings(settings);
    root.append_child(&container)?;
    chat.open.set(open);
    MOUNTED.with(|m| m.set(Some(chat)));
    mount_in(container, chat);
    Ok(())
}

/// Mounts the app with a given store into an element (the tests use this directly).
pub fn mount_in(parent: web_sys::HtmlElement, chat: Chat) {
    leptos::mount::mount_to(parent, move || {
        provide_context(chat);
        view! { <ui::App/> }
    })
    .forget();
}
