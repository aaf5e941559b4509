//! One client connection: who may talk, the handshake, and one function per request.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;
use std::time::Duration;

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::StreamCommon;

use super::Daemon;
use super::logs::ProcessLog;
use super::logs::read::LogCursor;
use super::process::{Process, Spec};
use super::supervise;

mod forward;

use crate::connection::{Connection, RecvError};
use crate::protocol::{
    DaemonStatus, ErrorReply, Hello, KillReport, KillRequest, LogsRequest, Request, Response,
    SpawnRequest, Status,
};
pub(super) use forward::start_tunnel;

/// A client must greet within this time, so idle connections cannot pile up.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);

/// Serves one client until it disconnects.
pub async fn connection(daemon: Arc<Daemon>, stream: Stream) {
    let mut conn = Connection::new(stream);
    if let Err(refusal) = check_peer(&conn) {
        tracing::warn!("refused a client: {}", refusal.message);
        // Take its greeting first (never acting on it): hanging up on unread data would make the
        // client see a reset instead of the reason.
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.recv::<Request>()).await;
        let _ = conn.send(&Response::Error(refusal)).await;
        return;
    }
    let greeting = tokio::time::timeout(HANDSHAKE_DEADLINE, conn.recv::<Request>()).await;
    let refusal = match greeting {
        Ok(Ok(Some(Request::Hello(_)))) => None,
        Ok(Ok(None)) | Ok(Err(RecvError::Io(_))) => return,
        Ok(Ok(Some(_))) => Some("the first message must be a Hello".to_string()),
        Ok(Err(err)) => Some(format!("the greeting could not be read: {err}")),
        Err(_) => Some(format!(
            "no greeting within {} s",
            HANDSHAKE_DEADLINE.as_secs()
        )),
    };
    if let Some(message) = refusal {
        let _ = conn.send(&Response::Error(ErrorReply::new(message))).await;
        return;
    }
    if conn.send(&Response::Hello(Hello::ours())).await.is_err() {
        return;
    }
    loop {
        let request = match conn.recv::<Request>().await {
            Ok(Some(request)) => request,
            Ok(None) | Err(RecvError::Io(_)) => return,
            Err(RecvError::Decode(err)) => {
                let reply = ErrorReply::new(format!("the request could not be decoded: {err}"));
                let _ = conn.send(&Response::Error(reply)).await;
                return;
            }
        };
        if dispatch(&daemon, &mut conn, request).await.is_err() {
            return;
        }
    }
}

/// Only the user the daemon runs as may use it.
fn check_peer(conn: &Connection) -> Result<(), ErrorReply> {
    let me = nix::unistd::geteuid().as_raw();
    let creds = conn.stream().peer_creds().map_err(|err| {
        ErrorReply::new(format!(
            "the credentials of the connecting process could not be read: {err}"
        ))
    })?;
    match creds.euid() {
        Some(uid) if uid == me => Ok(()),
        Some(uid) => Err(ErrorReply::new(format!(
            "permission denied: this rhizome daemon belongs to uid {me} and does not serve uid {uid}"
        ))
        .with_hint("run rhizome as the user who owns the daemon, or set RHIZOME_HOME to use your own")),
        None => Err(ErrorReply::new("permission denied: the connecting process's uid is unknown")),
    }
}

async fn dispatch(
    daemon: &Arc<Daemon>,
    conn: &mut Connection,
    request: Request,
) -> std::io::Result<()> {
    if let Some(notice) = daemon.take_notice() {
        conn.send(&Response::Notice(notice)).await?;
    }
    let response = match request {
        Request::Hello(_) => Response::Hello(Hello::ours()),
        Request::Stop => {
            tracing::info!("stop requested by a client");
            daemon.stop.cancel();
            Response::Stopping
        }
        Request::Status => Response::Status(status(daemon)),
        Request::Ps { all } => {
            Response::Ps(daemon.table.list(all).iter().map(|p| p.info()).collect())
        }
        Request::Spawn(request) => spawn(daemon, request).await,
        Request::Logs(request) => return logs(daemon, conn, request).await,
        Request::Kill(request) => kill(daemon, request).await,
        Request::Forward(request) => {
            return forward::open(daemon, conn, *request).await;
        }
    };
    conn.send(&response).await
}

fn status(daemon: &Daemon) -> DaemonStatus {
    let (running, finished) = daemon.table.counts();
    DaemonStatus {
        pid: std::process::id(),
        version: crate::protocol::VERSION.to_string(),
        uptime_secs: daemon.started.elapsed().as_secs(),
        socket: daemon.paths.socket.display().to_string(),
        home: daemon.paths.home.display().to_string(),
        running,
        finished,
    }
}

async fn spawn(daemon: &Arc<Daemon>, request: SpawnRequest) -> Response {
    if daemon.stop.is_cancelled() {
        return Response::Error(
            ErrorReply::new("the daemon is stopping and starts nothing new")
                .with_hint("run the command again in a moment"),
        );
    }
    if let Err(reply) = validate_name(&request.name) {
        return Response::Error(reply);
    }
    if request.argv.is_empty() {
        return Response::Error(ErrorReply::new("no command was given to run"));
    }
    let argv = request.argv.into_iter().map(OsString::from_vec).collect();
    let spec = Spec::from_client(argv, request.context, request.restart);
    let name = request.name;
    let (process, orders) = daemon.table.insert(|id| {
        let log = Arc::new(ProcessLog::new(
            &daemon.paths.logs,
            id,
            &name,
            daemon.rotation,
        ));
        Process::new(
            id,
            name.clone(),
            request.kind,
            spec,
            log,
            None,
            daemon.store.changed.clone(),
        )
    });
    match supervise::launch(daemon, &process).await {
        Ok(run) => {
            tracing::info!(
                "started {} id={} pid={:?}",
                process.name,
                process.id,
                process.pid()
            );
            daemon.supervisors.spawn(supervise::supervise(
                daemon.clone(),
                process.clone(),
                Ok(run),
                orders,
            ));
            daemon.persist().await;
            Response::Spawned(process.info())
        }
        Err(reason) => {
            process.update(|s| s.status = Status::Failed(reason.clone()));
            daemon.retire(&process).await;
            Response::Error(
                ErrorReply::new(format!(
                    "could not start {name} (id {}): {reason}",
                    process.id
                ))
                .with_hint("check the command name and that it is on your PATH"),
            )
        }
    }
}

/// Names appear in `ps`, in log lines and in file names, and are typed back by users.
fn validate_name(name: &str) -> Result<(), ErrorReply> {
    if name.is_empty() || name.len() > 100 {
        return Err(ErrorReply::new(
            "a process name must be 1 to 100 characters long",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ErrorReply::new(format!(
            "the process name {name:?} contains control characters"
        )));
    }
    if name.parse::<u32>().is_ok() {
        return Err(ErrorReply::new(format!(
            "the process name `{name}` is a number, which `logs` and `kill` would read as an id or pid"
        ))
        .with_hint("choose a name with a letter in it"));
    }
    Ok(())
}

/// Streams a log: the requested tail, then (with `follow`) new lines until the process is final.
/// Returns when done or when the client leaves.
async fn logs(daemon: &Daemon, conn: &mut Connection, request: LogsRequest) -> std::io::Result<()> {
    let process = match daemon.table.resolve(&request.target) {
        Ok(process) => process,
        Err(reply) => return conn.send(&Response::Error(reply)).await,
    };
    let mut cursor = LogCursor::open(process.log.clone(), request.lines).await?;
    let mut progress = process.log.subscribe();
    let mut state = process.watch();
    loop {
        progress.borrow_and_update();
        // Read after noting the state: the final status is set only once the last line is written.
        let done = !request.follow || state.borrow_and_update().status.is_final();
        while let Some(chunk) = cursor.next_chunk().await? {
            conn.send(&Response::LogChunk(chunk)).await?;
        }
        if done {
            break;
        }
        tokio::select! {
            _ = progress.changed() => {}
            _ = state.changed() => {}
            // The client went away (Ctrl-C) or spoke out of turn: stop following.
            _ = conn.recv::<Request>() => return Ok(()),
        }
    }
    conn.send(&Response::LogEnd).await
}

async fn kill(daemon: &Daemon, request: KillRequest) -> Response {
    let targets: Vec<Arc<Process>> = if request.all {
        daemon.table.list(false)
    } else {
        let mut found: Vec<Arc<Process>> = Vec::new();
        for target in &request.targets {
            match daemon.table.resolve(target) {
                Ok(process) if found.iter().any(|p| p.id == process.id) => {}
                Ok(process) => found.push(process),
                Err(reply) => return Response::Error(reply),
            }
        }
        found
    };
    let grace = Duration::from_millis(request.timeout_ms);
    let kills = targets.iter().map(|process| async move {
        let pid = process.pid();
        let outcome = process.kill(grace).await;
        tracing::info!("kill {} id={}: {:?}", process.name, process.id, outcome);
        KillReport {
            id: process.id,
            name: process.name.clone(),
            pid,
            outcome,
        }
    });
    Response::Killed(futures_util::future::join_all(kills).await)
}
