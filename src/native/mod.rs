//! The native transport: the daemon talks to the Kubernetes API server itself (kube-rs), the way
//! kubectl would with the same kubeconfig, instead of running kubectl. A tunnel's path is a pod
//! chosen through the API (`pods`), the Cloud SQL proxy started in it over the exec API and its
//! port read from the exec output or the pod's log (`proxy`), and a WebSocket port-forward stream
//! per client connection (`streams`), while a watch follows the pod (`watch`).
//!
//! This is a library the daemon's tunnel supervisor drives: it knows nothing of the daemon, the
//! client, or the process table.

pub mod client;
pub mod pods;
pub mod proxy;
pub mod streams;
pub mod watch;

/// Why the native client cannot serve a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Something the native client does not do (a legacy `auth-provider`, WebSocket streaming
    /// refused by the server): kubectl may, and `transport = "auto"` falls back to it.
    Unsupported(String),
    /// An ordinary failure (no such context, the server unreachable, the pod missing): kubectl
    /// would fail the same way.
    Failed(String),
}

impl Refusal {
    pub fn reason(&self) -> &str {
        match self {
            Refusal::Unsupported(why) | Refusal::Failed(why) => why,
        }
    }
}

/// One line of a `kube::Error`, as the tunnel's log shows it.
pub fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => format!("the API server said: {}", status.message),
        kube::Error::Auth(err) => format!("authentication failed: {err}"),
        other => other.to_string(),
    }
}
