//! Faults the daemon survives: floods of output, a log directory removed or a full disk, a
//! thousand children, and the signals that stop it.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Peak and current resident memory of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn wait_until_final(rh: &Rhizome, id: u64, timeout: Duration) -> String {
    wait_for("the process to end", timeout, || {
        let entry = rh.process(id);
        let status = entry["status"].as_str().unwrap();
        (!matches!(status, "running" | "starting" | "restarting")).then(|| status_label(&entry))
    })
}

/// The daemon's memory is bounded by its queue (64 batches of 256 KiB) and buffers, not by what
/// a child writes: 1 GiB as fast as it comes keeps it under 64 MiB, and the disk under the
/// rotation cap.
#[test]
fn a_gigabyte_flood_is_captured_in_bounded_memory_and_disk() {
    if require_tool("sh").is_none()
        || require_tool("yes").is_none()
        || require_tool("head").is_none()
    {
        return;
    }
    let rh = Rhizome::new();
    write_config(&rh, "[logs]\nmax_file_bytes = 4194304\nkeep_files = 3\n");
    rh.ok(["daemon", "start"]);
    let daemon = rh.daemon_pid().unwrap();
    let (id, _) = rh.start([
        "run",
        "--name",
        "flood",
        "--",
        "sh",
        "-c",
        "yes $(printf '%04000d' 7) | head -c 1073741824",
    ]);
    assert_eq!(
        wait_until_final(&rh, id, Duration::from_secs(120)),
        "exited(0)"
    );
    let (peak, _) = memory_kib(daemon);
    assert!(peak < 64 * 1024, "peak resident memory {peak} KiB");
    let logs = rh.path().join("logs");
    let used: u64 = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("1-flood"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(used <= 3 * 4194304, "{used} bytes of logs kept");
    let tail = rh.ok(["logs", "-n", "1", "flood"]);
    assert!(tail.contains("subprocess finished (exit 0)"), "{tail}");
}

#[test]
fn a_hundred_megabytes_without_a_newline_are_split_not_buffered() {
    if require_tool("sh").is_none()
        || require_tool("head").is_none()
        || require_tool("tr").is_none()
    {
        return;
    }
    let rh = Rhizome::new();
    write_config(&rh, "[logs]\nmax_file_bytes = 1000000000\n");
    rh.ok(["daemon", "start"]);
    let daemon = rh.daemon_pid().unwrap();
    let (id, _) = rh.start([
        "run",
        "--name",
        "wall",
        "--",
        "sh",
        "-c",
        "head -c 104857600 /dev/zero | tr '\\0' x",
    ]);
    assert_eq!(
        wait_until_final(&rh, id, Duration::from_secs(60)),
        "exited(0)"
    );
    let (peak, _) = memory_kib(daemon);
    assert!(peak < 64 * 1024, "peak resident memory {peak} KiB");
    let log = rh.logs("wall");
    let pieces: Vec<&str> = log
        .lines()
        .filter(|l| l.get(9..).is_some_and(|m| m.starts_with('x')))
        .collect();
    assert!(
        (1600..=1601).contains(&pieces.len()),
        "100 MiB in 64 KiB lines: {}",
        pieces.len()
    );
    let xs: usize = pieces
        .iter()
        .map(|l| l.bytes().filter(|&b| b == b'x').count())
        .sum();
    assert_eq!(xs, 104_857_600, "not a byte lost");
}

#[test]
fn a_removed_log_directory_is_recreated_and_supervision_goes_on() {
    let rh = Rhizome::new();
    let started = rh
        .command(["sleeper", "--count", "100000"])
        .env("SLEEP_OVERRIDE", "0.02")
        .output()
        .unwrap();
    let (_, pid) = parse_started(&String::from_utf8_lossy(&started.stdout));
    wait_for("some lines", Duration::from_secs(5), || {
        rh.logs("sleeper").contains(" 3 ").then_some(())
    });
    std::fs::remove_dir_all(rh.path().join("logs")).unwrap();
    wait_for("logging to resume", Duration::from_secs(10), || {
        let log = rh.logs("sleeper");
        (log.lines().count() >= 5).then_some(())
    });
    assert!(alive(pid));
    assert_eq!(rh.ps()["running"][0]["status"], "running");
}

#[test]
fn a_full_disk_is_survived_and_logging_resumes() {
    let rh = Rhizome::new();
    let logs = rh.path().join("logs");
    let Some(_disk) = disk::small_disk(&logs, "to mount a small file system") else {
        return;
    };
    write_config(&rh, "[logs]\nmax_file_bytes = 100000000\n");
    let filler = disk::fill(&logs);
    let (_, pid) = rh.start(["sleeper", "--count", "100000", "--interval", "0.02"]);
    assert!(alive(pid));
    assert_eq!(
        rh.ps()["count"],
        1,
        "the daemon supervises with a full disk"
    );
    // Still full while it did: nothing the daemon does frees room by itself.
    disk::assert_full(&logs);
    std::fs::remove_file(&filler).unwrap();
    wait_for("logging to resume", Duration::from_secs(10), || {
        rh.logs("sleeper").lines().count().ge(&3).then_some(())
    });
}

#[test]
fn a_thousand_children_at_once() {
    let rh = Rhizome::new();
    rh.ok(["daemon", "start"]);
    let daemon = rh.daemon_pid().unwrap();
    let fds_before = std::fs::read_dir(format!("/proc/{daemon}/fd"))
        .unwrap()
        .count();
    std::thread::scope(|s| {
        for chunk in 0..8 {
            let rh = &rh;
            s.spawn(move || {
                for _ in 0..125 {
                    let out = rh.run(["run", "--", "sleep", "3"]);
                    assert_eq!(out.code, Some(0), "chunk {chunk}: {out:?}");
                }
            });
        }
    });
    let started = Instant::now();
    let ps = rh.ps();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "ps answers: {:?}",
        started.elapsed()
    );
    assert!(ps["count"].as_u64().unwrap() > 0);
    wait_for("all thousand to exit", Duration::from_secs(60), || {
        (rh.ps()["count"] == 0).then_some(())
    });
    let all = rh.processes();
    assert_eq!(all.len(), 100, "the newest 100 finished are remembered");
    assert!(all.iter().all(|p| status_label(p) == "exited(0)"));
    assert!(children_of(daemon).is_empty(), "no child left");
    let fds_after = wait_for("descriptors to be closed", Duration::from_secs(10), || {
        let n = std::fs::read_dir(format!("/proc/{daemon}/fd"))
            .unwrap()
            .count();
        (n <= fds_before + 4).then_some(n)
    });
    assert!(fds_after <= fds_before + 4);
    let logs = std::fs::read_dir(rh.path().join("logs")).unwrap().count();
    assert!(
        logs <= 110,
        "forgotten processes' logs are deleted ({logs} files)"
    );
}

#[test]
fn sigint_and_sighup_stop_the_daemon_cleanly() {
    for signal in [nix::sys::signal::SIGINT, nix::sys::signal::SIGHUP] {
        let rh = Rhizome::new();
        let (_, child) = rh.start(["run", "--", "sleep", "1000"]);
        let daemon = rh.daemon_pid().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon as i32), signal).unwrap();
        wait_for("the daemon to exit", Duration::from_secs(10), || {
            (!rh.daemon_running()).then_some(())
        });
        assert!(!alive(child), "{signal}: the child was stopped");
        assert!(
            !rh.path().join("rhizome.sock").exists(),
            "{signal}: the socket was removed"
        );
    }
}

#[test]
fn the_daemon_raises_its_open_file_limit() {
    let rh = Rhizome::new();
    rh.ok(["daemon", "start"]);
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", rh.daemon_pid().unwrap())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        fields[3], fields[4],
        "soft limit raised to the hard limit: {line}"
    );
}
