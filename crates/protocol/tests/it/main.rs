//! Protocol tests: wire snapshots and the transition table.

mod decide;
mod transitions;
mod wire;
