//! Taking over from the previous daemon: repair what it left on disk, stop the children it left
//! behind (their output pipes went with it), then bring back what should run.
//!
//! Children are recognised by pid *and* kernel start time, so a pid the system has since given to
//! another program is never touched. Tunnels and `run --restart always|on-failure` come back with
//! their ids and local ports; one-shot processes are recorded as lost, not run again; finished
//! processes come back as they ended, for `ps --all` and `logs`.
//!
//! The order is what a crash at any step needs. The table is built before any client is served,
//! giving ids above every id of the file and of the logs on disk. The state is then saved, still
//! naming the children to end, before any log is deleted or anything started; a child leaves it
//! only once it is ended.

use std::collections::HashSet;
use std::fs;
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Daemon;
use super::child;
use super::handle;
use super::process::{ChildId, Order, Phase, Process, Spec, TunnelPart, Work};
use super::state::{FORMAT, Loaded, MAX_ID, SavedEnd, SavedProcess, StateFile};
use super::supervise::command;
use crate::forward::tunnel::Tunnel;
use crate::protocol::{CommandKind, Kind};

/// Grace between SIGTERM and SIGKILL for a previous daemon's children.
const ORPHAN_GRACE: Duration = Duration::from_secs(3);

/// A restored entry and what is left to do for it.
struct Restored {
    process: Arc<Process>,
    orders: mpsc::Receiver<Order>,
    /// The previous daemon's children of it, ended before it runs again.
    orphans: Vec<ChildId>,
    /// The command to run again; `None` for a tunnel (its entry has all it needs) and for what
    /// is over.
    spec: Option<Spec>,
    /// A one-shot that was running when its daemon died: its log is told so, once.
    lost_now: bool,
}

/// Reads the state file and the log directory and puts the processes back in the table at once
/// (so the first `ps` shows them); saving, deleting logs, ending orphans and starting again
/// happen in the background.
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
        .filter(|id| *id < MAX_ID)
        .max()
        .map_or(1, |id| id + 1);
    let (mut file, mut keep_logs) = match loaded {
        Loaded::Nothing if logs.is_empty() => return,
        Loaded::Nothing => (empty(), false),
        Loaded::State(file) => (file, false),
        // The logs stay this time: they are all that is left of what ran.
        Loaded::Rejected { moved_to, why } => {
            tell(
                daemon,
                format!(
                    "the state file could not be used ({why}); it was moved to {} and nothing was restored",
                    moved_to.display()
                ),
            );
            (empty(), true)
        }
    };
    let repairs = file.repair(floor);
    if !repairs.is_empty() {
        tell(
            daemon,
            format!(
                "the state file {} was inconsistent and was repaired: {}",
                daemon.paths.state.join("processes.json").display(),
                repairs.join("; ")
            ),
        );
        keep_logs = true;
    }
    daemon.table.start_ids_at(file.next_id);
    if !file.processes.is_empty() {
        tracing::info!(
            "restoring {} processes from the previous daemon",
            file.processes.len()
        );
    }
    let restored: Vec<Restored> = file
        .processes
        .into_iter()
        .map(|saved| entry(daemon, saved))
        .collect();
    // Part of the shutdown like a supervisor: a daemon stopping meanwhile starts nothing more.
    let tracker = daemon.supervisors.clone();
    let daemon = daemon.clone();
    tracker.spawn(async move {
        // The ids, repairs and children still to end are on disk before anything else happens;
        // no log goes unless they are (a log's id is the floor of the next ids).
        let saved = daemon.persist().await.is_ok();
        if saved && !keep_logs {
            delete_unknown_logs(&daemon, logs).await;
        }
        daemon.forget_old().await;
        let sweeps = restored.iter().flat_map(|r| {
            let process = &r.process;
            r.orphans.iter().map(move |&orphan| async move {
                end_orphan(orphan).await;
                process.update(|s| s.children.retain(|c| *c != orphan));
            })
        });
        futures_util::future::join_all(sweeps).await;
        for Restored {
            process,
            orders,
            spec,
            lost_now,
            ..
        } in restored
        {
            if lost_now {
                daemon
                    .say(
                        &process,
                        "lost: it was running when its daemon died, and a one-shot is not run again",
                    )
                    .await;
            }
            if process.is_final() || daemon.stop.is_cancelled() {
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
    });
}

fn empty() -> StateFile {
    StateFile {
        format: FORMAT,
        next_id: 1,
        processes: Vec::new(),
    }
}

/// Says `message` in the daemon's log and, once, to the next client.
fn tell(daemon: &Daemon, message: String) {
    tracing::warn!("{message}");
    if let Ok(mut notice) = daemon.notice.lock() {
        *notice = Some(message);
    }
}

/// The table entry for a saved process, under its (repaired) id, put in the table. What runs
/// again shows no pid until it does: its old children are being ended. A tunnel gets its old
/// local port back, and one that cannot is failed; one-shots are `lost`; finished processes are
/// as they ended.
fn entry(daemon: &Daemon, saved: SavedProcess) -> Restored {
    let runs_again = saved.runs_again();
    let context = saved.context().unwrap_or_default();
    let orphans = saved.children.clone();
    let (work, spec, failed) = match saved.forward {
        Some(forward) => {
            let mut target = forward.target;
            // Back on the port it had, even if it was given any free one.
            target.local_port = NonZeroU16::new(forward.local_port);
            let wait = Duration::from_millis(forward.wait_ms);
            // A tunnel that is over listens no more.
            let bound = runs_again.then(|| handle::bind(target.local_port, wait));
            let (tunnel, failed) = match bound {
                Some(Ok(tunnel)) => (tunnel, None),
                Some(Err(refused)) => (
                    Tunnel::unbound(forward.local_port),
                    Some(refused.describe()),
                ),
                None => (Tunnel::unbound(forward.local_port), None),
            };
            let part = TunnelPart {
                target,
                tool: forward.tool,
                context,
                wait,
                settings: forward.settings,
                tunnel,
            };
            (Work::tunnel(part), None, failed)
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
                max_restarts: saved.max_restarts,
            };
            (
                Work::Command(spec.clone()),
                runs_again.then_some(spec),
                None,
            )
        }
    };
    // What is over keeps too little to run again (see `Work::Record`).
    let work = match runs_again {
        true => work,
        false => Work::Record(Box::new(work)),
    };
    let lost_now = saved.ended.is_none() && failed.is_none() && !runs_again;
    let ended_at = saved.ended.as_ref().map(SavedEnd::ended_at);
    let (process, orders) = daemon.new_process(saved.id, saved.name, work);
    process.update(|s| {
        s.restarts = saved.restarts;
        s.children = saved.children;
        match (saved.ended, failed) {
            (Some(end), _) => {
                s.last_pid = end.pid;
                s.started_at = end.started_at();
                s.remote_port = end.remote_port;
                s.phase = end.status.phase();
            }
            (None, Some(reason)) => s.phase = Phase::Failed(reason),
            (None, None) if runs_again => {
                s.phase = match process.tunnel() {
                    Some(_) => Phase::Reconnecting,
                    None => Phase::Restarting,
                }
            }
            (None, None) => {
                s.last_pid = orphans.first().map(|c| c.pid);
                s.phase = Phase::Lost;
            }
        }
    });
    if let Some(ended_at) = ended_at {
        // After the phase: its change stamps now, and the file knows better (or nothing).
        process.update(|s| s.ended_at = ended_at);
    }
    daemon.table.restore(process.clone());
    Restored {
        process,
        orders,
        orphans,
        spec,
        lost_now,
    }
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

/// Deletes the process logs in `found` that no entry of the table owns: those of processes
/// forgotten just before a daemon died, of ids the state does not know, and rotations beyond the
/// number kept.
async fn delete_unknown_logs(daemon: &Daemon, found: Vec<(u32, PathBuf)>) {
    let keep = daemon.rotation.keep as u64;
    let owned: HashSet<PathBuf> = daemon
        .table
        .list(true)
        .iter()
        .flat_map(|p| (0..keep).map(|age| p.log.path_at(age)))
        .collect();
    let unknown: Vec<PathBuf> = found
        .into_iter()
        .map(|(_, path)| path)
        .filter(|path| !owned.contains(path))
        .collect();
    if unknown.is_empty() {
        return;
    }
    let count = unknown.len();
    let deleted = tokio::task::spawn_blocking(move || {
        unknown
            .iter()
            .filter(|path| fs::remove_file(path).is_ok())
            .count()
    })
    .await
    .unwrap_or(0);
    tracing::info!("deleted {deleted} of {count} log files of processes the state does not know");
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
