//! The supervisor of a plain command (`run`, `sleeper`): start it, wait for it to end, and start
//! it again as its restart policy says, until it is killed or the daemon stops.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::{Run, SHUTDOWN_GRACE, Waited, finish, start_child, wait_out};
use crate::daemon::Daemon;
use crate::daemon::backoff::{Backoff, HEALTHY, Limit, Verdict};
use crate::daemon::child::{self, Ending};
use crate::daemon::process::{KillOrder, Order, Phase, Process, RestartOrder, Restarted, Spec};
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

/// Starts a new entry's first run and, when it starts, its supervisor; returns the pid. One that
/// cannot start is failed and retired, with the reason returned.
pub async fn start(
    daemon: &Arc<Daemon>,
    process: &Arc<Process>,
    spec: Spec,
    orders: mpsc::Receiver<Order>,
) -> Result<u32, String> {
    match launch(daemon, process, &spec).await {
        Ok(run) => {
            let pid = run.pid;
            tracing::info!("started {} id={} pid={pid}", process.name, process.id);
            daemon.supervisors.spawn(supervise(
                daemon.clone(),
                process.clone(),
                spec,
                Ok(run),
                orders,
            ));
            Ok(pid)
        }
        Err(reason) => {
            process.set_phase(Phase::Failed(reason.clone()));
            daemon.retire(process).await;
            Err(reason)
        }
    }
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
    /// `restart` ended it with this signal, after this long: the next run starts at once.
    Restarted {
        signal: Signal,
        took: Duration,
        code: i32,
        order: RestartOrder,
    },
}

/// Supervises `process`, which runs `spec`, from its first run until it is final.
pub async fn supervise(
    daemon: Arc<Daemon>,
    process: Arc<Process>,
    spec: Spec,
    first: Result<Run, String>,
    mut orders: mpsc::Receiver<Order>,
) {
    let mut backoff = Backoff::default();
    let mut limit = Limit::new(spec.max_restarts);
    let mut next = first;
    loop {
        // A restart that could not even spawn counts as a run that failed at once.
        let (code, ran_for) = match next {
            Err(_) => (127, Duration::ZERO),
            Ok(mut run) => {
                let ended = tokio::select! {
                    status = run.child.wait() => Ended::ByItself(child::exit_code(status.ok())),
                    Some(order) = orders.recv() => match order {
                        Order::Kill(order) => stop(&mut run, order.ending, Some(order)).await,
                        Order::Restart(order) => {
                            // Said first, so the log reads why before how the run ended.
                            daemon.say(&process, &order.why).await;
                            process.set_phase(Phase::Restarting);
                            let (signal, took, status) =
                                child::terminate(&mut run.child, run.pid, order.ending).await;
                            let code = child::exit_code(status);
                            Ended::Restarted { signal, took, code, order }
                        }
                    },
                    _ = daemon.shutdown.cancelled() => {
                        stop(&mut run, Ending::term(SHUTDOWN_GRACE), None).await
                    }
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
                    Ended::Restarted {
                        signal,
                        took,
                        code,
                        order,
                    } => {
                        finish(&daemon, &process, run, code).await;
                        // A restart asked for is a fresh start: no backoff, no crash loop yet.
                        backoff.reset();
                        limit = Limit::new(spec.max_restarts);
                        next =
                            relaunch(&daemon, &process, &spec, order, Some((signal, took))).await;
                        continue;
                    }
                }
            }
        };
        if !restarts(spec.restart, code) {
            process.set_phase(Phase::Exited(code));
            break;
        }
        let delay = backoff.after_run(ran_for);
        // Each line is in the log before `ps` shows what it announces.
        let failed = match limit.after_run(ran_for) {
            Verdict::CrashLoop { failed } => {
                let max = limit.max().unwrap_or(failed);
                daemon.say(&process, &crash_loop_line(failed, max)).await;
                daemon.writer.flush().await;
                process.set_phase(Phase::CrashLoop { restarts: failed });
                break;
            }
            Verdict::Restart { failed } => failed,
        };
        let restart = process.state().restarts + 1;
        let line = restarting_line(delay, restart, failed, limit.max());
        daemon.say(&process, &line).await;
        daemon.writer.flush().await;
        process.set_phase(Phase::Restarting);
        match wait_out(delay, &mut orders, &daemon.shutdown).await {
            Waited::Elapsed => {}
            Waited::Stopped => {
                process.set_phase(Phase::Killed(None));
                break;
            }
            Waited::Restart(order) => {
                daemon.say(&process, &order.why).await;
                backoff.reset();
                limit = Limit::new(spec.max_restarts);
                next = relaunch(&daemon, &process, &spec, order, None).await;
                continue;
            }
        }
        process.update(|s| s.restarts += 1);
        next = launch(&daemon, &process, &spec).await;
    }
    daemon.retire(&process).await;
}

/// The run a restart asked for: counted, started at once, and the restart told how it went.
async fn relaunch(
    daemon: &Daemon,
    process: &Process,
    spec: &Spec,
    order: RestartOrder,
    stopped: Option<(Signal, Duration)>,
) -> Result<Run, String> {
    process.update(|s| s.restarts += 1);
    let next = launch(daemon, process, spec).await;
    let failed = next.as_ref().err().cloned();
    let _ = order.reply.send(Restarted { stopped, failed });
    next
}

async fn stop(run: &mut Run, ending: Ending, order: Option<KillOrder>) -> Ended {
    let (signal, took, status) = child::terminate(&mut run.child, run.pid, ending).await;
    Ended::Killed {
        signal,
        took,
        code: child::exit_code(status),
        order,
    }
}

/// The log's line when a restart is scheduled: when it comes, which one it is, and with
/// `--max-restarts` how near the limit it is.
fn restarting_line(delay: Duration, restart: u32, failed: u32, max: Option<u32>) -> String {
    let when = format!(
        "restarting in {:.1}s (restart {restart}",
        delay.as_secs_f64()
    );
    match max {
        Some(max) => format!("{when}; failed restarts in a row: {failed} of at most {max})"),
        None => format!("{when})"),
    }
}

/// The log's line when `--max-restarts` (`max`) stops the restarts, after `failed` of them.
fn crash_loop_line(failed: u32, max: u32) -> String {
    let within = HEALTHY.as_secs();
    let what = match failed {
        0 => format!("it ended within {within}s"),
        1 => format!("its restart ended within {within}s"),
        n => format!("{n} restarts in a row each ended within {within}s"),
    };
    format!("crash loop: {what}; not restarting (--max-restarts {max})")
}

/// Whether a run that ended by itself with `code` is started again.
fn restarts(policy: RestartPolicy, code: i32) -> bool {
    match policy {
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure => code != 0,
        RestartPolicy::Always => true,
    }
}

#[cfg(test)]
mod tests;
