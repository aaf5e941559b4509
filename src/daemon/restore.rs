//! Taking over from the previous daemon: stop the children it left behind (their output pipes
//! went with it), then bring back what should run.
//!
//! Children are recognised by pid *and* kernel start time, so a pid the system has since given to
//! another program is never touched. Tunnels and `run --restart always|on-failure` come back with
//! their ids and local ports; one-shot processes are recorded as lost, not run again.

use std::fs;
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Daemon;
use super::child;
use super::handle;
use super::process::{ChildId, KillOrder, Phase, Process, Spec, TunnelPart, Work};
use super::state::{Loaded, SavedProcess};
use super::supervise::command;
use crate::forward::tunnel::Tunnel;
use crate::protocol::{CommandKind, Kind, RestartPolicy};

/// Grace between SIGTERM and SIGKILL for a previous daemon's children.
const ORPHAN_GRACE: Duration = Duration::from_secs(3);

/// Reads the state file and the log directory and puts the processes back in the table at once
/// (so the first `ps` shows them), giving ids above every id of the file and of the logs on disk;
/// ending orphans and starting again happens in the background.
pub async fn restore(daemon: &Arc<Daemon>) {
    let loading = daemon.clone();
    let found = tokio::task::spawn_blocking(move || {
        (loading.store.load(), process_logs(&loading.paths.logs))
    })
    .await;
    let (loaded, logs) = found.unwrap_or((Loaded::Nothing, Vec::new()));
    // Every id with a log was given out, whatever the state file says.
    let floor = logs
        .iter()
        .map(|(id, _)| *id)
        .max()
        .map_or(1, |id| id.saturating_add(1));
    daemon.table.start_ids_at(floor);
    let file = match loaded {
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
    daemon.table.start_ids_at(file.next_id);
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
        let (process, orders, spec) = entry(daemon, saved);
        daemon.table.restore(process.clone());
        restored.push((process, orders, orphans, spec));
    }
    let daemon = daemon.clone();
    tokio::spawn(async move {
        let sweeps = restored
            .iter()
            .flat_map(|(_, _, orphans, _)| orphans.iter().map(|o| end_orphan(*o)));
        futures_util::future::join_all(sweeps).await;
        for (process, orders, _, spec) in restored {
            if process.is_final() {
                continue;
            }
            daemon
                .say(&process, "restored after the daemon restarted")
                .await;
            match spec {
                None => super::handle::start_tunnel(&daemon, &process, orders),
                Some(spec) => {
                    let first = command::launch(&daemon, &process, &spec).await;
                    daemon.supervisors.spawn(command::supervise(
                        daemon.clone(),
                        process,
                        spec,
                        first,
                        orders,
                    ));
                }
            }
        }
        daemon.store.changed.notify_one();
    });
}

/// The table entry for a saved process, under its old id, and the spec to run again for a
/// command. A tunnel gets its old local port back; one that cannot is failed, and one-shots are
/// `lost`: both are final at once.
fn entry(
    daemon: &Daemon,
    saved: SavedProcess,
) -> (Arc<Process>, mpsc::Receiver<KillOrder>, Option<Spec>) {
    let context = saved.context().unwrap_or_default();
    let (work, spec, failed) = match saved.forward {
        Some(forward) => {
            let mut target = forward.target;
            // Back on the port it had, even if it was given any free one.
            target.local_port = NonZeroU16::new(forward.local_port);
            let wait = Duration::from_millis(forward.wait_ms);
            let (tunnel, failed) = match handle::bind(target.local_port, wait) {
                Ok(tunnel) => (tunnel, None),
                Err(refused) => (
                    Tunnel::unbound(forward.local_port),
                    Some(refused.describe()),
                ),
            };
            let part = TunnelPart {
                target,
                tool: forward.tool,
                context,
                wait,
                settings: forward.settings,
                tunnel,
            };
            (Work::Tunnel(Arc::new(part)), None, failed)
        }
        None => {
            let spec = Spec {
                kind: match saved.kind {
                    Kind::Sleeper => CommandKind::Sleeper,
                    Kind::Run | Kind::Forward => CommandKind::Run,
                },
                argv: saved.argv.into_iter().map(|arg| arg.0).collect(),
                context,
                restart: saved.restart,
            };
            (Work::Command(spec.clone()), Some(spec), None)
        }
    };
    let one_shot = spec
        .as_ref()
        .is_some_and(|s| s.restart == RestartPolicy::Never);
    let (process, orders) = daemon.new_process(saved.id, saved.name, work);
    process.update(|s| {
        s.restarts = saved.restarts;
        s.last_pid = saved.children.first().map(|c| c.pid);
        if let Some(reason) = failed {
            s.phase = Phase::Failed(reason);
        } else if one_shot {
            s.phase = Phase::Lost;
        }
    });
    (process, orders, spec)
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

/// The process logs in `dir` with their ids: `<id>-<name>.log`, and `.log.N` as they rotate (see
/// `ProcessLog`). Blocks.
fn process_logs(dir: &Path) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| Some((log_id(entry.file_name().to_str()?)?, entry.path())))
        .collect()
}

/// The id in a process log's file name.
fn log_id(name: &str) -> Option<u32> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (id, rest) = name.split_once('-')?;
    let (_, rotation) = rest.rsplit_once(".log")?;
    let rotated = rotation.strip_prefix('.').is_some_and(digits);
    if !digits(id) || !(rotation.is_empty() || rotated) {
        return None;
    }
    id.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_logs_are_told_from_other_files_by_name() {
        assert_eq!(log_id("12-web.log"), Some(12));
        assert_eq!(log_id("3-na-prod_billing.log.2"), Some(3));
        for other in [
            "daemon.2025-01-01.log",
            "daemon.out",
            "x-web.log",
            "+1-web.log",
            "12-web.log.",
            "12-web.log.x",
            "12-web.txt",
            "99999999999-web.log",
        ] {
            assert_eq!(log_id(other), None, "{other}");
        }
    }
}
