//! A command's supervisor with paused time: its restart delays, its crash loop, and what a
//! kill, the daemon stopping or a restart does to the wait between runs.

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::daemon::process::{Context, Work};
use crate::daemon::supervise::test_daemon as daemon;
use crate::protocol::CommandKind;

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
        process.kill(Ending::term(Duration::from_secs(5))).await,
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
async fn a_restart_ends_the_wait_between_runs_at_once_and_starts_the_backoff_over() {
    let home = tempfile::tempdir().unwrap();
    let daemon = daemon(&home);
    let (process, supervisor) = supervised(&daemon, None).await;
    let mut state = process.watch();
    // Five failed starts in, the next wait would be 3.2 s.
    state
        .wait_for(|s| s.restarts == 5 && s.phase == Phase::Restarting)
        .await
        .unwrap();
    let asked = Instant::now();
    let restarted = process
        .restart(
            Ending::term(Duration::from_secs(5)),
            "restarted by a test".into(),
            None,
        )
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

    process.kill(Ending::term(Duration::from_secs(5))).await;
    supervisor.await.unwrap();
    assert!(
        process
            .restart(Ending::term(Duration::ZERO), "late".into(), None)
            .await
            .is_none(),
        "a finished supervisor takes no restart"
    );
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
        process.kill(Ending::term(Duration::from_secs(5))).await,
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
    process.kill(Ending::term(Duration::from_secs(5))).await;
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
