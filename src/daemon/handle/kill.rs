//! `rhizome kill`: stop processes for good and report how each ended.

use std::sync::Arc;
use std::time::Duration;

use crate::daemon::Daemon;
use crate::daemon::process::Process;
use crate::protocol::{ErrorReply, KillReport, KillRequest, Response};

pub(super) async fn kill(daemon: &Arc<Daemon>, request: KillRequest) -> Response {
    let targets: Vec<Arc<Process>> = if request.all {
        daemon.table.list(false)
    } else {
        let mut found: Vec<Arc<Process>> = Vec::new();
        for target in &request.targets {
            match daemon.table.resolve(target) {
                Ok(process) if found.iter().any(|p| p.id == process.id) => {}
                Ok(process) => found.push(process),
                // All or none: a kill of several stops none when one is not found, and says so,
                // since a user who named several may think the others were stopped.
                Err(reply) if request.targets.len() > 1 => {
                    return Response::Error(ErrorReply {
                        message: format!("{}; nothing was stopped", reply.message),
                        ..reply
                    });
                }
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
