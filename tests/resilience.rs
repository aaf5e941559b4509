//! Nothing lost, no orphans: the daemon's desired state survives it being killed, restarted or
//! upgraded, and a state file it cannot read never keeps it from starting.

mod common;

use std::time::Duration;

use common::*;

/// Three simulated tunnels on fixed ports, two restartable commands, and one one-shot.
struct Workload {
    ports: Vec<u16>,
    ids: Vec<u64>,
    one_shot: u64,
    old_children: Vec<u32>,
}

fn start_workload(rh: &Rhizome) -> Workload {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let config: String = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            format!(
                "[environments.sim.services.t{i}]\ncontext = \"sim\"\nnamespace = \"sim\"\nresource = \"svc/t{i}\"\nremote_port = 80\nlocal_port = {port}\n\n"
            )
        })
        .collect();
    write_config(rh, &config);
    let mut ids = Vec::new();
    for i in 0..3 {
        let out = rh
            .command(["forward", &format!("sim/t{i}"), "--format", "json", "-q"])
            .env("RHIZOME_SIMULATE", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let handle: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        ids.push(handle["id"].as_u64().unwrap());
    }
    ids.push(
        rh.start([
            "run",
            "--name",
            "always",
            "--restart",
            "always",
            "--",
            "sleep",
            "1000",
        ])
        .0,
    );
    ids.push(
        rh.start([
            "run",
            "--name",
            "onfail",
            "--restart",
            "on-failure",
            "--",
            "sleep",
            "1000",
        ])
        .0,
    );
    let (one_shot, _) = rh.start(["sleeper", "--count", "100000"]);
    let old_children = rh
        .processes()
        .iter()
        .filter_map(|p| p["pid"].as_u64().map(|pid| pid as u32))
        .collect();
    Workload {
        ports,
        ids,
        one_shot,
        old_children,
    }
}

/// After the daemon went away: all five back with their ids and ports, the one-shot lost, and
/// nothing of the old daemon's children alive.
fn assert_restored(rh: &Rhizome, work: &Workload) {
    wait_for("all five back and running", Duration::from_secs(5), || {
        let ps = rh.ps();
        let running: Vec<u64> = ps["running"]
            .as_array()?
            .iter()
            .filter(|p| p["status"] == "running")
            .map(|p| p["id"].as_u64().unwrap())
            .collect();
        work.ids.iter().all(|id| running.contains(id)).then_some(())
    });
    for (i, port) in work.ports.iter().enumerate() {
        let entry = rh.process(work.ids[i]);
        assert_eq!(entry["tunnel"]["local"], format!("127.0.0.1:{port}"));
        let payload = random_bytes(2048);
        assert!(
            echo_round_trip(format!("127.0.0.1:{port}"), &payload) == payload,
            "tunnel {i} works"
        );
    }
    assert_eq!(
        rh.process(work.one_shot)["status"],
        "lost",
        "a one-shot is recorded as lost, not rerun"
    );
    for pid in &work.old_children {
        assert!(!alive(*pid), "pid {pid} of the old daemon is still alive");
    }
    let log = rh.logs("always");
    assert!(log.contains("restored after the daemon restarted"), "{log}");
}

#[test]
fn kill_9_of_the_daemon_loses_nothing_and_leaves_no_orphan() {
    let rh = Rhizome::new();
    let work = start_workload(&rh);
    let _orphans = GroupGuard(work.old_children.clone());
    let daemon = rh.kill_daemon_hard();
    assert_restored(&rh, &work);
    assert_ne!(rh.daemon_pid(), Some(daemon));
}

#[test]
fn daemon_restart_loses_nothing() {
    let rh = Rhizome::new();
    let work = start_workload(&rh);
    rh.ok(["daemon", "restart"]);
    assert_restored(&rh, &work);
}

#[test]
fn an_outdated_daemon_is_restarted_as_this_version_without_loss() {
    let rh = Rhizome::new();
    let out = rh
        .command(["daemon", "start"])
        .env("RHIZOME_TEST_VERSION", "0.0.1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let old = rh.daemon_pid().unwrap();
    // Started through the old daemon: the client speaks to it as to any daemon of its version.
    let started = rh
        .command([
            "run",
            "--name",
            "keeper",
            "--restart",
            "always",
            "--",
            "sleep",
            "1000",
        ])
        .env("RHIZOME_TEST_VERSION", "0.0.1")
        .output()
        .unwrap();
    let (id, pid) = parse_started(&String::from_utf8_lossy(&started.stdout));
    let _orphan = GroupGuard(vec![pid]);

    let out = rh.run(["ps", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.contains("restarting it as"))
            .count(),
        1,
        "one line says so: {}",
        out.stderr
    );
    assert_ne!(rh.daemon_pid(), Some(old));
    wait_for(
        "the process back under the new daemon",
        Duration::from_secs(5),
        || (rh.process(id)["status"] == "running").then_some(()),
    );
    assert_eq!(rh.process(id)["name"], "keeper");
    assert!(!alive(pid), "the old daemon's child was stopped");
}

#[test]
fn an_unreadable_state_file_is_set_aside_and_told_once() {
    let rh = Rhizome::new();
    std::fs::create_dir_all(rh.path().join("state")).unwrap();
    std::fs::write(
        rh.path().join("state/processes.json"),
        "{\"format\": 1, \"next_id\": 3, \"proc",
    )
    .unwrap();
    let first = rh.run(["ps"]);
    assert_eq!(first.code, Some(0), "the daemon starts anyway: {first:?}");
    assert!(
        first.stderr.contains("the state file could not be used"),
        "{}",
        first.stderr
    );
    assert!(first.stderr.contains("rejected-"), "{}", first.stderr);
    let second = rh.run(["ps"]);
    assert!(
        !second.stderr.contains("state file"),
        "told once: {}",
        second.stderr
    );
    let rejected: Vec<_> = std::fs::read_dir(rh.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rejected-"))
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let daemon_log = std::fs::read_dir(rh.path().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("daemon.")
        })
        .unwrap();
    assert!(
        std::fs::read_to_string(daemon_log)
            .unwrap()
            .contains("the state file could not be used")
    );
}

#[test]
fn a_state_file_from_a_newer_version_is_set_aside() {
    let rh = Rhizome::new();
    std::fs::create_dir_all(rh.path().join("state")).unwrap();
    std::fs::write(
        rh.path().join("state/processes.json"),
        r#"{"format": 99, "next_id": 1, "processes": []}"#,
    )
    .unwrap();
    let out = rh.run(["ps"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stderr.contains("newer rhizome"), "{}", out.stderr);
}

#[test]
fn the_state_file_says_what_should_run() {
    let rh = Rhizome::new();
    let (id, _) = rh.start([
        "run",
        "--name",
        "keeper",
        "--restart",
        "always",
        "--",
        "sleep",
        "1000",
    ]);
    let (done, _) = rh.start(["run", "--name", "brief", "--", "true"]);
    let state = wait_for(
        "the state file to list the process",
        Duration::from_secs(5),
        || {
            let text = std::fs::read_to_string(rh.path().join("state/processes.json")).ok()?;
            let state: serde_json::Value = serde_json::from_str(&text).ok()?;
            // What should run has no `ended`; a finished process is kept with how it ended.
            let ids = |ended: bool| -> Option<Vec<u64>> {
                Some(
                    state["processes"]
                        .as_array()?
                        .iter()
                        .filter(|p| p.get("ended").is_some() == ended)
                        .map(|p| p["id"].as_u64().unwrap())
                        .collect(),
                )
            };
            (ids(false)? == [id] && ids(true)? == [done]).then_some(state)
        },
    );
    assert_eq!(state["processes"][0]["name"], "keeper");
    assert!(
        state["processes"][0]["children"][0]["start_time"].is_u64(),
        "{state}"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(rh.path().join("state/processes.json"))
            .unwrap()
            .mode()
            & 0o777,
        0o600
    );
}
