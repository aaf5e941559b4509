//! Managed processes as a user sees them: sleeper, run, ps, logs, kill, restarts.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

fn is_log_line(line: &str, message: &str, name: &str, pid: u32) -> bool {
    let expected = format!(" {message:<30} [{name}] pid={pid}");
    line.len() > 8
        && line[..8].chars().all(|c| c.is_ascii_digit() || c == ':')
        && line[8..] == expected
}

#[test]
fn sleeper_counts_in_the_original_log_format() {
    let rh = Rhizome::new();
    let out = rh
        .command(["sleeper", "--count", "3"])
        .env("SLEEP_OVERRIDE", "0.05")
        .output()
        .unwrap();
    let (id, pid) = parse_started(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(id, 1);
    let log = rh.ok(["logs", "-f", "1"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 5, "{log}");
    assert!(
        is_log_line(lines[0], "subprocess started", "sleeper", pid),
        "{log}"
    );
    for (i, line) in lines[1..4].iter().enumerate() {
        assert!(is_log_line(line, &i.to_string(), "sleeper", pid), "{log}");
    }
    assert!(
        is_log_line(lines[4], "subprocess finished (exit 0)", "sleeper", pid),
        "{log}"
    );
    let entry = rh.process(1);
    assert_eq!(status_label(&entry), "exited(0)");
    assert_eq!(entry["kind"], "sleeper");
}

#[test]
fn ps_json_has_the_original_shape() {
    let rh = Rhizome::new();
    let (id, pid) = rh.start(["run", "--name", "nap", "--", "sleep", "1000"]);
    let ps = rh.ps();
    assert_eq!(ps["count"], 1);
    let entry = &ps["running"][0];
    assert_eq!(entry["id"], id);
    assert_eq!(entry["name"], "nap");
    assert_eq!(entry["kind"], "run");
    assert_eq!(entry["pid"], pid);
    assert_eq!(entry["status"], "running");
    assert_eq!(entry["restarts"], 0);
    assert!(entry["uptime_secs"].is_u64());
    let started = entry["started_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(started).is_ok(),
        "{started}"
    );
    assert_eq!(entry["command"], serde_json::json!(["sleep", "1000"]));

    let table = rh.ok(["ps"]);
    let mut rows = table.lines();
    let header: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID", "NAME", "PID", "STATUS", "UPTIME", "RESTARTS", "COMMAND"
        ]
    );
    let row: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    assert_eq!(
        row[..4],
        [
            id.to_string().as_str(),
            "nap",
            pid.to_string().as_str(),
            "running"
        ]
    );
}

#[test]
fn run_uses_the_callers_directory_and_environment() {
    if require_tool("sh").is_none() {
        return;
    }
    let rh = Rhizome::new();
    let dir = tempfile::tempdir().unwrap();
    let out = rh
        .command([
            "run",
            "--name",
            "where",
            "--",
            "sh",
            "-c",
            "pwd; echo \"$GREETING\"",
        ])
        .current_dir(dir.path())
        .env("GREETING", "hello from the shell")
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = rh.finished_log("where");
    let messages = messages(&log);
    assert!(
        messages[1].starts_with(&dir.path().canonicalize().unwrap().display().to_string()),
        "{log}"
    );
    assert!(messages[2].starts_with("hello from the shell"), "{log}");
}

#[test]
fn a_missing_command_fails_clearly_and_is_listed_as_failed() {
    let rh = Rhizome::new();
    let out = rh.run(["run", "--", "no-such-program-anywhere", "--flag"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .starts_with("error: could not start no-such-program-anywhere"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("was not found"), "{}", out.stderr);
    let ps = rh.ps();
    assert_eq!(ps["count"], 0);
    let failed = &ps["finished"][0];
    assert!(
        failed["status"] == "failed" && failed["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{failed}"
    );
    assert_eq!(failed["pid"], serde_json::Value::Null);
}

#[test]
fn a_file_that_is_not_executable_fails_clearly() {
    let rh = Rhizome::new();
    let script = rh.path().join("not-executable");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let out = rh.run([
        std::ffi::OsStr::new("run"),
        std::ffi::OsStr::new("--"),
        script.as_os_str(),
    ]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("is not executable"), "{}", out.stderr);
}

#[test]
fn logs_accepts_an_id_a_name_or_a_pid() {
    let rh = Rhizome::new();
    let out = rh
        .command([
            "run",
            "--name",
            "echoer",
            "--",
            BIN,
            "__sleeper",
            "--count",
            "2",
            "--interval",
            "0",
        ])
        .output()
        .unwrap();
    let (id, pid) = parse_started(&String::from_utf8_lossy(&out.stdout));
    let by_id = rh.ok(["logs", "-f", &id.to_string()]);
    assert!(by_id.contains("subprocess finished (exit 0)"), "{by_id}");
    assert_eq!(rh.logs("echoer"), by_id);
    assert_eq!(rh.logs(&pid.to_string()), by_id);
    assert_eq!(
        rh.ok(["logs", "-n", "2", "echoer"]),
        by_id
            .lines()
            .skip(2)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );

    let missing = rh.run(["logs", "nobody-by-this-name"]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing
            .stderr
            .contains("no managed process is named `nobody-by-this-name`"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_name_means_the_one_running_process_of_that_name() {
    let rh = Rhizome::new();
    let (older, _) = rh.start(["run", "--name", "twin", "--", "sleep", "1000"]);
    let (newer, _) = rh.start(["run", "--name", "twin", "--", "sleep", "1000"]);
    // Two running with one name: a name alone is not enough (issue 13); an id is.
    assert_eq!(rh.run(["kill", "twin"]).code, Some(1));
    rh.ok(["kill", &newer.to_string()]);
    let out = rh.ok(["kill", "twin"]);
    assert!(
        out.starts_with(&format!("killed twin  id={older}  ")),
        "{out}"
    );
    assert_eq!(rh.ps()["count"], 0);
}

#[test]
fn logs_follow_streams_until_the_last_line() {
    let rh = Rhizome::new();
    let start = rh
        .command(["sleeper", "--count", "20"])
        .env("SLEEP_OVERRIDE", "0.02")
        .output()
        .unwrap();
    let (_, pid) = parse_started(&String::from_utf8_lossy(&start.stdout));
    let log = rh.ok(["logs", "-f", "sleeper"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 22, "{log}");
    assert!(is_log_line(lines[20], "19", "sleeper", pid), "{log}");
    assert!(
        is_log_line(lines[21], "subprocess finished (exit 0)", "sleeper", pid),
        "{log}"
    );
}

#[test]
fn ctrl_c_in_logs_follow_leaves_the_daemon_and_the_process_alone() {
    let rh = Rhizome::new();
    let (_, pid) = rh.start(["sleeper", "--count", "1000"]);
    let mut follower = rh
        .command(["logs", "-f", "sleeper"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = follower.stdout.take().unwrap();
    let mut first = [0u8; 8];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(follower.id() as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let status = wait_for("logs -f to exit on SIGINT", Duration::from_secs(5), || {
        follower.try_wait().unwrap()
    });
    assert!(!status.success());
    assert!(alive(pid));
    assert_eq!(rh.ps()["running"][0]["status"], "running");
}

#[test]
fn long_lines_are_split_and_bad_utf8_is_kept() {
    if require_tool("sh").is_none() {
        return;
    }
    let rh = Rhizome::new();
    // 100,000 characters without a newline, then a line with an invalid byte.
    rh.ok([
        "run",
        "--name",
        "wide",
        "--",
        "sh",
        "-c",
        "printf '%0100000d' 0; printf '\\nbad \\377 byte\\n'",
    ]);
    let log = rh.finished_log("wide");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines.len(),
        5,
        "started, two pieces, the bad line, finished"
    );
    let zeros: usize = lines[1..3].iter().map(|l| l.matches('0').count()).sum();
    assert!(zeros >= 100_000, "no character lost: {zeros}");
    assert!(
        lines[1].len() < 64 * 1024 + 100,
        "the first piece is at most 64 KiB"
    );
    assert!(lines[3].contains("bad \u{fffd} byte"), "{}", lines[3]);
}

#[test]
fn kill_reports_the_signal_and_the_time() {
    let rh = Rhizome::new();
    let (id, pid) = rh.start(["run", "--name", "web", "--", "sleep", "1000"]);
    let out = rh.ok(["kill", "web"]);
    let prefix = format!("killed web  id={id}  pid={pid}  (SIGTERM, exited after ");
    assert!(
        out.starts_with(&prefix) && out.trim_end().ends_with("s)"),
        "{out}"
    );
    assert!(!alive(pid));
    assert_eq!(rh.status(id), "killed(SIGTERM)");
    let again = rh.ok(["kill", &id.to_string()]);
    assert!(again.contains("was not running"), "{again}");
}

#[test]
fn a_process_that_ignores_sigterm_is_killed_after_the_timeout() {
    if require_tool("sh").is_none() {
        return;
    }
    let rh = Rhizome::new();
    let (id, pid) = rh.start([
        "run",
        "--name",
        "stubborn",
        "--",
        "sh",
        "-c",
        "trap '' TERM; echo ready; while :; do sleep 0.05; done",
    ]);
    wait_for("the trap to be set", Duration::from_secs(10), || {
        rh.logs("stubborn").contains(" ready ").then_some(())
    });
    let started = Instant::now();
    let out = rh.ok(["kill", "--timeout", "0.5", "stubborn"]);
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(out.contains("(SIGKILL, exited after 0."), "{out}");
    assert!(
        group_members(pid).is_empty(),
        "nothing of the group is left"
    );
    assert_eq!(rh.status(id), "killed(SIGKILL)");
}

#[test]
fn kill_ends_the_whole_process_tree() {
    if require_tool("sh").is_none() {
        return;
    }
    let rh = Rhizome::new();
    let (_, pid) = rh.start([
        "run",
        "--name",
        "tree",
        "--",
        "sh",
        "-c",
        "sleep 1000 & sleep 1000 & sh -c 'sleep 1000' & echo spawned; wait",
    ]);
    let _guard = GroupGuard(vec![pid]);
    wait_for("the tree to grow", Duration::from_secs(10), || {
        (group_members(pid).len() >= 5).then_some(())
    });
    let members = group_members(pid);
    rh.ok(["kill", "tree"]);
    for member in members {
        assert!(!alive(member), "{member} survived");
    }
}

#[test]
fn kill_all_stops_everything_running() {
    let rh = Rhizome::new();
    let pids: Vec<u32> = (0..3)
        .map(|_| rh.start(["run", "--", "sleep", "1000"]).1)
        .collect();
    let out = rh.ok(["kill", "--all"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(pids.iter().all(|&pid| !alive(pid)));
    assert_eq!(rh.ps()["count"], 0);
}

#[test]
fn kill_refuses_what_the_daemon_does_not_manage() {
    let rh = Rhizome::new();
    rh.start(["run", "--", "sleep", "1000"]);
    let mut stranger = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    let out = rh.run(["kill", &stranger.id().to_string()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "no managed process has the pid or id {}",
            stranger.id()
        )),
        "{}",
        out.stderr
    );
    assert!(stranger.try_wait().unwrap().is_none(), "the stranger lives");
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

#[test]
fn restart_on_failure_backs_off() {
    if require_tool("sh").is_none() {
        return;
    }
    let rh = Rhizome::new();
    let started = Instant::now();
    let (id, _) = rh.start([
        "run",
        "--name",
        "flaky",
        "--restart",
        "on-failure",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    wait_for("three restarts", Duration::from_secs(20), || {
        (rh.process(id)["restarts"].as_u64().unwrap() >= 3).then_some(())
    });
    // 100 + 200 + 400 ms of backoff at the least: no tight loop.
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    let log = rh.logs("flaky");
    assert!(
        log.matches("subprocess finished (exit 3)").count() >= 3,
        "{log}"
    );
    let out = rh.ok(["kill", "flaky"]);
    assert!(
        out.starts_with("killed flaky") || out.contains("was not running"),
        "{out}"
    );
    // Final: the supervisor is done, so no restart can follow.
    assert!(
        rh.process(id)["status"]
            .as_str()
            .unwrap()
            .starts_with("killed")
    );
    assert_eq!(rh.ps()["count"], 0);
}

#[test]
fn restart_policies_decide_on_the_exit_code() {
    if require_tool("sh").is_none() {
        return;
    }
    let rh = Rhizome::new();
    let (never, _) = rh.start(["run", "--", "sh", "-c", "exit 3"]);
    let (on_failure_ok, _) =
        rh.start(["run", "--restart", "on-failure", "--", "sh", "-c", "exit 0"]);
    let (always, _) = rh.start(["run", "--restart", "always", "--", "sh", "-c", "exit 0"]);
    wait_for("the one-shot runs to end", Duration::from_secs(10), || {
        (rh.status(never) == "exited(3)" && rh.status(on_failure_ok) == "exited(0)").then_some(())
    });
    wait_for(
        "`always` to restart a clean exit",
        Duration::from_secs(10),
        || (rh.process(always)["restarts"].as_u64().unwrap() >= 2).then_some(()),
    );
    assert_eq!(rh.process(never)["restarts"], 0);
    assert_eq!(rh.process(on_failure_ok)["restarts"], 0);
}

#[test]
fn logs_rotate_at_the_configured_size_and_follow_crosses_rotations() {
    let rh = Rhizome::new();
    std::fs::write(
        rh.path().join("rhizome.toml"),
        "[logs]\nmax_file_bytes = 4096\nkeep_files = 3\n",
    )
    .unwrap();
    let start = rh
        .command(["sleeper", "--count", "400"])
        .env("SLEEP_OVERRIDE", "0.001")
        .output()
        .unwrap();
    assert!(start.status.success());
    let followed = rh.ok(["logs", "-f", "sleeper"]);
    let counted: Vec<String> = messages(&followed)
        .iter()
        .filter_map(|m| {
            m.split_whitespace()
                .next()
                .filter(|w| w.parse::<u32>().is_ok())
                .map(str::to_string)
        })
        .collect();
    let expected: Vec<String> = (0..400).map(|i| i.to_string()).collect();
    assert_eq!(
        counted, expected,
        "follow saw every line once, in order, across rotations"
    );

    let logs = rh.path().join("logs");
    let mut files: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("1-sleeper"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["1-sleeper.log", "1-sleeper.log.1", "1-sleeper.log.2"]
    );
    for file in &files {
        assert!(
            std::fs::metadata(logs.join(file)).unwrap().len() <= 4096,
            "{file} is within the cap"
        );
    }
    let kept = rh.logs("sleeper");
    assert!(kept.ends_with(&format!(
        "{:<30} [sleeper] pid={}\n",
        "subprocess finished (exit 0)",
        parse_started(&String::from_utf8_lossy(&start.stdout)).1
    )));
    assert!(
        !kept.contains(" 0                              [sleeper]"),
        "the oldest lines rotated away"
    );
}
