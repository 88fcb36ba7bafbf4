//! Baton's agent console: log in, see who waits with the bot transcript, accept, reply, end.

mod store;
mod ui;

use leptos::prelude::*;

fn main() {
    console_error_panic_hook();
    leptos::mount::mount_to_body(|| {
        provide_context(store::Console::new());
        view! { <ui::App/> }
    });
}

/// Reports panics in the browser console instead of failing silently.
fn console_error_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        leptos::logging::error!("baton-console panicked: {info}")
    }));
}
