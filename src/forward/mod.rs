//! `rhizome forward`: kubectl tunnels to databases that stay up.
//!
//! `target` resolves names from the config; `kubectl` knows the tool's command lines and output;
//! `tunnel` owns the local listener and the splice; `pipeline` supervises the whole path and
//! restarts it; `simulate` stands in for a cluster.

pub mod kubectl;
pub mod open;
pub mod pipeline;
pub mod port;
pub mod simulate;
pub mod target;
pub mod tunnel;
