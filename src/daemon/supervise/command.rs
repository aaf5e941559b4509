//! The supervisor of a plain command (`run`, `sleeper`): start it, wait for it to end, and start
//! it again as its restart policy says, until it is killed or the daemon stops.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::{Run, SHUTDOWN_GRACE, finish, start_child};
use crate::daemon::Daemon;
use crate::daemon::backoff::Backoff;
use crate::daemon::child;
use crate::daemon::process::{KillOrder, Process};
use crate::protocol::{KillOutcome, RestartPolicy, Signal, Status};

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

/// Whether a run that ended by itself with `code` is started again.
fn restarts(policy: RestartPolicy, code: i32) -> bool {
    match policy {
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure => code != 0,
        RestartPolicy::Always => true,
    }
}
