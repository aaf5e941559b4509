//! The core issue's performance figures, measured through the real (release) binary:
//! `cargo bench --bench core`. Prints one line per figure; the README quotes them.

#[path = "../tests/common/mod.rs"]
mod common;
mod measure;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use measure::*;

fn main() {
    println!(
        "rhizome core benchmarks ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    // `cargo bench --bench core -- NAME` measures only the figures whose function name holds
    // NAME (cargo passes `--bench` itself).
    if let Some(only) = std::env::args().skip(1).find(|arg| !arg.starts_with("--")) {
        let figures: [(&str, fn()); 6] = [
            ("ps_latency", || {
                ps_latency(
                    "dynamically linked (cargo install --path .)",
                    common::BIN.as_ref(),
                )
            }),
            ("ps_against_pueue", ps_against_pueue),
            ("cold_start", cold_start),
            ("memory", memory),
            ("log_capture", log_capture),
            ("logs_all", logs_all),
        ];
        for (name, figure) in figures.iter().filter(|(name, _)| name.contains(&only)) {
            println!("({name})");
            figure();
        }
        return;
    }
    ps_latency(
        "dynamically linked (cargo install --path .)",
        common::BIN.as_ref(),
    );
    if let Some(static_bin) = static_build() {
        ps_latency("statically linked (see README: Install)", &static_bin);
    }
    ps_against_pueue();
    cold_start();
    memory();
    log_capture();
    logs_all();
}

/// The statically linked build the README recommends on Linux, built into its own target
/// directory: a client that starts in a millisecond less, without the dynamic loader.
fn static_build() -> Option<std::path::PathBuf> {
    if !cfg!(all(
        target_os = "linux",
        target_arch = "x86_64",
        target_env = "gnu"
    )) {
        return None;
    }
    let target_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/static");
    let built = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--bin",
            "rhizome",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .args([
            "--config",
            r#"target.x86_64-unknown-linux-gnu.rustflags=["-C","target-feature=+crt-static"]"#,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .stdout(Stdio::null())
        .status()
        .ok()?;
    built
        .success()
        .then(|| target_dir.join("x86_64-unknown-linux-gnu/release/rhizome"))
}

/// `rhizome ps` (the client `bin`) against a warm daemon with 10 managed processes, against
/// `/bin/true`.
fn ps_latency(what: &str, bin: &std::path::Path) {
    let rh = Rhizome::new();
    for _ in 0..10 {
        rh.start(["run", "--", "sleep", "1000"]);
    }
    let runs = 300;
    let ps: Vec<Duration> = (0..runs)
        .map(|_| {
            let mut command = Command::new(bin);
            command.arg("ps").env("RHIZOME_HOME", rh.path());
            time_command(command)
        })
        .collect();
    let truth: Vec<Duration> = (0..runs)
        .map(|_| time_command(Command::new("true")))
        .collect();
    println!(
        "ps, warm daemon, 10 processes, {what}: median {} p95 {} (/bin/true: median {}, ratio {:.1}x)",
        ms(median(ps.clone())),
        ms(percentile(ps.clone(), 0.95)),
        ms(median(truth.clone())),
        median(ps).as_secs_f64() / median(truth).as_secs_f64()
    );
}

/// Warm `rhizome ps`, plain and filtered, against `pueue status`, the nearest peer, each listing
/// 10 running processes, timed in one interleaved run (this machine is noisy): the ratio of the
/// medians.
fn ps_against_pueue() {
    let (Some(pueue), Some(pueued)) = (on_path("pueue"), on_path("pueued")) else {
        println!("ps against pueue status: skipped, pueue is not installed (cargo install pueue)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pueue.yml");
    let at = dir.path().display();
    std::fs::write(
        &config,
        format!(
            "shared:\n  pueue_directory: {at}\n  runtime_directory: {at}\n  \
             use_unix_socket: true\n  unix_socket_path: {at}/pueue.sock\n"
        ),
    )
    .unwrap();
    let daemon = Proc::spawn(
        Command::new(&pueued)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "pueued",
    );
    let pueue_command = |args: &[&str]| {
        let mut command = Command::new(&pueue);
        command.arg("-c").arg(&config).args(args);
        command
    };
    wait_for("pueued to answer", Duration::from_secs(10), || {
        pueue_command(&["status"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
            .filter(|s| s.success())
    });
    time_command(pueue_command(&["parallel", "10"]));
    for _ in 0..10 {
        time_command(pueue_command(&["add", "--", "sleep", "1000"]));
    }
    let rh = Rhizome::new();
    for _ in 0..10 {
        rh.ok(["run", "--", "sleep", "1000"]);
    }
    // With filters too (a state and a name), in the same run: narrowing must cost nothing.
    let filtered = ["ps", "--status", "running,restarting", "sleep"];
    let (mut ours, mut ours_filtered, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..300 {
        ours.push(time_command(rh.command(["ps"])));
        ours_filtered.push(time_command(rh.command(filtered)));
        theirs.push(time_command(pueue_command(&["status"])));
    }
    let (ours, ours_filtered, theirs) = (median(ours), median(ours_filtered), median(theirs));
    println!(
        "ps against pueue status, 10 running each, interleaved: rhizome median {}, pueue median {}, ratio {:.2}; `{}`: median {}, ratio {:.2}",
        ms(ours),
        ms(theirs),
        ours.as_secs_f64() / theirs.as_secs_f64(),
        filtered.join(" "),
        ms(ours_filtered),
        ours_filtered.as_secs_f64() / theirs.as_secs_f64()
    );
    time_command(pueue_command(&["kill", "--all"]));
    let _ = pueue_command(&["shutdown"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    daemon.finish(Duration::from_secs(5));
}

/// The full path of `program` on PATH.
fn on_path(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// The first command with no daemon running, daemon start included.
fn cold_start() {
    let samples: Vec<Duration> = (0..20)
        .map(|_| {
            let rh = Rhizome::new();
            time_command(rh.command(["ps"]))
        })
        .collect();
    println!(
        "first command, no daemon running (starts it): median {} p95 {}",
        ms(median(samples.clone())),
        ms(percentile(samples, 0.95))
    );
}

/// Resident memory of the daemon, idle and with 100 sleepers.
fn memory() {
    let rh = Rhizome::new();
    rh.ok(["daemon", "start"]);
    rh.ok(["ps"]);
    let pid = rh.daemon_pid().unwrap();
    let idle = rss_kib(pid);
    for _ in 0..100 {
        rh.ok(["sleeper", "--count", "100000"]);
    }
    assert_eq!(rh.ps()["count"], 100);
    let loaded = rss_kib(pid);
    println!(
        "daemon resident memory: idle {:.1} MiB, with 100 sleepers {:.1} MiB",
        idle as f64 / 1024.0,
        loaded as f64 / 1024.0
    );
}

/// A child printing 1,000,000 short lines as fast as it can: every line captured, and how fast.
fn log_capture() {
    let rh = Rhizome::new();
    // Room for the whole flood, so that every line can be counted afterwards.
    std::fs::write(
        rh.path().join("rhizome.toml"),
        "[logs]\nmax_file_bytes = 1000000000\n",
    )
    .unwrap();
    rh.ok(["daemon", "start"]);
    let lines = 1_000_000u64;
    let start = Instant::now();
    let (id, _) = rh.start(["run", "--name", "flood", "--", "seq", &lines.to_string()]);
    wait_for("the flood to be captured", Duration::from_secs(120), || {
        (rh.status(id) == "exited(0)").then_some(())
    });
    let took = start.elapsed();
    let log = rh.ok(["logs", "flood"]);
    let captured = log.lines().filter(|l| !l.contains("subprocess ")).count() as u64;
    assert_eq!(captured, lines, "every line captured");
    println!(
        "log capture: {lines} lines in {:.2} s = {:.0} lines/s, {captured} of {lines} captured",
        took.as_secs_f64(),
        lines as f64 / took.as_secs_f64()
    );
}

/// `rhizome logs --all -n 10` against a warm daemon with 100 running processes that have
/// printed 20 lines each: the last 10 of every one, merged by time.
fn logs_all() {
    let rh = Rhizome::new();
    for i in 0..100 {
        rh.ok([
            "run",
            "--name",
            &format!("p{i}"),
            "--",
            "sh",
            "-c",
            "seq 1 20; exec sleep 1000",
        ]);
    }
    wait_for("every process to print", Duration::from_secs(60), || {
        let out = rh.ok(["logs", "--all", "--raw", "--grep", "^20$"]);
        (out.lines().count() == 100).then_some(())
    });
    let shown = rh.ok(["logs", "--all", "-n", "10"]);
    assert_eq!(shown.lines().count(), 1000, "10 lines of each");
    let samples: Vec<Duration> = (0..100)
        .map(|_| time_command(rh.command(["logs", "--all", "-n", "10"])))
        .collect();
    println!(
        "logs --all -n 10, warm daemon, 100 processes: median {} p95 {}",
        ms(median(samples.clone())),
        ms(percentile(samples, 0.95))
    );
}
