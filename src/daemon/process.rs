//! One managed process as the daemon knows it: what it is (`Work`), and where it is in its life
//! (`RunState`, whose `Phase` carries the data of each phase).

use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};

use super::child::Ending;
use super::logs::ProcessLog;
pub use super::phase::{ChildId, Phase, RunState};
pub use super::work::{Context, Spec, TunnelPart, Work};
use crate::protocol::{KillOutcome, Kind, ProcessInfo, RestartPolicy, Signal};

/// What a supervisor is asked to do; it alone acts on the process's children.
pub enum Order {
    Kill(KillOrder),
    Restart(RestartOrder),
}

/// A request to the supervisor to stop the process for good.
pub struct KillOrder {
    /// The first signal, and the time before SIGKILL.
    pub ending: Ending,
    pub reply: oneshot::Sender<KillOutcome>,
}

/// A request to the supervisor to end the current run and start again at once, as the same
/// process (id, log, listener), with no backoff.
pub struct RestartOrder {
    /// How the run that is going is ended: the first signal, and the time before SIGKILL.
    pub ending: Ending,
    /// The line the process's log gets, before the run ends: who restarted it and what changed.
    pub why: String,
    /// For a tunnel whose configuration changed: the part it runs from now on, its port bound.
    pub part: Option<Arc<TunnelPart>>,
    pub reply: oneshot::Sender<Restarted>,
}

/// What a supervisor did with a restart, told once the new run has begun.
#[derive(Debug)]
pub struct Restarted {
    /// How the run that was going ended: `None` when none was (it waited to start again).
    pub stopped: Option<(Signal, Duration)>,
    /// Why the new run of a command could not start.
    pub failed: Option<String>,
}

/// A managed process. Shared between the table, its supervisor task, and request handlers.
pub struct Process {
    pub id: u32,
    pub name: String,
    pub work: Work,
    pub log: Arc<ProcessLog>,
    state: watch::Sender<RunState>,
    /// Told of every change the state file records, so that it follows the table.
    changed: Arc<Notify>,
    /// To the supervisor; closed once the supervisor has finished.
    orders: mpsc::Sender<Order>,
    /// Every new `detail`, in order: a waiting `forward` shows each step, where the watch channel
    /// would let it see only the latest.
    steps: broadcast::Sender<String>,
}

impl Process {
    /// A new entry in `Starting`, and the receiving end of its orders for the supervisor.
    pub fn new(
        id: u32,
        name: String,
        work: Work,
        log: Arc<ProcessLog>,
        changed: Arc<Notify>,
    ) -> (Arc<Process>, mpsc::Receiver<Order>) {
        let (orders, orders_rx) = mpsc::channel(4);
        let state = watch::Sender::new(RunState {
            phase: Phase::Starting,
            last_pid: None,
            started_at: SystemTime::now(),
            restarts: 0,
            detail: None,
            remote_port: None,
            pod: None,
            fallback: None,
            children: Vec::new(),
            ended_at: None,
        });
        let process = Process {
            id,
            name,
            work,
            log,
            state,
            changed,
            orders,
            steps: broadcast::Sender::new(32),
        };
        (Arc::new(process), orders_rx)
    }

    /// Changes the run state: watchers see every change, and the state file is rewritten when a
    /// field it records changed. The moment a process finishes is stamped here, the one place
    /// every phase change goes through.
    pub fn update(&self, change: impl FnOnce(&mut RunState)) {
        let mut save = false;
        let mut step = None;
        self.state.send_modify(|state| {
            let before = (
                state.phase.is_final(),
                state.restarts,
                state.children.clone(),
                state.ended_at,
            );
            let detail = state.detail.clone();
            change(state);
            state.stamp_end(before.0, SystemTime::now());
            let (is_final, restarts, children, ended_at) = state.saved();
            save = before != (is_final, restarts, children.to_vec(), ended_at);
            if state.detail != detail {
                step = state.detail.clone();
            }
        });
        if let Some(step) = step {
            let _ = self.steps.send(step);
        }
        if save {
            self.changed.notify_one();
        }
    }

    /// Every step (new `detail`) from now on.
    pub fn steps(&self) -> broadcast::Receiver<String> {
        self.steps.subscribe()
    }

    /// Moves to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.update(|state| state.phase = phase);
    }

    /// A receiver that sees every change of the run state.
    pub fn watch(&self) -> watch::Receiver<RunState> {
        self.state.subscribe()
    }

    /// A copy of the current run state.
    pub fn state(&self) -> RunState {
        self.state.borrow().clone()
    }

    pub fn phase(&self) -> Phase {
        self.state.borrow().phase.clone()
    }

    pub fn is_final(&self) -> bool {
        self.state.borrow().phase.is_final()
    }

    pub fn pid(&self) -> Option<u32> {
        self.state.borrow().pid()
    }

    pub fn kind(&self) -> Kind {
        self.work.kind()
    }

    /// The tunnel part as it is now, for tunnels.
    pub fn tunnel(&self) -> Option<Arc<TunnelPart>> {
        self.work.part()
    }

    /// Makes `part` the tunnel's part from now on (a restart applying a new configuration); the
    /// state file follows.
    pub fn set_tunnel(&self, part: Arc<TunnelPart>) {
        if self.work.set_part(part) {
            self.changed.notify_one();
        }
    }

    /// The environment and directory its children run with.
    pub fn context(&self) -> Context {
        self.work.context()
    }

    pub fn restart_policy(&self) -> RestartPolicy {
        self.work.restart_policy()
    }

    /// A command's `--max-restarts`; a tunnel has none (it gives up by its own rule).
    pub fn max_restarts(&self) -> Option<u32> {
        self.work.max_restarts()
    }

    /// The command line shown by `ps` and kept in the state file: a command's own, or for a
    /// tunnel the port-forward it runs.
    pub fn command_line(&self) -> Vec<OsString> {
        self.work.command_line(&self.state.borrow())
    }

    /// Asks the supervisor to stop the process and waits for what happened. A process whose
    /// supervisor has already finished was not running.
    ///
    /// Of kills that arrive together, the supervisor acts on the first; the others learn how that
    /// one ended once the process is final.
    pub async fn kill(&self, ending: Ending) -> KillOutcome {
        if self.is_final() {
            return KillOutcome::AlreadyFinished;
        }
        let (reply, answer) = oneshot::channel();
        let order = Order::Kill(KillOrder { ending, reply });
        if self.orders.send(order).await.is_ok()
            && let Ok(outcome) = answer.await
        {
            return outcome;
        }
        let mut state = self.watch();
        let last = state
            .wait_for(|s| s.phase.is_final())
            .await
            .map(|s| s.phase.clone());
        match last {
            Ok(Phase::Killed(Some(signal))) => KillOutcome::AlreadyKilled { signal },
            _ => KillOutcome::NotRunning,
        }
    }

    /// Asks the supervisor to end the current run and start again, and waits until the new run
    /// has begun. `None`: the supervisor had finished (the process is over, or about to be).
    pub async fn restart(
        &self,
        ending: Ending,
        why: String,
        part: Option<Arc<TunnelPart>>,
    ) -> Option<Restarted> {
        let (reply, answer) = oneshot::channel();
        let order = Order::Restart(RestartOrder {
            ending,
            why,
            part,
            reply,
        });
        self.orders.send(order).await.ok()?;
        answer.await.ok()
    }

    pub fn info(&self) -> ProcessInfo {
        let command = super::logs::redact::redact_argv(
            self.command_line().iter().map(|a| a.to_string_lossy()),
        );
        let state = self.state.borrow();
        ProcessInfo {
            id: self.id,
            name: self.name.clone(),
            kind: self.kind(),
            command,
            pid: state.pid(),
            status: state.phase.status(),
            restart: self.restart_policy(),
            started_at_ms: millis(state.started_at),
            uptime_secs: match state.phase {
                Phase::Running { since, .. } => since.elapsed().as_secs(),
                _ => 0,
            },
            restarts: state.restarts,
            detail: state.detail.clone(),
            tunnel: self.tunnel().map(|part| part.info(&state)),
            ended_at_ms: state.ended_at.map(millis),
        }
    }
}

/// Milliseconds since the Unix epoch, as the protocol carries times.
fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
