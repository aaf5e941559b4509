//! Tunnels on the wire: the resolved target the client sends, how the daemon reaches it, and
//! what it answers. The encoding of each type here is part of `PROTOCOL`.

use std::num::NonZeroU16;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ClientContext;

/// A target resolved from the config, ready to run. Sent to the daemon with the request, so the
/// daemon needs neither the client's config file nor its environment to find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// `ENV/NAME`.
    pub name: String,
    pub context: String,
    pub namespace: String,
    pub kubeconfig: Option<String>,
    /// The local port to listen on; `None`: any free port.
    #[serde(with = "port_or_any")]
    pub local_port: Option<NonZeroU16>,
    pub scheme: String,
    pub route: Route,
}

/// How the tunnel reaches its upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Route {
    /// Start a Cloud SQL proxy in a pod of `deployment`, learn its port from the pod log, forward
    /// to it.
    Database {
        deployment: String,
        sql_connection: String,
        /// The connect command with `{sql_connection}` already substituted.
        connect: Vec<String>,
        /// The port pattern with the instance substituted (escaped).
        port_pattern: String,
    },
    /// Forward straight to `resource` (`svc/x`, `deploy/x`, `pod/x`) on `remote_port`.
    Service { resource: String, remote_port: u16 },
}

impl Target {
    /// The resource given to `kubectl port-forward` and `exec`.
    pub fn resource(&self) -> String {
        match &self.route {
            Route::Database { deployment, .. } => format!("deploy/{deployment}"),
            Route::Service { resource, .. } => resource.clone(),
        }
    }

    pub fn sql_connection(&self) -> Option<&str> {
        match &self.route {
            Route::Database { sql_connection, .. } => Some(sql_connection),
            Route::Service { .. } => None,
        }
    }

    pub fn url(&self, port: u16) -> String {
        format!("{}://127.0.0.1:{port}", self.scheme)
    }
}

/// What runs the tunnel's steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tool {
    /// A kubectl executable, found on the client's PATH.
    Kubectl(PathBuf),
    /// The daemon's own Kubernetes client. `fallback` is the kubectl that `transport = "auto"`
    /// falls back to when the native client cannot serve the tunnel; `None` for `"native"`, or
    /// when no kubectl was found.
    Native { fallback: Option<PathBuf> },
    /// No cluster: an echo server stands in for the pod (`RHIZOME_SIMULATE=1`).
    Simulated,
    /// No cluster, but a real server at the far end (`HOST:PORT`, the target's
    /// `simulate_upstream`): code under test reaches a local database through the same tunnel.
    SimulatedTo(String),
}

impl Tool {
    /// What carries the tunnel's bytes to the pod.
    pub fn transport(&self) -> Transport {
        match self {
            Tool::Kubectl(_) => Transport::Kubectl,
            Tool::Native { .. } => Transport::Native,
            Tool::Simulated | Tool::SimulatedTo(_) => Transport::Simulated,
        }
    }
}

/// What carries a tunnel's bytes to the pod, as `ps --json` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transport {
    /// A `kubectl port-forward` child.
    Kubectl,
    /// The daemon's own client: a port-forward stream of the API server per connection.
    Native,
    /// The echo server of simulate mode.
    Simulated,
}

impl Transport {
    pub fn word(self) -> &'static str {
        match self {
            Transport::Kubectl => "kubectl",
            Transport::Native => "native",
            Transport::Simulated => "simulated",
        }
    }
}

/// Open (or find) a tunnel to a target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardRequest {
    pub target: Target,
    pub tool: Tool,
    /// How long to wait for the tunnel to carry traffic; also how long a connection waits for an
    /// upstream while the tunnel reconnects.
    pub timeout_ms: u64,
    /// The environment kubectl runs with, now and at every restart.
    pub context: ClientContext,
    pub settings: TunnelSettings,
    /// A tunnel of the target that runs with another configuration is restarted with this one
    /// (`forward --replace`), instead of the forward being refused.
    pub replace: bool,
}

/// How a tunnel is kept up (the config's `[forward]` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelSettings {
    pub backoff_max_ms: u64,
    /// 0: probe only after a failed connection.
    pub probe_interval_ms: u64,
    /// A lazy tunnel starts its upstream only when a client connects, and stops it after
    /// `idle_stop_ms` without one (0: never). Absent from older state files: eager.
    #[serde(default)]
    pub lazy: bool,
    #[serde(default)]
    pub idle_stop_ms: u64,
    /// Opened by `rhizome up`, so that `rhizome down` stops it.
    #[serde(default)]
    pub by_up: bool,
}

/// A working tunnel: the original design's Handle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardInfo {
    pub connection_string: String,
    pub local_port: u16,
    pub sql_connection: Option<String>,
    pub target: String,
    pub id: u32,
    pub pid: Option<u32>,
    /// The tunnel as `ps` shows it, for `forward --format json`.
    pub process: super::ProcessInfo,
}

/// The tunnel part of a `ps` row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TunnelInfo {
    pub target: String,
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub local: String,
    /// `POD:PORT` (`pod:PORT` while the pod is not known), the port in the pod; `None` until
    /// known.
    pub upstream: Option<String>,
    pub connections_open: u64,
    pub connections_total: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// The transport in use, which `auto` may have changed from native to kubectl.
    pub transport: Transport,
    /// Why `auto` uses kubectl instead of the native client.
    pub transport_reason: Option<String>,
    pub local_port: u16,
    /// The port in the pod; `None` until known (a database's proxy port is learnt at run time).
    pub remote_port: Option<u16>,
    /// For a database target, the Cloud SQL instance.
    pub sql_connection: Option<String>,
    /// Opened by `rhizome up`.
    pub by_up: bool,
}

/// A port that may be "any", encoded as the number with 0 for any: the encoding the protocol and
/// the state file have always used.
mod port_or_any {
    use std::num::NonZeroU16;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(port: &Option<NonZeroU16>, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_u16(port.map_or(0, NonZeroU16::get))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        input: D,
    ) -> Result<Option<NonZeroU16>, D::Error> {
        Ok(NonZeroU16::new(u16::deserialize(input)?))
    }
}
