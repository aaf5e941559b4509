//! The tenth day (issue 13), continued: `rhizome restart`, one tunnel per target, and a name
//! that means the running process of that name in `kill --all`, `restart` and completion.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::cluster::Cluster;
use common::*;

/// Waits until the process with `id` has finished by itself.
fn wait_finished(rh: &Rhizome, id: u64) {
    wait_for("the process to finish", Duration::from_secs(10), || {
        let status = rh.process(id)["status"].as_str().unwrap_or("").to_string();
        status.starts_with("exited").then_some(())
    });
}

/// The pid in a `restarted NAME  id=N  pid=P  (...)` line.
fn new_pid(line: &str) -> u32 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid= in {line:?}"))
}

/// The messages of a log from the first that contains `from`.
fn messages_from(log: &str, from: &str) -> Vec<String> {
    messages(log)
        .into_iter()
        .skip_while(|m| !m.contains(from))
        .collect()
}

#[test]
fn restart_starts_a_command_again_as_the_same_process() {
    let rh = Rhizome::new();
    let (id, pid) = rh.start(["run", "--name", "web", "--", "sleep", "1000"]);
    let out = rh.ok(["restart", "web"]);
    assert!(
        out.starts_with(&format!("restarted web  id={id}  pid=")),
        "{out}"
    );
    assert!(
        out.contains(&format!("(pid {pid} ended by SIGTERM after ")),
        "{out}"
    );
    let pid2 = new_pid(&out);
    assert_ne!(pid2, pid);
    assert!(!alive(pid), "the old run is gone");
    assert!(alive(pid2), "the new one runs");

    let entry = rh.process(id);
    assert_eq!(entry["status"], "running");
    assert_eq!(entry["pid"], pid2);
    assert_eq!(entry["restarts"], 1);
    assert_eq!(rh.processes().len(), 1, "the same process, no new entry");
    let log = messages_from(&rh.logs("web"), "restarted by rhizome restart");
    assert!(
        log.len() >= 3
            && log[1].starts_with("subprocess finished")
            && log[2].starts_with("subprocess started"),
        "why, then the old run's end, then the new run: {log:?}"
    );
}

#[test]
fn a_finished_process_is_started_again_under_its_id_by_this_daemon_only() {
    let rh = Rhizome::new();
    let (id, _) = rh.start(["run", "--name", "once", "--", "sh", "-c", "echo ran"]);
    wait_finished(&rh, id);
    let out = rh.ok(["restart", "once"]);
    assert!(
        out.starts_with(&format!("restarted once  id={id}  pid="))
            && out.contains("(it had finished: exited(0))"),
        "{out}"
    );
    wait_finished(&rh, id);
    let log = rh.logs("once");
    let runs = messages(&log)
        .iter()
        .filter(|m| m.starts_with("ran "))
        .count();
    assert_eq!(runs, 2, "it ran twice: {log}");
    assert!(
        log.contains("restarted by rhizome restart (it had finished: exited(0))"),
        "{log}"
    );
    assert_eq!(rh.process(id)["restarts"], 1);

    // An earlier daemon's finished process keeps too little to run again: said, not guessed.
    rh.ok(["daemon", "restart"]);
    let out = rh.run(["restart", &id.to_string()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "could not restart once (id {id}): it finished under an earlier daemon"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("rhizome run -- CMD"), "{}", out.stderr);
}

#[test]
fn a_name_shared_by_running_processes_takes_ids_or_all() {
    let rh = Rhizome::new();
    let (a, pid_a) = rh.start(["run", "--name", "web", "--", "sleep", "1000"]);
    let (b, pid_b) = rh.start(["run", "--name", "web", "--", "sleep", "1000"]);
    let (other, other_pid) = rh.start(["run", "--name", "db", "--", "sleep", "1000"]);

    let out = rh.run(["restart", "web"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "2 processes named `web` are running (ids {a}, {b})"
        )) && out.stderr.contains("`rhizome restart --all web`"),
        "{}",
        out.stderr
    );

    let out = rh.ok(["restart", "--all", "web"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!("restarted web  id={a}  ")),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!("restarted web  id={b}  ")),
        "{out}"
    );
    assert!(!alive(pid_a) && !alive(pid_b));

    let out = rh.ok(["kill", "--all", "web"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.contains(&format!("id={a}")) && out.contains(&format!("id={b}")),
        "{out}"
    );
    assert_eq!(rh.process(other)["status"], "running", "db is not web");
    assert!(alive(other_pid));

    let again = rh.run(["kill", "--all", "web"]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(again.stderr.trim(), "nothing named `web` is running");
    let unknown = rh.run(["kill", "--all", "nosuch", "db"]);
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(
        unknown
            .stderr
            .contains("no managed process is named `nosuch`; nothing was stopped"),
        "{}",
        unknown.stderr
    );
    assert!(alive(other_pid), "all or none");
}

/// What `rhizome WORDS <TAB>` offers in fish: `value\tdescription` lines.
fn complete(rh: &Rhizome, words: &[&str]) -> Vec<String> {
    let out: Out = rh
        .command(
            std::iter::once("--")
                .chain(std::iter::once("rhizome"))
                .chain(words.iter().copied()),
        )
        .env("COMPLETE", "fish")
        .env("RHIZOME_COMPLETE_TIMEOUT_MS", "5000")
        .stderr(Stdio::piped())
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{out:?}");
    out.stdout.lines().map(str::to_string).collect()
}

#[test]
fn completion_describes_a_name_by_what_it_means() {
    let rh = Rhizome::new();
    let (running, _) = rh.start(["run", "--name", "sleeper", "--", "sleep", "1000"]);
    let (finished, _) = rh.start(["run", "--name", "sleeper", "--", "true"]);
    wait_finished(&rh, finished);
    let offered = complete(&rh, &["kill", ""]);
    assert!(
        offered.contains(&format!("sleeper\tid {running}, running")),
        "the running one, not the newest: {offered:?}"
    );
    assert_eq!(
        offered
            .iter()
            .filter(|l| l.starts_with("sleeper\t"))
            .count(),
        1,
        "a name once: {offered:?}"
    );
    let offered = complete(&rh, &["restart", ""]);
    assert!(
        offered.contains(&format!("{finished}\tsleeper exited(0)")),
        "restart offers finished ids too: {offered:?}"
    );
    assert!(
        offered.contains(&format!("sleeper\tid {running}, running")),
        "{offered:?}"
    );

    let (second, _) = rh.start(["run", "--name", "sleeper", "--", "sleep", "1000"]);
    let offered = complete(&rh, &["restart", ""]);
    assert!(
        offered.contains(&format!("sleeper\t2 running: ids {running}, {second}")),
        "{offered:?}"
    );
}

#[test]
fn logs_of_a_name_follow_the_rule_and_still_read_a_finished_one() {
    let rh = Rhizome::new();
    let (id, _) = rh.start(["run", "--name", "job", "--", "sh", "-c", "echo first"]);
    wait_finished(&rh, id);
    assert!(
        rh.logs("job").contains("first"),
        "a finished one is still read"
    );
    let (a, _) = rh.start(["run", "--name", "job", "--", "sleep", "1000"]);
    assert!(!rh.logs("job").contains("first"), "the running one now");
    let (b, _) = rh.start(["run", "--name", "job", "--", "sleep", "1000"]);
    let out = rh.run(["logs", "job"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!("(ids {a}, {b})")) && out.stderr.contains("rhizome logs"),
        "{}",
        out.stderr
    );
}

#[test]
fn restart_rebuilds_a_tunnel_upstream_while_its_port_stays_open() {
    // The second port-forward is slow: the restart is still under way when a client connects.
    let Some((cluster, rh)) = Cluster::new("port-forward 2 slow-ms 1500\n") else {
        return;
    };
    assert_eq!(cluster.forward(&rh, "fake/web").code, Some(0));
    let entry = rh.ps()["running"][0].clone();
    let id = entry["id"].as_u64().unwrap();
    let addr = entry["tunnel"]["local"].as_str().unwrap().to_string();
    let first = wait_for("a forwarder", Duration::from_secs(5), || {
        cluster.forwarder()
    });

    let restart = Proc::spawn(
        cluster
            .command(&rh, &["restart", "fake/web"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "rhizome restart",
    );
    wait_for("the restart to begin", Duration::from_secs(10), || {
        rh.logs("fake/web")
            .contains("restarted by rhizome restart")
            .then_some(())
    });
    // The listener never closed: a connection made now waits for the new kubectl.
    let payload = random_bytes(4096);
    assert!(echo_round_trip(&addr, &payload) == payload);
    let out = restart.finish(Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .starts_with(&format!("restarted fake/web  id={id}  pid="))
            && out
                .stdout
                .contains(&format!("(pid {first} ended by SIGTERM")),
        "{out:?}"
    );
    let second = cluster.forwarder().expect("a new forwarder");
    assert_ne!(second, first, "a fresh kubectl");
    assert!(!alive(first));
    assert_eq!(
        cluster
            .calls()
            .iter()
            .filter(|c| c.has("port-forward"))
            .count(),
        2
    );
    let entry = rh.process(id);
    assert_eq!(entry["status"], "running");
    assert_eq!(entry["restarts"], 1);
    assert_eq!(entry["tunnel"]["local"], addr.as_str(), "the same port");
    assert_eq!(rh.processes().len(), 1);
}

/// Rewrites the local port of `fake/orders` in the cluster's rhizome.toml.
fn move_orders(rh: &Rhizome, from: u16, to: u16) {
    let path = rh.path().join("rhizome.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let moved = text.replace(
        &format!("local_port = {from}\n"),
        &format!("local_port = {to}\n"),
    );
    assert_ne!(moved, text);
    std::fs::write(&path, moved).unwrap();
}

#[test]
fn one_target_has_one_tunnel_and_a_changed_config_is_applied_by_restart_or_replace() {
    let Some((cluster, rh)) = Cluster::new("") else {
        return;
    };
    let old = cluster.local_port;
    assert_eq!(cluster.forward(&rh, "fake/orders").code, Some(0));
    let new = free_port();
    move_orders(&rh, old, new);

    let out = cluster.forward(&rh, "fake/orders");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "the tunnel fake/orders (id 1) runs with another configuration than this forward asks for: local_port {old} -> {new}"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`rhizome restart fake/orders`")
            && out
                .stderr
                .contains("`rhizome forward --replace fake/orders`"),
        "{}",
        out.stderr
    );
    assert_eq!(rh.processes().len(), 1, "no second tunnel");

    let out = cluster
        .command(&rh, &["restart", "fake/orders"])
        .output()
        .unwrap();
    let out: Out = out.into();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains(&format!("local_port {old} -> {new})")),
        "{out:?}"
    );
    let payload = random_bytes(4096);
    assert!(echo_round_trip(format!("127.0.0.1:{new}"), &payload) == payload);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", old)).is_err(),
        "the old port is closed"
    );
    let out = cluster.forward(&rh, "fake/orders");
    assert_eq!(out.stdout, format!("mysql://127.0.0.1:{new}\n"), "{out:?}");
    assert!(
        rh.logs("fake/orders").contains(&format!(
            "restarted by rhizome restart: local_port {old} -> {new}"
        )),
        "{}",
        rh.logs("fake/orders")
    );

    // --replace applies this forward's configuration instead, on the same id.
    let other = free_port();
    let out: Out = cluster
        .command(
            &rh,
            &[
                "forward",
                "--replace",
                "--port",
                &other.to_string(),
                "fake/orders",
            ],
        )
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, format!("mysql://127.0.0.1:{other}\n"));
    let entry = rh.process(1);
    assert_eq!(entry["tunnel"]["local"], format!("127.0.0.1:{other}"));
    assert_eq!(entry["restarts"], 2);
    assert_eq!(rh.processes().len(), 1);
    assert!(echo_round_trip(format!("127.0.0.1:{other}"), &payload) == payload);
}

#[test]
fn a_daemon_that_dies_mid_restart_brings_the_tunnel_back_as_restarted() {
    // The restart's port-forward is slow to come up: the daemon dies while the restart waits.
    let Some((cluster, rh)) = Cluster::new("port-forward 2 slow-ms 20000\n") else {
        return;
    };
    let old = cluster.local_port;
    assert_eq!(cluster.forward(&rh, "fake/orders").code, Some(0));
    let new = free_port();
    move_orders(&rh, old, new);
    let restart = Proc::spawn(
        cluster
            .command(&rh, &["restart", "fake/orders"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "rhizome restart",
    );
    wait_for("the restart's kubectl", Duration::from_secs(20), || {
        (cluster
            .calls()
            .iter()
            .filter(|c| c.has("port-forward"))
            .count()
            >= 2)
            .then_some(())
    });
    rh.kill_daemon_hard();
    let out = restart.finish(Duration::from_secs(20));
    assert_ne!(out.code, Some(0), "the restart was not answered: {out:?}");

    // The next daemon restores it with its new configuration, under its id.
    let entry = wait_for("the tunnel back up", Duration::from_secs(30), || {
        let entry = rh.processes().into_iter().find(|p| p["id"] == 1)?;
        (entry["status"] == "running").then_some(entry)
    });
    assert_eq!(entry["tunnel"]["local"], format!("127.0.0.1:{new}"));
    assert_eq!(rh.processes().len(), 1);
    let payload = random_bytes(4096);
    assert!(echo_round_trip(format!("127.0.0.1:{new}"), &payload) == payload);
}

#[test]
fn a_tunnel_without_a_config_entry_restarts_as_it_was() {
    let Some((cluster, rh)) = Cluster::new("") else {
        return;
    };
    let args = [
        "forward",
        "--context",
        "fake-ctx",
        "--namespace",
        "db",
        "svc/web",
        ":8080",
    ];
    let out: Out = cluster.command(&rh, &args).output().unwrap().into();
    assert_eq!(out.code, Some(0), "{out:?}");
    let addr = out.stdout.trim().trim_start_matches("http://").to_string();
    let out: Out = cluster
        .command(&rh, &["restart", "db/svc/web"])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.starts_with("restarted db/svc/web  id=1  "),
        "{out:?}"
    );
    assert_eq!(out.stderr, "", "nothing to note: it never had an entry");
    let payload = random_bytes(1024);
    assert!(echo_round_trip(&addr, &payload) == payload, "on its port");
}
