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
pub mod ids;
pub mod schedule;
pub mod state;
pub mod status;
pub mod time;
pub mod ws;

/// The protocol version carried in `v` fields and `metadata.wcp.v`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest visitor or agent message text, in bytes, that the server accepts.
pub const MAX_TEXT_BYTES: usize = 4096;

/// Largest WebSocket frame, in bytes, that the server reads.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
