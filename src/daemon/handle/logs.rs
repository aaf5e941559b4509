//! `rhizome logs`: a process's log, and with `-f` its new lines until it ends.

use crate::connection::DaemonSide;
use crate::daemon::Daemon;
use crate::daemon::logs::read::LogCursor;
use crate::protocol::{LogsRequest, Response};

/// Streams a log: the requested tail, then (with `follow`) new lines until the process is final.
/// Returns when done or when the client leaves.
pub(super) async fn logs(
    daemon: &Daemon,
    conn: &mut DaemonSide,
    request: LogsRequest,
) -> std::io::Result<()> {
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
        let done = !request.follow || state.borrow_and_update().phase.is_final();
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
            _ = conn.recv() => return Ok(()),
        }
    }
    conn.send(&Response::LogEnd).await
}
