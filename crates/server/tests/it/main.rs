//! Server integration tests: a real server on 127.0.0.1:0 with a real SQLite file, driven by
//! real HTTP and WebSocket clients.

mod bot;
mod handover;
mod harness;
mod sockets;
mod storage;
