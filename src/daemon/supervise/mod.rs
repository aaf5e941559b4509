//! The life of a managed process: start it, capture its output, wait for it to end, and start it
//! again as its restart policy says, until it is killed or the daemon stops.
//!
//! Each process has one supervisor task, which alone owns the OS child. Requests reach it as
//! `KillOrder`s; everyone else watches its `RunState`.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use tokio::io::AsyncRead;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Daemon;
use super::backoff::Backoff;
use super::child;
use super::logs::capture::{Tap, capture};
use super::logs::format::LineFormatter;
use super::process::{ChildId, KillOrder, Process};

pub mod tunnel;
use crate::protocol::{KillOutcome, RestartPolicy, Signal, Status};

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
    let spec = &process.spec;
    let mut child = match child::spawn(argv, &spec.env, &spec.cwd) {
        Ok(child) => child,
        Err(err) => {
            let reason = child::describe_spawn_error(argv, &spec.cwd, &err);
            let mut fmt = LineFormatter::new(&process.name, None);
            let line = fmt.lifecycle(&format!("failed to start: {reason}"));
            daemon.writer.append(&process.log, line).await;
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

/// Starts one run of a plain managed process and marks it running.
pub async fn launch(daemon: &Daemon, process: &Arc<Process>) -> Result<Run, String> {
    let run = start_child(daemon, process, &process.spec.argv, None).await?;
    process.update(|state| {
        state.status = Status::Running;
        state.pid = Some(run.pid);
        state.started_at = SystemTime::now();
        state.up_since = Some(Instant::now());
    });
    Ok(run)
}

/// How a run ended.
enum Ended {
    /// The process exited or was signalled by someone else, with this code (see `exit_code`).
    ByItself(i32),
    /// `kill` or the daemon's shutdown ended it with this signal, after this long.
    Killed {
        signal: Signal,
        took: Duration,
        code: i32,
        order: Option<KillOrder>,
    },
}

/// Supervises `process` from its first run until it is final.
pub async fn supervise(
    daemon: Arc<Daemon>,
    process: Arc<Process>,
    first: Result<Run, String>,
    mut orders: mpsc::Receiver<KillOrder>,
) {
    let mut backoff = Backoff::default();
    let mut next = first;
    loop {
        // A restart that could not even spawn counts as a run that failed at once.
        let (code, ran_for) = match next {
            Err(_) => (127, Duration::ZERO),
            Ok(mut run) => {
                let ended = tokio::select! {
                    status = run.child.wait() => Ended::ByItself(child::exit_code(status.ok())),
                    Some(order) = orders.recv() => stop(&mut run, order.grace, Some(order)).await,
                    _ = daemon.shutdown.cancelled() => stop(&mut run, SHUTDOWN_GRACE, None).await,
                };
                let ran_for = run.started.elapsed();
                match ended {
                    Ended::ByItself(code) => {
                        child::reap_leftovers(run.pid, SHUTDOWN_GRACE);
                        finish(&daemon, &process, run, code).await;
                        (code, ran_for)
                    }
                    Ended::Killed {
                        signal,
                        took,
                        code,
                        order,
                    } => {
                        finish(&daemon, &process, run, code).await;
                        process.update(|s| s.status = Status::Killed(Some(signal)));
                        if let Some(order) = order {
                            let elapsed_ms = took.as_millis() as u64;
                            let _ = order.reply.send(KillOutcome::Ended { signal, elapsed_ms });
                        }
                        break;
                    }
                }
            }
        };
        if !restarts(process.spec.restart, code) {
            process.update(|s| s.status = Status::Exited(code));
            break;
        }
        let delay = backoff.after_run(ran_for);
        process.update(|s| s.status = Status::Restarting);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            Some(order) = orders.recv() => {
                process.update(|s| s.status = Status::Killed(None));
                let _ = order.reply.send(KillOutcome::NotRunning);
                break;
            }
            _ = daemon.shutdown.cancelled() => {
                process.update(|s| s.status = Status::Killed(None));
                break;
            }
        }
        process.update(|s| s.restarts += 1);
        next = launch(&daemon, &process).await;
    }
    daemon.retire(&process).await;
}

async fn stop(run: &mut Run, grace: Duration, order: Option<KillOrder>) -> Ended {
    let (signal, took, status) = child::terminate(&mut run.child, run.pid, grace).await;
    Ended::Killed {
        signal,
        took,
        code: child::exit_code(status),
        order,
    }
}

/// Ends a run that is still going: its group is terminated (SIGKILL after `grace`) and the run
/// closed. Returns the last signal sent and how long the group took to go.
pub async fn end(
    daemon: &Daemon,
    process: &Process,
    mut run: Run,
    grace: Duration,
) -> (Signal, Duration) {
    let (signal, took, status) = child::terminate(&mut run.child, run.pid, grace).await;
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
        s.up_since = None;
        s.children.retain(|c| c.pid != run.pid);
    });
}

/// Whether a run that ended by itself with `code` is started again.
fn restarts(policy: RestartPolicy, code: i32) -> bool {
    match policy {
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure => code != 0,
        RestartPolicy::Always => true,
    }
}
