//! The one JSON shape of a process, used by every `--json` that shows one (`ps`, `forward
//! --format json`, `daemon status`), and the shape of a list of them. The README's table of
//! fields describes these types; `tests/daily_ps.rs` pins every key and its JSON type, so a
//! change here is a change of a documented interface.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::protocol::{ProcessInfo, Status, TunnelInfo};

/// One process.
#[derive(Debug, Serialize)]
pub struct Process<'a> {
    pub id: u32,
    pub name: &'a str,
    /// `run`, `sleeper` or `forward`.
    pub kind: String,
    /// One word (`State::word`): what `ps --status` filters by.
    pub status: &'static str,
    /// How it exited by itself; `null` unless `status` is `exited` and no signal ended it.
    pub exit_code: Option<i32>,
    /// The signal that ended it (`SIGTERM`), when one did.
    pub signal: Option<String>,
    /// Why it failed or was lost; `null` otherwise.
    pub reason: Option<std::borrow::Cow<'a, str>>,
    /// The pid while it runs, the last run's once finished, `null` in between (starting,
    /// restarting, a tunnel reconnecting: nothing of it is alive).
    pub pid: Option<u32>,
    /// The command line that runs (for a tunnel, kubectl's; secrets redacted).
    pub command: &'a [String],
    /// What carries a tunnel (`native`, `kubectl`, `simulated`); `null` for commands.
    pub transport: Option<&'static str>,
    /// Why `transport = "auto"` uses kubectl instead of the native client; `null` otherwise.
    pub transport_reason: Option<&'a str>,
    pub restart: String,
    pub restarts: u32,
    /// RFC 3339, UTC: when the current (or last) run started.
    pub started_at: Option<String>,
    /// RFC 3339, UTC: when it finished; `null` until then.
    pub ended_at: Option<String>,
    /// Seconds the current run has been up; `null` unless `status` is `running`.
    pub uptime_secs: Option<u64>,
    /// What it is doing, or why its last run ended.
    pub detail: Option<&'a str>,
    pub tunnel: Option<Tunnel<'a>>,
}

/// The tunnel part of a process.
#[derive(Debug, Serialize)]
pub struct Tunnel<'a> {
    /// `ENV/NAME`.
    pub target: &'a str,
    /// The connection string, `mysql://127.0.0.1:3306`.
    pub url: &'a str,
    /// `127.0.0.1:PORT`.
    pub local: &'a str,
    pub local_port: u16,
    /// The port in the pod; `null` until known.
    pub remote_port: Option<u16>,
    /// `POD:PORT` once the tunnel has reached the pod.
    pub upstream: Option<&'a str>,
    pub sql_connection: Option<&'a str>,
    pub connections_open: u64,
    pub connections_total: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

/// A list of processes: `{"running": [...], "count": N, "finished": [...]}`, every key always
/// there (`count` counts `running`, as the original `/ps` did).
#[derive(Debug, Serialize)]
pub struct Processes<'a> {
    pub running: Vec<Process<'a>>,
    pub count: usize,
    pub finished: Vec<Process<'a>>,
}

impl<'a> Processes<'a> {
    pub fn of(processes: impl IntoIterator<Item = &'a ProcessInfo>) -> Processes<'a> {
        let (finished, running): (Vec<&ProcessInfo>, Vec<&ProcessInfo>) =
            processes.into_iter().partition(|p| p.status.is_final());
        Processes {
            count: running.len(),
            running: running.into_iter().map(process).collect(),
            finished: finished.into_iter().map(process).collect(),
        }
    }
}

/// The pid of what is alive now: a running process's, else none.
pub fn live_pid(p: &ProcessInfo) -> Option<u32> {
    (p.status == Status::Running).then_some(p.pid).flatten()
}

pub fn process(p: &ProcessInfo) -> Process<'_> {
    let (exit_code, signal, reason) = match &p.status {
        Status::Exited(code) if *code < 0 => (None, Some(signal_name(-code)), None),
        Status::Exited(code) => (Some(*code), None, None),
        Status::Killed(signal) => (None, signal.map(|s| s.to_string()), None),
        Status::Failed(reason) => (None, None, Some(reason.as_str().into())),
        Status::Lost => (None, None, Some(LOST.into())),
        Status::CrashLoop { restarts } => (
            None,
            None,
            Some(
                format!(
                    "restarted {restarts} times in a row, each run ending early (--max-restarts)"
                )
                .into(),
            ),
        ),
        _ => (None, None, None),
    };
    Process {
        id: p.id,
        name: &p.name,
        kind: p.kind.to_string(),
        status: p.status.state().word(),
        exit_code,
        signal,
        reason,
        pid: if p.status.is_final() {
            p.pid
        } else {
            live_pid(p)
        },
        command: &p.command,
        transport: p.tunnel.as_ref().map(|t| t.transport.word()),
        transport_reason: p
            .tunnel
            .as_ref()
            .and_then(|t| t.transport_reason.as_deref()),
        restart: p.restart.to_string(),
        restarts: p.restarts,
        started_at: (p.started_at_ms > 0)
            .then(|| time(p.started_at_ms))
            .flatten(),
        ended_at: p.ended_at_ms.and_then(time),
        uptime_secs: (p.status == Status::Running).then_some(p.uptime_secs),
        detail: p.detail.as_deref(),
        tunnel: p.tunnel.as_ref().map(tunnel),
    }
}

/// The reason of every `lost` process.
const LOST: &str = "it was running when its daemon stopped; a one-shot is not run again";

fn tunnel(t: &TunnelInfo) -> Tunnel<'_> {
    Tunnel {
        target: &t.target,
        url: &t.url,
        local: &t.local,
        local_port: t.local_port,
        remote_port: t.remote_port,
        upstream: t.upstream.as_deref(),
        sql_connection: t.sql_connection.as_deref(),
        connections_open: t.connections_open,
        connections_total: t.connections_total,
        bytes_up: t.bytes_up,
        bytes_down: t.bytes_down,
    }
}

/// RFC 3339 in UTC with milliseconds: `2026-11-25T08:00:00.000Z`.
pub fn time(millis: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// `SIGSEGV` for 11; the number itself for one this system has no name for.
fn signal_name(number: i32) -> String {
    nix::sys::signal::Signal::try_from(number)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| number.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Kind, RestartPolicy, Signal};

    fn info(status: Status) -> ProcessInfo {
        ProcessInfo {
            id: 1,
            name: "web".into(),
            kind: Kind::Run,
            command: vec!["sleep".into(), "1".into()],
            pid: Some(42),
            status,
            restart: RestartPolicy::Never,
            started_at_ms: 1_764_057_600_000,
            uptime_secs: 0,
            restarts: 0,
            detail: None,
            tunnel: None,
            ended_at_ms: None,
        }
    }

    #[test]
    fn a_status_is_a_word_and_what_it_carries_has_fields_of_its_own() {
        let json = |status| serde_json::to_value(process(&info(status))).unwrap();
        let exited = json(Status::Exited(3));
        assert_eq!(
            (&exited["status"], &exited["exit_code"], &exited["signal"]),
            (&"exited".into(), &3.into(), &serde_json::Value::Null)
        );
        let by_signal = json(Status::Exited(-11));
        assert_eq!(by_signal["signal"], "SIGSEGV");
        assert_eq!(by_signal["exit_code"], serde_json::Value::Null);
        assert_eq!(
            json(Status::Killed(Some(Signal::Term)))["signal"],
            "SIGTERM"
        );
        let failed = json(Status::Failed("no such file".into()));
        assert_eq!(
            (&failed["status"], &failed["reason"]),
            (&"failed".into(), &"no such file".into())
        );
        assert_eq!(json(Status::Running)["uptime_secs"], 0);
        assert_eq!(
            json(Status::Restarting)["uptime_secs"],
            serde_json::Value::Null
        );
        assert_eq!(
            json(Status::Restarting)["pid"],
            serde_json::Value::Null,
            "no run is alive"
        );
        assert_eq!(json(Status::Exited(0))["pid"], 42, "the last run's");
        assert_eq!(exited["started_at"], "2025-11-25T08:00:00.000Z");
    }
}
