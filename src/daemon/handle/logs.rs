//! `rhizome logs`: a process's log, and with `-f` its new lines until it ends.

use crate::connection::DaemonSide;
use crate::daemon::Daemon;
use crate::daemon::logs::read::{LogCursor, Piece};
use crate::daemon::process::Process;
use crate::protocol::{ErrorReply, LogsRequest, Response};

/// Streams a log: the requested tail, then (with `follow`) new lines until the process is final.
/// Lines that went before they could be read are told as gaps where they are missing. Returns
/// when done or when the client leaves.
pub(super) async fn logs(
    daemon: &Daemon,
    conn: &mut DaemonSide,
    request: LogsRequest,
) -> std::io::Result<()> {
    let process = match daemon.table.resolve(&request.target) {
        Ok(process) => process,
        Err(reply) => return conn.send(&Response::Error(reply)).await,
    };
    let unreadable = |err| unreadable(&process, err);
    let mut cursor = match LogCursor::open(process.log.clone(), request.lines).await {
        Ok(cursor) => cursor,
        Err(err) => return conn.send(&unreadable(err)).await,
    };
    let mut progress = process.log.subscribe();
    let mut state = process.watch();
    loop {
        progress.borrow_and_update();
        // Read after noting the state: the final status is set only once the last line is written.
        let done = !request.follow || state.borrow_and_update().phase.is_final();
        loop {
            match cursor.next().await {
                Ok(Some(Piece::Bytes(chunk))) => conn.send(&Response::LogChunk(chunk)).await?,
                Ok(Some(Piece::Gap(missed))) => {
                    for gap in missed.gaps(&process.name) {
                        conn.send(&Response::LogGap(gap)).await?;
                    }
                }
                Ok(None) => break,
                Err(err) => return conn.send(&unreadable(err)).await,
            }
        }
        if done {
            break;
        }
        tokio::select! {
            _ = progress.changed() => {}
            _ = state.changed() => {}
            // The client went away (Ctrl-C) or spoke out of turn: stop following.
            _ = conn.recv() => return Ok(()),
        }
    }
    conn.send(&Response::LogEnd).await
}

/// The answer when a log cannot be read: which process, and where its files are.
pub(super) fn unreadable(process: &Process, err: std::io::Error) -> Response {
    Response::Error(
        ErrorReply::new(format!("could not read the log of {}: {err}", process.name)).with_hint(
            format!("its files are {}*", process.log.path_at(0).display()),
        ),
    )
}
