//! The supervisor of a plain command (`run`, `sleeper`): start it, wait for it to end, and start
//! it again as its restart policy says, until it is killed or the daemon stops.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::{Run, SHUTDOWN_GRACE, Waited, finish, start_child, wait_out};
use crate::daemon::Daemon;
use crate::daemon::backoff::{Backoff, HEALTHY, Limit, Verdict};
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
    let mut limit = Limit::new(spec.max_restarts);
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
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::config::Rotation;
    use crate::daemon::logs::writer::LogWriter;
    use crate::daemon::process::{Context, Work};
    use crate::daemon::spawner::{Mark, Spawner};
    use crate::paths::Paths;
    use crate::protocol::CommandKind;

    /// A daemon of its own in a temporary home, for one test.
    fn daemon(home: &tempfile::TempDir) -> Arc<Daemon> {
        let paths = Paths::under(home.path());
        paths.ensure_dirs().unwrap();
        let (writer, _thread) = LogWriter::start().unwrap();
        let mark = Mark::new(&paths.home);
        let spawner = Spawner::start(tokio::runtime::Handle::current(), mark).unwrap();
        Daemon::new(paths, writer, Rotation::default(), spawner)
    }

    /// A command that can never start, restarted always: its runs take no time at all, so the
    /// only time that passes is the supervisor's own waiting.
    fn never_starts(max_restarts: Option<u32>) -> Spec {
        Spec {
            kind: CommandKind::Run,
            argv: vec!["/nonexistent/rhizome-test-program".into()],
            context: Context {
                env: Vec::new(),
                cwd: "/".into(),
            },
            restart: RestartPolicy::Always,
            max_restarts,
        }
    }

    /// `never_starts` in the table of `daemon`, its first start failed, and its supervisor.
    async fn supervised(
        daemon: &Arc<Daemon>,
        max_restarts: Option<u32>,
    ) -> (Arc<Process>, tokio::task::JoinHandle<()>) {
        let spec = never_starts(max_restarts);
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
        let (process, supervisor) = supervised(&daemon, None).await;
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
        let (process, supervisor) = supervised(&daemon, None).await;
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
    async fn max_restarts_ends_a_crash_loop_and_the_log_says_when_each_restart_comes() {
        let home = tempfile::tempdir().unwrap();
        let daemon = daemon(&home);
        let begun = Instant::now();
        let (process, supervisor) = supervised(&daemon, Some(3)).await;
        supervisor.await.unwrap();
        // Three restarts, after 0.1, 0.2 and 0.4 s, and no fourth.
        assert_eq!(begun.elapsed(), Duration::from_millis(700));
        assert_eq!(process.phase(), Phase::CrashLoop { restarts: 3 });
        assert_eq!(process.state().restarts, 3);
        assert!(process.is_final());
        assert_eq!(process.info().status.to_string(), "crash-loop(3 restarts)");
        assert_eq!(
            process.kill(Duration::from_secs(5)).await,
            KillOutcome::AlreadyFinished
        );

        let log = std::fs::read_to_string(process.log.path_at(0)).unwrap();
        let said: Vec<&str> = log
            .lines()
            .filter_map(|line| line.split_once(' ')?.1.strip_suffix(" [never]"))
            .filter(|text| !text.starts_with("failed to start"))
            .collect();
        assert_eq!(
            said,
            [
                "restarting in 0.1s (restart 1; failed restarts in a row: 0 of at most 3)",
                "restarting in 0.2s (restart 2; failed restarts in a row: 1 of at most 3)",
                "restarting in 0.4s (restart 3; failed restarts in a row: 2 of at most 3)",
                "crash loop: 3 restarts in a row each ended within 60s; not restarting (--max-restarts 3)",
            ],
            "{log}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_max_restarts_the_log_still_says_when_the_next_restart_comes() {
        let home = tempfile::tempdir().unwrap();
        let daemon = daemon(&home);
        let (process, supervisor) = supervised(&daemon, None).await;
        let mut state = process.watch();
        // The line is flushed before the wait it announces begins.
        state.wait_for(|s| s.restarts == 5).await.unwrap();
        let log = std::fs::read_to_string(process.log.path_at(0)).unwrap();
        assert!(
            log.contains("restarting in 1.6s (restart 5) [never]\n"),
            "each wait is announced: {log}"
        );
        process.kill(Duration::from_secs(5)).await;
        supervisor.await.unwrap();
    }

    #[test]
    fn the_crash_loop_line_counts_in_words() {
        assert_eq!(
            crash_loop_line(0, 0),
            "crash loop: it ended within 60s; not restarting (--max-restarts 0)"
        );
        assert_eq!(
            crash_loop_line(1, 0),
            "crash loop: its restart ended within 60s; not restarting (--max-restarts 0)"
        );
    }
}
