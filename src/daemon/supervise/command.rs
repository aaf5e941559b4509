//! The supervisor of a plain command (`run`, `sleeper`): start it, wait for it to end, and start
//! it again as its restart policy says, until it is killed or the daemon stops.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::{Run, SHUTDOWN_GRACE, Waited, finish, start_child, wait_out};
use crate::daemon::Daemon;
use crate::daemon::backoff::Backoff;
use crate::daemon::child;
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
    let mut next = first;
    loop {
        // A restart that could not even spawn counts as a run that failed at once.
        let (code, ran_for) = match next {
            Err(_) => (127, Duration::ZERO),
            Ok(mut run) => {
                let ended = tokio::select! {
                    status = run.child.wait() => Ended::ByItself(child::exit_code(status.ok())),
                    Some(order) = orders.recv() => match order {
                        Order::Kill(order) => stop(&mut run, order.grace, Some(order)).await,
                        Order::Restart(order) => {
                            // Said first, so the log reads why before how the run ended.
                            daemon.say(&process, &order.why).await;
                            process.set_phase(Phase::Restarting);
                            let (signal, took, status) =
                                child::terminate(&mut run.child, run.pid, order.grace).await;
                            let code = child::exit_code(status);
                            Ended::Restarted { signal, took, code, order }
                        }
                    },
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
                    Ended::Restarted {
                        signal,
                        took,
                        code,
                        order,
                    } => {
                        finish(&daemon, &process, run, code).await;
                        backoff.reset();
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::daemon::process::{Context, Work};
    use crate::daemon::supervise::test_daemon as daemon;
    use crate::protocol::CommandKind;

    /// A command that can never start, restarted always: its runs take no time at all, so the
    /// only time that passes is the supervisor's own waiting.
    fn never_starts() -> Spec {
        Spec {
            kind: CommandKind::Run,
            argv: vec!["/nonexistent/rhizome-test-program".into()],
            context: Context {
                env: Vec::new(),
                cwd: "/".into(),
            },
            restart: RestartPolicy::Always,
        }
    }

    /// `never_starts` in the table of `daemon`, its first start failed, and its supervisor.
    async fn supervised(daemon: &Arc<Daemon>) -> (Arc<Process>, tokio::task::JoinHandle<()>) {
        let spec = never_starts();
        let (process, orders) = daemon
            .table
            .insert(|id| daemon.new_process(id, "never".into(), Work::Command(spec.clone())));
        let first = launch(daemon, &process, &spec).await;
        assert!(first.is_err(), "the program does not exist");
        let supervisor = tokio::spawn(supervise(
            daemon.clone(),
            process.clone(),
            spec,
            first,
            orders,
        ));
        (process, supervisor)
    }

    #[tokio::test(start_paused = true)]
    async fn restarts_wait_doubling_delays_up_to_thirty_seconds_and_a_kill_ends_the_wait() {
        let home = tempfile::tempdir().unwrap();
        let daemon = daemon(&home);
        let begun = Instant::now();
        let (process, supervisor) = supervised(&daemon).await;
        let mut state = process.watch();
        let mut starts = Vec::new();
        while starts.len() < 12 {
            state.changed().await.unwrap();
            let restarts = state.borrow_and_update().restarts as usize;
            if restarts > starts.len() {
                starts.push(begun.elapsed());
            }
        }
        let waits: Vec<u128> = std::iter::once(starts[0])
            .chain(starts.windows(2).map(|w| w[1] - w[0]))
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(
            waits,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
            ],
            "each wait doubles, capped at 30 s"
        );
        // Killed while it waits: nothing was running, and it is over at once.
        let killed_at = Instant::now();
        assert_eq!(
            process.kill(Duration::from_secs(5)).await,
            KillOutcome::NotRunning
        );
        supervisor.await.unwrap();
        assert_eq!(killed_at.elapsed(), Duration::ZERO);
        assert_eq!(process.phase(), Phase::Killed(None));
    }

    #[tokio::test(start_paused = true)]
    async fn the_daemon_stopping_ends_the_wait_between_runs() {
        let home = tempfile::tempdir().unwrap();
        let daemon = daemon(&home);
        let (process, supervisor) = supervised(&daemon).await;
        let mut state = process.watch();
        state
            .wait_for(|s| s.phase == Phase::Restarting)
            .await
            .unwrap();
        daemon.shutdown.cancel();
        supervisor.await.unwrap();
        assert_eq!(process.phase(), Phase::Killed(None));
        assert_eq!(process.state().restarts, 0, "no run after the shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_ends_the_wait_between_runs_at_once_and_starts_the_backoff_over() {
        let home = tempfile::tempdir().unwrap();
        let daemon = daemon(&home);
        let (process, supervisor) = supervised(&daemon).await;
        let mut state = process.watch();
        // Five failed starts in, the next wait would be 3.2 s.
        state
            .wait_for(|s| s.restarts == 5 && s.phase == Phase::Restarting)
            .await
            .unwrap();
        let asked = Instant::now();
        let restarted = process
            .restart(Duration::from_secs(5), "restarted by a test".into(), None)
            .await
            .expect("the supervisor takes it");
        assert_eq!(
            asked.elapsed(),
            Duration::ZERO,
            "no waiting out the backoff"
        );
        assert_eq!(restarted.stopped, None, "nothing was running");
        assert!(
            restarted.failed.is_some(),
            "the program still does not exist"
        );
        assert_eq!(process.state().restarts, 6, "a restart counts");
        // The backoff began again: the next start comes after the first delay.
        let before = Instant::now();
        state.wait_for(|s| s.restarts == 7).await.unwrap();
        assert_eq!(before.elapsed(), Duration::from_millis(100));
        daemon.writer.flush().await;
        let log = std::fs::read_to_string(process.log.path_at(0)).unwrap();
        assert!(log.contains("restarted by a test"), "{log}");

        process.kill(Duration::from_secs(5)).await;
        supervisor.await.unwrap();
        assert!(
            process
                .restart(Duration::ZERO, "late".into(), None)
                .await
                .is_none(),
            "a finished supervisor takes no restart"
        );
    }
}
