//! `rhizome run` and `rhizome sleeper`: start a managed process and its supervisor.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;

use crate::daemon::Daemon;
use crate::daemon::logs::ProcessLog;
use crate::daemon::process::{Process, Spec};
use crate::daemon::supervise;
use crate::names;
use crate::protocol::{ErrorReply, Response, SpawnRequest, Status};

pub(super) async fn spawn(daemon: &Arc<Daemon>, request: SpawnRequest) -> Response {
    if daemon.stop.is_cancelled() {
        return Response::Error(
            ErrorReply::new("the daemon is stopping and starts nothing new")
                .with_hint("run the command again in a moment"),
        );
    }
    if let Err(err) = names::check(&request.name) {
        return Response::Error(ErrorReply::new(err.to_string()).with_hint(err.rule.hint()));
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
    match supervise::command::launch(daemon, &process).await {
        Ok(run) => {
            tracing::info!(
                "started {} id={} pid={:?}",
                process.name,
                process.id,
                process.pid()
            );
            daemon.supervisors.spawn(supervise::command::supervise(
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
