//! `rhizome daemon start|stop|restart|status` (`install` and `uninstall` are in `install/`).

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::exit::Exit;
use super::output;
use super::places;
use super::render::human_duration;
use super::sanitize::field;
use super::{CONNECT_DEADLINE, Client, Failure, Reached, unexpected};
use crate::daemon::{self, Started};
use crate::lock::{self, Holder};
use crate::paths::Paths;
use crate::protocol::{DaemonStatus, Hello, Request, Response};

/// How long `daemon stop` waits for the daemon to end its children and exit.
pub(super) const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// The column of the values under `daemon status`'s first line.
const LABELS: usize = 10;

/// How long a daemon that does not answer gets to exit after SIGTERM before SIGKILL: its orderly
/// stop gives each child 5 s.
const TERM_GRACE: Duration = Duration::from_secs(10);

/// `daemon start`. Synchronous on purpose: it may fork, so it must run before any runtime exists.
pub fn start(paths: &Paths) -> anyhow::Result<Exit> {
    match daemon::start(paths)? {
        Started::New(pid) => output::println(format_args!("daemon started  pid={pid}"))?,
        Started::AlreadyRunning => {
            let pid = lock::read_pid(&paths.lock)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into());
            output::println(format_args!("daemon already running  pid={pid}"))?;
        }
    }
    Ok(Exit::Success)
}

/// What answers for this home's daemon.
pub(super) enum Found {
    /// No daemon: nothing listens and nobody holds the lock.
    Nothing,
    /// A daemon, of any version, that greeted back.
    Greeted(Box<Client>, Hello),
    /// Nothing that answers in time: a daemon that is stopped or stuck, or whose socket is gone;
    /// or, when nobody holds the lock, something else that listens on the socket.
    Silent { holder: Holder, socket_gone: bool },
}

/// Finds the daemon by its socket and, when that is gone, by its lock: a running daemon puts a
/// removed socket back within a second or two, so a missing one is waited for that long.
pub(super) async fn find(paths: &Paths) -> anyhow::Result<Found> {
    let until = Instant::now() + CONNECT_DEADLINE;
    loop {
        match Client::reach(paths, CONNECT_DEADLINE).await? {
            Reached::Greeted(client, theirs) => return Ok(Found::Greeted(client, theirs)),
            Reached::Silent => {
                return Ok(Found::Silent {
                    holder: lock::holder(&paths.lock)?,
                    socket_gone: false,
                });
            }
            Reached::Absent => {
                let holder = lock::holder(&paths.lock)?;
                if holder == Holder::Nobody {
                    return Ok(Found::Nothing);
                }
                if Instant::now() >= until {
                    return Ok(Found::Silent {
                        holder,
                        socket_gone: true,
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

pub async fn status(paths: &Paths, json: bool) -> anyhow::Result<Exit> {
    let found = find(paths).await?;
    if json {
        return super::status_json::print(paths, found).await;
    }
    let (mut client, theirs) = match found {
        Found::Nothing => {
            output::print(format_args!(
                "daemon is not running  (socket {})\n{}",
                paths.socket.display(),
                places::indented(paths, LABELS)
            ))?;
            return Ok(Exit::NotRunning);
        }
        Found::Silent {
            holder,
            socket_gone,
        } => {
            print_silent(paths, holder, socket_gone)?;
            return Ok(Exit::NotAnswering);
        }
        Found::Greeted(client, theirs) => (client, theirs),
    };
    if theirs != Hello::ours() {
        let pid = lock::read_pid(&paths.lock)
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into());
        output::print(format_args!(
            "daemon is running, but it is rhizome {} and this is {}\n  \
             pid       {pid}\n  \
             socket    {}\n  \
             the next command other than `daemon status` restarts it as this version\n",
            field(&theirs.version),
            Hello::ours().version,
            paths.socket.display()
        ))?;
        return Ok(Exit::Success);
    }
    let status = fetch_status(&mut client).await?;
    output::print(format_args!(
        "daemon is running\n  \
         pid       {}\n  \
         version   {}\n  \
         uptime    {}\n  \
         socket    {}\n  \
         home      {}\n  \
         processes {} running, {} finished\n\
         {}",
        status.pid,
        field(&status.version),
        human_duration(status.uptime_secs),
        field(&status.socket),
        field(&status.home),
        status.running,
        status.finished,
        places::indented(paths, LABELS)
    ))?;
    Ok(Exit::Success)
}

/// `daemon status` of a daemon that does not answer.
fn print_silent(
    paths: &Paths,
    holder: Holder,
    socket_gone: bool,
) -> Result<(), output::StdoutError> {
    let socket = paths.socket.display();
    let socket = if socket_gone {
        format!("{socket}  (missing, and not put back)")
    } else {
        socket.to_string()
    };
    match holder {
        Holder::Daemon(pid) => output::print(format_args!(
            "daemon is running but not answering\n  \
             pid       {pid}\n  \
             socket    {socket}\n  \
             it may be stopped (SIGSTOP) or stuck; `rhizome daemon stop` ends it (SIGTERM, then SIGKILL)\n"
        )),
        Holder::Starting => output::print(format_args!(
            "daemon is starting and not answering yet\n  \
             socket    {socket}\n"
        )),
        Holder::Nobody => output::print(format_args!(
            "something listens on the socket but is not answering, and no daemon holds the lock\n  \
             socket    {socket}\n  \
             lock      {}\n",
            paths.lock.display()
        )),
    }
}

/// How a daemon was stopped.
enum Stopped {
    NotRunning,
    /// It was asked, and stopped its children itself.
    Asked(u32),
    /// It did not answer and was signalled: SIGTERM, and SIGKILL when `killed`.
    Signalled {
        pid: u32,
        killed: bool,
    },
}

pub async fn stop(paths: &Paths) -> anyhow::Result<Exit> {
    let pid_of = |pid: u32| format!("daemon stopped  pid={pid}");
    let said = match stop_daemon(paths).await? {
        Stopped::NotRunning => "daemon is not running".to_string(),
        Stopped::Asked(pid) => pid_of(pid),
        Stopped::Signalled { pid, killed: false } => format!(
            "{}  (it was not answering, so it was sent SIGTERM)",
            pid_of(pid)
        ),
        Stopped::Signalled { pid, killed: true } => format!(
            "{}  (it was not answering and did not exit on SIGTERM, so it was sent SIGKILL after {} s; what it ran is stopped when the next daemon starts)",
            pid_of(pid),
            TERM_GRACE.as_secs()
        ),
    };
    output::println(format_args!("{said}"))?;
    Ok(Exit::Success)
}

pub async fn restart(paths: &Paths) -> anyhow::Result<Exit> {
    stop_daemon(paths).await?;
    super::start_daemon_process(paths).await?;
    let pid = lock::read_pid(&paths.lock)
        .map(|p| p.to_string())
        .unwrap_or_else(|| "?".into());
    output::println(format_args!("daemon restarted  pid={pid}"))?;
    Ok(Exit::Success)
}

pub(super) async fn fetch_status(client: &mut Client) -> anyhow::Result<DaemonStatus> {
    match client.call(&Request::Status).await? {
        Response::Status(status) => Ok(status),
        other => Err(unexpected(other)),
    }
}

/// Asks the daemon (of whatever version) to stop, or signals it when it does not answer, and
/// returns once it is gone.
async fn stop_daemon(paths: &Paths) -> anyhow::Result<Stopped> {
    let mut client = match find(paths).await? {
        Found::Nothing => return Ok(Stopped::NotRunning),
        Found::Greeted(client, _) => client,
        Found::Silent {
            holder: Holder::Daemon(pid),
            ..
        } => return terminate(paths, pid).await,
        Found::Silent {
            holder: Holder::Starting,
            ..
        } => {
            return Err(Failure::new(format!(
                "a daemon is starting for {} and not answering yet; nothing was stopped",
                paths.home.display()
            ))
            .hint("run `rhizome daemon stop` again in a moment")
            .into());
        }
        Found::Silent {
            holder: Holder::Nobody,
            ..
        } => {
            return Err(Failure::new(format!(
                "{} is not answering and no daemon holds {}, so what listens there is not rhizome's daemon; nothing was stopped",
                paths.socket.display(),
                paths.lock.display()
            ))
            .hint("remove the socket; the next command starts a daemon")
            .into());
        }
    };
    let pid = lock::read_pid(&paths.lock);
    // `Stop` is the same request in every version; the connection closes when the daemon is gone.
    client.send(&Request::Stop).await?;
    client.closed().await;
    wait_for_exit(paths, pid).await?;
    Ok(Stopped::Asked(pid.unwrap_or(0)))
}

/// Stops a daemon that does not answer, by the pid in its lock: SIGTERM, which it handles like
/// `daemon stop`, with SIGCONT so that a stopped daemon acts on it; SIGKILL if it has not exited
/// after `TERM_GRACE`.
async fn terminate(paths: &Paths, pid: u32) -> anyhow::Result<Stopped> {
    let target = Pid::from_raw(pid as i32);
    let signal = |signal: Signal| match kill(target, signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(err) => Err(Failure::new(format!(
            "the daemon (pid {pid}) is not answering, and it could not be sent {signal}: {err}"
        ))),
    };
    signal(Signal::SIGTERM)?;
    signal(Signal::SIGCONT)?;
    if exited_within(paths, TERM_GRACE).await? {
        return Ok(Stopped::Signalled { pid, killed: false });
    }
    signal(Signal::SIGKILL)?;
    wait_for_exit(paths, Some(pid)).await?;
    Ok(Stopped::Signalled { pid, killed: true })
}

/// Waits until the daemon is gone, which is when its lock is free: the kernel frees it only when
/// the process has exited.
pub async fn wait_for_exit(paths: &Paths, pid: Option<u32>) -> anyhow::Result<()> {
    if exited_within(paths, STOP_DEADLINE).await? {
        return Ok(());
    }
    let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    Err(Failure::new(format!(
        "the daemon{pid} did not exit within {} s of being asked to stop",
        STOP_DEADLINE.as_secs()
    ))
    .hint("look at its log, then end it with `kill` on that pid")
    .into())
}

/// Whether the lock is free within `limit`.
async fn exited_within(paths: &Paths, limit: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + limit;
    while lock::is_held(&paths.lock)? {
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(true)
}
