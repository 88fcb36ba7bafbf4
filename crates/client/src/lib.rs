//! Baton's client core: what the widget and the console both need from a chat client, with no
//! browser in it, so it is tested natively.
//!
//! - [`connection`]: the socket's life as a pure state machine (connect, hello with the last
//!   seq, back-off with jitter, resume, give up on a revoked credential);
//! - [`backoff`]: the waits between attempts;
//! - [`outbox`]: messages not yet acknowledged, kept in a [`outbox::Storage`] (the browser's
//!   storage in the apps, memory in tests) and re-sent with their ids after every welcome;
//! - [`timeline`]: a conversation's events through the protocol's `apply`, de-duplicated by
//!   seq and by `client_msg_id`;
//! - [`ids`]: idempotency keys that are never empty;
//! - [`json`] and [`wire`]: the visitor side of the wire without serde's decoders (the
//!   widget's size budget), checked against the protocol's serde encoding;
//! - [`media`]: a bot line's image and carousel, from Rasa's shapes, web addresses only.

pub mod backoff;
pub mod connection;
pub mod ids;
pub mod json;
pub mod media;
pub mod outbox;
pub mod timeline;
pub mod wire;
