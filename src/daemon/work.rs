//! What a managed process runs (`Work`): a command's `Spec`, a tunnel's `TunnelPart`, or the
//! record of something that finished under an earlier daemon, which can be shown but not run.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::phase::RunState;
use crate::forward::kubectl::Kubectl;
use crate::forward::tunnel::Tunnel;
use crate::protocol::{
    ClientContext, CommandKind, Kind, RestartPolicy, Route, Target, Tool, TunnelInfo,
    TunnelSettings,
};

/// What a managed process is. The kind shown by `ps` follows from it, so a plain command can never
/// pass for a tunnel.
pub enum Work {
    /// A command the daemon runs, and restarts as its policy says.
    Command(Spec),
    /// A tunnel: a local port the daemon holds, and the path behind it that it keeps up. The part
    /// is replaced whole when a restart applies a new configuration of its target, so that `ps`,
    /// the state file and the supervisor all see the one that runs.
    Tunnel(Mutex<Arc<TunnelPart>>),
    /// A process that finished under an earlier daemon. The state file keeps neither the
    /// environment nor the exact command line of what is over (they may hold secrets), so this is
    /// enough to show it and read its log, never to run it again.
    Record(Box<Work>),
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

impl Work {
    /// A tunnel's work.
    pub fn tunnel(part: TunnelPart) -> Work {
        Work::Tunnel(Mutex::new(Arc::new(part)))
    }

    pub fn kind(&self) -> Kind {
        match self {
            Work::Command(spec) => spec.kind.into(),
            Work::Tunnel(_) => Kind::Forward,
            Work::Record(work) => work.kind(),
        }
    }

    /// The tunnel part as it is now, for tunnels.
    pub fn part(&self) -> Option<Arc<TunnelPart>> {
        match self {
            Work::Tunnel(part) => Some(part.lock().unwrap_or_else(|p| p.into_inner()).clone()),
            Work::Command(_) => None,
            Work::Record(work) => work.part(),
        }
    }

    /// Makes `part` the tunnel's part from now on; false for what is not a running tunnel.
    pub fn set_part(&self, new: Arc<TunnelPart>) -> bool {
        match self {
            Work::Tunnel(part) => {
                *part.lock().unwrap_or_else(|p| p.into_inner()) = new;
                true
            }
            Work::Command(_) | Work::Record(_) => false,
        }
    }

    /// The environment and directory its children run with.
    pub fn context(&self) -> Context {
        match self {
            Work::Command(spec) => spec.context.clone(),
            Work::Tunnel(_) => self.part().map(|p| p.context.clone()).unwrap_or_default(),
            Work::Record(work) => work.context(),
        }
    }

    pub fn restart_policy(&self) -> RestartPolicy {
        match self {
            Work::Command(spec) => spec.restart,
            Work::Tunnel(_) => RestartPolicy::Always,
            Work::Record(work) => work.restart_policy(),
        }
    }

    /// A command's `--max-restarts`; a tunnel has none (it gives up by its own rule).
    pub fn max_restarts(&self) -> Option<u32> {
        match self {
            Work::Command(spec) => spec.max_restarts,
            Work::Tunnel(_) => None,
            Work::Record(work) => work.max_restarts(),
        }
    }

    /// A command's own command line, or for a tunnel the port-forward it runs now.
    pub fn command_line(&self, state: &RunState) -> Vec<OsString> {
        match self {
            Work::Command(spec) => spec.argv.clone(),
            Work::Tunnel(_) => self
                .part()
                .map(|p| p.command_line(state))
                .unwrap_or_default(),
            Work::Record(work) => work.command_line(state),
        }
    }
}

impl TunnelPart {
    /// The local port clients use.
    pub fn local_port(&self) -> u16 {
        self.tunnel.local.port()
    }

    /// What carries the tunnel now: its tool, or the kubectl that `auto` fell back to.
    pub fn tool_now(&self, state: &RunState) -> Tool {
        match (&self.tool, &state.fallback) {
            (
                Tool::Native {
                    fallback: Some(kubectl),
                },
                Some(_),
            ) => Tool::Kubectl(kubectl.clone()),
            (tool, _) => tool.clone(),
        }
    }

    /// The kubectl command this tunnel runs: the port-forward to the port in the pod (a
    /// service's is known from its target, a database's once its proxy has said); until a
    /// database's is known, the exec that starts its proxy, which is what runs then. A native
    /// tunnel runs no command: what it does is shown in kubectl's words.
    pub fn command_line(&self, state: &RunState) -> Vec<OsString> {
        let remote = self.remote_port(state.remote_port);
        match self.tool_now(state) {
            Tool::Kubectl(program) => {
                let kubectl = Kubectl {
                    program: &program,
                    target: &self.target,
                };
                match remote {
                    Some(port) => kubectl.port_forward(port),
                    None => kubectl.exec().unwrap_or_default(),
                }
            }
            Tool::Native { .. } => {
                let pod = match &state.pod {
                    Some(pod) => format!("pod/{pod}"),
                    None => self.target.resource(),
                };
                let port = remote.map_or("?".to_string(), |p| p.to_string());
                vec![
                    "(native)".into(),
                    "port-forward".into(),
                    pod.into(),
                    port.into(),
                ]
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

    pub fn info(&self, state: &RunState) -> TunnelInfo {
        let stats = &self.tunnel.stats;
        let remote_port = state.remote_port;
        let pod = state.pod.as_deref().unwrap_or("pod");
        TunnelInfo {
            target: self.target.name.clone(),
            url: self.target.url(self.local_port()),
            local: format!("127.0.0.1:{}", self.local_port()),
            upstream: remote_port.map(|port| format!("{pod}:{port}")),
            connections_open: stats.open.load(Ordering::Relaxed),
            connections_total: stats.total.load(Ordering::Relaxed),
            bytes_up: stats.bytes_up.load(Ordering::Relaxed),
            bytes_down: stats.bytes_down.load(Ordering::Relaxed),
            transport: self.tool_now(state).transport(),
            transport_reason: state.fallback.clone(),
            local_port: self.local_port(),
            remote_port: self.remote_port(remote_port),
            sql_connection: self.target.sql_connection().map(str::to_string),
            by_up: self.settings.by_up,
        }
    }
}
