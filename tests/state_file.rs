//! What `state/processes.json` keeps, through the real binary: exact bytes, ids never given twice,
//! finished processes and their logs (and only theirs), repairs of a hand-edited file, the
//! environment only where a restart needs it, a previous daemon's children until they are ended,
//! and what `ps` shows of a process being restored.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// The state file as JSON, and as text.
fn read_state(rh: &Rhizome) -> (Value, String) {
    let text =
        std::fs::read_to_string(rh.path().join("state/processes.json")).expect("a state file");
    (serde_json::from_str(&text).expect("JSON"), text)
}

/// The entry of `name` in the state file.
fn saved<'a>(state: &'a Value, name: &str) -> &'a Value {
    state["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the state file: {state}"))
}

/// The names of the per-process log files in the home, sorted.
fn log_files(rh: &Rhizome) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(rh.path().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("daemon."))
        .collect();
    names.sort();
    names
}

/// The daemon's own log, all days.
fn daemon_log(rh: &Rhizome) -> String {
    std::fs::read_dir(rh.path().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("daemon.2")
        })
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn path_var() -> String {
    std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
}

#[test]
fn non_utf8_argv_environment_and_directory_come_back_byte_for_byte() {
    let rh = Rhizome::new();
    let dir = rh.path().join(OsStr::from_bytes(b"dir-\xfc\x80"));
    std::fs::create_dir(&dir).unwrap();
    let arg = b"arg-\xff\xfe";
    let value = b"value-\xfd";
    // Prints what it was given as hex, then stays up.
    let script = "printf 'bytes argv=%s env=%s cwd=%s\\n' \
        \"$(printf %s \"$1\" | od -An -tx1 | tr -d ' \\n')\" \
        \"$(printf %s \"$RAW\" | od -An -tx1 | tr -d ' \\n')\" \
        \"$(pwd | od -An -tx1 | tr -d ' \\n')\"; exec sleep 1000";
    let out = rh
        .command([
            "run",
            "--name",
            "raw",
            "--restart",
            "always",
            "--",
            "sh",
            "-c",
        ])
        .args([OsStr::new(script), OsStr::new("sh"), OsStr::from_bytes(arg)])
        .env("RAW", OsStr::from_bytes(value))
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (_, pid) = parse_started(&String::from_utf8_lossy(&out.stdout));
    let _orphan = GroupGuard(vec![pid]);
    let mut cwd = dir.as_os_str().as_bytes().to_vec();
    cwd.push(b'\n');
    let expected = format!(
        "bytes argv={} env={} cwd={}",
        hex(arg),
        hex(value),
        hex(&cwd)
    );
    let runs = |rh: &Rhizome| -> Vec<String> {
        rh.ok(["logs", "--raw", "raw"])
            .lines()
            .filter(|l| l.starts_with("bytes "))
            .map(str::to_string)
            .collect()
    };
    wait_for("the first run's line", Duration::from_secs(10), || {
        (runs(&rh).len() == 1).then_some(())
    });
    assert_eq!(runs(&rh), [expected.as_str()]);

    rh.ok(["daemon", "restart"]);
    let lines = wait_for("the restored run's line", Duration::from_secs(10), || {
        let lines = runs(&rh);
        (lines.len() >= 2).then_some(lines)
    });
    assert_eq!(
        lines,
        [expected.clone(), expected],
        "the same bytes after the restart"
    );
    assert_eq!(rh.process(1)["status"], "running", "{:?}", rh.process(1));
    assert_eq!(rh.process(1)["restarts"], 0, "no crash loop");
}

#[test]
fn a_state_file_of_format_1_still_loads() {
    let rh = Rhizome::new();
    std::fs::create_dir_all(rh.path().join("state")).unwrap();
    let file = serde_json::json!({
        "format": 1,
        "next_id": 8,
        "processes": [
            {"id": 5, "name": "keeper", "kind": "Run", "argv": ["sleep", "1000"],
             "env": [["PATH", path_var()]], "cwd": "/", "restart": "Always", "restarts": 2,
             "children": [], "forward": null},
            {"id": 7, "name": "once", "kind": "Sleeper", "argv": ["sleeper"],
             "env": [["PATH", path_var()]], "cwd": "/", "restart": "Never", "restarts": 0,
             "children": [], "forward": null},
        ],
    });
    std::fs::write(rh.path().join("state/processes.json"), file.to_string()).unwrap();
    let out = rh.run(["ps"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stderr.contains("state file"), "{}", out.stderr);
    wait_for("keeper running again", Duration::from_secs(10), || {
        (rh.process(5)["status"] == "running").then_some(())
    });
    assert_eq!(rh.process(5)["name"], "keeper");
    assert_eq!(rh.process(5)["restarts"], 2);
    assert_eq!(rh.process(7)["status"], "lost");
    let (id, pid) = rh.start(["run", "--name", "new", "--", "sleep", "1000"]);
    let _child = GroupGuard(vec![pid]);
    assert_eq!(id, 8, "ids go on after the old file's next_id");
}

#[test]
fn ids_are_not_reused_after_a_stop_with_nothing_running() {
    let rh = Rhizome::new();
    let (old, _) = rh.start(["run", "--name", "web", "--", "echo", "old-web-line"]);
    assert!(rh.finished_log("web").contains("old-web-line"));
    rh.ok(["daemon", "stop"]);

    let (new, _) = rh.start(["run", "--name", "web", "--", "echo", "new-web-line"]);
    assert!(
        new > old,
        "id {new} was given before (the old web was {old})"
    );
    let log = rh.finished_log("web");
    assert!(log.contains("new-web-line"), "{log}");
    assert!(
        !log.contains("old-web-line"),
        "the new web shows the old one's log: {log}"
    );
}

#[test]
fn ids_are_not_reused_after_a_rejected_state_file() {
    let rh = Rhizome::new();
    let (first, _) = rh.start(["run", "--name", "web", "--", "echo", "old-web-line"]);
    assert!(rh.finished_log("web").contains("old-web-line"));
    rh.ok(["daemon", "stop"]);
    std::fs::write(
        rh.path().join("state/processes.json"),
        "{\"format\": 1, \"next_",
    )
    .unwrap();

    let out = rh.run(["run", "--name", "web", "--", "echo", "new-web-line"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("could not be used"), "{}", out.stderr);
    let (new, _) = parse_started(&out.stdout);
    assert!(new > first, "id {new} was given before");
    let log = rh.finished_log("web");
    assert!(
        !log.contains("old-web-line"),
        "the new web shows the old one's log: {log}"
    );
}

#[test]
fn finished_processes_survive_a_restart_and_only_their_logs_are_kept() {
    let rh = Rhizome::new();
    for i in 0..102 {
        let (_, _) = rh.start([
            "run",
            "--name",
            &format!("job{i}"),
            "--",
            "echo",
            &format!("line-of-job{i}"),
        ]);
    }
    wait_for("every job to finish", Duration::from_secs(20), || {
        let ps = rh.ps();
        (ps["count"] == 0 && ps["finished"].as_array()?.len() == 100).then_some(())
    });
    // The two oldest were forgotten; a stray log of an id the daemon does not know goes at start.
    std::fs::write(rh.path().join("logs/2-job1.log"), "stray\n").unwrap();
    std::fs::write(rh.path().join("logs/2-job1.log.1"), "stray\n").unwrap();
    rh.ok(["daemon", "restart"]);

    let finished: Vec<u64> = rh.ps()["finished"]
        .as_array()
        .expect("finished processes after the restart")
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(finished, (3..=102).collect::<Vec<u64>>());
    assert_eq!(rh.process(50)["name"], "job49");
    assert_eq!(rh.status(50), "exited(0)");
    assert!(rh.logs("job49").contains("line-of-job49"));
    wait_for(
        "the stray logs to be deleted",
        Duration::from_secs(5),
        || {
            let files = log_files(&rh);
            (files.len() == 100).then_some(())
        },
    );
    let files = log_files(&rh);
    assert!(
        files
            .iter()
            .all(|f| !f.starts_with("1-") && !f.starts_with("2-")),
        "{files:?}"
    );
    let (state, _) = read_state(&rh);
    assert!(saved(&state, "job49").get("env").is_none(), "{state}");

    // One more finished process forgets the oldest, and its log, for good.
    let (id, _) = rh.start(["run", "--name", "last", "--", "true"]);
    assert_eq!(id, 103);
    wait_for("job2's log to go", Duration::from_secs(5), || {
        (!log_files(&rh).iter().any(|f| f.starts_with("3-"))).then_some(())
    });
}

#[test]
fn a_hand_edited_state_file_is_repaired_and_hides_nothing() {
    let rh = Rhizome::new();
    std::fs::create_dir_all(rh.path().join("state")).unwrap();
    let keeper = |name: &str| {
        serde_json::json!({"id": 3, "name": name, "kind": "Run", "argv": ["sleep", "1000"],
            "env": [["PATH", path_var()]], "cwd": "/", "restart": "Always", "restarts": 0,
            "children": [], "forward": null})
    };
    let file = serde_json::json!({
        "format": 1,
        "next_id": u32::MAX,
        "processes": [keeper("first"), keeper("second")],
    });
    std::fs::write(rh.path().join("state/processes.json"), file.to_string()).unwrap();

    let out = rh.run(["ps"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("repaired"),
        "the repair is told: {}",
        out.stderr
    );
    assert!(!rh.run(["ps"]).stderr.contains("repaired"), "told once");
    assert!(daemon_log(&rh).contains("repaired"), "and logged");
    let ids = wait_for("both keepers running", Duration::from_secs(10), || {
        let ps = rh.ps();
        let running = ps["running"].as_array()?;
        let ids: Vec<u64> = ["first", "second"]
            .iter()
            .filter_map(|name| {
                running
                    .iter()
                    .find(|p| p["name"] == *name && p["status"] == "running")
                    .map(|p| p["id"].as_u64().unwrap())
            })
            .collect();
        (ids.len() == 2).then_some(ids)
    });
    assert_ne!(ids[0], ids[1], "one id each");
    let mut seen = ids.clone();
    let mut children = GroupGuard(Vec::new());
    for i in 0..2 {
        let (id, pid) = rh.start(["run", "--name", &format!("new{i}"), "--", "sleep", "1000"]);
        children.0.push(pid);
        assert!(id > 0 && !seen.contains(&id), "id {id} is taken: {seen:?}");
        assert!(id < 1 << 31, "ids stay far from wrapping: {id}");
        seen.push(id);
    }
    assert_eq!(rh.ps()["count"], 4, "{}", rh.ps());
}

#[test]
fn only_processes_that_are_restarted_keep_their_environment_on_disk() {
    let rh = Rhizome::new();
    let port = free_port();
    write_config(
        &rh,
        &format!(
            "[environments.sim.services.web]\ncontext = \"sim\"\nnamespace = \"sim\"\nresource = \"svc/web\"\nremote_port = 80\nlocal_port = {port}\n"
        ),
    );
    let start = |args: &[&str], var: &str| {
        let out = rh
            .command(args)
            .env(var, format!("value-of-{var}"))
            .env("RHIZOME_SIMULATE", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    start(
        &["run", "--name", "once", "--", "sleep", "1000"],
        "ONE_SHOT_MARK",
    );
    start(&["run", "--name", "done", "--", "true"], "FINISHED_MARK");
    start(
        &[
            "run",
            "--name",
            "kept",
            "--restart",
            "on-failure",
            "--",
            "sleep",
            "1000",
        ],
        "KEPT_MARK",
    );
    start(&["forward", "sim/web", "-q"], "TUNNEL_MARK");
    let (state, text) = read_state(&rh);
    let once = saved(&state, "once");
    assert!(
        once.get("env").is_none() && once.get("cwd").is_none(),
        "{once}"
    );
    assert!(!text.contains("ONE_SHOT_MARK"), "{text}");
    assert!(text.contains("value-of-KEPT_MARK"), "{text}");
    assert!(text.contains("value-of-TUNNEL_MARK"), "{text}");
    // A finished process is kept for `ps --all` and `logs`, without its environment.
    let (state, text) = wait_for(
        "done to be finished on disk",
        Duration::from_secs(5),
        || {
            let (state, text) = read_state(&rh);
            let ended = state["processes"]
                .as_array()?
                .iter()
                .any(|p| p["name"] == "done" && p.get("ended").is_some());
            ended.then_some((state, text))
        },
    );
    let done = saved(&state, "done");
    assert!(
        done.get("env").is_none() && done.get("cwd").is_none(),
        "{done}"
    );
    assert!(!text.contains("FINISHED_MARK"), "{text}");
    assert!(saved(&state, "kept")["cwd"].is_string(), "{state}");
}

#[test]
fn a_restored_process_shows_no_pid_until_it_runs_again() {
    let rh = Rhizome::new();
    // Ignores SIGTERM, so the next daemon takes its grace time to end it.
    let (id, old_pid) = rh.start([
        "run",
        "--name",
        "stubborn",
        "--restart",
        "always",
        "--",
        "sh",
        "-c",
        "trap '' TERM; exec sleep 1000",
    ]);
    let _orphan = GroupGuard(vec![old_pid]);
    rh.kill_daemon_hard();

    let first = rh.process(id);
    assert_eq!(first["status"], "restarting", "{first}");
    assert!(
        first["pid"].is_null(),
        "the old pid is not shown as the process's: {first}"
    );
    let running = wait_for("stubborn running again", Duration::from_secs(10), || {
        let entry = rh.process(id);
        if entry["status"] != "running" {
            assert!(entry["pid"].is_null(), "{entry}");
            return None;
        }
        Some(entry)
    });
    assert_ne!(running["pid"].as_u64(), Some(old_pid as u64), "{running}");
    assert!(!alive(old_pid), "the old child was ended first");
    let _new = GroupGuard(vec![running["pid"].as_u64().unwrap() as u32]);
}

#[test]
fn a_daemon_that_dies_while_ending_orphans_leaves_them_to_the_next() {
    let rh = Rhizome::new();
    // The kernel ends a direct child with its daemon (PR_SET_PDEATHSIG); what that child started
    // outlives it, here deaf to SIGTERM, and is left for the next daemon to find.
    let (_, leader) = rh.start([
        "run",
        "--name",
        "stubborn",
        "--restart",
        "always",
        "--",
        "sh",
        "-c",
        "trap '' TERM; sleep 1000 & wait",
    ]);
    let stubborn = wait_for("the stubborn child", Duration::from_secs(5), || {
        children_of(leader).first().copied()
    });
    let _orphans = GroupGuard(vec![leader, stubborn]);
    rh.kill_daemon_hard();
    let (_, first) = read_state(&rh);

    // The next daemon is still waiting out the stubborn child's grace when it dies too, after it
    // saved the state file again (the same: the child stays in it until it is gone).
    rh.ok(["daemon", "start"]);
    wait_for(
        "the next daemon to be ending the orphans",
        Duration::from_secs(5),
        || daemon_log(&rh).contains("left running by").then_some(()),
    );
    assert_eq!(read_state(&rh).1, first, "the orphans are still on record");
    assert!(alive(stubborn), "the stubborn child outlives SIGTERM");
    rh.kill_daemon_hard();

    rh.ok(["daemon", "start"]);
    wait_for(
        "the first daemon's children to be ended",
        Duration::from_secs(10),
        || (!alive(stubborn) && !alive(leader)).then_some(()),
    );
    // The stubborn child's successor would hold up the daemon's stop for its grace.
    rh.ok(["kill", "stubborn", "--timeout", "0"]);
}
