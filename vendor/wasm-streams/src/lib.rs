//! A stand-in for `wasm-streams` 0.5 (patched in by the workspace `Cargo.toml`).
//!
//! Leptos 0.8 always builds server_fn's browser client, and that client depends on
//! `wasm-streams`, whose `#[wasm_bindgen]` classes (`IntoUnderlyingSource`, `…Sink`,
//! `…ByteSource`) are exports: no linker may drop them, so they cost the widget about 4 KB
//! brotli of wasm and glue although Baton calls no server function. This crate offers the
//! four functions server_fn 0.8 names. Streaming a request or a response body through a
//! server function, which Baton never does, throws a JavaScript error saying so.

#![forbid(unsafe_code)]

use futures_util::Stream;
use wasm_bindgen::JsValue;

const UNSUPPORTED: &str = "streaming server functions are not built into Baton";

/// A JavaScript `ReadableStream`, held as is.
#[derive(Debug)]
pub struct ReadableStream {
    raw: web_sys::ReadableStream,
}

impl ReadableStream {
    /// Wraps a JavaScript stream.
    pub fn from_raw(raw: web_sys::ReadableStream) -> Self {
        Self { raw }
    }

    /// Would turn a Rust stream into a JavaScript one; throws (unused by Baton).
    pub fn from_stream<St>(_stream: St) -> Self
    where
        St: Stream<Item = Result<JsValue, JsValue>> + 'static,
    {
        wasm_bindgen::throw_str(UNSUPPORTED)
    }

    /// The JavaScript stream.
    pub fn into_raw(self) -> web_sys::ReadableStream {
        self.raw
    }

    /// Would read the JavaScript stream as a Rust one; throws (unused by Baton).
    pub fn into_stream(self) -> futures_util::stream::Empty<Result<JsValue, JsValue>> {
        wasm_bindgen::throw_str(UNSUPPORTED)
    }
}
