//! `rhizome run` and `rhizome sleeper`: start a managed process and its supervisor.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;

use crate::daemon::Daemon;
use crate::daemon::process::{Phase, Spec, Work};
use crate::daemon::supervise;
use crate::protocol::{ErrorReply, Response, SpawnRequest};

pub(super) async fn spawn(daemon: &Arc<Daemon>, request: SpawnRequest) -> Response {
    if let Err(reply) = daemon.refuse_if_stopping() {
        return Response::Error(reply);
    }
    if let Err(reply) = validate_name(&request.name) {
        return Response::Error(reply);
    }
    if request.argv.is_empty() {
        return Response::Error(ErrorReply::new("no command was given to run"));
    }
    let argv = request.argv.into_iter().map(OsString::from_vec).collect();
    let spec = Spec {
        kind: request.kind,
        argv,
        context: request.context.into(),
        restart: request.restart,
    };
    let name = request.name;
    let (process, orders) = daemon
        .table
        .insert(|id| daemon.new_process(id, name.clone(), Work::Command(spec.clone())));
    match supervise::command::launch(daemon, &process, &spec).await {
        Ok(run) => {
            tracing::info!("started {} id={} pid={}", process.name, process.id, run.pid);
            daemon.supervisors.spawn(supervise::command::supervise(
                daemon.clone(),
                process.clone(),
                spec,
                Ok(run),
                orders,
            ));
            daemon.persist().await;
            Response::Spawned(process.info())
        }
        Err(reason) => {
            process.set_phase(Phase::Failed(reason.clone()));
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
pub(super) fn validate_name(name: &str) -> Result<(), ErrorReply> {
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
