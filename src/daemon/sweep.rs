//! Finding what a previous daemon of this home left running, by the mark its children carry
//! (`spawner.rs`), whether or not the state file heard of them.

use std::sync::Arc;
use std::time::Duration;

use super::Daemon;

use super::child;
use super::spawner::{MARK, Mark};

/// Grace between SIGTERM and SIGKILL for a previous daemon's children.
pub const GRACE: Duration = Duration::from_secs(3);

/// Ends whatever a previous daemon of this home left running, as its mark says: SIGTERM now,
/// SIGKILL after `GRACE` in the background (a supervisor-like task the shutdown waits for).
pub async fn sweep(daemon: &Arc<Daemon>) {
    let ours = daemon.spawner.mark().clone();
    let found = tokio::task::spawn_blocking(move || left_by_others(&ours))
        .await
        .unwrap_or_default();
    if found.is_empty() {
        return;
    }
    tracing::info!(
        "stopping {} processes left running by a previous daemon: {found:?}",
        found.len()
    );
    daemon.supervisors.spawn(end(found));
}

/// The pids of processes marked by another daemon of `ours.home`. Reads every process's
/// environment: blocking, and Linux only (elsewhere the state file's record is all there is).
pub fn left_by_others(ours: &Mark) -> Vec<u32> {
    #[cfg(target_os = "linux")]
    {
        linux::marked()
            .into_iter()
            .filter(|(_, mark)| mark.home == ours.home && mark.instance != ours.instance)
            .map(|(pid, _)| pid)
            .collect()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = ours;
        Vec::new()
    }
}

/// Ends each of `pids` with its process group: SIGTERM, then SIGKILL after `GRACE`. A pid that
/// leads no group of its own is ended alone.
async fn end(pids: Vec<u32>) {
    let ends = pids.into_iter().map(|pid| async move {
        let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid as i32)));
        match pgid {
            Ok(pgid) if pgid.as_raw() as u32 == pid => child::end_group(pid, GRACE).await,
            Ok(_) => child::end_process(pid, GRACE).await,
            Err(_) => {}
        }
    });
    futures_util::future::join_all(ends).await;
}

#[cfg(target_os = "linux")]
mod linux {
    use super::{MARK, Mark};

    /// Every process whose environment carries a mark, with it.
    pub fn marked() -> Vec<(u32, Mark)> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let me = std::process::id();
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != me)
            .filter_map(|pid| {
                let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
                let prefix = format!("{MARK}=");
                let value = environ
                    .split(|&b| b == 0)
                    .find_map(|var| var.strip_prefix(prefix.as_bytes()))?;
                Some((pid, Mark::parse(std::str::from_utf8(value).ok()?)?))
            })
            .collect()
    }
}
