//! `rhizome kill`: stop processes for good and report how each ended.

use std::sync::Arc;
use std::time::Duration;

use super::select::select;
use crate::daemon::Daemon;
use crate::daemon::child::Ending;
use crate::protocol::{ErrorReply, KillReport, KillRequest, Response};

pub(super) async fn kill(daemon: &Arc<Daemon>, request: KillRequest) -> Response {
    let targets = match select(
        daemon,
        &request.targets,
        request.all,
        "kill",
        "nothing was stopped",
    ) {
        Ok(targets) => targets,
        Err(reply) => return Response::Error(reply),
    };
    let ending = Ending {
        signal: request.signal,
        grace: Duration::from_millis(request.timeout_ms),
    };
    let kills = targets.iter().map(|process| async move {
        let pid = process.pid();
        let outcome = process.kill(ending).await;
        tracing::info!("kill {} id={}: {:?}", process.name, process.id, outcome);
        KillReport {
            id: process.id,
            name: process.name.clone(),
            pid,
            outcome,
        }
    });
    let reports = futures_util::future::join_all(kills).await;
    // On disk before it is answered: a daemon that dies now must not bring them back.
    if let Err(message) = daemon.persist().await {
        return Response::Error(
            ErrorReply::new(format!(
                "stopped {}, but {message}; they may come back if the daemon restarts",
                names(&reports)
            ))
            .with_hint("free space on that disk, then run the kill again"),
        );
    }
    Response::Killed(reports)
}

fn names(reports: &[KillReport]) -> String {
    let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    names.join(", ")
}
