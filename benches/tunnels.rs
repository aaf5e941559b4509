//! The lazy tunnel and `rhizome exec` figures (issue 12), measured through the real (release)
//! binary in simulate mode (the rhizome binary stands in for kubectl and the database echoes):
//! `cargo bench --bench tunnels`. Prints one line per figure; the README quotes them.

#[path = "../tests/common/mod.rs"]
mod common;
mod measure;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use measure::*;

fn main() {
    println!(
        "rhizome tunnel benchmarks ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    // `cargo bench --bench tunnels -- NAME` measures only the figures whose function name holds
    // NAME (cargo passes `--bench` itself).
    let only = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with("--"))
        .unwrap_or_default();
    let figures: [(&str, fn()); 3] = [
        ("lazy_forward", lazy_forward),
        ("lazy_memory", lazy_memory),
        ("exec_overhead", exec_overhead),
    ];
    for (name, figure) in figures.iter().filter(|(name, _)| name.contains(&only)) {
        println!("({name})");
        figure();
    }
}

/// A home whose config has the service targets `b/PREFIXN` for each prefix and N below `count`,
/// each a port-forward to its own `svc/` on any free local port.
fn home_with_services(prefixes: &[&str], count: usize) -> Rhizome {
    let rh = Rhizome::new();
    let mut config = String::from("[environments.b]\ncontext = \"c\"\nnamespace = \"n\"\n");
    for prefix in prefixes {
        for n in 0..count {
            config.push_str(&format!(
                "\n[environments.b.services.{prefix}{n}]\nresource = \"svc/{prefix}{n}\"\nremote_port = 5432\n"
            ));
        }
    }
    write_config(&rh, &config);
    rh.ok(["daemon", "start"]);
    rh.ok(["ps"]);
    rh
}

/// A rhizome command in simulate mode: no cluster, an echo server at the far end.
fn simulated<I, S>(rh: &Rhizome, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = rh.command(args);
    command.env("RHIZOME_SIMULATE", "1");
    command
}

/// How long `rhizome forward` takes to print the URL, and the `HOST:PORT` in it.
fn time_forward(mut command: Command) -> (Duration, String) {
    command.stderr(Stdio::null());
    let start = Instant::now();
    let out = command.output().expect("rhizome runs");
    let took = start.elapsed();
    assert!(out.status.success(), "{command:?} failed: {out:?}");
    let url = String::from_utf8(out.stdout).unwrap();
    let addr = url
        .trim()
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/').to_string())
        .unwrap_or_else(|| panic!("no URL in {url:?}"));
    (took, addr)
}

/// From connecting to `addr` to the first byte echoed back.
fn first_byte(addr: &str) -> Duration {
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(b"x").unwrap();
    let mut byte = [0u8];
    stream.read_exact(&mut byte).unwrap();
    let took = start.elapsed();
    assert_eq!(&byte, b"x");
    took
}

fn stats(samples: &[Duration]) -> String {
    format!(
        "median {} p95 {}",
        ms(median(samples.to_vec())),
        ms(percentile(samples.to_vec(), 0.95))
    )
}

/// With a warm daemon, `rhizome forward --lazy` of a target it has never opened, to the URL;
/// then the first connection through it, from connect to the first byte echoed (the path is
/// built then); against a cold eager `rhizome forward` of another such target, interleaved.
/// Each sample's tunnels are killed before the next, so that every sample meets the same daemon.
fn lazy_forward() {
    let samples = 40;
    let rh = home_with_services(&["lazy", "cold"], samples);
    let daemon = rh.daemon_pid().unwrap();
    let (mut lazy, mut lazy_first, mut cold, mut cold_first) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in 0..samples {
        let lazy_target = format!("b/lazy{n}");
        let (took, addr) = time_forward(simulated(&rh, ["forward", "--lazy", &lazy_target]));
        lazy.push(took);
        lazy_first.push(first_byte(&addr));
        // The byte came through a path built for it: the simulated forwarder the daemon runs.
        assert!(
            !children_of(daemon).is_empty(),
            "{lazy_target} woke no forwarder"
        );
        let cold_target = format!("b/cold{n}");
        let (took, addr) = time_forward(simulated(&rh, ["forward", &cold_target]));
        cold.push(took);
        cold_first.push(first_byte(&addr));
        rh.ok(["kill", &lazy_target, &cold_target]);
    }
    println!(
        "forward --lazy, warm daemon, a new target each time, to the URL: {}",
        stats(&lazy)
    );
    println!(
        "its first connection, connect to the first byte echoed: {}",
        stats(&lazy_first)
    );
    println!(
        "cold eager forward of the same kind (interleaved), to the URL: {}; its first connection: {}",
        stats(&cold),
        stats(&cold_first)
    );
    println!(
        "lazy first connection against the cold forward: {:.2}x of the forward's median ({:.2}x of forward + first connection)",
        median(lazy_first.clone()).as_secs_f64() / median(cold.clone()).as_secs_f64(),
        median(lazy_first).as_secs_f64()
            / (median(cold).as_secs_f64() + median(cold_first).as_secs_f64())
    );
}

/// The daemon's resident memory before and after 50 idle lazy tunnels are opened, and its
/// children (an idle lazy tunnel runs nothing: only its port is held).
fn lazy_memory() {
    let count = 50;
    let rh = home_with_services(&["idle"], count);
    let pid = rh.daemon_pid().unwrap();
    let children_before = children_of(pid).len();
    let before = rss_kib(pid);
    for n in 0..count {
        time_forward(simulated(&rh, ["forward", "--lazy", &format!("b/idle{n}")]));
    }
    let idle = rh.ps()["running"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "idle")
        .count();
    assert_eq!(idle, count, "every tunnel idle");
    // What a tunnel's start leaves behind has settled.
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(pid);
    let children_after = children_of(pid).len();
    println!(
        "daemon resident memory: {:.1} MiB before, {:.1} MiB with {count} idle lazy tunnels, {:.3} MiB each; children: {children_before} before, {children_after} after",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / 1024.0 / count as f64
    );
}

/// `rhizome exec TARGET -- true` through a tunnel already open, against `true` run directly, in
/// one interleaved run: what exec adds.
fn exec_overhead() {
    let rh = home_with_services(&["warm"], 1);
    time_forward(simulated(&rh, ["forward", "b/warm0"]));
    let (mut exec, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..300 {
        exec.push(time_command(simulated(
            &rh,
            ["exec", "b/warm0", "--quiet", "--", "true"],
        )));
        bare.push(time_command(Command::new("true")));
    }
    let added = |of: fn(Vec<Duration>) -> Duration| {
        (of(exec.clone()).as_secs_f64() - of(bare.clone()).as_secs_f64()) * 1000.0
    };
    println!(
        "exec -- true, tunnel open, interleaved with true: exec {}, true {}; added: median {:.2} ms, p95 {:.2} ms",
        stats(&exec),
        stats(&bare),
        added(median),
        added(|s| percentile(s, 0.95))
    );
}
