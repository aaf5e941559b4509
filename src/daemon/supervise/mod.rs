//! Supervisors: one task per managed process, which alone owns its OS children. Requests reach it
//! as `Order`s (kill, restart); everyone else watches its `RunState`.
//!
//! This module holds what both kinds share: starting a child with its output captured (`Run`),
//! ending and closing a run. `command` supervises plain commands, `tunnel` the path of a tunnel.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::io::AsyncRead;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Daemon;
use super::child::{self, Ending};
use super::logs::capture::{Tap, capture};
use super::logs::format::LineFormatter;
use super::process::{ChildId, Order, Process, RestartOrder};

pub mod command;
pub mod tunnel;
use crate::protocol::{KillOutcome, Signal};

/// Time between SIGTERM and SIGKILL when the daemon itself stops its children.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long to wait for the last output of a run after its process group is gone.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// One OS process of a managed process.
pub struct Run {
    pub child: Child,
    pub pid: u32,
    pub started: Instant,
    fmt: LineFormatter,
    /// Ends when both output pipes are closed.
    output: JoinHandle<()>,
}

/// Spawns `argv` with the environment and directory of `process`, logs `subprocess started` (or
/// why it could not start) to its log, and captures its output there; each line also goes to
/// `tap` when given. The one place where the daemon starts a child.
pub async fn start_child(
    daemon: &Daemon,
    process: &Process,
    argv: &[OsString],
    tap: Option<Tap>,
) -> Result<Run, String> {
    let context = process.context();
    let mut child = match child::spawn(&daemon.spawner, argv, &context.env, &context.cwd).await {
        Ok(child) => child,
        Err(err) => {
            let reason = child::describe_spawn_error(argv, &context.cwd, &err);
            daemon
                .say(process, &format!("failed to start: {reason}"))
                .await;
            return Err(reason);
        }
    };
    let pid = child.id().unwrap_or(0);
    let id = ChildId {
        pid,
        start_time: child::start_time(pid),
    };
    process.update(|s| s.children.push(id));
    let mut fmt = LineFormatter::new(&process.name, Some(pid));
    daemon
        .writer
        .append(&process.log, fmt.lifecycle("subprocess started"))
        .await;
    let captures = [
        child
            .stdout
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn AsyncRead + Unpin + Send>),
        child
            .stderr
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|pipe| {
        capture(
            pipe,
            fmt.clone(),
            process.log.clone(),
            daemon.writer.clone(),
            tap.clone(),
        )
    });
    let output = tokio::spawn(futures_util::future::join_all(captures).map(drop));
    Ok(Run {
        child,
        pid,
        started: Instant::now(),
        fmt,
        output,
    })
}

/// Ends a run that is still going: its group is terminated as `ending` says and the run closed.
/// Returns the last signal sent and how long the group took to go.
pub async fn end(
    daemon: &Daemon,
    process: &Process,
    mut run: Run,
    ending: Ending,
) -> (Signal, Duration) {
    let (signal, took, status) = child::terminate(&mut run.child, run.pid, ending).await;
    finish(daemon, process, run, child::exit_code(status)).await;
    (signal, took)
}

/// Closes a run: waits (briefly) for its last output, logs `subprocess finished`, and makes sure
/// that line is in the file before anyone is told the run is over.
pub async fn finish(daemon: &Daemon, process: &Process, mut run: Run, code: i32) {
    if tokio::time::timeout(OUTPUT_DRAIN, &mut run.output)
        .await
        .is_err()
    {
        tracing::warn!(
            "output of {} (pid {}) is still open after it ended; something it started holds it",
            process.name,
            run.pid
        );
    }
    let line = run.fmt.lifecycle(&child::finished_line(code));
    daemon.writer.append(&process.log, line).await;
    daemon.writer.flush().await;
    process.update(|s| {
        s.children.retain(|c| c.pid != run.pid);
    });
}

/// How the wait between two runs ended.
pub enum Waited {
    /// The delay is over: start again.
    Elapsed,
    /// A kill (answered: it was not running) or the daemon's shutdown ended the wait: the
    /// process is over.
    Stopped,
    /// A restart ended the wait: start again at once, as it says.
    Restart(RestartOrder),
}

/// Waits out `delay` before the next run, unless an order or the daemon's shutdown comes first.
/// The one wait both supervisors make between runs.
pub async fn wait_out(
    delay: Duration,
    orders: &mut mpsc::Receiver<Order>,
    shutdown: &CancellationToken,
) -> Waited {
    wait_until(tokio::time::sleep(delay), orders, shutdown).await
}

/// Waits until `event` (`Elapsed` then), unless an order or the daemon's shutdown comes first:
/// `wait_out`, and a lazy tunnel's wait for its first client.
pub async fn wait_until(
    event: impl std::future::Future<Output = ()>,
    orders: &mut mpsc::Receiver<Order>,
    shutdown: &CancellationToken,
) -> Waited {
    tokio::select! {
        _ = event => Waited::Elapsed,
        Some(order) = orders.recv() => match order {
            Order::Kill(order) => {
                let _ = order.reply.send(KillOutcome::NotRunning);
                Waited::Stopped
            }
            Order::Restart(order) => Waited::Restart(order),
        },
        _ = shutdown.cancelled() => Waited::Stopped,
    }
}

/// A daemon of its own in a temporary home, for one supervisor's test.
#[cfg(test)]
pub(super) fn test_daemon(home: &tempfile::TempDir) -> std::sync::Arc<Daemon> {
    use super::logs::writer::LogWriter;
    use super::spawner::{Mark, Spawner};
    let paths = crate::paths::Paths::under(home.path());
    paths.ensure_dirs().unwrap();
    let (writer, _thread) = LogWriter::start().unwrap();
    let mark = Mark::new(&paths.home);
    let spawner = Spawner::start(tokio::runtime::Handle::current(), mark).unwrap();
    Daemon::new(paths, writer, crate::config::Rotation::default(), spawner)
}
