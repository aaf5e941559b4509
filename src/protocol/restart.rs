//! `restart` on the wire: what to restart, with the client's view of rhizome.toml, and how each
//! process came back. The encoding of each type here is part of `PROTOCOL`.

use serde::{Deserialize, Serialize};

use super::forward::{Target, TunnelSettings};
use super::{ErrorReply, ProcessInfo, Signal, Status};

/// Start processes again, as the same processes (ids, logs, local ports).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestartRequest {
    /// `<ID|NAME|PID>`s; with `all`, a name means every running process of that name.
    pub targets: Vec<String>,
    /// With no targets: every running process.
    pub all: bool,
    /// How long to wait after the first signal before SIGKILL.
    pub timeout_ms: u64,
    /// The client's rhizome.toml as it is now, so that a tunnel is rebuilt from its target's
    /// current entry; `Err`: why it could not be read (tunnels then restart as they were).
    pub config: Result<Configured, String>,
    /// The first signal sent to a running process's group (`restart --signal`).
    pub signal: Signal,
}

/// The targets of a rhizome.toml, and how it keeps tunnels up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Configured {
    /// Every target by name: resolved, or why its entry is invalid.
    pub targets: Vec<(String, Result<Target, String>)>,
    pub settings: TunnelSettings,
}

/// How one process came back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestartReport {
    pub id: u32,
    pub name: String,
    /// The pid of the run that was ended.
    pub old_pid: Option<u32>,
    /// How that run ended; `None` when none was running.
    pub stopped: Option<Stopped>,
    /// Its status before, when it had finished and was started again.
    pub was: Option<Status>,
    /// What of a tunnel's configuration changed (`key old -> new`), applied by this restart.
    pub changed: Vec<String>,
    /// Something to know about how it was restarted (a config that could not be read).
    pub note: Option<String>,
    /// Why it is not running again, when it is not, and what to do.
    pub failed: Option<ErrorReply>,
    /// The process as it is now.
    pub now: ProcessInfo,
}

/// How a run that a restart ended went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    pub signal: Signal,
    /// From the first signal until its process group was gone.
    pub elapsed_ms: u64,
}
