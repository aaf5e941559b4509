//! `logs -f` when the files move under it: a log deleted and created again, rotation faster than
//! the follower reads, a daemon killed mid-follow; and rotated files that keep to their size.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// The numbers a sleeper or `seq` printed, in the order the log shows them.
fn numbers(log: &str) -> Vec<u64> {
    messages(log)
        .iter()
        .filter_map(|m| m.split_whitespace().next()?.parse().ok())
        .collect()
}

/// The counts in `rhizome: N lines of NAME's log were rotated away ...` notes, in order.
fn reported_gaps(stderr: &str) -> Vec<u64> {
    stderr
        .lines()
        .filter(|l| l.contains("were rotated away before they could be read"))
        .map(|l| {
            l.strip_prefix("rhizome: ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no count in {l:?}"))
        })
        .collect()
}

fn wait_until_final(rh: &Rhizome, id: u64) {
    wait_for("the process to end", Duration::from_secs(120), || {
        let status = rh.process(id)["status"].as_str().unwrap().to_string();
        (!matches!(status.as_str(), "running" | "starting" | "restarting")).then_some(())
    });
}

#[test]
fn a_follower_keeps_following_a_log_that_is_deleted_and_created_again() {
    let rh = Rhizome::new();
    let started = rh
        .command(["sleeper", "--count", "60"])
        .env("SLEEP_OVERRIDE", "0.05")
        .output()
        .unwrap();
    let (_, pid) = parse_started(&String::from_utf8_lossy(&started.stdout));
    let mut follower = Proc::spawn(
        rh.command(["logs", "-f", "sleeper"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "logs -f",
    );
    let stdout = Collector::new(follower.child.stdout.take().unwrap());
    stdout
        .wait_line(Duration::from_secs(10), |l| l.contains(" 5 ").then_some(()))
        .expect("the follower prints tick 5");
    std::fs::remove_file(rh.path().join("logs/1-sleeper.log")).unwrap();

    let end = follower.finish(Duration::from_secs(30));
    let log = poll(Duration::from_secs(5), || {
        let text = stdout.text();
        text.contains("subprocess finished").then_some(text)
    })
    .unwrap_or_else(|| panic!("no `subprocess finished` line: {end:?}\n{}", stdout.text()));
    assert_eq!(end.code, Some(0), "{end:?}\n{log}");
    assert_eq!(end.stderr, "", "nothing was missed");
    assert_eq!(
        numbers(&log),
        (0..60).collect::<Vec<u64>>(),
        "every tick once, in order, across the deletion:\n{log}"
    );
    let last = log.lines().last().unwrap();
    assert!(
        last.ends_with(&format!(
            "{:<30} [sleeper] pid={pid}",
            "subprocess finished (exit 0)"
        )),
        "{log}"
    );
    assert!(
        rh.path().join("logs/1-sleeper.log").exists(),
        "the daemon created the log again"
    );
}

/// The finding: a follower outrun by rotation skipped lines and said nothing. Now every line it
/// does not print is counted on stderr, at the place it is missing, and it exits 1.
#[test]
fn a_follower_outrun_by_rotation_is_told_how_many_lines_it_missed() {
    if require_tool("sh").is_none() || require_tool("seq").is_none() {
        return;
    }
    const LINES: u64 = 200_000;
    let rh = Rhizome::new();
    write_config(&rh, "[logs]\nmax_file_bytes = 4096\nkeep_files = 2\n");
    // The flood waits for the word from the test, so that the follower is there first.
    let go = rh.path().join("go");
    nix::unistd::mkfifo(&go, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let (id, _) = rh.start([
        "run".to_string(),
        "--name".into(),
        "flood".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        format!("read word < '{}'; exec seq 1 {LINES}", go.display()),
    ]);
    let mut follower = Proc::spawn(
        rh.command(["logs", "-f", "flood"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "logs -f",
    );
    let mut stdout = BufReader::new(follower.child.stdout.take().unwrap());
    let stderr = Collector::new(follower.child.stderr.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("subprocess started"), "{first}");

    // The follower's stdout is not read while the flood rotates its log thousands of times.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&go)
        .unwrap()
        .write_all(b"go\n")
        .unwrap();
    wait_until_final(&rh, id);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let end = follower.finish(Duration::from_secs(60));
    // The note comes before the lines after the gap, so it is in by now unless there is none.
    let stderr = poll(Duration::from_secs(5), || {
        let text = stderr.text();
        text.contains("rotated away").then_some(text)
    })
    .unwrap_or_else(|| stderr.text());

    let got = numbers(&rest);
    let mut jumps = Vec::new();
    let mut previous = 0;
    for &n in &got {
        assert!(n > previous, "{n} after {previous}: out of order or twice");
        if n != previous + 1 {
            jumps.push(n - previous - 1);
        }
        previous = n;
    }
    if previous != LINES {
        jumps.push(LINES - previous);
    }
    let gaps = reported_gaps(&stderr);
    assert!(!gaps.is_empty(), "the flood outran the follower: {stderr}");
    assert_eq!(
        gaps,
        jumps,
        "each gap is reported with its exact size; {} lines printed",
        got.len()
    );
    assert_eq!(got.len() as u64 + gaps.iter().sum::<u64>(), LINES);
    assert!(
        stderr.contains("lines of flood's log were rotated away before they could be read"),
        "{stderr}"
    );
    assert!(
        stderr.contains("keep_files"),
        "says what keeps more: {stderr}"
    );
    assert!(
        rest.trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("subprocess finished (exit 0)"),
        "the end still comes"
    );
    assert_eq!(end.code, Some(1), "not every line was shown: {stderr}");
}

#[test]
fn a_follower_whose_daemon_is_killed_says_so_and_fails() {
    let rh = Rhizome::new();
    let (_, sleeper) = rh.start(["sleeper", "--count", "1000"]);
    let _orphan = GroupGuard(vec![sleeper]);
    let mut follower = Proc::spawn(
        rh.command(["logs", "-f", "sleeper"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "logs -f",
    );
    let stdout = Collector::new(follower.child.stdout.take().unwrap());
    stdout
        .wait_line(Duration::from_secs(10), |l| l.contains(" 0 ").then_some(()))
        .expect("the follower prints tick 0");
    let daemon = rh.daemon_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let end = follower.finish(Duration::from_secs(10));
    assert_eq!(end.code, Some(1), "{end:?}");
    assert!(
        end.stderr
            .contains("error: the daemon went away before the log of sleeper ended"),
        "{}",
        end.stderr
    );
    assert!(end.stderr.contains("hint:"), "{}", end.stderr);
}

/// Finding 19: the capture hands the writer batches of up to 256 KiB, and a batch used to go
/// into one file whole. Now a file takes the lines that fit and the rest go to the next.
#[test]
fn rotated_files_never_exceed_max_file_bytes() {
    if require_tool("seq").is_none() {
        return;
    }
    const MAX: u64 = 65_536;
    let rh = Rhizome::new();
    write_config(
        &rh,
        &format!("[logs]\nmax_file_bytes = {MAX}\nkeep_files = 5\n"),
    );
    let (id, _) = rh.start(["run", "--name", "flood", "--", "seq", "1", "200000"]);
    wait_until_final(&rh, id);
    let logs = rh.path().join("logs");
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(&logs).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("1-flood") {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(bytes.ends_with(b"\n"), "{name} holds whole lines");
            sizes.push((name, bytes.len() as u64));
        }
    }
    assert_eq!(sizes.len(), 5, "{sizes:?}");
    for (name, size) in &sizes {
        assert!(*size <= MAX, "{name} has {size} bytes: {sizes:?}");
    }
    // Files other than the current one are filled to within a line of the cap.
    for (name, size) in sizes.iter().filter(|(name, _)| !name.ends_with(".log")) {
        assert!(*size > MAX - 100, "{name} has only {size} bytes: {sizes:?}");
    }
    let kept = rh.logs("flood");
    assert_eq!(numbers(&kept).last(), Some(&200_000));
    assert!(kept.ends_with(&format!("[flood] pid={}\n", rh.process(id)["pid"])));
}

/// After a daemon restart the log's rotation count starts again; `logs` still reads every kept
/// file, oldest first, rather than stopping at the end of the oldest.
#[test]
fn logs_after_a_daemon_restart_read_every_kept_file() {
    if require_tool("sh").is_none() || require_tool("seq").is_none() {
        return;
    }
    let rh = Rhizome::new();
    write_config(&rh, "[logs]\nmax_file_bytes = 4096\nkeep_files = 3\n");
    // Fills a few files on its first run, and only waits on the run after the restart.
    let marker = rh.path().join("marker");
    rh.start([
        "run".to_string(),
        "--name".into(),
        "filler".into(),
        "--restart".into(),
        "always".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        format!(
            "[ -e '{m}' ] || {{ touch '{m}'; seq 1 300; }}; exec sleep 1000",
            m = marker.display()
        ),
    ]);
    let logs = rh.path().join("logs");
    wait_for("three files", Duration::from_secs(10), || {
        (logs.join("1-filler.log.2").exists() && rh.logs("filler").contains(" 300 ")).then_some(())
    });
    rh.ok(["daemon", "restart"]);
    wait_for("the restored run", Duration::from_secs(10), || {
        (rh.process(1)["status"] == "running").then_some(())
    });
    rh.ok(["kill", "filler"]);
    let on_disk: String = ["1-filler.log.2", "1-filler.log.1", "1-filler.log"]
        .iter()
        .map(|f| std::fs::read_to_string(logs.join(f)).unwrap())
        .collect();
    let shown = rh.logs("filler");
    assert_eq!(
        shown.lines().count(),
        on_disk.lines().count(),
        "every kept file is shown; the last line shown: {:?}",
        shown.lines().last()
    );
    assert_eq!(shown, on_disk);
    assert!(shown.contains("restored after the daemon restarted"));
}
