//! `rhizome` with no command: whether the daemon runs, how many processes it has, where its
//! files are, and the commands people reach for. Never starts a daemon and never fails: it is where people land when
//! they do not know what to type.

use std::time::Duration;

use super::Client;
use super::exit::Exit;
use super::output;
use super::places;
use super::render::human_duration;
use super::sanitize;
use super::style::{BOLD, DIM, GOOD, Paint};
use crate::paths::Paths;
use crate::protocol::{DaemonStatus, Hello, Request, Response};

/// How long to wait for a daemon's status: a daemon this slow is as good as absent here.
const STATUS_BUDGET: Duration = Duration::from_secs(1);

const COMMANDS: [(&str, &str); 7] = [
    ("rhizome ps", "list managed processes"),
    (
        "rhizome forward ENV/NAME",
        "open a tunnel (or find the open one), print its address",
    ),
    ("rhizome targets", "list the targets `forward` knows"),
    (
        "rhizome run -- CMD ARGS...",
        "run a command under the daemon",
    ),
    ("rhizome logs -f ID|NAME|PID", "follow a process's log"),
    ("rhizome kill ID|NAME|PID", "stop a process"),
    (
        "rhizome daemon stop",
        "stop the daemon and everything it runs",
    ),
];

pub fn run() -> anyhow::Result<Exit> {
    let paint = Paint::stdout();
    let mut text = format!(
        "{} {}  keeps helper processes and kubectl tunnels alive\n\n",
        paint.paint(BOLD, "rhizome"),
        env!("CARGO_PKG_VERSION")
    );
    match daemon_status() {
        Ok(Some(status)) => {
            text += &format!(
                "daemon     {}  pid {}, up {}\nprocesses  {} running, {} finished\n",
                paint.paint(GOOD, "running"),
                status.pid,
                human_duration(status.uptime_secs),
                status.running,
                status.finished
            );
        }
        Ok(None) => {
            text += "daemon     not running  (the first command that needs it starts it)\n\
                     processes  none\n";
        }
        Err(why) => text += &format!("daemon     {}\n", sanitize::text(&why)),
    }
    if let Ok(paths) = Paths::from_env() {
        for (label, value) in places::lines(&paths) {
            text += &format!("{label:<11}{value}\n");
        }
    }
    text += "\nCommands:\n";
    for (command, what) in COMMANDS {
        text += &format!("  {command:<30} {}\n", paint.paint(DIM, what));
    }
    text += "\n`rhizome --help` lists everything; `rhizome completions --help` sets up TAB \
             completion.\n";
    output::print(text)?;
    Ok(Exit::Success)
}

/// The daemon's status if one runs; `Ok(None)` when none does; why not when that is unclear.
fn daemon_status() -> Result<Option<DaemonStatus>, String> {
    let paths = Paths::from_env().map_err(|err| err.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    runtime.block_on(async {
        let ask = async {
            // Not `connect`: meeting an older daemon, it would replace it.
            let Some((mut client, theirs)) = Client::connect_any(&paths).await? else {
                return Ok(None);
            };
            if theirs != Hello::ours() {
                return Err(anyhow::anyhow!(
                    "a daemon runs, but it is rhizome {} (this is {}); the next command restarts it",
                    theirs.version,
                    Hello::ours().version
                ));
            }
            match client.call(&Request::Status).await? {
                Response::Status(status) => Ok(Some(status)),
                other => Err(super::unexpected(other)),
            }
        };
        match tokio::time::timeout(STATUS_BUDGET, ask).await {
            Ok(answer) => answer.map_err(|err: anyhow::Error| format!("{err:#}")),
            Err(_) => Err(format!(
                "a daemon listens on {} but did not answer within {} s",
                paths.socket.display(),
                STATUS_BUDGET.as_secs()
            )),
        }
    })
}
