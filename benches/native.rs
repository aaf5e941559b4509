//! The native transport's figures (issue 11), through the real (release) binary, against the test
//! kit's fake API server over TLS with plugin auth in front of a real MariaDB, each against the
//! real kubectl (the newest beside the one on PATH, 1.33) doing the same by hand on the same
//! server, in one interleaved run (A, B, A, B...; the machine is noisy): `cargo bench --bench
//! native`, or `-- NAME` for the figures whose function name holds NAME. Needs kubectl and
//! MariaDB; says so and measures nothing without them.
//!
//! rhizome's side runs with `transport = "native"`; `RHIZOME_BENCH_TRANSPORT=default` leaves the
//! key out (the build's default transport), which checks the harness on a build without it.

#[path = "../tests/common/mod.rs"]
mod common;
mod measure;

use std::time::Duration;

use common::*;
use measure::e2e::{Cluster, greeting, raw_read, read_through, transport_of};
use measure::*;

/// A figure's name and the function that measures it.
type Figure = (&'static str, fn(&Cluster));

fn main() {
    println!(
        "rhizome native transport benchmarks ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    // `cargo bench --bench native -- NAME` measures only the figures whose function name holds
    // NAME (cargo passes `--bench` itself).
    let only = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with("--"))
        .unwrap_or_default();
    let figures: [Figure; 5] = [
        ("first_forward", first_forward),
        ("known_port_forward", known_port_forward),
        ("connect_latency", connect_latency),
        ("bulk_read", bulk_read),
        ("native_memory", native_memory),
    ];
    let chosen: Vec<_> = figures
        .iter()
        .filter(|(name, _)| name.contains(&only))
        .collect();
    if chosen.is_empty() {
        println!("no figure's name holds {only:?}");
        return;
    }
    let Some(cluster) = Cluster::start() else {
        println!("SKIPPED: the native benchmarks need MariaDB and kubectl");
        return;
    };
    println!(
        "kubectl: {}; rhizome's side: {}",
        cluster.kubectl.display(),
        match native() {
            Some(t) => format!("transport = \"{t}\""),
            None => "the default transport (RHIZOME_BENCH_TRANSPORT=default)".into(),
        }
    );
    for (name, figure) in chosen {
        println!("({name})");
        figure(&cluster);
    }
}

/// The `transport` rhizome's side is configured with: `native`, or none at all with
/// `RHIZOME_BENCH_TRANSPORT=default`.
fn native() -> Option<&'static str> {
    match std::env::var("RHIZOME_BENCH_TRANSPORT").as_deref() {
        Ok("default") => None,
        _ => Some("native"),
    }
}

/// What rhizome's side is called in the figures' lines.
fn side() -> &'static str {
    if native().is_some() {
        "native"
    } else {
        "default transport"
    }
}

/// `transport = "kubectl"` where rhizome's side is configured at all.
fn kubectl_transport() -> Option<&'static str> {
    native().map(|_| "kubectl")
}

/// A home whose config holds `config`, its daemon started with the cluster's environment.
fn home(cluster: &Cluster, config: &str) -> Rhizome {
    let rh = Rhizome::new();
    write_config(&rh, config);
    time_command(cluster.rhizome(&rh, ["daemon", "start"]));
    rh.ok(["ps"]);
    rh
}

/// `NAME0`..`NAME{count-1}`.
fn names(prefix: &str, count: usize) -> impl Iterator<Item = String> {
    (0..count).map(move |n| format!("{prefix}{n}"))
}

/// Fails the figure unless the tunnel to `target` runs on the transport it was configured with.
fn check_transport(rh: &Rhizome, target: &str, configured: Option<&str>) {
    let Some(configured) = configured else { return };
    let shown = transport_of(rh, target);
    assert_eq!(
        shown.as_deref(),
        Some(configured),
        "{target}: ps --json shows transport {shown:?}"
    );
}

/// A first forward of a target this daemon has not seen (exec, the proxy's port, forward), on
/// the native transport, against the same three steps done by hand with bare kubectl. Each
/// round's rhizome targets are new names (the daemon knows proxy ports by target), each killed
/// before the next step. In the same run, for comparison: the same on rhizome's kubectl
/// transport, and on the native transport right after `daemon restart` (the daemon has not yet
/// built a client for the kubeconfig, nor run its credential plugin).
fn first_forward(cluster: &Cluster) {
    let rounds = 20;
    let mut config = cluster.environment("e2e", native(), names("new", rounds + 1));
    config.push_str(&cluster.environment("cold", native(), names("db", rounds)));
    config.push_str(&cluster.environment("kctl", kubectl_transport(), names("new", rounds + 1)));
    let rh = home(cluster, &config);
    // Warm: the proxy in the pod started, the daemon's client to this server, kubectl's discovery
    // cache in this home, the page cache for kubectl's binary.
    let last = format!("new{rounds}");
    for env in ["e2e", "kctl"] {
        cluster.forward(&rh, &format!("{env}/{last}"));
        rh.ok(["kill", &format!("{env}/{last}")]);
    }
    drop(cluster.by_hand(rh.path()));
    let (mut native_warm, mut by_hand, mut via_kubectl, mut native_cold) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut steps: [Vec<Duration>; 3] = Default::default();
    for n in 0..rounds {
        let target = format!("e2e/new{n}");
        native_warm.push(cluster.forward(&rh, &target).0);
        if n == 0 {
            check_transport(&rh, &target, native());
        }
        rh.ok(["kill", &target]);

        let (took, bare) = cluster.by_hand(rh.path());
        drop(bare);
        for (all, step) in steps.iter_mut().zip(took) {
            all.push(step);
        }
        by_hand.push(took.iter().sum());

        let target = format!("kctl/new{n}");
        via_kubectl.push(cluster.forward(&rh, &target).0);
        rh.ok(["kill", &target]);

        time_command(cluster.rhizome(&rh, ["daemon", "restart"]));
        let target = format!("cold/db{n}");
        native_cold.push(cluster.forward(&rh, &target).0);
        rh.ok(["kill", &target]);
    }
    let by_hand_side = ("kubectl exec + logs + port-forward by hand", &by_hand[..]);
    compare(
        "first forward of a target this daemon has not seen, to the URL",
        (
            &format!("rhizome forward, {}, warm daemon, a new target", side()),
            &native_warm,
        ),
        by_hand_side,
        Goal::AtMost(0.5),
    );
    println!(
        "  by hand, step by step: exec {}; logs {}; port-forward to its Forwarding line {}",
        summary(&steps[0]),
        summary(&steps[1]),
        summary(&steps[2])
    );
    compare(
        "the same, in the same run, right after `daemon restart`",
        (
            &format!("rhizome forward, {}, fresh daemon", side()),
            &native_cold,
        ),
        by_hand_side,
        Goal::AtMost(0.5),
    );
    compare(
        "the same, in the same run, on rhizome's kubectl transport (for comparison)",
        ("rhizome forward, kubectl transport", &via_kubectl),
        by_hand_side,
        Goal::AtMost(1.5),
    );
}

/// A forward of a target whose proxy port the daemon knows (its tunnel killed, then forwarded
/// again), against bare `kubectl port-forward` to the proxy's port, to its `Forwarding from`
/// line. In the same run: the same forward right after `daemon restart`.
fn known_port_forward(cluster: &Cluster) {
    let rounds = 30;
    let rh = home(
        cluster,
        &cluster.environment("e2e", native(), ["known".to_string()]),
    );
    let target = "e2e/known";
    cluster.forward(&rh, target);
    check_transport(&rh, target, native());
    rh.ok(["kill", target]);
    let remote = cluster.proxy_port();
    drop(cluster.port_forward(rh.path(), remote));
    let (mut known, mut bare, mut restarted) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        known.push(cluster.forward(&rh, target).0);
        rh.ok(["kill", target]);
        bare.push(cluster.port_forward(rh.path(), remote).0);
        time_command(cluster.rhizome(&rh, ["daemon", "restart"]));
        restarted.push(cluster.forward(&rh, target).0);
        rh.ok(["kill", target]);
    }
    let bare_side = (
        "bare kubectl port-forward to its Forwarding line",
        &bare[..],
    );
    compare(
        "forward of a target whose proxy port the daemon knows (killed, forwarded again), to the URL",
        (&format!("rhizome forward, {}", side()), &known),
        bare_side,
        Goal::AtMost(1.0),
    );
    compare(
        "the same target, in the same run, right after `daemon restart`",
        (
            &format!("rhizome forward, {}, after daemon restart", side()),
            &restarted,
        ),
        bare_side,
        Goal::AtMost(1.0),
    );
}

/// A new connection through a working native tunnel, from connect to the first byte of the
/// MariaDB greeting, against the same through a bare `kubectl port-forward`: connections 20 ms
/// apart (the figure), then in back-to-back bursts of five (more than the stream opened ahead).
fn connect_latency(cluster: &Cluster) {
    let rounds = 300;
    let rh = home(
        cluster,
        &cluster.environment("e2e", native(), ["conn".to_string()]),
    );
    let (_, port) = cluster.forward(&rh, "e2e/conn");
    check_transport(&rh, "e2e/conn", native());
    let (_, bare) = cluster.port_forward(rh.path(), cluster.proxy_port());
    for _ in 0..3 {
        greeting(port);
        greeting(bare.port);
    }
    let gap = Duration::from_millis(20);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.push(greeting(port));
        std::thread::sleep(gap);
        theirs.push(greeting(bare.port));
        std::thread::sleep(gap);
    }
    compare(
        "a new connection, connect to the first byte of the MariaDB greeting, 20 ms apart",
        (&format!("through rhizome's tunnel ({})", side()), &ours),
        ("through bare kubectl port-forward", &theirs),
        Goal::AtMost(1.0),
    );
    // Bursts, where the one stream opened ahead cannot be enough: five connections one right
    // after the other through one path, then five through the other.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds / 5 {
        ours.extend((0..5).map(|_| greeting(port)));
        std::thread::sleep(gap);
        theirs.extend((0..5).map(|_| greeting(bare.port)));
        std::thread::sleep(gap);
    }
    compare(
        "the same in bursts of five back-to-back connections, bursts interleaved",
        (&format!("through rhizome's tunnel ({})", side()), &ours),
        ("through bare kubectl port-forward", &theirs),
        Goal::AtMost(1.0),
    );
    let restarts = rh.ps()["running"][0]["restarts"].as_u64();
    println!("  the rhizome tunnel's restarts meanwhile: {restarts:?}");
}

/// A 32 MB table read through the native tunnel, against the same through bare `kubectl
/// port-forward`, interleaved, and straight from MariaDB for scale: first with `mariadb --batch`
/// (what a user runs; its formatting of rows weighs on all three), then with a minimal client of
/// MariaDB's protocol (the path's own throughput). Every read must bring the same bytes.
fn bulk_read(cluster: &Cluster) {
    cluster
        .db
        .sql_direct(
            "CREATE TABLE shop.bulk (id INT PRIMARY KEY AUTO_INCREMENT, pad VARCHAR(1000)); \
             INSERT INTO shop.bulk (pad) SELECT REPEAT('x', 1000) FROM shop.seq_1_to_32000;",
        )
        .unwrap();
    let rh = home(
        cluster,
        &cluster.environment("e2e", native(), ["bulk".to_string()]),
    );
    let (_, port) = cluster.forward(&rh, "e2e/bulk");
    check_transport(&rh, "e2e/bulk", native());
    let (_, bare) = cluster.port_forward(rh.path(), cluster.proxy_port());
    let paths = [
        (port, rh.daemon_pid()),
        (bare.port, Some(bare.pid())),
        (cluster.db.port, None),
    ];
    let fake = cluster.api.proc.child.id();
    let restarts = || rh.ps()["running"][0]["restarts"].as_u64();
    let before = restarts();
    reads("mariadb --batch", read_through, paths, fake, 15);
    reads("a minimal protocol client", raw_read, paths, fake, 15);
    println!(
        "  the rhizome tunnel's restarts meanwhile: {before:?} before, {:?} after",
        restarts()
    );
}

/// `rounds` interleaved reads of the bulk table with `read` through each of `paths` (rhizome's
/// tunnel, bare kubectl's, MariaDB's own: a port and the process that forwards it), their
/// throughputs, and the CPU time the forwarder and the fake API server spent per MB; the target
/// judges the first path against the second.
fn reads(
    client: &str,
    read: fn(u16, &str) -> (Duration, u64),
    paths: [(u16, Option<u32>); 3],
    fake: u32,
    rounds: usize,
) {
    let sql = "SELECT * FROM shop.bulk";
    let (_, size) = read(paths[2].0, sql);
    let mut samples: [Vec<Duration>; 3] = Default::default();
    // CPU time of each path's forwarder, and of the fake API server, over its reads.
    let mut cpu = [(Duration::ZERO, Duration::ZERO); 3];
    for _ in 0..rounds {
        for ((samples, cpu), (port, forwarder)) in samples.iter_mut().zip(&mut cpu).zip(paths) {
            let used = || (forwarder.map(cpu_time).unwrap_or_default(), cpu_time(fake));
            let before = used();
            let (took, bytes) = read(port, sql);
            let after = used();
            assert_eq!(bytes, size, "{client} through port {port} read other bytes");
            samples.push(took);
            cpu.0 += after.0 - before.0;
            cpu.1 += after.1 - before.1;
        }
    }
    let rate = |samples: &[Duration]| size as f64 / median(samples.to_vec()).as_secs_f64() / 1e6;
    let per_mb = |d: Duration| d.as_secs_f64() * 1000.0 / (size as f64 * rounds as f64 / 1e6);
    let [ours, theirs, direct] = &samples;
    let ratio = rate(ours) / rate(theirs);
    println!(
        "bulk read with {client}, {:.1} MB of rows, {rounds} interleaved rounds:\n  through rhizome's tunnel ({}): {}, {:.0} MB/s\n  through bare kubectl port-forward: {}, {:.0} MB/s\n  straight to MariaDB (for scale): {}, {:.0} MB/s\n  throughput ratio (of medians) {ratio:.2}x, of p95 times {:.2}x; {}\n  CPU per MB read: rhizome's daemon {:.2} ms + the fake API server {:.2} ms; kubectl {:.2} ms + the fake API server {:.2} ms",
        size as f64 / 1e6,
        side(),
        summary(ours),
        rate(ours),
        summary(theirs),
        rate(theirs),
        summary(direct),
        rate(direct),
        percentile(theirs.clone(), 0.95).as_secs_f64()
            / percentile(ours.clone(), 0.95).as_secs_f64(),
        Goal::AtLeast(1.0).verdict(ratio),
        per_mb(cpu[0].0),
        per_mb(cpu[0].1),
        per_mb(cpu[1].0),
        per_mb(cpu[1].1),
    );
}

/// The daemon's resident memory (VmRSS) before and after twenty native tunnels (twenty targets,
/// `lazy = false`) are forwarded and each has carried a connection, and the daemon's children.
fn native_memory(cluster: &Cluster) {
    let count = 20;
    let mut config = String::from("[forward]\nlazy = false\n\n");
    config.push_str(&cluster.environment("e2e", native(), names("mem", count)));
    let rh = home(cluster, &config);
    let pid = rh.daemon_pid().unwrap();
    let settle = || std::thread::sleep(Duration::from_secs(1));
    settle();
    let before = rss_kib(pid);
    let children_before = children_of(pid);
    let plugin_runs = cluster.api.plugin_calls();
    let mut ports = Vec::new();
    let mut after_first = 0;
    for target in names("e2e/mem", count) {
        let (_, port) = cluster.forward(&rh, &target);
        check_transport(&rh, &target, native());
        greeting(port);
        ports.push(port);
        if after_first == 0 {
            settle();
            after_first = rss_kib(pid);
        }
    }
    settle();
    // Every tunnel still answers, and what a connection leaves behind has settled.
    for port in &ports {
        greeting(*port);
    }
    settle();
    let after = rss_kib(pid);
    let children_after = children_of(pid);
    let running = rh.ps()["running"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "running")
        .count();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let each = mib(after.saturating_sub(before)) / count as f64;
    println!(
        "daemon resident memory: {:.1} MiB idle, {:.1} MiB with one tunnel, {:.1} MiB with {count} ({running} running, each has carried a connection)\n  added per tunnel: {each:.2} MiB over the idle daemon, {:.2} MiB past the first; {}\n  the daemon's children: {} before, {} after {}; the kubeconfig's credential plugin ran {} times meanwhile (and ended)",
        mib(before),
        mib(after_first),
        mib(after),
        mib(after.saturating_sub(after_first)) / (count - 1) as f64,
        if each <= 2.0 {
            "target <= 2 MiB each: met"
        } else {
            "target <= 2 MiB each: MISSED"
        },
        children_before.len(),
        children_after.len(),
        if children_after.is_empty() {
            "(target none: met)"
        } else {
            "(target none: MISSED)"
        },
        cluster.api.plugin_calls() - plugin_runs
    );
}
