//! The daemon's side of `rhizome forward`: find or create the tunnel, bind its local port, start
//! its pipeline, and answer once it carries traffic.

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;

use crate::connection::Connection;
use crate::daemon::Daemon;
use crate::daemon::logs::ProcessLog;
use crate::daemon::process::{ForwardPart, Process, Spec};
use crate::daemon::supervise::tunnel;
use crate::daemon::table::Claim;
use crate::forward::kubectl::{Kubectl, Tool};
use crate::forward::port;
use crate::forward::tunnel::Tunnel;
use crate::protocol::{
    ErrorReply, ForwardInfo, ForwardRequest, Kind, Request, Response, RestartPolicy, Status,
};

/// Answers one forward request on `conn`.
pub async fn open(
    daemon: &Arc<Daemon>,
    conn: &mut Connection,
    request: ForwardRequest,
) -> std::io::Result<()> {
    if daemon.stop.is_cancelled() {
        let reply = ErrorReply::new("the daemon is stopping and starts nothing new")
            .with_hint("run the command again in a moment");
        return conn.send(&Response::Error(reply)).await;
    }
    let timeout = Duration::from_millis(request.timeout_ms);
    let target = request.target.clone();
    let claim = daemon.table.claim_tunnel(&target, target.local_port, |id| {
        new_entry(daemon, id, request, timeout)
    });
    let (process, fresh) = match claim {
        Err(reply) => return conn.send(&Response::Error(reply)).await,
        Ok(Claim::Existing(process)) => (process, false),
        Ok(Claim::New(process, orders)) => {
            if let Err(reply) = start_tunnel(daemon, &process, orders) {
                process.update(|s| s.status = Status::Failed(reply.message.clone()));
                daemon.retire(&process).await;
                return conn.send(&Response::Error(reply)).await;
            }
            daemon.persist().await;
            (process, true)
        }
    };
    wait_until_ready(conn, &process, timeout, fresh).await
}

/// The table entry of a new tunnel: a process whose restarts reuse the client's environment.
fn new_entry(
    daemon: &Daemon,
    id: u32,
    request: ForwardRequest,
    wait: Duration,
) -> (
    Arc<Process>,
    tokio::sync::mpsc::Receiver<crate::daemon::process::KillOrder>,
) {
    let target = request.target;
    let shown_command = match &request.tool {
        Tool::Kubectl(program) => Kubectl {
            program,
            target: &target,
        }
        .port_forward(0),
        Tool::Simulated => vec!["(simulated)".into(), target.resource().into()],
    };
    let spec = Spec::from_client(shown_command, request.context, RestartPolicy::Always);
    let log = Arc::new(ProcessLog::new(
        &daemon.paths.logs,
        id,
        &target.name,
        daemon.rotation,
    ));
    let forward = ForwardPart {
        requested_port: target.local_port,
        target: target.clone(),
        tool: request.tool,
        wait,
        settings: request.settings,
        tunnel: OnceLock::new(),
    };
    Process::new(
        id,
        target.name.clone(),
        Kind::Forward,
        spec,
        log,
        Some(forward),
        daemon.store.changed.clone(),
    )
}

/// Binds the tunnel's local port and starts its pipeline.
pub fn start_tunnel(
    daemon: &Arc<Daemon>,
    process: &Arc<Process>,
    orders: tokio::sync::mpsc::Receiver<crate::daemon::process::KillOrder>,
) -> Result<(), ErrorReply> {
    bind(process)?;
    tracing::info!(
        "tunnel {} (id {}) listening on {}",
        process.name,
        process.id,
        local_port(process)
    );
    daemon
        .supervisors
        .spawn(tunnel::supervise(daemon.clone(), process.clone(), orders));
    Ok(())
}

/// Binds the tunnel's local port; "in use" names the holder where it can be found.
fn bind(process: &Process) -> Result<(), ErrorReply> {
    let Some(forward) = &process.forward else {
        return Err(ErrorReply::new("internal error: not a tunnel"));
    };
    let wait = forward.wait;
    let port = forward.requested_port;
    let listener = Tunnel::bind(port).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AddrInUse {
            let holder = port::holder(port).unwrap_or_else(|| "another process".into());
            ErrorReply::new(format!("local port {port} is in use by {holder}")).with_hint(
                "stop that process, or choose another port with `rhizome forward --port N`",
            )
        } else {
            ErrorReply::new(format!("could not listen on 127.0.0.1:{port}: {err}"))
        }
    })?;
    let tunnel = Tunnel::start(listener, wait)
        .map_err(|err| ErrorReply::new(format!("could not listen on 127.0.0.1:{port}: {err}")))?;
    let _ = forward.tunnel.set(tunnel);
    Ok(())
}

fn local_port(process: &Process) -> u16 {
    process
        .forward
        .as_ref()
        .map(|f| f.local_port())
        .unwrap_or(0)
}

/// Sends progress until the tunnel carries traffic (then its handle) or fails (then why). A
/// tunnel this request created and that is not ready in time is stopped: the user was told it
/// failed.
async fn wait_until_ready(
    conn: &mut Connection,
    process: &Arc<Process>,
    timeout: Duration,
    fresh: bool,
) -> std::io::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut state = process.watch();
    let mut said: Option<String> = None;
    loop {
        let now = state.borrow_and_update().clone();
        if now.detail.is_some() && now.detail != said {
            said = now.detail.clone();
            conn.send(&Response::Progress(said.clone().unwrap_or_default()))
                .await?;
        }
        let name = &process.name;
        let reply = match &now.status {
            Status::Running => return conn.send(&Response::Forwarded(handle(process))).await,
            Status::Failed(reason) => {
                ErrorReply::new(format!("could not forward {name}: {reason}"))
            }
            status if status.is_final() => ErrorReply::new(format!(
                "the tunnel {name} was stopped ({status}) before it was ready"
            )),
            _ => {
                tokio::select! {
                    _ = state.changed() => continue,
                    _ = tokio::time::sleep_until(deadline) => {}
                    // The client gave up (Ctrl-C); the tunnel goes on starting.
                    _ = conn.recv::<Request>() => return Ok(()),
                }
                if fresh {
                    process.kill(Duration::from_secs(2)).await;
                }
                let last = process
                    .state()
                    .detail
                    .clone()
                    .map(|d| format!("; last: {d}"))
                    .unwrap_or_default();
                ErrorReply::new(format!("the tunnel {name} was not ready within {} s{last}", timeout.as_secs()))
                    .with_hint("`rhizome logs` on the target shows what kubectl printed; --timeout waits longer")
            }
        };
        let reply = match reply.hint {
            Some(_) => reply,
            None => reply.with_hint(format!("`rhizome logs {name}` shows what kubectl printed")),
        };
        return conn.send(&Response::Error(reply)).await;
    }
}

/// The original design's Handle for a working tunnel.
fn handle(process: &Process) -> ForwardInfo {
    let port = local_port(process);
    let target = process.forward.as_ref().map(|f| &f.target);
    ForwardInfo {
        connection_string: target.map(|t| t.url(port)).unwrap_or_default(),
        local_port: port,
        sql_connection: target.and_then(|t| t.sql_connection().map(str::to_string)),
        target: process.name.clone(),
        id: process.id,
        pid: process.pid(),
    }
}
