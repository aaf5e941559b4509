//! `rhizome run` and `rhizome sleeper`: start a managed process and its supervisor.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;

use crate::daemon::Daemon;
use crate::daemon::process::{Spec, Work};
use crate::daemon::supervise;
use crate::names;
use crate::protocol::{ErrorReply, Response, SpawnRequest};

pub(super) async fn spawn(daemon: &Arc<Daemon>, request: SpawnRequest) -> Response {
    if let Err(reply) = daemon.refuse_if_stopping() {
        return Response::Error(reply);
    }
    if let Err(err) = names::check(&request.name) {
        return Response::Error(ErrorReply::new(err.to_string()).with_hint(err.rule.hint()));
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
        max_restarts: request.max_restarts,
    };
    let name = request.name;
    let (process, orders) = daemon
        .table
        .insert(|id| daemon.new_process(id, name.clone(), Work::Command(spec.clone())));
    match supervise::command::start(daemon, &process, spec, orders).await {
        Ok(_) => match daemon.persist_start(&process).await {
            Ok(()) => Response::Spawned(process.info()),
            Err(reply) => Response::Error(reply),
        },
        Err(reason) => Response::Error(
            ErrorReply::new(format!(
                "could not start {name} (id {}): {reason}",
                process.id
            ))
            .with_hint("check the command name and that it is on your PATH"),
        ),
    }
}
