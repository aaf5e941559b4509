//! One managed process as the daemon knows it: what to run, and where it is in its life.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::logs::ProcessLog;
use crate::forward::kubectl::Tool;
use crate::forward::target::Target;
use crate::forward::tunnel::Tunnel;
use crate::protocol::{
    ClientContext, KillOutcome, Kind, ProcessInfo, RestartPolicy, Status, TunnelInfo,
    TunnelSettings,
};

/// What to run: fixed for the life of the entry, reused by every restart.
#[derive(Debug, Clone)]
pub struct Spec {
    pub argv: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
    pub restart: RestartPolicy,
}

impl Spec {
    /// A spec that runs `argv` in the client's directory with the client's environment.
    pub fn from_client(
        argv: Vec<OsString>,
        context: ClientContext,
        restart: RestartPolicy,
    ) -> Spec {
        use std::os::unix::ffi::OsStringExt;
        Spec {
            argv,
            env: context
                .env
                .into_iter()
                .map(|(k, v)| (OsString::from_vec(k), OsString::from_vec(v)))
                .collect(),
            cwd: PathBuf::from(OsString::from_vec(context.cwd)),
            restart,
        }
    }
}

/// The changing part of a process, published through a watch channel so that `ps` reads it
/// without waiting and `logs -f` and `kill` can wait for it to change.
#[derive(Debug, Clone)]
pub struct RunState {
    pub status: Status,
    /// The OS pid of the current or last run.
    pub pid: Option<u32>,
    pub started_at: SystemTime,
    /// When the current run started; `None` while nothing runs.
    pub up_since: Option<Instant>,
    pub restarts: u32,
    /// The current step, or why the last run ended, for `ps` and for a waiting `forward`.
    pub detail: Option<String>,
    /// For tunnels: the port in the pod that kubectl forwards to.
    pub remote_port: Option<u16>,
    /// The OS children alive now (each a process-group leader), recorded so that a daemon that
    /// died hard can have them found and stopped by the next one.
    pub children: Vec<ChildId>,
}

/// A process as the kernel identifies it: a pid is reused, a pid with its start time is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChildId {
    pub pid: u32,
    /// Kernel start time (clock ticks since boot on Linux); `None` where it cannot be read, and
    /// then the pid is never signalled by a later daemon.
    pub start_time: Option<u64>,
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
    pub kind: Kind,
    pub spec: Spec,
    pub log: Arc<ProcessLog>,
    state: watch::Sender<RunState>,
    /// Told of every change, so the daemon's state file follows the table.
    changed: Arc<Notify>,
    /// Set for tunnels.
    pub forward: Option<ForwardPart>,
    /// To the supervisor; closed once the supervisor has finished.
    orders: mpsc::Sender<KillOrder>,
}

/// What a tunnel has beyond a plain process.
pub struct ForwardPart {
    pub target: Target,
    pub tool: Tool,
    /// The port asked for (0: any); the bound one is `tunnel.local`.
    pub requested_port: u16,
    /// How long a connection waits for the upstream while the tunnel reconnects.
    pub wait: Duration,
    pub settings: TunnelSettings,
    /// Set once the local port is bound.
    pub tunnel: OnceLock<Arc<Tunnel>>,
}

impl Process {
    /// A new entry in `Starting`, and the receiving end of its orders for the supervisor.
    pub fn new(
        id: u32,
        name: String,
        kind: Kind,
        spec: Spec,
        log: Arc<ProcessLog>,
        forward: Option<ForwardPart>,
        changed: Arc<Notify>,
    ) -> (Arc<Process>, mpsc::Receiver<KillOrder>) {
        let (orders, orders_rx) = mpsc::channel(4);
        let state = watch::Sender::new(RunState {
            status: Status::Starting,
            pid: None,
            started_at: SystemTime::now(),
            up_since: None,
            restarts: 0,
            detail: None,
            remote_port: None,
            children: Vec::new(),
        });
        let process = Process {
            id,
            name,
            kind,
            spec,
            log,
            state,
            changed,
            forward,
            orders,
        };
        (Arc::new(process), orders_rx)
    }

    /// Changes the run state: watchers see it, and the state file is rewritten.
    pub fn update(&self, change: impl FnOnce(&mut RunState)) {
        self.state.send_modify(change);
        self.changed.notify_one();
    }

    /// A receiver that sees every change of the run state.
    pub fn watch(&self) -> watch::Receiver<RunState> {
        self.state.subscribe()
    }

    /// A copy of the current run state.
    pub fn state(&self) -> RunState {
        self.state.borrow().clone()
    }

    pub fn status(&self) -> Status {
        self.state.borrow().status.clone()
    }

    pub fn pid(&self) -> Option<u32> {
        self.state.borrow().pid
    }

    /// Asks the supervisor to stop the process and waits for what happened. A process whose
    /// supervisor has already finished was not running.
    pub async fn kill(&self, grace: Duration) -> KillOutcome {
        let (reply, answer) = oneshot::channel();
        if self.orders.send(KillOrder { grace, reply }).await.is_err() {
            return KillOutcome::NotRunning;
        }
        answer.await.unwrap_or(KillOutcome::NotRunning)
    }

    pub fn info(&self) -> ProcessInfo {
        let state = self.state.borrow();
        ProcessInfo {
            id: self.id,
            name: self.name.clone(),
            kind: self.kind,
            command: super::logs::redact::redact_argv(
                self.spec.argv.iter().map(|arg| arg.to_string_lossy()),
            ),
            pid: state.pid,
            status: state.status.clone(),
            restart: self.spec.restart,
            started_at_ms: state
                .started_at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            uptime_secs: state.up_since.map(|t| t.elapsed().as_secs()).unwrap_or(0),
            restarts: state.restarts,
            detail: state.detail.clone(),
            tunnel: self
                .forward
                .as_ref()
                .map(|forward| forward.info(state.remote_port)),
        }
    }
}

impl ForwardPart {
    /// The local port clients use: the bound one, else the one asked for.
    pub fn local_port(&self) -> u16 {
        self.tunnel
            .get()
            .map(|t| t.local.port())
            .unwrap_or(self.requested_port)
    }

    fn info(&self, remote_port: Option<u16>) -> TunnelInfo {
        let tunnel = self.tunnel.get();
        let stat = |read: fn(&Tunnel) -> u64| tunnel.map(|t| read(t)).unwrap_or(0);
        TunnelInfo {
            target: self.target.name.clone(),
            url: self.target.url(self.local_port()),
            local: format!("127.0.0.1:{}", self.local_port()),
            upstream: remote_port.map(|port| format!("pod:{port}")),
            connections_open: stat(|t| t.stats.open.load(Ordering::Relaxed)),
            connections_total: stat(|t| t.stats.total.load(Ordering::Relaxed)),
            bytes_up: stat(|t| t.stats.bytes_up.load(Ordering::Relaxed)),
            bytes_down: stat(|t| t.stats.bytes_down.load(Ordering::Relaxed)),
        }
    }
}
