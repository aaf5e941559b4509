//! `kubectl port-forward TARGET [LOCAL]:REMOTE`: binds (see [`listen`]),
//! prints `Forwarding from ADDR -> REMOTE` per listener, writes
//! `port-forward.pid`, then for each accepted connection prints
//! `Handling connection for PORT` and splices it to `FAKE_KUBECTL_BACKEND`.
//!
//! Like modern kubectl, a connection that cannot reach the pod's port (the
//! backend refuses) logs a per-connection error and ends the session:
//! `error: lost connection to pod`, exit 1. Plan actions: `fail` (pod
//! Pending), `die-after-ms M` (the pod goes away M ms after Forwarding),
//! `hang` (a wedged kubectl: accepts, logs an error, closes every connection,
//! never exits). SIGINT exits 0 quietly; other signals keep their defaults.
//!
//! [`listen`]: super::listen

use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::args::{BindAddr, Ports};
use super::plan::Action;
use super::settings::Settings;
use super::state::StateDir;
use super::{err_line, fail, klog, listen, out_line};

pub struct Session<'a> {
    pub ports: Ports,
    pub addresses: &'a [BindAddr],
    pub settings: &'a Settings,
    pub state: &'a StateDir,
    pub actions: &'a [Action],
}

impl Session<'_> {
    pub async fn run(self) -> i32 {
        if self.actions.contains(&Action::Fail) {
            return fail(
                "unable to forward port because pod is not running. Current status=Pending",
            );
        }
        // Trap SIGINT before printing anything, so no early Ctrl-C is lost.
        let mut sigint = match signal(SignalKind::interrupt()) {
            Ok(s) => s,
            Err(e) => return fail(&format!("fake-kubectl: cannot trap SIGINT: {e}")),
        };
        let listeners = match listen::bind(self.addresses, self.ports).await {
            Ok(l) => l,
            Err(lines) => {
                lines.iter().for_each(|l| err_line(l));
                return 1;
            }
        };
        let remote = self.ports.remote;
        let mut port = self.ports.local;
        for l in &listeners {
            if let Ok(addr) = l.local_addr() {
                port = addr.port();
                out_line(&format!("Forwarding from {addr} -> {remote}"));
            }
        }
        if let Err(e) = self.state.write_pid("port-forward.pid") {
            return fail(&format!("fake-kubectl: cannot write port-forward.pid: {e}"));
        }

        let hang = self.actions.contains(&Action::Hang);
        let die_after = self.actions.iter().find_map(|a| match a {
            Action::DieAfterMs(d) => Some(*d),
            _ => None,
        });
        let die = async {
            match die_after {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(die);
        let mut accepted = accept_all(listeners);
        let (lost_tx, mut lost_rx) = mpsc::channel::<()>(1);
        loop {
            tokio::select! {
                Some(client) = accepted.recv() => {
                    out_line(&format!("Handling connection for {port}"));
                    if hang {
                        err_line(&klog::forwarding_error(port, remote, "lost connection to pod"));
                        drop(client);
                    } else {
                        let backend = self.settings.backend.clone();
                        tokio::spawn(splice(client, backend, port, remote, lost_tx.clone()));
                    }
                }
                _ = lost_rx.recv() => return fail("lost connection to pod"),
                _ = &mut die => return fail("lost connection to pod"),
                _ = sigint.recv() => return 0,
            }
        }
    }
}

/// Accepts on every listener; the connections arrive on one channel.
fn accept_all(listeners: Vec<TcpListener>) -> mpsc::Receiver<TcpStream> {
    let (tx, rx) = mpsc::channel(64);
    for listener in listeners {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((conn, _)) => {
                        if tx.send(conn).await.is_err() {
                            return;
                        }
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
    }
    rx
}

/// Copies both ways between `client` and the backend until either side
/// closes. If the backend cannot be reached: kubectl's per-connection error,
/// the client closed, and the session told to end.
async fn splice(
    mut client: TcpStream,
    backend: Option<String>,
    local: u16,
    remote: u16,
    lost: mpsc::Sender<()>,
) {
    let upstream = match &backend {
        Some(addr) => TcpStream::connect(addr.as_str()).await.ok(),
        None => {
            err_line("fake-kubectl: FAKE_KUBECTL_BACKEND is not set; treating it as refused");
            None
        }
    };
    match upstream {
        Some(mut upstream) => {
            let _ = copy_bidirectional(&mut client, &mut upstream).await;
        }
        None => {
            err_line(&klog::forwarding_error(
                local,
                remote,
                &klog::refused_cause(remote),
            ));
            drop(client);
            let _ = lost.send(()).await;
        }
    }
}
