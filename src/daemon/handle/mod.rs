//! One client connection: who may talk, the handshake, and one function per request.

use std::sync::Arc;
use std::time::Duration;

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::StreamCommon;

use super::Daemon;

mod control;
mod forward;
mod kill;
mod logs;
mod merged_logs;
mod restart;
mod select;
mod spawn;

use crate::connection::{DaemonSide, RecvError};
use crate::protocol::{ErrorReply, Hello, Request, Response};
pub(super) use forward::{bind, start_tunnel};

/// A client must greet within this time, so idle connections cannot pile up.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);

/// Serves one client until it disconnects.
pub async fn connection(daemon: Arc<Daemon>, stream: Stream) {
    let mut conn = DaemonSide::new(stream);
    if let Err(refusal) = check_peer(&conn) {
        tracing::warn!("refused a client: {}", refusal.message);
        // Take its greeting first (never acting on it): hanging up on unread data would make the
        // client see a reset instead of the reason.
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.recv()).await;
        let _ = conn.send(&Response::Error(refusal)).await;
        return;
    }
    let greeting = tokio::time::timeout(HANDSHAKE_DEADLINE, conn.recv()).await;
    let refusal = match greeting {
        Ok(Ok(Some(Request::Hello(_)))) => None,
        Ok(Ok(None)) | Ok(Err(RecvError::Io(_))) => return,
        Ok(Ok(Some(_))) => Some("the first message must be a Hello".to_string()),
        Ok(Err(RecvError::Decode(err))) => {
            Some(format!("the greeting could not be decoded: {err}"))
        }
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
        // Between requests a client waits on nothing the daemon owes it: it goes with the daemon.
        let received = tokio::select! {
            received = conn.recv() => received,
            _ = daemon.shutdown.cancelled() => return,
        };
        let request = match received {
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
fn check_peer(conn: &DaemonSide) -> Result<(), ErrorReply> {
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
    conn: &mut DaemonSide,
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
        Request::Status => Response::Status(control::status(daemon)),
        Request::Ps { all } => {
            Response::Ps(daemon.table.list(all).iter().map(|p| p.info()).collect())
        }
        Request::Spawn(request) => spawn::spawn(daemon, request).await,
        Request::Logs(request) => return logs::logs(daemon, conn, request).await,
        Request::Kill(request) => kill::kill(daemon, request).await,
        Request::Forward(request) => {
            return forward::open(daemon, conn, *request).await;
        }
        Request::MergedLogs(request) => {
            return merged_logs::merged_logs(daemon, conn, request).await;
        }
        Request::Restart(request) => restart::restart(daemon, request).await,
    };
    conn.send(&response).await
}
