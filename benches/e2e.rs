//! The end-to-end issue's figures, with the real kubectl, the fake API server and MariaDB:
//! `cargo bench --bench e2e`.
//!
//! 1. Time from `rhizome forward` to the URL (warm daemon, tunnel closed in between) against the
//!    time bare `kubectl port-forward` takes to print its first `Forwarding from` line.
//! 2. Throughput of bulk reads with the `mariadb` client through rhizome's tunnel against the same
//!    through bare `kubectl port-forward`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn main() {
    // The fake API server is a test-kit binary, which `cargo bench` does not build by itself.
    let built = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-p",
            "rhizome-testkit",
            "--bin",
            "fake-apiserver",
        ])
        .status()
        .expect("cargo runs");
    assert!(built.success(), "building the fake API server failed");
    let (Some(db), Some(versions)) = (MariaDb::start(), kubectl_versions()) else {
        eprintln!("SKIPPED: the e2e benchmark needs MariaDB and kubectl");
        return;
    };
    let kubectl = versions.last().unwrap().clone();
    println!("rhizome end-to-end benchmarks with {}", kubectl.display());
    // About 64 MB of rows to read back.
    db.sql_direct(
        "CREATE TABLE shop.bulk (id INT PRIMARY KEY AUTO_INCREMENT, pad VARCHAR(1000)); \
         INSERT INTO shop.bulk (pad) SELECT REPEAT('x', 1000) FROM shop.seq_1_to_64000;",
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let apiserver = testkit_bin("fake-apiserver").expect("built above");
    let api = FakeApi::start(apiserver, home.path(), &db.addr(), &[]);
    let port = free_port();
    let rh = Rhizome::new();
    write_config(
        &rh,
        &format!(
            "[environments.e2e]\ncontext = \"e2e\"\nnamespace = \"e2e\"\ndeployment = \"db-proxy\"\nkubeconfig = \"{}\"\n\n[environments.e2e.databases.db]\nsql_connection = \"e2e-project:us-central1:db\"\nlocal_port = {port}\n",
            api.kubeconfig.display()
        ),
    );
    let env = |command: &mut Command| {
        command
            .env("RHIZOME_KUBECTL", &kubectl)
            .env("HOME", rh.path())
            .env("KUBECACHEDIR", rh.path().join("kube-cache"))
            .env("KUBECONFIG", &api.kubeconfig);
    };
    // Warm up the daemon, kubectl's discovery cache and the proxy in the pod.
    forward(&rh, env);
    rh.ok(["kill", "e2e/db"]);
    let proxy_port = api.state()["proxy_ports"][0].as_u64().unwrap() as u16;

    let rhizome_times: Vec<Duration> = (0..10)
        .map(|_| {
            let took = forward(&rh, env);
            rh.ok(["kill", "e2e/db"]);
            took
        })
        .collect();
    let bare_times: Vec<Duration> = (0..10)
        .map(|_| bare_forward(&kubectl, proxy_port, env).0)
        .collect();
    // A target this daemon has not forwarded before: exec, then port-forward.
    let cold_times: Vec<Duration> = (0..5)
        .map(|_| {
            rh.ok(["daemon", "restart"]);
            let took = forward(&rh, env);
            rh.ok(["kill", "e2e/db"]);
            took
        })
        .collect();
    let (r, b) = (median(rhizome_times), median(bare_times));
    println!(
        "time to a usable address for a target this daemon has not forwarded before: {:.0} ms",
        ms(median(cold_times))
    );
    println!(
        "time to a usable address: rhizome forward of a target forwarded before {:.0} ms (exec and log steps included), bare kubectl port-forward {:.0} ms, +{:.0}%",
        ms(r),
        ms(b),
        (r.as_secs_f64() / b.as_secs_f64() - 1.0) * 100.0
    );

    // Both paths open at once, read in turn, so that drift on the machine hits both alike.
    forward(&rh, env);
    let (_, bare) = bare_forward(&kubectl, proxy_port, env);
    let (mut via_rhizome, mut via_kubectl) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        via_rhizome.push(bulk_read(port));
        via_kubectl.push(bulk_read(bare.port));
    }
    drop(bare);
    rh.ok(["kill", "e2e/db"]);
    let (through_rhizome, through_kubectl) = (median(via_rhizome), median(via_kubectl));
    println!(
        "bulk read of 64 MB with mariadb: through rhizome {:.0} ms, through bare kubectl {:.0} ms: {:.0}% of bare throughput",
        ms(through_rhizome),
        ms(through_kubectl),
        through_kubectl.as_secs_f64() / through_rhizome.as_secs_f64() * 100.0
    );
}

fn forward(rh: &Rhizome, env: impl Fn(&mut Command)) -> Duration {
    let mut command = rh.command(["forward", "e2e/db", "-q"]);
    env(&mut command);
    let start = Instant::now();
    let out = command.output().unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// A bare kubectl port-forward, killed when dropped.
struct Bare {
    _kubectl: Proc,
    port: u16,
}

/// Starts bare kubectl port-forward and times its first Forwarding line.
fn bare_forward(kubectl: &Path, remote: u16, env: impl Fn(&mut Command)) -> (Duration, Bare) {
    let mut command = Command::new(kubectl);
    command
        .args([
            "--context",
            "e2e",
            "--namespace",
            "e2e",
            "port-forward",
            "deploy/db-proxy",
        ])
        .arg(format!("0:{remote}"))
        .args(["--address", "127.0.0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    env(&mut command);
    let start = Instant::now();
    let mut kubectl = Proc::spawn(&mut command, "kubectl port-forward");
    let mut lines = BufReader::new(kubectl.child.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let took = start.elapsed();
    let port = rhizome::forward::kubectl::forwarding_port(&line).expect("a Forwarding line");
    std::thread::spawn(move || for _ in lines {});
    (
        took,
        Bare {
            _kubectl: kubectl,
            port,
        },
    )
}

/// Reads the whole bulk table through `port`.
fn bulk_read(port: u16) -> Duration {
    let start = Instant::now();
    let out = Command::new("mariadb")
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-u",
            "root",
            "--skip-ssl",
            "--batch",
            "-e",
        ])
        .arg("SELECT * FROM shop.bulk")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(out.success());
    start.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
