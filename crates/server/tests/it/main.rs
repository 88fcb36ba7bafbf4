//! Server integration tests: real servers on 127.0.0.1:0 with a real SQLite file or
//! PostgreSQL database, the in-process bus or a real NATS server, driven by real HTTP and
//! WebSocket clients.

mod access;
mod bot;
mod bus;
mod cli;
mod handover;
mod hardening;
mod harness;
mod languages;
mod live;
mod offloading;
mod presence;
mod replicas;
mod routing;
mod sockets;
mod storage;
mod store;
