//! The tenth day (issue 13), item 14: `kill --signal` and kill(1)'s `kill -9 NAME`, and
//! `restart --signal` for the run a restart ends.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::*;

/// A shell that says `ready` once its traps are set, runs `trap` on `signal`, and otherwise
/// waits for good.
fn trapping(rh: &Rhizome, name: &str, signal: &str, trap: &str) -> (u64, u32) {
    let script = format!("trap '{trap}' {signal}; echo ready; while :; do sleep 0.05; done");
    let started = rh.start(["run", "--name", name, "--", "sh", "-c", &script]);
    wait_for("its traps to be set", Duration::from_secs(10), || {
        rh.logs(name).contains("ready").then_some(())
    });
    started
}

#[test]
fn kill_with_a_signal_sends_that_signal_first() {
    let rh = Rhizome::new();
    let (id, pid) = trapping(&rh, "web", "INT", "echo caught INT; exit 0");
    let out = rh.ok(["kill", "-s", "INT", "--timeout", "30", "web"]);
    assert!(
        out.starts_with(&format!(
            "killed web  id={id}  pid={pid}  (SIGINT, exited after "
        )),
        "{out}"
    );
    let log = rh.finished_log("web");
    assert!(log.contains("caught INT"), "the trap ran: {log}");
    assert!(
        log.contains("subprocess finished (exit 0)"),
        "it exited by itself, no SIGKILL: {log}"
    );
    let entry = rh.process(id);
    assert_eq!(entry["status"], "killed", "{entry}");
    assert_eq!(entry["signal"], "SIGINT", "{entry}");
    // Long, lower case and numbered spellings mean the same.
    let (id2, _) = trapping(&rh, "api", "INT", "echo caught INT; exit 0");
    let out = rh.ok(["kill", "--signal", "sigint", "api"]);
    assert!(out.contains("(SIGINT, exited after "), "{out}");
    assert_eq!(rh.process(id2)["signal"], "SIGINT");
}

#[test]
fn kill_dash_nine_ends_what_ignores_sigterm_at_once() {
    let rh = Rhizome::new();
    let (id, pid) = trapping(&rh, "stubborn", "TERM", "");
    let begun = Instant::now();
    let out = rh.ok(["kill", "-9", "--timeout", "30", "stubborn"]);
    let took = begun.elapsed();
    assert!(
        out.starts_with(&format!(
            "killed stubborn  id={id}  pid={pid}  (SIGKILL, exited after "
        )),
        "{out}"
    );
    assert!(
        took < Duration::from_secs(5),
        "no grace before SIGKILL: {took:?}"
    );
    assert!(!alive(pid));
    let log = rh.finished_log("stubborn");
    assert!(
        log.contains("subprocess finished (signal SIGKILL)"),
        "{log}"
    );
    assert_eq!(rh.process(id)["signal"], "SIGKILL");

    // kill(1)'s names after a dash, too.
    let (id2, _) = trapping(&rh, "worker", "HUP", "echo caught HUP; exit 0");
    let out = rh.ok(["kill", "-HUP", "worker"]);
    assert!(out.contains("(SIGHUP, exited after "), "{out}");
    assert!(rh.finished_log("worker").contains("caught HUP"));
    assert_eq!(rh.process(id2)["signal"], "SIGHUP");
}

#[test]
fn an_unknown_signal_is_refused_with_the_names_accepted() {
    let rh = Rhizome::new();
    for args in [
        ["kill", "-s", "NOPE", "x"],
        ["kill", "--signal", "99", "x"],
        ["kill", "-NOPE", "x", "--all"],
        ["restart", "-s", "STOP", "x"],
    ] {
        let out = rh.run(args);
        assert_eq!(out.code, Some(2), "a usage error: {args:?} {out:?}");
        assert!(
            out.stderr.contains("is not a signal rhizome sends; use one of TERM (15), INT (2), HUP (1), QUIT (3), KILL (9), USR1"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }
    assert!(!rh.daemon_running(), "refused before anything was asked");
}

#[test]
fn restart_with_a_signal_ends_the_run_with_it() {
    let rh = Rhizome::new();
    let (id, pid) = trapping(&rh, "web", "USR1", "echo caught USR1; exit 0");
    let out = rh.ok(["restart", "--signal", "USR1", "--timeout", "30", "web"]);
    assert!(
        out.starts_with(&format!("restarted web  id={id}  pid="))
            && out.contains(&format!("(pid {pid} ended by SIGUSR1 after ")),
        "{out}"
    );
    assert!(rh.logs("web").contains("caught USR1"));
    assert_eq!(rh.process(id)["status"], "running");
}

#[test]
fn signal_names_are_completed() {
    let rh = Rhizome::new();
    let out: Out = rh
        .command(["--", "rhizome", "kill", "--signal", "U"])
        .env("COMPLETE", "fish")
        .output()
        .unwrap()
        .into();
    assert_eq!(out.stdout, "USR1\tSIGUSR1\nUSR2\tSIGUSR2\n", "{out:?}");
    assert!(!rh.daemon_running(), "completion starts no daemon");
}

#[test]
fn a_tunnel_is_killed_with_the_signal_asked_for() {
    let Some((cluster, rh)) = Cluster::new("") else {
        return;
    };
    assert_eq!(cluster.forward(&rh, "fake/web").code, Some(0));
    let forwarder = wait_for("a forwarder", Duration::from_secs(5), || {
        cluster.forwarder()
    });
    let out = cluster
        .command(&rh, &["kill", "-9", "fake/web"])
        .output()
        .unwrap();
    let out: Out = out.into();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("(SIGKILL, exited after "), "{out:?}");
    assert!(!alive(forwarder), "kubectl is gone");
    assert_eq!(rh.processes()[0]["signal"], "SIGKILL");
}
