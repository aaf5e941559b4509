//! `rhizome forward`: kubectl tunnels to databases that stay up.
//!
//! `target` resolves names from the config; `kubectl` knows the tool's command lines and output;
//! `tunnel` owns the local listener and the splice; `pipeline` supervises the whole path and
//! restarts it; `simulate` stands in for a cluster.

pub mod kubectl;
pub mod port;
pub mod simulate;
pub mod target;
pub mod tunnel;

use std::collections::HashMap;
use std::sync::Mutex;

/// The proxy port each database target was last found on. A guess, never trusted: it lets
/// kubectl port-forward start while exec confirms the port.
#[derive(Debug, Default)]
pub struct ProxyPorts(Mutex<HashMap<String, u16>>);

impl ProxyPorts {
    pub fn get(&self, target: &str) -> Option<u16> {
        self.0.lock().ok()?.get(target).copied()
    }

    pub fn learn(&self, target: &str, port: u16) {
        if let Ok(mut ports) = self.0.lock() {
            ports.insert(target.to_string(), port);
        }
    }
}
