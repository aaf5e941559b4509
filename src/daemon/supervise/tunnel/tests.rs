//! A tunnel's supervisor with paused time: what a restart does to its waiting and its giving up.

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::daemon::child::Ending;
use crate::daemon::process::{Context, Work};
use crate::daemon::supervise::test_daemon;
use crate::forward::tunnel::Tunnel;
use crate::protocol::{Route, Target, Tool, TunnelSettings};

/// A tunnel whose kubectl does not exist: every attempt fails at once, so the only time that
/// passes is the supervisor's own waiting.
fn never_forwards_lazy(lazy: bool) -> TunnelPart {
    let listener = Tunnel::bind(None).unwrap();
    TunnelPart {
        target: Target {
            name: "test/web".into(),
            context: "c".into(),
            namespace: "n".into(),
            kubeconfig: None,
            local_port: None,
            scheme: "http".into(),
            route: Route::Service {
                resource: "svc/web".into(),
                remote_port: 80,
            },
        },
        tool: Tool::Kubectl("/nonexistent/rhizome-test-kubectl".into()),
        context: Context {
            env: Vec::new(),
            cwd: "/".into(),
        },
        wait: Duration::from_secs(1),
        settings: TunnelSettings {
            backoff_max_ms: 30_000,
            probe_interval_ms: 0,
            lazy,
            // Never stopped for idleness: under paused time, a wait on the spawner's thread
            // would let that timer fire first.
            idle_stop_ms: 0,
            by_up: false,
        },
        tunnel: Tunnel::start(listener, Duration::from_secs(1)).unwrap(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_restart_ends_the_wait_at_once_and_counts_quick_failures_from_zero() {
    let home = tempfile::tempdir().unwrap();
    let daemon = test_daemon(&home);
    let (process, orders) = daemon.table.insert(|id| {
        daemon.new_process(
            id,
            "test/web".into(),
            Work::tunnel(never_forwards_lazy(false)),
        )
    });
    let part = process.tunnel().unwrap();
    let supervisor = tokio::spawn(supervise(daemon.clone(), process.clone(), part, orders));
    let mut state = process.watch();
    // One attempt failed, and another fails or has failed: without the restart, the next
    // failure would be the last.
    state
        .wait_for(|s| s.restarts == 1 && s.phase == Phase::Starting)
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
    assert_eq!(restarted.stopped, None, "no kubectl was running");
    assert_eq!(process.state().restarts, 2, "a restart counts");

    // It gives up only after three more failed attempts, waiting 100 then 200 ms between them.
    let state = state
        .wait_for(|s| s.phase.is_final())
        .await
        .unwrap()
        .clone();
    assert!(matches!(state.phase, Phase::Failed(_)), "{:?}", state.phase);
    assert_eq!(state.restarts, 4);
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
async fn a_lazy_tunnel_runs_nothing_until_a_client_connects() {
    let home = tempfile::tempdir().unwrap();
    let daemon = test_daemon(&home);
    let (process, orders) = daemon.table.insert(|id| {
        daemon.new_process(
            id,
            "test/web".into(),
            Work::tunnel(never_forwards_lazy(true)),
        )
    });
    let part = process.tunnel().unwrap();
    let local = part.tunnel.local;
    let supervisor = tokio::spawn(supervise(daemon.clone(), process.clone(), part, orders));
    let mut state = process.watch();
    state.wait_for(|s| s.phase == Phase::Idle).await.unwrap();
    // An hour later it is still idle: no attempt, no restart.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(process.state().phase, Phase::Idle);
    assert_eq!(process.state().restarts, 0);
    assert!(process.state().children.is_empty());
    // A client wakes it: the path is built (and here fails, kubectl being absent); once the
    // client has given up waiting, the tunnel is idle again rather than rebuilding for nobody.
    let _client = tokio::net::TcpStream::connect(local).await.unwrap();
    state.wait_for(|s| s.restarts >= 1).await.unwrap();
    state.wait_for(|s| s.phase == Phase::Idle).await.unwrap();
    let restarts = process.state().restarts;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        process.state().restarts,
        restarts,
        "no attempts without a client"
    );
    process.kill(Ending::term(Duration::from_secs(1))).await;
    supervisor.await.unwrap();
}
