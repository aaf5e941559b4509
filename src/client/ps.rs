//! `rhizome ps`: the process table as a table for people or JSON for programs.

use std::io::IsTerminal;

use chrono::{DateTime, Local, SecondsFormat};
use comfy_table::{Table, presets};
use serde_json::json;

use super::exit::Exit;
use super::output::{self, note};
use super::render::{human_duration, tidy};
use super::sanitize;
use super::style::{self, Paint};
use super::{Client, unexpected};
use crate::cli::PsArgs;
use crate::paths::Paths;
use crate::protocol::{ProcessInfo, Request, Response};

pub async fn run(paths: &Paths, args: &PsArgs) -> anyhow::Result<Exit> {
    let mut client = Client::connect_or_start(paths).await?;
    let processes = match client.call(&Request::Ps { all: args.all }).await? {
        Response::Ps(processes) => processes,
        other => return Err(unexpected(other)),
    };
    if args.json {
        output::println(to_json(&processes))?;
    } else if !processes.is_empty() {
        output::println(to_table(&processes, Paint::stdout()))?;
    } else if std::io::stdout().is_terminal() {
        // Said to people only: a script reading stdout gets the empty table it asked for.
        note(format_args!(
            "no {}processes; start one with `rhizome run -- CMD`",
            if args.all { "" } else { "running " }
        ));
    }
    Ok(Exit::Success)
}

/// `{"running": [...], "count": N}`, the shape of the original design's `/ps`; with `--all`,
/// finished processes go in `finished`.
fn to_json(processes: &[ProcessInfo]) -> serde_json::Value {
    let (finished, running): (Vec<&ProcessInfo>, Vec<&ProcessInfo>) =
        processes.iter().partition(|p| p.status.is_final());
    let mut answer = json!({
        "running": running.iter().map(|p| entry(p)).collect::<Vec<_>>(),
        "count": running.len(),
    });
    if !finished.is_empty() {
        answer["finished"] = finished.iter().map(|p| entry(p)).collect();
    }
    answer
}

fn entry(p: &ProcessInfo) -> serde_json::Value {
    json!({
        "id": p.id,
        "name": p.name,
        "kind": p.kind.to_string(),
        "pid": p.pid,
        "status": p.status.to_string(),
        "started_at": DateTime::from_timestamp_millis(p.started_at_ms)
            .map(|t| t.with_timezone(&Local).to_rfc3339_opts(SecondsFormat::Secs, false)),
        "uptime_secs": p.uptime_secs,
        "restarts": p.restarts,
        "restart": p.restart.to_string(),
        "command": p.command,
        "detail": p.detail,
        "tunnel": p.tunnel.as_ref().map(|t| json!({
            "target": t.target,
            "url": t.url,
            "local": t.local,
            "upstream": t.upstream,
            "connections_open": t.connections_open,
            "connections_total": t.connections_total,
            "bytes_up": t.bytes_up,
            "bytes_down": t.bytes_down,
        })),
    })
}

/// The aligned table; statuses are colored when `paint` is on (the table measures text without
/// its color codes, so the columns stay aligned). Names and addresses come from outside and are
/// shown escaped, in a pipe too: the table is for people.
fn to_table(processes: &[ProcessInfo], paint: Paint) -> Table {
    let tunnels = processes.iter().any(|p| p.tunnel.is_some());
    let mut table = Table::new();
    let mut header = vec!["ID", "NAME", "PID", "STATUS", "UPTIME", "RESTARTS"];
    if tunnels {
        header.extend(["LOCAL", "UPSTREAM"]);
    }
    table.load_preset(presets::NOTHING).set_header(header);
    for p in processes {
        let mut row = vec![
            p.id.to_string(),
            sanitize::field(&p.name).into_owned(),
            p.pid
                .map(|pid| pid.to_string())
                .unwrap_or_else(|| "-".into()),
            paint.paint(style::status(&p.status), p.status.label()),
            if p.uptime_secs > 0 || p.status == crate::protocol::Status::Running {
                human_duration(p.uptime_secs)
            } else {
                "-".into()
            },
            p.restarts.to_string(),
        ];
        if tunnels {
            let tunnel = p.tunnel.as_ref();
            let cell = |text: Option<&String>| {
                text.map(|t| sanitize::field(t).into_owned())
                    .unwrap_or_default()
            };
            row.push(cell(tunnel.map(|t| &t.local)));
            row.push(cell(tunnel.and_then(|t| t.upstream.as_ref())));
        }
        table.add_row(row);
    }
    tidy(&mut table);
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Kind, RestartPolicy, Status};

    #[test]
    fn names_cannot_drive_the_terminal_even_in_a_pipe() {
        let hostile = ProcessInfo {
            id: 1,
            name: "evil\x1b]0;title\x07\rname".into(),
            kind: Kind::Run,
            command: vec!["sleep".into(), "1000".into()],
            pid: Some(42),
            // Uncolored even under `--color always`: the only escapes would be the name's.
            status: Status::Lost,
            restart: RestartPolicy::Never,
            started_at_ms: 0,
            uptime_secs: 3,
            restarts: 0,
            detail: None,
            tunnel: None,
            ended_at_ms: None,
        };
        let table = to_table(&[hostile], Paint::stdout()).to_string();
        assert!(
            !table.contains('\x1b') && !table.contains('\r'),
            "{table:?}"
        );
        assert!(table.contains(r"evil\x1b]0;title\x07\rname"), "{table}");
    }
}
