//! A fake Kubernetes API server for tests, good enough for the real kubectl
//! (1.27 to 1.33) to run `exec`, `logs` and `port-forward` on `deploy/D`.
//!
//! It serves HTTPS with a certificate authority made at start-up and wants the bearer token
//! that the exec credential plugin of its kubeconfig hands out, as a GKE cluster does
//! (`--plain-http` for the old plain, credential-less API). `/_control` answers plain HTTP
//! on the same port too, so a test drives it with a raw TCP client.
//!
//! It also speaks what native clients (kube-rs, the official Python client) send: pod list
//! and watch with resource versions, exec and port-forward over the WebSocket channel
//! protocols.
//!
//! The fake cluster has one Deployment with one pod (or none, between a delete and the next
//! create). `exec` of a command that names the Cloud SQL instance starts a fake Cloud SQL Auth
//! Proxy in the pod (a TCP relay to `--db`); `port-forward` reaches that relay; `/_control/*`
//! injects faults (see `control`). See `config` for the command line.
//!
//! Modules, one concern each:
//! - [`config`]: command line; [`kubeconfig`]: the kubeconfig and credential plugin written
//! - [`tls`]: the test CA and server certificate; [`auth`]: the bearer token check
//! - [`server`]: accept loop, TLS or plain, auth; [`routes`]: where API requests go;
//!   [`http`]: requests and responses on hyper
//! - [`discovery`]: API discovery; [`objects`]: Deployment, Pod, Status JSON
//! - [`state`]: the pod, resource versions and events, counters, fault switches;
//!   [`control`]: `/_control`
//! - [`watch`]: pod list and watch; [`logs`]: the pod's log
//! - [`upgrade`]: exec/port-forward upgrade negotiation; [`exec`]: exec over SPDY and
//!   WebSocket; [`portforward`]: port-forward over SPDY (direct or tunnelled in WebSocket);
//!   [`portforward_ws`]: port-forward over the WebSocket channel protocol (kube-rs, Python)
//! - [`spdy_frame`], [`spdy_session`], [`spdy_dictionary`]: SPDY/3.1, our own (no maintained
//!   crate serves it); [`websocket`]: on tokio-tungstenite
//! - [`cloudsql`]: the fake proxy relay; [`clock`]: timestamps

pub mod auth;
pub mod clock;
pub mod cloudsql;
pub mod config;
pub mod control;
pub mod discovery;
pub mod exec;
pub mod http;
pub mod kubeconfig;
pub mod logs;
pub mod objects;
pub mod portforward;
pub mod portforward_ws;
pub mod routes;
pub mod server;
pub mod spdy_dictionary;
pub mod spdy_frame;
pub mod spdy_session;
pub mod state;
pub mod tls;
pub mod upgrade;
pub mod watch;
pub mod websocket;

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;

pub use config::Config;
pub use state::Shared;

/// A bound server, not yet serving.
pub struct Bound {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    /// The test CA's certificate (PEM) that clients must trust; `None` with `--plain-http`.
    pub ca_pem: Option<String>,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Binds 127.0.0.1 on a free port, makes the test CA (unless `--plain-http`), and writes the
/// kubeconfig and its credential plugin if asked.
pub async fn bind(cfg: Config) -> io::Result<Bound> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let token = cfg.token.clone().unwrap_or_else(auth::new_token);
    let ca = if cfg.plain_http {
        None
    } else {
        Some(tls::TestCa::generate()?)
    };
    if let Some(path) = &cfg.kubeconfig_out {
        let text = match &ca {
            Some(ca) => {
                let files = kubeconfig::PluginFiles::beside(path);
                kubeconfig::write_plugin(&files, &token)?;
                kubeconfig::render(&cfg, addr, Some((&ca.ca_pem, &files.script)))
            }
            None => kubeconfig::render(&cfg, addr, None),
        };
        kubeconfig::write_atomic(path, &text)?;
    }
    Ok(Bound {
        addr,
        shared: Shared::new(cfg, token),
        tls: ca
            .as_ref()
            .map(|ca| tokio_rustls::TlsAcceptor::from(ca.server_config.clone())),
        ca_pem: ca.map(|ca| ca.ca_pem),
        listener,
    })
}

impl Bound {
    /// Serves until the future is dropped.
    pub async fn serve(self) {
        server::serve(self.listener, self.shared, self.tls).await
    }
}

/// The binary's main loop: bind, write the kubeconfig, print
/// `listening on 127.0.0.1:PORT`, then serve until stdin (a pipe) reaches
/// EOF or a SIGTERM/SIGINT arrives.
pub async fn run(cfg: Config) -> io::Result<()> {
    let bound = bind(cfg).await?;
    {
        let mut out = io::stdout().lock();
        writeln!(out, "listening on {}", bound.addr)?;
        out.flush()?;
    }
    tokio::select! {
        _ = bound.serve() => {}
        _ = stdin_closed() => {}
        _ = terminated() => {}
    }
    Ok(())
}

/// Resolves when stdin, if it is a pipe or socket, reaches EOF. Any other
/// stdin (`/dev/null`, a terminal, a file) is ignored: it would end at once
/// or never, and only a harness holding a pipe means "stop when I go away".
async fn stdin_closed() {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::FileTypeExt as _;
    use tokio::io::AsyncReadExt;
    let is_pipe = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .map(|m| m.file_type().is_fifo() || m.file_type().is_socket())
        .unwrap_or(false);
    if !is_pipe {
        return std::future::pending().await;
    }
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 1024];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
