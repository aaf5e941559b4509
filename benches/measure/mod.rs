//! What every bench through the real binary measures with: a timed command, medians and
//! percentiles of samples, one interleaved comparison's verdict, and a process's resident memory.
//! `e2e` adds the real path: MariaDB behind the fake API server, and the real kubectl.
#![allow(dead_code)]

pub mod e2e;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long `command` takes to run to a successful end, its output thrown away.
pub fn time_command(mut command: Command) -> Duration {
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let start = Instant::now();
    let status = command.status().expect("command runs");
    let took = start.elapsed();
    assert!(status.success(), "{command:?} failed");
    took
}

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

pub fn percentile(mut samples: Vec<Duration>, p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p) as usize]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `median X p95 Y` of `samples`.
pub fn summary(samples: &[Duration]) -> String {
    format!(
        "median {} p95 {}",
        ms(median(samples.to_vec())),
        ms(percentile(samples.to_vec(), 0.95))
    )
}

/// What the ratio of two medians must be for a figure's target to be met.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

impl Goal {
    pub fn met(self, ratio: f64) -> bool {
        match self {
            Goal::AtMost(limit) => ratio <= limit,
            Goal::AtLeast(limit) => ratio >= limit,
        }
    }

    /// `target <= 0.50x: met (0.42x)`, the line's end.
    pub fn verdict(self, ratio: f64) -> String {
        let (sign, limit) = match self {
            Goal::AtMost(limit) => ("<=", limit),
            Goal::AtLeast(limit) => (">=", limit),
        };
        let word = if self.met(ratio) { "met" } else { "MISSED" };
        format!("target {sign} {limit:.2}x: {word} ({ratio:.2}x)")
    }
}

/// One interleaved comparison of durations (`ours` against `theirs`, sampled in turn): each
/// side's median and p95, the ratio of the medians, which `goal` judges, and of the p95s.
pub fn compare(what: &str, ours: (&str, &[Duration]), theirs: (&str, &[Duration]), goal: Goal) {
    let ratio = |of: fn(Vec<Duration>) -> Duration| {
        of(ours.1.to_vec()).as_secs_f64() / of(theirs.1.to_vec()).as_secs_f64()
    };
    println!(
        "{what}, {} interleaved pairs:\n  {}: {}\n  {}: {}\n  ratio of medians {:.2}x, of p95s {:.2}x; {}",
        ours.1.len().min(theirs.1.len()),
        ours.0,
        summary(ours.1),
        theirs.0,
        summary(theirs.1),
        ratio(median),
        ratio(|s| percentile(s, 0.95)),
        goal.verdict(ratio(median))
    );
}

/// `pid`'s resident memory in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The CPU time `pid` has used so far, user and system, from /proc (in the kernel's clock ticks,
/// 100 a second on Linux).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    let (_, rest) = stat.rsplit_once(')').expect("a stat line");
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().expect("utime and stime"))
        .collect();
    Duration::from_millis((fields[0] + fields[1]) * 10)
}
