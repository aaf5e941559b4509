//! rhizome: a per-user daemon that keeps long-running helper processes alive, above all
//! `kubectl port-forward` tunnels to databases, and the command line that drives it.
//!
//! The binary is thin (`main.rs`); the client (`client/`) and the daemon (`daemon/`) share the
//! protocol (`protocol.rs`), its framing (`connection.rs`) and the file layout (`paths.rs`).

#[cfg(not(unix))]
compile_error!(
    "rhizome runs on Unix (Linux, macOS) for now: its daemon relies on Unix sockets, process groups and signals"
);

pub mod cli;
pub mod client;
pub mod config;
pub mod connection;
pub mod daemon;
pub mod forward;
pub mod lock;
pub mod names;
pub mod native;
pub mod paths;
pub mod protocol;
pub mod similar;
pub mod sleeper;
