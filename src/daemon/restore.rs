//! Taking over from the previous daemon: stop the children it left behind (their output pipes
//! went with it), then bring back what should run.
//!
//! Children are recognised by pid *and* kernel start time, so a pid the system has since given to
//! another program is never touched. Tunnels and `run --restart always|on-failure` come back with
//! their ids and local ports; one-shot processes are recorded as lost, not run again.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::Daemon;
use super::child;
use super::logs::ProcessLog;
use super::logs::format::LineFormatter;
use super::process::{ChildId, ForwardPart, Process, Spec};
use super::state::{Loaded, SavedProcess};
use super::supervise;
use crate::protocol::{RestartPolicy, Status};

/// Grace between SIGTERM and SIGKILL for a previous daemon's children.
const ORPHAN_GRACE: Duration = Duration::from_secs(3);

/// Reads the state file and puts its processes back in the table at once (so the first `ps`
/// shows them); ending orphans and starting again happens in the background.
pub async fn restore(daemon: &Arc<Daemon>) {
    let file = match daemon.store.load() {
        Loaded::Nothing => return,
        Loaded::State(file) => file,
        Loaded::Rejected { moved_to, why } => {
            let message = format!(
                "the state file could not be used ({why}); it was moved to {} and nothing was restored",
                moved_to.display()
            );
            tracing::error!("{message}");
            if let Ok(mut notice) = daemon.notice.lock() {
                *notice = Some(message);
            }
            return;
        }
    };
    if file.processes.is_empty() {
        return;
    }
    tracing::info!(
        "restoring {} processes from the previous daemon",
        file.processes.len()
    );
    let mut restored = Vec::new();
    for saved in file.processes {
        let orphans = saved.children.clone();
        let (process, orders) = entry(daemon, &saved);
        daemon.table.restore(process.clone(), file.next_id);
        restored.push((process, orders, orphans, saved.forward.is_some()));
    }
    let daemon = daemon.clone();
    tokio::spawn(async move {
        let sweeps = restored
            .iter()
            .flat_map(|(_, _, orphans, _)| orphans.iter().map(|o| end_orphan(*o)));
        futures_util::future::join_all(sweeps).await;
        for (process, orders, _, is_tunnel) in restored {
            say(&daemon, &process, "restored after the daemon restarted").await;
            if is_tunnel {
                if let Err(reply) = super::handle::start_tunnel(&daemon, &process, orders) {
                    say(&daemon, &process, &reply.message).await;
                    process.update(|s| s.status = Status::Failed(reply.message));
                }
            } else if process.spec.restart != RestartPolicy::Never {
                let first = supervise::command::launch(&daemon, &process).await;
                daemon.supervisors.spawn(supervise::command::supervise(
                    daemon.clone(),
                    process,
                    first,
                    orders,
                ));
            }
        }
        daemon.store.changed.notify_one();
    });
}

/// The table entry for a saved process, under its old id. One-shots are final (`lost`) at once.
fn entry(
    daemon: &Daemon,
    saved: &SavedProcess,
) -> (
    Arc<Process>,
    tokio::sync::mpsc::Receiver<super::process::KillOrder>,
) {
    let spec = Spec {
        argv: saved.argv.iter().map(OsString::from).collect(),
        env: saved
            .env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect(),
        cwd: PathBuf::from(&saved.cwd),
        restart: saved.restart,
    };
    let forward = saved.forward.as_ref().map(|f| {
        let mut target = f.target.clone();
        // Back on the port it had, even if it was given any free one.
        target.local_port = f.local_port;
        ForwardPart {
            requested_port: f.local_port,
            target,
            tool: f.tool.clone(),
            wait: Duration::from_millis(f.wait_ms),
            settings: f.settings,
            tunnel: OnceLock::new(),
        }
    });
    let log = Arc::new(ProcessLog::new(
        &daemon.paths.logs,
        saved.id,
        &saved.name,
        daemon.rotation,
    ));
    let (process, orders) = Process::new(
        saved.id,
        saved.name.clone(),
        saved.kind,
        spec,
        log,
        forward,
        daemon.store.changed.clone(),
    );
    let one_shot = saved.forward.is_none() && saved.restart == RestartPolicy::Never;
    process.update(|s| {
        s.restarts = saved.restarts;
        s.pid = saved.children.first().map(|c| c.pid);
        if one_shot {
            s.status = Status::Lost;
        }
    });
    (process, orders)
}

/// Stops a previous daemon's child, if it is still that same process.
async fn end_orphan(orphan: ChildId) {
    let Some(recorded) = orphan.start_time else {
        return;
    };
    if child::start_time(orphan.pid) != Some(recorded) {
        return;
    }
    tracing::info!(
        "stopping pid {}, left running by the previous daemon",
        orphan.pid
    );
    child::end_group(orphan.pid, ORPHAN_GRACE).await;
}

async fn say(daemon: &Daemon, process: &Process, message: &str) {
    let mut fmt = LineFormatter::new(&process.name, None);
    daemon
        .writer
        .append(&process.log, fmt.lifecycle(message))
        .await;
}
