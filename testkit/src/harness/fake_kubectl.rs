//! What the fake kubectl (`fake-kubectl`) leaves in its state directory, `FAKE_KUBECTL_DIR`, as a
//! test reads it: every call, and the pid of the latest port-forward.

use std::path::Path;

/// One invocation of the fake kubectl, a line of `calls.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubectlCall {
    pub pid: u32,
    /// Its arguments, without the program.
    pub argv: Vec<String>,
    /// Its subcommand's 1-based start number; 0 for a call rejected before it started.
    pub start: u64,
}

impl KubectlCall {
    /// Whether `arg` is one of its arguments (`"exec"`, `"port-forward"`, ...).
    pub fn has(&self, arg: &str) -> bool {
        self.argv.iter().any(|a| a == arg)
    }
}

/// Every call the fake kubectl with the state directory `dir` logged, in order; none if it was
/// never called.
pub fn kubectl_calls(dir: &Path) -> Vec<KubectlCall> {
    std::fs::read_to_string(dir.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("calls.log: {e}: {line}"));
            KubectlCall {
                pid: v["pid"].as_u64().expect("a pid") as u32,
                argv: v["argv"]
                    .as_array()
                    .expect("an argv")
                    .iter()
                    .map(|a| a.as_str().expect("a string").to_string())
                    .collect(),
                start: v["start"].as_u64().expect("a start number"),
            }
        })
        .collect()
}

/// The pid of the port-forward that last printed its `Forwarding from` lines (`port-forward.pid`).
pub fn port_forward_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("port-forward.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}
