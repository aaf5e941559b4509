//! `rhizome forward` driving a fake kubectl (testkit's `fake-kubectl`), which prints what the real
//! one prints, splices to an echo server, and fails on command.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::*;

#[test]
fn a_database_tunnel_goes_through_exec_and_port_forward() {
    let Some((cluster, rh)) = Cluster::new("") else {
        return;
    };
    let out = cluster.forward(&rh, "fake/orders");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("mysql://127.0.0.1:{}\n", cluster.local_port)
    );

    let payload = random_bytes(1 << 20);
    assert!(
        echo_round_trip(cluster.addr(), &payload) == payload,
        "1 MiB each way, intact"
    );

    let calls = cluster.calls();
    let exec = calls.iter().find(|c| c.has("exec")).expect("an exec");
    assert_eq!(
        exec.argv[..],
        [
            "--context",
            "fake-ctx",
            "--namespace",
            "db",
            "exec",
            "deploy/cloudsql",
            "--",
            "/connect.sh",
            "proj:region:orders"
        ]
    );
    let forward = calls
        .iter()
        .find(|c| c.has("port-forward"))
        .expect("a port-forward");
    assert_eq!(
        forward.argv[..],
        [
            "--context",
            "fake-ctx",
            "--namespace",
            "db",
            "port-forward",
            "deploy/cloudsql",
            "0:3307",
            "--address",
            "127.0.0.1"
        ]
    );
    let log = rh.logs("fake/orders");
    assert!(
        log.contains("[proj:region:orders] Listening on 127.0.0.1:3307"),
        "{log}"
    );
    assert!(log.contains("Forwarding from 127.0.0.1:"), "{log}");
    assert!(log.contains("Handling connection for"), "{log}");
    let entry = &rh.ps()["running"][0];
    assert_eq!(entry["tunnel"]["upstream"], "pod:3307");
    assert_eq!(
        entry["pid"],
        wait_for("the forwarder's pid", Duration::from_secs(5), || cluster
            .forwarder())
    );
}

#[test]
fn a_service_tunnel_skips_the_proxy() {
    let Some((cluster, rh)) = Cluster::new("") else {
        return;
    };
    let out = cluster.forward(&rh, "fake/web");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("http://127.0.0.1:"));
    let calls = cluster.calls();
    assert!(!calls.iter().any(|c| c.has("exec")), "{calls:?}");
    assert!(calls.iter().any(|c| c.argv.ends_with(&[
        "svc/web".into(),
        "0:8080".into(),
        "--address".into(),
        "127.0.0.1".into()
    ])));
}

#[test]
fn kubectl_killed_ten_times_while_a_client_keeps_reconnecting() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let Some((cluster, rh)) = Cluster::new("") else {
        return;
    };
    assert_eq!(cluster.forward(&rh, "fake/orders").code, Some(0));
    let addr = cluster.addr();
    let done = AtomicBool::new(false);
    let exchanges = AtomicU32::new(0);
    let refused = std::thread::scope(|s| {
        let client = s.spawn(|| {
            let mut refused = 0u32;
            while !done.load(Ordering::Relaxed) {
                match std::net::TcpStream::connect(&addr) {
                    Err(err) => {
                        eprintln!("connect failed: {err}");
                        refused += 1;
                    }
                    Ok(stream) => {
                        // A connection cut by a kill is expected; a refused one is not.
                        let payload = random_bytes(64);
                        if exchange(stream, &payload) == payload {
                            exchanges.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            refused
        });
        for round in 1..=10 {
            let pid = wait_for("a forwarder", Duration::from_secs(20), || {
                cluster.forwarder()
            });
            // The client gets through before each kill: every round cuts a working path.
            let before = exchanges.load(Ordering::Relaxed);
            wait_for(
                &format!("an exchange before kill {round}"),
                Duration::from_secs(20),
                || (exchanges.load(Ordering::Relaxed) > before).then_some(()),
            );
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::SIGKILL,
            )
            .unwrap();
            wait_for(&format!("restart {round}"), Duration::from_secs(20), || {
                cluster.forwarder().filter(|&new| new != pid).map(|_| ())
            });
        }
        // And it works at the end.
        let payload = random_bytes(1 << 16);
        assert!(echo_round_trip(&addr, &payload) == payload);
        done.store(true, Ordering::Relaxed);
        client.join().unwrap()
    });
    assert_eq!(refused, 0, "the local port never refused a connection");
    assert!(
        exchanges.load(Ordering::Relaxed) >= 10,
        "the client got through between kills"
    );
    assert_eq!(rh.ps()["running"][0]["restarts"], 10);
}

#[test]
fn a_wedged_kubectl_is_detected_and_replaced() {
    let Some((cluster, rh)) = Cluster::new("port-forward 1 hang\n") else {
        return;
    };
    assert_eq!(cluster.forward(&rh, "fake/orders").code, Some(0));
    // The first port-forward's pid, from its line in the log: rhizome's own readiness check may
    // already have found it wedged and replaced it by the time `forward` has answered.
    let wedged: u32 = wait_for("the first forwarder's pid", Duration::from_secs(5), || {
        rh.logs("fake/orders")
            .lines()
            .find(|l| l.contains("Forwarding from"))?
            .rsplit_once("pid=")?
            .1
            .trim()
            .parse()
            .ok()
    });
    // The first connection fails: kubectl accepts it and drops it, as a wedged one does.
    let started = Instant::now();
    let _ = echo_round_trip_lossy(&cluster.addr());
    let payload = random_bytes(1000);
    let back = wait_for("the tunnel to work again", Duration::from_secs(20), || {
        let back = echo_round_trip_lossy_with(&cluster.addr(), &payload);
        (back == payload).then_some(back)
    });
    assert_eq!(back, payload);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "detected within seconds: {:?}",
        started.elapsed()
    );
    assert!(!alive(wedged), "the wedged kubectl was killed");
    let log = rh.logs("fake/orders");
    assert!(log.contains("runs but does not forward"), "{log}");
}

/// A round trip that may fail (the connection may be cut); returns what came back, nothing if it
/// failed.
fn echo_round_trip_lossy_with(addr: &str, payload: &[u8]) -> Vec<u8> {
    match std::net::TcpStream::connect(addr) {
        Ok(stream) => exchange(stream, payload),
        Err(_) => Vec::new(),
    }
}

/// An echo on `stream` that may fail: what came back, nothing if it failed.
fn exchange(stream: std::net::TcpStream, payload: &[u8]) -> Vec<u8> {
    echo_on(stream, payload).unwrap_or_default()
}

fn echo_round_trip_lossy(addr: &str) -> Vec<u8> {
    echo_round_trip_lossy_with(addr, b"hello")
}

#[test]
fn early_failures_are_retried_then_reported() {
    let Some((cluster, rh)) = Cluster::new("port-forward 1 fail\nport-forward 2 fail\n") else {
        return;
    };
    let out = cluster.forward(&rh, "fake/orders");
    assert_eq!(out.code, Some(0), "two failures, then it works: {out:?}");
    assert_eq!(rh.ps()["running"][0]["restarts"], 2);

    let Some((cluster, rh)) = Cluster::new("port-forward * fail\n") else {
        return;
    };
    let started = Instant::now();
    let out = cluster.forward(&rh, "fake/orders");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("unable to forward port because pod is not running"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let ports = cluster
        .calls()
        .iter()
        .filter(|c| c.has("port-forward"))
        .count();
    assert_eq!(ports, 3, "three attempts, not an endless loop");
    assert!(
        std::net::TcpStream::connect(cluster.addr()).is_err(),
        "the failed tunnel freed its port"
    );
}

#[test]
fn a_failed_exec_is_reported_as_kubectl_said_it() {
    let Some((cluster, rh)) = Cluster::new("exec * fail\n") else {
        return;
    };
    let out = cluster.forward(&rh, "fake/orders");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains(r#"container not found ("cloudsql-proxy")"#),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unknown_context_is_reported_promptly() {
    let Some((cluster, rh)) = Cluster::new("") else {
        return;
    };
    let out = cluster
        .command(&rh, &["forward", "fake/orders"])
        .env("FAKE_KUBECTL_CONTEXTS", "other")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("fake-ctx"),
        "kubectl's message names the context: {stderr}"
    );
}

#[test]
fn a_proxy_that_keeps_exec_running_is_fine_and_stopped_with_the_tunnel() {
    let Some((cluster, rh)) = Cluster::new("exec * hang\n") else {
        return;
    };
    let out = cluster.forward(&rh, "fake/orders");
    assert_eq!(out.code, Some(0), "{out:?}");
    let payload = random_bytes(4096);
    assert!(echo_round_trip(cluster.addr(), &payload) == payload);
    let exec_pids: Vec<u32> = cluster
        .calls()
        .iter()
        .filter(|c| c.has("exec"))
        .map(|c| c.pid)
        .collect();
    assert!(
        exec_pids.iter().any(|&p| alive(p)),
        "exec still runs the proxy"
    );
    rh.ok(["kill", "fake/orders"]);
    assert!(exec_pids.iter().all(|&p| !alive(p)), "kill ended exec too");
}

#[test]
fn kubectl_losing_the_pod_is_restarted_and_logged() {
    let Some((cluster, rh)) = Cluster::new("port-forward 1 die-after-ms 300\n") else {
        return;
    };
    assert_eq!(cluster.forward(&rh, "fake/orders").code, Some(0));
    let first = wait_for("the forwarder's pid", Duration::from_secs(5), || {
        cluster.forwarder()
    });
    wait_for("the restart", Duration::from_secs(10), || {
        cluster.forwarder().filter(|&p| p != first)
    });
    let payload = random_bytes(1000);
    assert!(echo_round_trip(cluster.addr(), &payload) == payload);
    let log = rh.logs("fake/orders");
    assert!(log.contains("error: lost connection to pod"), "{log}");
    assert!(log.contains("subprocess finished (exit 1)"), "{log}");
}

#[test]
fn kill_stops_kubectl_for_good() {
    let Some((cluster, rh)) = Cluster::new("") else {
        return;
    };
    assert_eq!(cluster.forward(&rh, "fake/orders").code, Some(0));
    let pid = wait_for("the forwarder's pid", Duration::from_secs(5), || {
        cluster.forwarder()
    });
    let out = rh.ok(["kill", "fake/orders"]);
    assert!(out.contains("(SIGTERM, exited after"), "{out}");
    assert!(!alive(pid));
    assert!(
        std::net::TcpStream::connect(cluster.addr()).is_err(),
        "the port is closed"
    );
    let starts = cluster
        .calls()
        .iter()
        .filter(|c| c.has("port-forward"))
        .count();
    assert_eq!(starts, 1, "no restart after kill");
}

/// A path that carried traffic is rebuilt at once when it breaks, however often: ten kubectl
/// deaths in a row, each after traffic, and each time the tunnel carries bytes again within 1 s
/// (the delay once doubled with every death, to 3.2 s by the sixth).
#[test]
fn every_rebuild_after_traffic_is_at_once() {
    let Some((cluster, rh)) = Cluster::new("") else {
        return;
    };
    assert_eq!(cluster.forward(&rh, "fake/web").code, Some(0));
    let url = rh.ps()["running"][0]["tunnel"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let addr = url.strip_prefix("http://").unwrap().to_string();
    let mut slowest = Duration::ZERO;
    for round in 1..=10 {
        assert_eq!(
            echo_round_trip(&addr, b"traffic"),
            b"traffic",
            "round {round}"
        );
        let pid = wait_for("a forwarder", Duration::from_secs(20), || {
            cluster.forwarder()
        });
        let killed = std::time::Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::SIGKILL,
        )
        .unwrap();
        wait_for(
            &format!("recovery {round}"),
            Duration::from_secs(20),
            || {
                cluster.forwarder().filter(|&new| new != pid)?;
                let stream = std::net::TcpStream::connect(&addr).ok()?;
                (exchange(stream, b"back") == b"back").then_some(())
            },
        );
        slowest = slowest.max(killed.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(1),
        "the slowest recovery took {slowest:?}"
    );
    assert_eq!(rh.ps()["running"][0]["restarts"], 10);
}
