//! `rhizome restart`: start processes again as the same processes and say how each came back.
//! rhizome.toml is read here, as it is now, and sent along, so that the daemon rebuilds a tunnel
//! from its target's current entry without reading the client's files.

use super::exit::Exit;
use super::output::{self, note};
use super::sanitize;
use super::style::{ERROR, HINT, Paint};
use super::{Client, Failure, unexpected};
use crate::cli::RestartArgs;
use crate::forward::target;
use crate::paths::Paths;
use crate::protocol::{Configured, Request, Response, RestartReport, RestartRequest};

pub async fn run(paths: &Paths, args: &RestartArgs) -> anyhow::Result<Exit> {
    let Some(mut client) = Client::connect(paths).await? else {
        return Err(
            Failure::new("no rhizome daemon is running, so there is nothing to restart")
                .hint("`rhizome ps` starts the daemon and lists what it manages")
                .into(),
        );
    };
    let request = RestartRequest {
        targets: args.targets.clone(),
        all: args.all,
        timeout_ms: args.timeout.as_millis() as u64,
        config: configured(paths),
        signal: args.signal,
    };
    let reports = match client.call(&Request::Restart(request)).await? {
        Response::Restarted(reports) => reports,
        other => return Err(unexpected(other)),
    };
    if reports.is_empty() && args.all {
        note(super::kill::nothing_runs(&args.targets));
    }
    let mut failed = false;
    for report in &reports {
        let name = sanitize::field(&report.name);
        if let Some(note_text) = &report.note {
            note(format_args!(
                "rhizome: {name}: {}",
                sanitize::text(note_text)
            ));
        }
        match &report.failed {
            Some(reply) => {
                failed = true;
                let paint = Paint::stderr();
                note(format_args!(
                    "{} could not restart {name} (id {}): {}",
                    paint.paint(ERROR, "error:"),
                    report.id,
                    sanitize::text(&reply.message)
                ));
                if let Some(hint) = &reply.hint {
                    note(format_args!(
                        "{} {}",
                        paint.paint(HINT, "hint:"),
                        sanitize::text(hint)
                    ));
                }
            }
            None => output::println(restarted(report))?,
        }
    }
    Ok(match failed {
        true => Exit::Failure,
        false => Exit::Success,
    })
}

/// `restarted NAME  id=N  pid=P  (how)`, where how is how the old run ended (or that none was
/// running), then what of a tunnel's configuration changed.
fn restarted(report: &RestartReport) -> String {
    let pid = report
        .now
        .pid
        .map(|p| p.to_string())
        .unwrap_or_else(|| "-".into());
    let mut how = match (&report.stopped, &report.was) {
        (Some(stopped), _) => format!(
            "pid {} ended by {} after {:.2}s",
            report
                .old_pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            stopped.signal,
            stopped.elapsed_ms as f64 / 1000.0
        ),
        (None, Some(was)) => format!("it had finished: {was}"),
        (None, None) => "it was waiting to start again".to_string(),
    };
    if !report.changed.is_empty() {
        how = format!("{how}; {}", report.changed.join(", "));
    }
    format!(
        "restarted {}  id={}  pid={pid}  ({})",
        sanitize::field(&report.name),
        report.id,
        sanitize::text(&how)
    )
}

/// rhizome.toml as it reads now: every target, resolved or why not, and how tunnels are kept up;
/// or why it could not be read.
fn configured(paths: &Paths) -> Result<Configured, String> {
    let config = super::forward::load_config(paths).map_err(|err| err.to_string())?;
    Ok(Configured {
        targets: target::describe(&config)
            .into_iter()
            .map(|(name, resolved)| (name, resolved.map_err(|err| err.to_string())))
            .collect(),
        settings: super::tunnel::settings(&config),
    })
}
