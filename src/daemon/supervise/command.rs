//! The supervisor of a plain command (`run`, `sleeper`): start it, wait for it to end, and start
//! it again as its restart policy says, until it is killed or the daemon stops.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::{Run, SHUTDOWN_GRACE, Waited, finish, start_child, wait_out};
use crate::daemon::Daemon;
use crate::daemon::backoff::Backoff;
use crate::daemon::child;
use crate::daemon::process::{KillOrder, Phase, Process, Spec};
use crate::protocol::{KillOutcome, RestartPolicy, Signal};

/// Starts one run of a command and marks it running.
pub async fn launch(daemon: &Daemon, process: &Process, spec: &Spec) -> Result<Run, String> {
    let run = start_child(daemon, process, &spec.argv, None).await?;
    process.update(|state| {
        state.phase = Phase::running(Some(run.pid));
        state.last_pid = Some(run.pid);
        state.started_at = SystemTime::now();
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

/// Supervises `process`, which runs `spec`, from its first run until it is final.
pub async fn supervise(
    daemon: Arc<Daemon>,
    process: Arc<Process>,
    spec: Spec,
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
                        process.set_phase(Phase::Killed(Some(signal)));
                        if let Some(order) = order {
                            let elapsed_ms = took.as_millis() as u64;
                            let _ = order.reply.send(KillOutcome::Ended { signal, elapsed_ms });
                        }
                        break;
                    }
                }
            }
        };
        if !restarts(spec.restart, code) {
            process.set_phase(Phase::Exited(code));
            break;
        }
        let delay = backoff.after_run(ran_for);
        process.set_phase(Phase::Restarting);
        if let Waited::Stopped = wait_out(delay, &mut orders, &daemon.shutdown).await {
            process.set_phase(Phase::Killed(None));
            break;
        }
        process.update(|s| s.restarts += 1);
        next = launch(&daemon, &process, &spec).await;
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
