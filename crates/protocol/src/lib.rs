//! Baton's wire contract and the conversation state machine.
//!
//! This crate does no I/O. The widget (wasm) and the server (native) both depend on it, so
//! every rule about what a frame looks like or which state follows which lives here, once,
//! and is unit-tested on the native target. `docs/protocol.md` is the prose version.
//!
//! Compatibility rule: widgets cached on host sites must keep working against a newer
//! server. So receivers ignore unknown fields, unknown frame types decode to an `Unknown`
//! variant instead of failing, and fields are only ever added, never renamed.

pub mod bot;
pub mod decide;
pub mod ids;
pub mod state;
pub mod status;
pub mod texts;
pub mod time;
pub mod ws;

/// The protocol version carried in `v` fields and `metadata.wcp.v`. Version 2 added the
/// visitor credential (`POST /api/v1/visitor`); see docs/protocol.md.
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest visitor or agent message text, in bytes, that the server accepts.
pub const MAX_TEXT_BYTES: usize = 4096;

/// Largest `client_msg_id`, in bytes.
pub const MAX_CLIENT_MSG_ID_BYTES: usize = 128;

/// Largest `page_url`, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Largest WebSocket frame, in bytes, that the server reads. JSON escapes a control
/// character as six bytes (`\u0001`), so a frame carrying the largest text and id the
/// server accepts, escaped at worst, still fits: 6 × (4096 + 128) plus the envelope.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
