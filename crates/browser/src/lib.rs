//! Browser I/O shared by the widget and the console: JSON over `fetch`, and a WebSocket
//! handle that owns its callbacks. Components never call this; each app's store does.
//!
//! Written over `web-sys` rather than with `gloo-net` (the design card's choice) because of
//! the widget's size budget. Measured with `cargo xtask size` on 2026-11-29, same build
//! otherwise: this module 122,759 bytes brotli in all; `gloo_net::http` for fetch 125,091
//! (+2.3 KB); that plus `gloo_net::websocket::futures` (a `Stream + Sink`, split, with a
//! writer task) 129,401 (+6.5 KB), over the 5 KB the roadmap allows and over the budget.

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{CloseEvent, Event, MessageEvent, Request, RequestInit, Response, WebSocket};

/// A failed request: the HTTP status when the server answered, its error code, and a
/// sentence for people (in English: an app puts it in its visitor's language by the code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchError {
    /// The HTTP status, or `None` when the server could not be reached.
    pub status: Option<u16>,
    /// The server's error code (`rate_limited`…); `unexpected` for an answer that is not
    /// what the protocol says; `None` when the server could not be reached.
    pub code: Option<String>,
    /// What went wrong, for people.
    pub message: String,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for FetchError {
    fn from(message: String) -> Self {
        Self {
            status: None,
            code: None,
            message,
        }
    }
}

/// POSTs `body` as JSON and decodes the JSON answer. Errors are sentences for people.
pub async fn post_json<T: Serialize, R: DeserializeOwned>(
    url: &str,
    body: &T,
) -> Result<R, String> {
    post_json_as(url, body, None).await.map_err(|e| e.message)
}

/// Like [`post_json`], with `Authorization: Bearer <bearer>` when given.
pub async fn post_json_as<T: Serialize, R: DeserializeOwned>(
    url: &str,
    body: &T,
    bearer: Option<&str>,
) -> Result<R, FetchError> {
    let body = serde_json::to_string(body).map_err(|e| e.to_string())?;
    decode(&fetch_text(url, Some(body), bearer).await?)
}

/// GETs `url` and decodes the JSON answer.
pub async fn get_json<R: DeserializeOwned>(url: &str) -> Result<R, FetchError> {
    decode(&fetch_text(url, None, None).await?)
}

fn decode<R: DeserializeOwned>(text: &str) -> Result<R, FetchError> {
    serde_json::from_str(text).map_err(|e| unexpected(&e.to_string()))
}

/// The error for an answer that is not what the protocol says.
pub fn unexpected(why: &str) -> FetchError {
    FetchError {
        status: None,
        code: Some("unexpected".into()),
        message: format!("The chat server sent something unexpected: {why}"),
    }
}

/// POSTs `body` (JSON text) or GETs without one, and returns the answer's text. A 4xx/5xx
/// answer is an error with the server's sentence (its JSON `message`). The widget decodes
/// the text through the client core's `wire` (no serde in its wasm); the console through
/// serde ([`get_json`], [`post_json_as`]).
pub async fn fetch_text(
    url: &str,
    body: Option<String>,
    bearer: Option<&str>,
) -> Result<String, FetchError> {
    let init = RequestInit::new();
    let has_body = body.is_some();
    if let Some(body) = body {
        init.set_method("POST");
        init.set_body(&JsValue::from_str(&body));
    }
    let req = Request::new_with_str_and_init(url, &init).map_err(js_err)?;
    if has_body {
        req.headers()
            .set("Content-Type", "application/json")
            .map_err(js_err)?;
    }
    if let Some(token) = bearer {
        req.headers()
            .set("Authorization", &format!("Bearer {token}"))
            .map_err(js_err)?;
    }
    let window = web_sys::window().ok_or_else(|| "no window".to_string())?;
    let resp: Response = JsFuture::from(window.fetch_with_request(&req))
        .await
        .map_err(|_| "The chat server cannot be reached.".to_string())?
        .unchecked_into();
    let text = JsFuture::from(resp.text().map_err(js_err)?)
        .await
        .map_err(js_err)?
        .as_string()
        .unwrap_or_default();
    if !resp.ok() {
        let (code, message) = match baton_client::wire::read_api_error(&text) {
            Some((code, message)) => (code, message),
            None => (
                "unexpected".into(),
                format!("The chat server answered {}.", resp.status()),
            ),
        };
        return Err(FetchError {
            status: Some(resp.status()),
            code: Some(code),
            message,
        });
    }
    Ok(text)
}

/// The WebSocket URL for an HTTP(S) URL on the same server.
fn ws_url(http_url: &str) -> String {
    match http_url.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some(("http", rest)) => format!("ws://{rest}"),
        _ => http_url.to_owned(),
    }
}

fn js_err(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// An open socket. Dropping it closes the socket and releases its callbacks.
pub struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Connects to `http_url` over WebSocket (`http` → `ws`, `https` → `wss`). The callbacks
    /// run on open, on each JSON frame (an unreadable frame is logged and skipped) and on close
    /// (with the code). Callbacks must not drop the socket synchronously; defer that with
    /// `spawn_local`.
    pub fn open<F: DeserializeOwned>(
        http_url: &str,
        on_open: impl FnMut() + 'static,
        mut on_frame: impl FnMut(F) + 'static,
        on_close: impl FnMut(u16) + 'static,
    ) -> Result<Self, String> {
        Self::open_text(
            http_url,
            on_open,
            move |text| match serde_json::from_str(&text) {
                Ok(frame) => on_frame(frame),
                Err(err) => warn(&format!("baton: unreadable frame: {err}")),
            },
            on_close,
        )
    }

    /// Like [`Socket::open`], handing each text frame over as it came.
    pub fn open_text(
        http_url: &str,
        mut on_open: impl FnMut() + 'static,
        mut on_text: impl FnMut(String) + 'static,
        mut on_close: impl FnMut(u16) + 'static,
    ) -> Result<Self, String> {
        let ws = WebSocket::new(&ws_url(http_url)).map_err(js_err)?;
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_| on_open());
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string() {
                on_text(text);
            }
        });
        let on_close =
            Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| on_close(e.code()));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Self {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    /// Sends a frame; false when the socket is not open (the caller keeps it in its outbox).
    pub fn send<T: Serialize>(&self, frame: &T) -> bool {
        serde_json::to_string(frame).is_ok_and(|t| self.send_text(&t))
    }

    /// Sends a text frame; false when the socket is not open.
    pub fn send_text(&self, text: &str) -> bool {
        self.ws.ready_state() == WebSocket::OPEN && self.ws.send_with_str(text).is_ok()
    }
}

/// A Server-Sent Events stream (`EventSource`): each message's data handed over as it came.
/// The browser reconnects by itself after a drop. Dropping it closes the stream.
pub struct EventStream {
    source: web_sys::EventSource,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl EventStream {
    /// Opens `url` (no credentials are sent: the stream is public).
    pub fn open(url: &str, mut on_data: impl FnMut(String) + 'static) -> Result<Self, String> {
        let source = web_sys::EventSource::new(url).map_err(js_err)?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string() {
                on_data(text);
            }
        });
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Ok(Self {
            source,
            _on_message: on_message,
        })
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.source.set_onmessage(None);
        self.source.close();
    }
}

/// Logs a warning to the browser console.
pub fn warn(text: &str) {
    web_sys::console::warn_1(&JsValue::from_str(text));
}

impl Socket {
    /// Closes the socket normally; none of its callbacks runs after this, though they stay
    /// alive until the `Socket` is dropped (so this may be called from inside one of them).
    pub fn close(&self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close_with_code(1000);
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.close();
    }
}

/// The browser's `localStorage` or `sessionStorage` for the client core's outbox, or memory
/// when the page may not use storage (private modes, sandboxed frames).
pub struct BrowserStorage {
    web: Option<web_sys::Storage>,
    memory: baton_client::outbox::MemoryStorage,
}

impl BrowserStorage {
    /// This origin's `localStorage` (kept across visits).
    pub fn local() -> Self {
        Self {
            web: web_sys::window().and_then(|w| w.local_storage().ok().flatten()),
            memory: Default::default(),
        }
    }

    /// This tab's `sessionStorage`.
    pub fn session() -> Self {
        Self {
            web: web_sys::window().and_then(|w| w.session_storage().ok().flatten()),
            memory: Default::default(),
        }
    }

    /// Over a given memory storage (tests that reload share one).
    pub fn from_memory(memory: baton_client::outbox::MemoryStorage) -> Self {
        Self { web: None, memory }
    }

    /// Memory only (tests, or a widget told not to persist).
    pub fn memory() -> Self {
        Self {
            web: None,
            memory: Default::default(),
        }
    }
}

impl baton_client::outbox::Storage for BrowserStorage {
    fn get(&self, key: &str) -> Option<String> {
        match &self.web {
            Some(s) => s.get_item(key).ok().flatten(),
            None => self.memory.get(key),
        }
    }
    fn set(&self, key: &str, value: &str) {
        match &self.web {
            // Full or forbidden storage: the outbox still works for this page view.
            Some(s) => {
                if s.set_item(key, value).is_err() {
                    self.memory.set(key, value);
                }
            }
            None => self.memory.set(key, value),
        }
    }
    fn remove(&self, key: &str) {
        if let Some(s) = &self.web {
            let _ = s.remove_item(key);
        }
        self.memory.remove(key);
    }
}

/// A new idempotency key: the browser's `crypto.randomUUID` where it has one (secure
/// contexts), else the client core's generator over `Math.random`. Never empty.
pub fn new_client_msg_id() -> baton_protocol::ids::ClientMsgId {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .and_then(|c| {
            let f = js_sys::Reflect::get(&c, &JsValue::from_str("randomUUID")).ok()?;
            f.is_function().then(|| c.random_uuid())
        })
        .filter(|id| !id.is_empty())
        .map(baton_protocol::ids::ClientMsgId)
        .unwrap_or_else(|| baton_client::ids::client_msg_id(js_sys::Math::random))
}

/// A uniform random number in `[0, 1)` for back-off jitter.
pub fn random() -> f64 {
    js_sys::Math::random()
}
