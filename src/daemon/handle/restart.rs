//! `rhizome restart`: each named process started again as the same process (id, log, local port)
//! and how it came back. A running one is restarted by its supervisor (`Order::Restart`), so that
//! whoever follows its log goes on following; one that had finished gets a supervisor again, its
//! entry replaced under its id (`Table::revive`). A tunnel is rebuilt from its target's entry in
//! rhizome.toml as the client read it, when that entry changed.

use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::Duration;

use super::forward::{Refused, bind, relisten, restart_with, start_tunnel};
use super::select::select;
use crate::daemon::Daemon;
use crate::daemon::child::Ending;
use crate::daemon::process::{Phase, Process, TunnelPart, Work};
use crate::daemon::supervise::command;
use crate::forward::drift;
use crate::protocol::{
    Configured, ErrorReply, Response, RestartReport, RestartRequest, Stopped, Target,
    TunnelSettings,
};

/// What the process's log says first.
const WHY: &str = "restarted by rhizome restart";

pub(super) async fn restart(daemon: &Arc<Daemon>, request: RestartRequest) -> Response {
    if let Err(reply) = daemon.refuse_if_stopping() {
        return Response::Error(reply);
    }
    let processes = match select(
        daemon,
        &request.targets,
        request.all,
        "restart",
        "nothing was restarted",
    ) {
        Ok(processes) => processes,
        Err(reply) => return Response::Error(reply),
    };
    let ending = Ending {
        signal: request.signal,
        grace: Duration::from_millis(request.timeout_ms),
    };
    let config = &request.config;
    let restarts = processes
        .iter()
        .map(|process| restart_one(daemon, process, ending, config));
    let reports = futures_util::future::join_all(restarts).await;
    // On disk before it is answered: a tunnel's new configuration, a revived process's entry.
    if let Err(message) = daemon.persist().await {
        let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
        return Response::Error(
            ErrorReply::new(format!(
                "restarted {}, but {message}; after a daemon restart they may be as they were",
                names.join(", ")
            ))
            .with_hint("free space on that disk, then run the restart again"),
        );
    }
    Response::Restarted(reports)
}

/// Restarts one process, whatever it is doing, and reports how it came back.
async fn restart_one(
    daemon: &Arc<Daemon>,
    process: &Arc<Process>,
    ending: Ending,
    config: &Result<Configured, String>,
) -> RestartReport {
    let old_pid = match process.phase() {
        Phase::Running { pid, .. } => pid,
        _ => None,
    };
    let mut report = RestartReport {
        id: process.id,
        name: process.name.clone(),
        old_pid,
        stopped: None,
        was: None,
        changed: Vec::new(),
        note: None,
        failed: None,
        now: process.info(),
    };
    if !process.is_final() {
        match in_place(daemon, process, ending, config, &mut report).await {
            Some(()) => {
                report.now = process.info();
                return report;
            }
            // It ended meanwhile: it is started again like anything that had finished.
            None => report.old_pid = None,
        }
    }
    report.was = Some(process.phase().status());
    match revive(daemon, process, config, &mut report).await {
        Ok(revived) => report.now = revived.info(),
        Err(reason) => report.failed = Some(reason),
    }
    report
}

/// A running process restarted by its supervisor; `None` when its supervisor had finished.
async fn in_place(
    daemon: &Daemon,
    process: &Arc<Process>,
    ending: Ending,
    config: &Result<Configured, String>,
    report: &mut RestartReport,
) -> Option<()> {
    let old = process.tunnel();
    let mut part = None;
    if let Some(old) = &old {
        match entry(config, old) {
            Entry::Same => {}
            Entry::Note(note) => report.note = Some(note),
            Entry::Changed(target, settings, changed) => {
                let wanted = rebuilt(old, *target, settings);
                match relisten(daemon, process.id, old, wanted) {
                    Ok(new) => part = Some(new),
                    Err(refusal) => {
                        let reply = refusal.explain().await;
                        report.failed = Some(ErrorReply {
                            message: format!(
                                "its new configuration ({}) cannot be applied: {}",
                                changed.join(", "),
                                reply.message
                            ),
                            ..reply
                        });
                        return Some(());
                    }
                }
                report.changed = changed;
            }
        }
    }
    let why = match report.changed.as_slice() {
        [] => WHY.to_string(),
        changed => format!("{WHY}: {}", changed.join(", ")),
    };
    let restarted = match (part, &old) {
        (Some(part), Some(old)) => restart_with(process, old, part, ending, why).await,
        _ => process.restart(ending, why, None).await,
    };
    let Some(restarted) = restarted else {
        report.changed.clear();
        return None;
    };
    report.stopped = restarted.stopped.map(|(signal, took)| Stopped {
        signal,
        elapsed_ms: took.as_millis() as u64,
    });
    let failed = match (restarted.failed, process.tunnel()) {
        (Some(reason), _) => Some(reason),
        (None, Some(part)) => wait_up(process, part.wait).await,
        (None, None) => None,
    };
    report.failed = failed.map(|reason| shows_why(process, reason));
    Some(())
}

/// A finished process started again under its id, with a supervisor of its own; the new entry,
/// or why it could not start.
async fn revive(
    daemon: &Arc<Daemon>,
    old: &Arc<Process>,
    config: &Result<Configured, String>,
    report: &mut RestartReport,
) -> Result<Arc<Process>, ErrorReply> {
    let said = format!("{WHY} (it had finished: {})", old.phase().status());
    let restarts = old.state().restarts + 1;
    let name = old.name.clone();
    match &old.work {
        Work::Record(_) => Err(ErrorReply::new(
            "it finished under an earlier daemon, which keeps neither the environment nor the \
             exact command line of what is over",
        )
        .with_hint(match old.tunnel() {
            Some(part) => format!("open it again with `rhizome forward {}`", part.target.name),
            None => "start it again with `rhizome run -- CMD`".to_string(),
        })),
        Work::Command(spec) => {
            let (process, orders) = daemon.table.revive(old, None, |id| {
                Ok::<_, ErrorReply>(daemon.new_process(id, name, Work::Command(spec.clone())))
            })?;
            process.update(|s| s.restarts = restarts);
            daemon.say(&process, &said).await;
            command::start(daemon, &process, spec.clone(), orders)
                .await
                .map_err(|reason| shows_why(&process, reason))?;
            Ok(process)
        }
        Work::Tunnel(_) => {
            let Some(old_part) = old.tunnel() else {
                return Err(ErrorReply::new("it has no tunnel"));
            };
            let (mut target, settings) = match entry(config, &old_part) {
                Entry::Same => (old_part.target.clone(), old_part.settings),
                Entry::Note(note) => {
                    report.note = Some(note);
                    (old_part.target.clone(), old_part.settings)
                }
                Entry::Changed(target, settings, changed) => {
                    report.changed = changed;
                    (*target, settings)
                }
            };
            // Back on its port unless its target now names another.
            target.local_port = target.local_port.or(NonZeroU16::new(old_part.local_port()));
            let wanted = target.clone();
            let revived = daemon
                .table
                .revive(old, Some(&wanted), |id| -> Result<_, Refused> {
                    let mut part = rebuilt(&old_part, target, settings);
                    part.tunnel = bind(part.target.local_port, part.wait)?;
                    Ok(daemon.new_process(id, name, Work::tunnel(part)))
                });
            let (process, orders) = match revived {
                Ok(revived) => revived,
                Err(refusal) => return Err(refusal.explain().await),
            };
            process.update(|s| s.restarts = restarts);
            daemon.say(&process, &said).await;
            start_tunnel(daemon, &process, orders);
            match wait_up(&process, old_part.wait).await {
                None => Ok(process),
                Some(reason) => Err(shows_why(&process, reason)),
            }
        }
    }
}

/// A failure whose story is in the process's log.
fn shows_why(process: &Process, reason: String) -> ErrorReply {
    ErrorReply::new(reason).with_hint(format!(
        "`rhizome logs {}` shows what it printed",
        process.name
    ))
}

/// What the client's rhizome.toml says of a tunnel's target now.
enum Entry {
    /// What the tunnel runs.
    Same,
    /// Not usable: the tunnel restarts as it was, and the user is told why.
    Note(String),
    /// Another target or settings: these, with what changed.
    Changed(Box<Target>, TunnelSettings, Vec<String>),
}

fn entry(config: &Result<Configured, String>, part: &TunnelPart) -> Entry {
    let configured = match config {
        Ok(configured) => configured,
        Err(why) => {
            return Entry::Note(format!(
                "rhizome.toml could not be read ({why}), so it restarted as it was"
            ));
        }
    };
    let name = &part.target.name;
    match configured.targets.iter().find(|(n, _)| n == name) {
        // A tunnel opened without a config entry (`NAMESPACE/KIND/NAME`) never had one.
        None if name.matches('/').count() > 1 => Entry::Same,
        None => Entry::Note(format!(
            "rhizome.toml has no target {name} now, so it restarted as it was"
        )),
        Some((_, Err(why))) => Entry::Note(format!(
            "its entry in rhizome.toml is invalid ({why}), so it restarted as it was"
        )),
        Some((_, Ok(target))) => {
            // Lazy or not, and opened by `up` or not, are the tunnel's own: kept.
            let wanted = TunnelSettings {
                lazy: part.settings.lazy,
                by_up: part.settings.by_up,
                ..configured.settings
            };
            let mut changed = drift::differences(&part.target, part.local_port(), target);
            changed.extend(drift::setting_differences(&part.settings, &wanted));
            match changed.is_empty() {
                true => Entry::Same,
                false => Entry::Changed(Box::new(target.clone()), wanted, changed),
            }
        }
    }
}

/// The part `old` becomes with a new target and settings: the same tool and environment, on the
/// same listener until `relisten` or `bind` gives it another.
fn rebuilt(old: &TunnelPart, target: Target, settings: TunnelSettings) -> TunnelPart {
    TunnelPart {
        target,
        tool: old.tool.clone(),
        context: old.context.clone(),
        wait: old.wait,
        settings,
        tunnel: old.tunnel.clone(),
    }
}

/// Waits until a restarted tunnel carries traffic; why not, when it does not within `within`
/// (it then goes on trying, as any tunnel does).
async fn wait_up(process: &Process, within: Duration) -> Option<String> {
    let mut state = process.watch();
    let settled = tokio::time::timeout(
        within,
        state.wait_for(|s| matches!(s.phase, Phase::Running { .. }) || s.phase.is_final()),
    )
    .await;
    let phase = match settled {
        Ok(Ok(state)) => state.phase.clone(),
        Ok(Err(_)) => return Some("the daemon stopped meanwhile".into()),
        Err(_) => {
            let last = process
                .state()
                .detail
                .map(|d| format!(" (last: {d})"))
                .unwrap_or_default();
            return Some(format!(
                "it was not up again within {} s{last}; it goes on trying",
                within.as_secs()
            ));
        }
    };
    match phase {
        Phase::Running { .. } => None,
        Phase::Failed(reason) => Some(reason),
        other => Some(format!("it ended: {}", other.status())),
    }
}
