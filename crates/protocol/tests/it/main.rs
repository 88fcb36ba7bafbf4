//! Protocol tests: wire snapshots and the transition table.

mod transitions;
mod wire;
