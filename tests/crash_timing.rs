//! A daemon that dies at an awkward moment leaves nothing behind: no child it started outlives it
//! unnoticed, nothing killed comes back, no start is reported that a crash would lose. Each test
//! tries its moment a bounded number of times and counts leftovers by the mark every child
//! carries (`RHIZOME_DAEMON=<instance>@<home>`); none are allowed.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// The processes marked as this home's, with the instance of the daemon that started them.
fn marked(home: &Path) -> Vec<(u32, String)> {
    let suffix = format!("@{}", home.display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let mark = environ.split(|&b| b == 0).find_map(|var| {
            let value = std::str::from_utf8(var.strip_prefix(b"RHIZOME_DAEMON=")?).ok()?;
            value.strip_suffix(suffix.as_str()).map(str::to_string)
        });
        // A zombie has no environment to read, and is gone in all that matters.
        if let Some(instance) = mark
            && alive(pid)
        {
            found.push((pid, instance));
        }
    }
    found
}

/// The processes of this home started by a daemon other than the one running now.
fn left_over(rh: &Rhizome) -> Vec<(u32, String)> {
    // The lock file keeps a dead daemon's pid: only a daemon that holds the lock is current.
    let current = rh
        .daemon_pid()
        .filter(|_| rh.daemon_running())
        .map(|pid| format!("{pid}-"));
    marked(rh.path())
        .into_iter()
        .filter(|(_, instance)| current.as_ref().is_none_or(|c| !instance.starts_with(c)))
        .collect()
}

fn none_left(rh: &Rhizome, moment: &str) {
    let until = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = left_over(rh);
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "{moment}: {} processes of the dead daemon are still running: {left:?}",
            left.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn children_started_while_the_daemon_is_killed_do_not_outlive_it() {
    if !cfg!(target_os = "linux") {
        return;
    }
    for round in 0..3 {
        let rh = Rhizome::new();
        rh.ok(["daemon", "start"]);
        // A shell whose child stays in the group but outlives the shell: only the mark finds it.
        let starts: Vec<_> = (0..40)
            .map(|i| {
                let mut command = rh.command([
                    "run",
                    "--name",
                    &format!("w{i}"),
                    "--",
                    "sh",
                    "-c",
                    "sleep 1000 & wait",
                ]);
                command
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                command.spawn().unwrap()
            })
            .collect();
        wait_for("some of them to run", Duration::from_secs(20), || {
            (marked(rh.path()).len() >= 10 + round * 5).then_some(())
        });
        rh.kill_daemon_hard();
        for mut start in starts {
            let _ = start.wait();
        }
        rh.ok(["ps"]);
        none_left(&rh, &format!("round {round}, killed during 40 starts"));
    }
}

#[test]
fn restarting_processes_are_not_duplicated_by_a_crash() {
    if !cfg!(target_os = "linux") {
        return;
    }
    for round in 0..3 {
        let rh = Rhizome::new();
        for i in 0..20 {
            rh.ok([
                "run",
                "--restart",
                "always",
                "--name",
                &format!("r{i}"),
                "--",
                "sh",
                "-c",
                "sleep 0.05",
            ]);
        }
        wait_for("restarts under way", Duration::from_secs(10), || {
            let restarts: u64 = rh
                .processes()
                .iter()
                .filter_map(|p| p["restarts"].as_u64())
                .sum();
            (restarts >= 20 * (round + 1)).then_some(())
        });
        assert!(!marked(rh.path()).is_empty(), "its children carry the mark");
        rh.kill_daemon_hard();
        rh.ok(["ps"]);
        none_left(&rh, &format!("round {round}, killed during restarts"));
        assert_eq!(rh.ps()["count"], 20, "each comes back once");
    }
}

#[test]
fn a_tunnel_forwarder_dies_with_its_daemon() {
    if !cfg!(target_os = "linux") {
        return;
    }
    for round in 0..10 {
        let rh = Rhizome::new();
        let out = rh
            .command(["forward", "na-prod/billing-bookkeeper", "--port", "0", "-q"])
            .env("RHIZOME_SIMULATE", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(
            !marked(rh.path()).is_empty(),
            "the forwarder carries the mark"
        );
        rh.kill_daemon_hard();
        // No new daemon: the kernel ends the forwarder with its daemon.
        none_left(
            &rh,
            &format!("round {round}, killed right after forward returned"),
        );
    }
}

#[test]
fn back_to_back_restarts_leave_one_copy_of_each() {
    let rh = Rhizome::new();
    for i in 0..5 {
        rh.ok([
            "run",
            "--restart",
            "always",
            "--name",
            &format!("s{i}"),
            "--",
            "sleep",
            "1000",
        ]);
    }
    for _ in 0..10 {
        rh.ok(["daemon", "restart"]);
    }
    wait_for(
        "five copies, all the current daemon's",
        Duration::from_secs(20),
        || {
            let all = marked(rh.path());
            (all.len() == 5 && left_over(&rh).is_empty()).then_some(())
        },
    );
    assert_eq!(rh.ps()["count"], 5);
}

#[test]
fn a_killed_process_stays_killed_when_the_daemon_dies_right_after() {
    for round in 0..12 {
        let rh = Rhizome::new();
        rh.ok([
            "run",
            "--restart",
            "always",
            "--name",
            "web",
            "--",
            "sleep",
            "1000",
        ]);
        assert_eq!(marked(rh.path()).len(), 1, "web carries the mark");
        rh.ok(["kill", "web"]);
        rh.kill_daemon_hard();
        rh.ok(["ps"]);
        assert_eq!(
            rh.ps()["count"],
            0,
            "round {round}: web came back after it was killed"
        );
        none_left(&rh, &format!("round {round}"));
    }
}

#[test]
fn a_start_that_cannot_be_saved_is_undone() {
    let rh = Rhizome::new();
    let state = rh.path().join("state");
    let Some(_disk) = disk::small_disk(&state, "to mount a small file system") else {
        return;
    };
    rh.ok(["daemon", "start"]);
    let filler = disk::fill(&state);
    let out = rh.run([
        "run",
        "--restart",
        "always",
        "--name",
        "web",
        "--",
        "sleep",
        "1000",
    ]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("processes.json") && out.stderr.contains("No space left on device"),
        "the error names the file and the OS error: {}",
        out.stderr
    );
    wait_for(
        "the unsaved child to be stopped",
        Duration::from_secs(10),
        || marked(rh.path()).is_empty().then_some(()),
    );
    assert_eq!(rh.ps()["count"], 0);
    std::fs::remove_file(filler).unwrap();
    rh.ok([
        "run",
        "--restart",
        "always",
        "--name",
        "web",
        "--",
        "sleep",
        "1000",
    ]);
    assert_eq!(rh.ps()["count"], 1, "with room again, it starts");
}

#[test]
fn kills_that_arrive_together_all_say_how_it_ended() {
    let rh = Rhizome::new();
    // Takes a second to go after SIGTERM, so that every kill arrives while the first is at work.
    rh.ok([
        "run",
        "--name",
        "web",
        "--",
        "sh",
        "-c",
        "trap 'sleep 1; exit 0' TERM; sleep 1000 & wait",
    ]);
    let outs: Vec<String> = std::thread::scope(|s| {
        let kills: Vec<_> = (0..20)
            .map(|_| s.spawn(|| rh.ok(["kill", "web"])))
            .collect();
        kills.into_iter().map(|k| k.join().unwrap()).collect()
    });
    let by_this = outs
        .iter()
        .filter(|o| o.contains("(SIGTERM, exited after"))
        .count();
    let already = outs
        .iter()
        .filter(|o| o.contains("another kill was already ending it; SIGTERM"))
        .count();
    assert_eq!(by_this, 1, "{outs:#?}");
    assert_eq!(already, 19, "none says it was not running: {outs:#?}");
}
