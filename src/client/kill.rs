//! `rhizome kill`: stop managed processes and say how they ended.

use super::exit::Exit;
use super::output::{self, note};
use super::sanitize;
use super::{Client, Failure, unexpected};
use crate::cli::KillArgs;
use crate::paths::Paths;
use crate::protocol::{KillOutcome, KillRequest, Request, Response};

pub async fn run(paths: &Paths, args: &KillArgs) -> anyhow::Result<Exit> {
    let grace = args.timeout;
    let Some(mut client) = Client::connect(paths).await? else {
        return Err(
            Failure::new("no rhizome daemon is running, so there is nothing to kill")
                .hint("`rhizome ps` starts the daemon and lists what it manages")
                .into(),
        );
    };
    let request = KillRequest {
        targets: args.targets.clone(),
        all: args.all,
        timeout_ms: grace.as_millis() as u64,
        signal: args.signal,
    };
    let reports = match client.call(&Request::Kill(request)).await? {
        Response::Killed(reports) => reports,
        other => return Err(unexpected(other)),
    };
    if reports.is_empty() && args.all {
        note(nothing_runs(&args.targets));
    }
    for report in reports {
        let pid = report
            .pid
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        let name = sanitize::field(&report.name);
        match report.outcome {
            KillOutcome::Ended { signal, elapsed_ms } => output::println(format_args!(
                "killed {name}  id={}  pid={pid}  ({signal}, exited after {:.2}s)",
                report.id,
                elapsed_ms as f64 / 1000.0
            ))?,
            KillOutcome::AlreadyKilled { signal } => output::println(format_args!(
                "killed {name}  id={}  pid={pid}  (another kill was already ending it; {signal})",
                report.id
            ))?,
            KillOutcome::AlreadyFinished => output::println(format_args!(
                "{name}  id={}  was not running: it had already finished",
                report.id
            ))?,
            KillOutcome::NotRunning => output::println(format_args!(
                "stopped {name}  id={}  (it was not running; it will not be restarted)",
                report.id
            ))?,
        }
    }
    Ok(Exit::Success)
}

/// What `kill --all` or `restart --all` says when nothing it names runs.
pub(super) fn nothing_runs(names: &[String]) -> String {
    match names {
        [] => "nothing is running".into(),
        names => {
            let names: Vec<String> = names
                .iter()
                .map(|n| format!("`{}`", sanitize::field(n)))
                .collect();
            format!("nothing named {} is running", names.join(" or "))
        }
    }
}
