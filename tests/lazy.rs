//! Lazy tunnels (issue 12): the port is open and the URL printed at once, nothing runs in the
//! cluster until the first client connects, the path stops after `idle_stop_secs` without a
//! client, and a lazy tunnel comes back idle after the daemon dies.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::*;

/// A cluster whose `[forward]` section stops idle lazy tunnels after `idle` seconds.
fn cluster(idle: u64) -> Option<(Cluster, Rhizome)> {
    let (cluster, rh) = Cluster::new("")?;
    let config = std::fs::read_to_string(rh.path().join("rhizome.toml")).unwrap();
    let config = config.replace(
        "[forward]\n",
        &format!("[forward]\nidle_stop_secs = {idle}\n"),
    );
    write_config(&rh, &config);
    Some((cluster, rh))
}

fn port_forwards(cluster: &Cluster) -> usize {
    cluster
        .calls()
        .iter()
        .filter(|c| c.argv.iter().any(|a| a == "port-forward"))
        .count()
}

fn status(rh: &Rhizome) -> String {
    rh.ps()["running"][0]["status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_lazy_tunnel_runs_nothing_until_used_and_stops_when_idle() {
    let Some((cluster, rh)) = cluster(2) else {
        return;
    };
    let out: Out = cluster
        .command(&rh, &["forward", "--lazy", "fake/web"])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{out:?}");
    let url = out.stdout.trim().to_string();
    let addr = url.strip_prefix("http://").expect("a URL").to_string();
    assert_eq!(status(&rh), "idle");
    assert_eq!(cluster.calls().len(), 0, "no kubectl before a client");

    // The first connection waits for the path and gets its bytes.
    assert_eq!(echo_round_trip(&addr, b"first"), b"first");
    assert_eq!(port_forwards(&cluster), 1);
    let forwarder = cluster.forwarder().expect("a port-forward ran");

    // Two seconds without a client: kubectl ends, the port stays, `ps` says idle.
    wait_for("the idle stop", Duration::from_secs(15), || {
        (!alive(forwarder) && status(&rh) == "idle").then_some(())
    });
    assert!(
        rh.logs("fake/web").contains("no client for 2s"),
        "{}",
        rh.logs("fake/web")
    );
    assert_eq!(echo_round_trip(&addr, b"again"), b"again", "woken again");
    assert_eq!(port_forwards(&cluster), 2);

    // A forward of the awake tunnel answers as before.
    let again: Out = cluster.forward(&rh, "fake/web");
    assert_eq!(again.stdout.trim(), url, "{again:?}");
}

#[test]
fn a_lazy_tunnel_comes_back_idle_on_its_port_after_the_daemon_dies() {
    let Some((cluster, rh)) = cluster(600) else {
        return;
    };
    let out: Out = cluster
        .command(&rh, &["forward", "--lazy", "fake/orders"])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, format!("mysql://{}\n", cluster.addr()));
    rh.kill_daemon_hard();
    // The next command brings the daemon back, and the tunnel with it: idle, nothing run.
    wait_for("the tunnel back, idle", Duration::from_secs(15), || {
        (status(&rh) == "idle").then_some(())
    });
    assert_eq!(cluster.calls().len(), 0, "still no kubectl");
    assert_eq!(
        echo_round_trip(cluster.addr(), b"hello"),
        b"hello",
        "the port is held again and wakes the path"
    );
}
