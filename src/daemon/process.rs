//! One managed process as the daemon knows it: what it is (`Work`), and where it is in its life
//! (`RunState`, whose `Phase` carries the data of each phase).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};

use super::logs::ProcessLog;
pub use super::phase::{ChildId, Phase, RunState};
use crate::forward::kubectl::Kubectl;
use crate::forward::tunnel::Tunnel;
use crate::protocol::{
    ClientContext, CommandKind, KillOutcome, Kind, ProcessInfo, RestartPolicy, Route, Target, Tool,
    TunnelInfo, TunnelSettings,
};

/// What a managed process is. The kind shown by `ps` follows from it, so a plain command can never
/// pass for a tunnel.
pub enum Work {
    /// A command the daemon runs, and restarts as its policy says.
    Command(Spec),
    /// A tunnel: a local port the daemon holds, and the path behind it that it keeps up.
    Tunnel(Arc<TunnelPart>),
}

/// The environment and working directory children run with: the client's, so that they run as if
/// started from its shell.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
}

impl From<ClientContext> for Context {
    fn from(context: ClientContext) -> Context {
        use std::os::unix::ffi::OsStringExt;
        Context {
            env: context
                .env
                .into_iter()
                .map(|(k, v)| (OsString::from_vec(k), OsString::from_vec(v)))
                .collect(),
            cwd: PathBuf::from(OsString::from_vec(context.cwd)),
        }
    }
}

/// A command: fixed for the life of the entry, reused by every restart.
#[derive(Debug, Clone)]
pub struct Spec {
    pub kind: CommandKind,
    pub argv: Vec<OsString>,
    pub context: Context,
    pub restart: RestartPolicy,
    /// Restarts in a row of runs that each ended within a minute before it gives up
    /// (`Phase::CrashLoop`); `None` restarts for good.
    pub max_restarts: Option<u32>,
}

/// A tunnel's fixed part: where it leads, with what, and its bound local listener.
pub struct TunnelPart {
    pub target: Target,
    pub tool: Tool,
    /// kubectl runs with the environment of the `rhizome forward` that created the tunnel.
    pub context: Context,
    /// How long a connection waits for the upstream while the tunnel reconnects.
    pub wait: Duration,
    pub settings: TunnelSettings,
    /// Bound before the entry exists, so every tunnel in the table has its port.
    pub tunnel: Arc<Tunnel>,
}

/// A request to the supervisor to stop the process for good.
pub struct KillOrder {
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
    pub reply: oneshot::Sender<KillOutcome>,
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
    orders: mpsc::Sender<KillOrder>,
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
    ) -> (Arc<Process>, mpsc::Receiver<KillOrder>) {
        let (orders, orders_rx) = mpsc::channel(4);
        let state = watch::Sender::new(RunState {
            phase: Phase::Starting,
            last_pid: None,
            started_at: SystemTime::now(),
            restarts: 0,
            detail: None,
            remote_port: None,
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
        match &self.work {
            Work::Command(spec) => spec.kind.into(),
            Work::Tunnel(_) => Kind::Forward,
        }
    }

    /// The tunnel part, for tunnels.
    pub fn tunnel(&self) -> Option<&Arc<TunnelPart>> {
        match &self.work {
            Work::Tunnel(part) => Some(part),
            Work::Command(_) => None,
        }
    }

    /// The environment and directory its children run with.
    pub fn context(&self) -> &Context {
        match &self.work {
            Work::Command(spec) => &spec.context,
            Work::Tunnel(part) => &part.context,
        }
    }

    pub fn restart_policy(&self) -> RestartPolicy {
        match &self.work {
            Work::Command(spec) => spec.restart,
            Work::Tunnel(_) => RestartPolicy::Always,
        }
    }

    /// A command's `--max-restarts`; a tunnel has none (it gives up by its own rule).
    pub fn max_restarts(&self) -> Option<u32> {
        match &self.work {
            Work::Command(spec) => spec.max_restarts,
            Work::Tunnel(_) => None,
        }
    }

    /// The command line shown by `ps` and kept in the state file: a command's own, or for a
    /// tunnel the port-forward it runs.
    pub fn command_line(&self) -> Vec<OsString> {
        match &self.work {
            Work::Command(spec) => spec.argv.clone(),
            Work::Tunnel(part) => part.command_line(self.state.borrow().remote_port),
        }
    }

    /// Asks the supervisor to stop the process and waits for what happened. A process whose
    /// supervisor has already finished was not running.
    ///
    /// Of kills that arrive together, the supervisor acts on the first; the others learn how that
    /// one ended once the process is final.
    pub async fn kill(&self, grace: Duration) -> KillOutcome {
        if self.is_final() {
            return KillOutcome::AlreadyFinished;
        }
        let (reply, answer) = oneshot::channel();
        if self.orders.send(KillOrder { grace, reply }).await.is_ok()
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
            tunnel: self.tunnel().map(|part| part.info(state.remote_port)),
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

impl TunnelPart {
    /// The local port clients use.
    pub fn local_port(&self) -> u16 {
        self.tunnel.local.port()
    }

    /// The kubectl command this tunnel runs: the port-forward to `remote`, the port in the pod
    /// (a service's is known from its target, a database's once its proxy has said); until a
    /// database's is known, the exec that starts its proxy, which is what runs then.
    pub fn command_line(&self, remote: Option<u16>) -> Vec<OsString> {
        match &self.tool {
            Tool::Kubectl(program) => {
                let kubectl = Kubectl {
                    program,
                    target: &self.target,
                };
                match self.remote_port(remote) {
                    Some(port) => kubectl.port_forward(port),
                    None => kubectl.exec().unwrap_or_default(),
                }
            }
            Tool::Simulated | Tool::SimulatedTo(_) => {
                vec!["(simulated)".into(), self.target.resource().into()]
            }
        }
    }

    /// The port in the pod: `learnt` once a run has found it, else a service's from its target.
    fn remote_port(&self, learnt: Option<u16>) -> Option<u16> {
        match (&self.target.route, learnt) {
            (_, Some(port)) => Some(port),
            (Route::Service { remote_port, .. }, None) => Some(*remote_port),
            (Route::Database { .. }, None) => None,
        }
    }

    fn info(&self, remote_port: Option<u16>) -> TunnelInfo {
        let stats = &self.tunnel.stats;
        TunnelInfo {
            target: self.target.name.clone(),
            url: self.target.url(self.local_port()),
            local: format!("127.0.0.1:{}", self.local_port()),
            upstream: remote_port.map(|port| format!("pod:{port}")),
            connections_open: stats.open.load(Ordering::Relaxed),
            connections_total: stats.total.load(Ordering::Relaxed),
            bytes_up: stats.bytes_up.load(Ordering::Relaxed),
            bytes_down: stats.bytes_down.load(Ordering::Relaxed),
            transport: self.tool.transport(),
            local_port: self.local_port(),
            remote_port: self.remote_port(remote_port),
            sql_connection: self.target.sql_connection().map(str::to_string),
        }
    }
}
