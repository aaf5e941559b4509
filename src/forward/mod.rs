//! The pieces a tunnel is made of, as a library the daemon uses: `target` resolves and validates
//! names from the config, `adhoc` a tunnel given on the command line; `drift` says how a running
//! tunnel differs from the one asked for; `kubectl` knows the tool's command lines and output;
//! `tunnel` owns the local listener and the splice; `port` finds who holds a port; `simulate`
//! stands in for a cluster. Nothing here knows the daemon: supervising a tunnel is
//! `daemon::supervise::tunnel`.

pub mod access;
pub mod adhoc;
mod check;
pub mod drift;
pub mod env;
mod error;
pub mod kubectl;
pub mod port;
pub mod simulate;
pub mod target;
pub mod tunnel;
