//! Where a managed process is in its life: its `Phase` (each carrying its own data) and the rest
//! of its changing state, published to watchers by `Process`.

use std::time::{Instant, SystemTime};

use crate::protocol::{Signal, Status};

/// Where a process is in its life. Each phase carries what only it has: a running process has a
/// start instant, a finished one its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Starting,
    /// Up since `since`; `pid` is the command's (or the tunnel's forwarder's) process.
    Running {
        pid: Option<u32>,
        since: Instant,
    },
    /// Ended by itself and waiting out its backoff before the next start.
    Restarting,
    /// A tunnel whose path broke and is being rebuilt; its local port stays open.
    Reconnecting,
    Exited(i32),
    Killed(Option<Signal>),
    Failed(String),
    Lost,
    /// Gave up restarting (`run --max-restarts`): this many restarts in a row each ended
    /// before the run counted as healthy.
    CrashLoop {
        restarts: u32,
    },
    /// A lazy tunnel holding its port with nothing behind it: the next client wakes it.
    Idle,
}

impl Phase {
    /// The phase as the protocol shows it.
    pub fn status(&self) -> Status {
        match self {
            Phase::Starting => Status::Starting,
            Phase::Running { .. } => Status::Running,
            Phase::Restarting => Status::Restarting,
            Phase::Reconnecting => Status::Reconnecting,
            Phase::Exited(code) => Status::Exited(*code),
            Phase::Killed(signal) => Status::Killed(*signal),
            Phase::Failed(reason) => Status::Failed(reason.clone()),
            Phase::Lost => Status::Lost,
            Phase::CrashLoop { restarts } => Status::CrashLoop {
                restarts: *restarts,
            },
            Phase::Idle => Status::Idle,
        }
    }

    /// True once nothing about this process will change any more.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Phase::Exited(_)
                | Phase::Killed(_)
                | Phase::Failed(_)
                | Phase::Lost
                | Phase::CrashLoop { .. }
        )
    }

    /// Whether `ps` lists it without `--all`: what is not over, and a crash loop, which was
    /// meant to run and waits for a person.
    pub fn is_listed(&self) -> bool {
        !self.is_final() || matches!(self, Phase::CrashLoop { .. })
    }

    /// A running phase that started now.
    pub fn running(pid: Option<u32>) -> Phase {
        Phase::Running {
            pid,
            since: Instant::now(),
        }
    }
}

/// The changing part of a process, published through a watch channel so that `ps` reads it
/// without waiting and `logs -f` and `kill` can wait for it to change.
#[derive(Debug, Clone)]
pub struct RunState {
    pub phase: Phase,
    /// The pid of the last run, shown once it has ended.
    pub last_pid: Option<u32>,
    /// When the current (or last) run started.
    pub started_at: SystemTime,
    pub restarts: u32,
    /// The current step, or why the last run ended, for `ps` and for a waiting `forward`.
    pub detail: Option<String>,
    /// For tunnels: the port in the pod that kubectl forwards to.
    pub remote_port: Option<u16>,
    /// For native tunnels: the pod the streams go to.
    pub pod: Option<String>,
    /// For tunnels with `transport = "auto"`: why kubectl carries it instead of the native
    /// client.
    pub fallback: Option<String>,
    /// The OS children alive now (each a process-group leader), recorded so that a daemon that
    /// died hard can have them found and stopped by the next one.
    pub children: Vec<ChildId>,
    /// When the phase became final (`ps` shows it as `ended_at`); `None` before, and for a
    /// process restored from a file that did not record it.
    pub ended_at: Option<SystemTime>,
}

impl RunState {
    /// The pid of the current run, else of the last one.
    pub fn pid(&self) -> Option<u32> {
        match self.phase {
            Phase::Running { pid, .. } => pid.or(self.last_pid),
            _ => self.last_pid,
        }
    }

    /// What of this state the state file records: a change here must be saved.
    pub(super) fn saved(&self) -> (bool, u32, &[ChildId], Option<SystemTime>) {
        (
            self.phase.is_final(),
            self.restarts,
            &self.children,
            self.ended_at,
        )
    }

    /// Keeps `ended_at` true to the phase after a change from `was_final`: stamped when the
    /// phase becomes final, cleared when it is not (a process started again).
    pub(super) fn stamp_end(&mut self, was_final: bool, now: SystemTime) {
        if !self.phase.is_final() {
            self.ended_at = None;
        } else if !was_final {
            self.ended_at = Some(now);
        }
    }
}

/// A process as the kernel identifies it: a pid is reused, a pid with its start time is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChildId {
    pub pid: u32,
    /// Kernel start time (clock ticks since boot on Linux); `None` where it cannot be read, and
    /// then the pid is never signalled by a later daemon.
    pub start_time: Option<u64>,
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn the_end_is_stamped_once_when_final_and_cleared_by_a_new_run() {
        let mut state = RunState {
            phase: Phase::Starting,
            last_pid: None,
            started_at: UNIX_EPOCH,
            restarts: 0,
            detail: None,
            remote_port: None,
            pod: None,
            fallback: None,
            children: Vec::new(),
            ended_at: None,
        };
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        state.stamp_end(false, at(1));
        assert_eq!(state.ended_at, None, "not over");
        state.phase = Phase::Exited(0);
        state.stamp_end(false, at(2));
        assert_eq!(state.ended_at, Some(at(2)));
        state.stamp_end(true, at(3));
        assert_eq!(state.ended_at, Some(at(2)), "a later change keeps the end");
        state.phase = Phase::running(Some(7));
        state.stamp_end(true, at(4));
        assert_eq!(state.ended_at, None, "started again");
    }
}
