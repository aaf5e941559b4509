//! `rhizome daemon start|stop|restart|status`.

use std::time::{Duration, Instant};

use super::exit::Exit;
use super::output;
use super::render::human_duration;
use super::sanitize::field;
use super::{Client, Failure, unexpected};
use crate::daemon::{self, Started};
use crate::lock;
use crate::paths::Paths;
use crate::protocol::{DaemonStatus, Hello, Request, Response};

/// How long `daemon stop` waits for the daemon to end its children and exit.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

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

pub async fn status(paths: &Paths) -> anyhow::Result<Exit> {
    let Some((mut client, theirs)) = Client::connect_any(paths).await? else {
        output::println(format_args!(
            "daemon is not running  (socket {})",
            paths.socket.display()
        ))?;
        return Ok(Exit::NotRunning);
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
         processes {} running, {} finished\n",
        status.pid,
        field(&status.version),
        human_duration(status.uptime_secs),
        field(&status.socket),
        field(&status.home),
        status.running,
        status.finished
    ))?;
    Ok(Exit::Success)
}

pub async fn stop(paths: &Paths) -> anyhow::Result<Exit> {
    match stop_daemon(paths).await? {
        Some(pid) => output::println(format_args!("daemon stopped  pid={pid}"))?,
        None => output::println("daemon is not running")?,
    }
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

async fn fetch_status(client: &mut Client) -> anyhow::Result<DaemonStatus> {
    match client.call(&Request::Status).await? {
        Response::Status(status) => Ok(status),
        other => Err(unexpected(other)),
    }
}

/// Asks the daemon (of whatever version) to stop and returns its pid once it is gone.
async fn stop_daemon(paths: &Paths) -> anyhow::Result<Option<u32>> {
    let Some((mut client, _)) = Client::connect_any(paths).await? else {
        return Ok(None);
    };
    let pid = lock::read_pid(&paths.lock);
    // `Stop` is the same request in every version; the connection closes when the daemon is gone.
    client.send(&Request::Stop).await?;
    client.closed().await;
    wait_for_exit(paths, pid).await?;
    Ok(Some(pid.unwrap_or(0)))
}

/// Waits until the daemon is gone, which is when its lock is free: the kernel frees it only when
/// the process has exited.
pub async fn wait_for_exit(paths: &Paths, pid: Option<u32>) -> anyhow::Result<()> {
    let deadline = Instant::now() + STOP_DEADLINE;
    while lock::is_held(&paths.lock)? {
        if Instant::now() >= deadline {
            let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            return Err(Failure::new(format!(
                "the daemon{pid} did not exit within {} s of being asked to stop",
                STOP_DEADLINE.as_secs()
            ))
            .hint("look at its log, then end it with `kill` on that pid")
            .into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
