//! `rhizome daemon status --json`: the daemon as a program reads it, with what it runs in the
//! shape of `ps --all --json`. Every key is always there (`null` where the daemon cannot say),
//! and the exit code is the text's: 0 running, 3 not running, 4 not answering.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::daemon::{Found, fetch_status};
use super::exit::Exit;
use super::json::{self, Processes};
use super::{output, unexpected};
use crate::lock::{self, Holder};
use crate::paths::Paths;
use crate::protocol::{Hello, Request, Response};

/// The daemon.
#[derive(Debug, Serialize)]
struct Daemon<'a> {
    /// `running`, `not running`, `starting` (not answering yet) or `not answering`.
    status: &'static str,
    pid: Option<u32>,
    /// The daemon's version, which may not be this rhizome's.
    version: Option<String>,
    /// RFC 3339, UTC.
    started_at: Option<String>,
    uptime_secs: Option<u64>,
    socket: String,
    home: String,
    /// What `ps --all --json` prints; `null` unless the daemon answers and is this version.
    processes: Option<Processes<'a>>,
}

pub(super) async fn print(paths: &Paths, found: Found) -> anyhow::Result<Exit> {
    let mut daemon = Daemon {
        status: "not running",
        pid: None,
        version: None,
        started_at: None,
        uptime_secs: None,
        socket: paths.socket.display().to_string(),
        home: paths.home.display().to_string(),
        processes: None,
    };
    let listed;
    let exit = match found {
        Found::Nothing => Exit::NotRunning,
        Found::Silent { holder, .. } => {
            (daemon.status, daemon.pid) = match holder {
                Holder::Daemon(pid) => ("not answering", Some(pid)),
                Holder::Starting => ("starting", None),
                Holder::Nobody => ("not answering", None),
            };
            Exit::NotAnswering
        }
        Found::Greeted(_, theirs) if theirs != Hello::ours() => {
            daemon.status = "running";
            daemon.pid = lock::read_pid(&paths.lock);
            daemon.version = Some(theirs.version);
            Exit::Success
        }
        Found::Greeted(mut client, _) => {
            let status = fetch_status(&mut client).await?;
            listed = match client.call(&Request::Ps { all: true }).await? {
                Response::Ps(processes) => processes,
                other => return Err(unexpected(other)),
            };
            let started = SystemTime::now() - Duration::from_secs(status.uptime_secs);
            daemon.status = "running";
            daemon.pid = Some(status.pid);
            daemon.version = Some(status.version);
            daemon.started_at = started
                .duration_since(UNIX_EPOCH)
                .ok()
                .and_then(|d| json::time(d.as_millis() as i64));
            daemon.uptime_secs = Some(status.uptime_secs);
            daemon.socket = status.socket;
            daemon.home = status.home;
            daemon.processes = Some(Processes::of(&listed));
            Exit::Success
        }
    };
    output::println(serde_json::to_string(&daemon)?)?;
    Ok(exit)
}
