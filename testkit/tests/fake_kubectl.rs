//! Runs the `fake-kubectl` binary as rhizome would: contexts, exec and logs,
//! port-forward splicing 256 KiB both ways to an echo server, every plan
//! action, a taken port, a refusing backend, bad arguments, and the start
//! counters under parallel starts. Every process is killed by pid on drop.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use rhizome_testkit::harness::{
    Collector, KubectlCall, Out, Proc, echo_round_trip, echo_server, free_port, kubectl_calls,
    poll, port_forward_pid, random_bytes,
};

const DEADLINE: Duration = Duration::from_secs(10);
const INSTANCE: &str = "proj:europe-west1:db";
const LOST: &str = "error: lost connection to pod";

// ---------------------------------------------------------------- helpers

/// One fake kubectl setup: a state directory and environment variables.
struct Fake {
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

/// A running fake kubectl with its output collected.
struct Running {
    proc: Proc,
    out: Collector,
    err: Collector,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    fn env(mut self, key: &'static str, value: &str) -> Fake {
        self.env.push((key, value.to_string()));
        self
    }

    fn backend(self, addr: impl std::fmt::Display) -> Fake {
        self.env("FAKE_KUBECTL_BACKEND", &addr.to_string())
    }

    fn plan(self, text: &str) -> Fake {
        let path = self.path("plan");
        std::fs::write(&path, text).unwrap();
        self.env("FAKE_KUBECTL_PLAN", path.to_str().unwrap())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fake-kubectl"));
        for (key, _) in std::env::vars() {
            if key.starts_with("FAKE_KUBECTL_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("FAKE_KUBECTL_DIR", self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs to completion (within the deadline).
    fn run(&self, args: &[&str]) -> Out {
        Proc::spawn(&mut self.command(args), "fake-kubectl").finish(DEADLINE)
    }

    fn start(&self, args: &[&str]) -> Running {
        let mut proc = Proc::spawn(&mut self.command(args), "fake-kubectl");
        let out = Collector::new(proc.child.stdout.take().unwrap());
        let err = Collector::new(proc.child.stderr.take().unwrap());
        Running { proc, out, err }
    }

    /// Every call in calls.log.
    fn calls(&self) -> Vec<KubectlCall> {
        kubectl_calls(self.dir.path())
    }
}

impl Running {
    /// The port of the first `Forwarding from 127.0.0.1:P -> remote` line.
    fn forwarding(&self, remote: u16) -> u16 {
        let suffix = format!(" -> {remote}");
        self.out
            .wait_line(DEADLINE, |l| {
                l.strip_prefix("Forwarding from 127.0.0.1:")?
                    .strip_suffix(suffix.as_str())?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no Forwarding line; stdout: {:?}", self.out.text()))
    }

    fn wait_stdout(&self, text: &str) {
        wait_text(&self.out, text, "stdout");
    }

    /// Waits until stdout holds `text` exactly `n` times.
    fn wait_stdout_count(&self, text: &str, n: usize) {
        poll(DEADLINE, || {
            (self.out.text().matches(text).count() == n).then_some(())
        })
        .unwrap_or_else(|| panic!("stdout never had {n} x {text:?}: {:?}", self.out.text()));
    }

    fn wait_stderr(&self, text: &str) {
        wait_text(&self.err, text, "stderr");
    }

    /// The exit code (`None` for a signal), once it exits within the deadline.
    fn exit_code(&mut self) -> Option<i32> {
        self.proc
            .wait_timeout(DEADLINE)
            .expect("fake-kubectl did not exit in time")
            .code()
    }

    fn alive(&mut self) -> bool {
        matches!(self.proc.child.try_wait(), Ok(None))
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.proc.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn wait_text(c: &Collector, text: &str, what: &str) {
    poll(DEADLINE, || c.text().contains(text).then_some(()))
        .unwrap_or_else(|| panic!("{what} never showed {text:?}: {:?}", c.text()));
}

/// Sends `size` random bytes through `addr` and checks that all of them come back.
fn echo_roundtrip(addr: SocketAddr, size: usize) {
    let data = random_bytes(size);
    assert!(echo_round_trip(addr, &data) == data, "echoed bytes differ");
}

/// True once the peer has closed (EOF or reset), within the deadline.
fn closed_by_peer(conn: &mut TcpStream) -> bool {
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 16];
    match conn.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// An address where nothing listens.
fn refusing_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

const PF: &[&str] = &[
    "port-forward",
    "deploy/db",
    "0:3307",
    "--address",
    "127.0.0.1",
];

// ---------------------------------------------------------------- tests

#[test]
fn contexts_unknown_commands_and_missing_dir() {
    let fake = Fake::new().env("FAKE_KUBECTL_CONTEXTS", "a,b");
    let out = fake.run(&["--context", "x", "port-forward", "deploy/db", "0:3307"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "Error in configuration: context was not found for specified context: x\n"
    );
    assert_eq!(out.stdout, "");

    let out = fake.run(&["logs", "deploy/db", "--context=b"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));

    let out = fake.run(&["get", "pods"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "error: unknown command \"get\" for \"kubectl\"\n"
    );

    // Rejected invocations are logged with start 0 and do not count.
    let starts: Vec<u64> = fake.calls().iter().map(|c| c.start).collect();
    assert_eq!(starts, [0, 1, 0]);
    assert!(!fake.path("port-forward.count").exists());

    let mut cmd = fake.command(&["logs", "deploy/db"]);
    cmd.env_remove("FAKE_KUBECTL_DIR");
    let out = Proc::spawn(&mut cmd, "fake-kubectl").finish(DEADLINE);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(out.stderr.contains("FAKE_KUBECTL_DIR"), "{}", out.stderr);
}

#[test]
fn exec_fills_pod_log_and_logs_tails_it() {
    let fake = Fake::new().env("FAKE_KUBECTL_REMOTE_PORT", "5433");
    let out = fake.run(&["logs", "deploy/db"]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), ""));

    let proxy = format!("cloud-sql-proxy --port 5433 {INSTANCE}");
    let out = fake.run(&["-n", "data", "exec", "deploy/db", "--", "sh", "-c", &proxy]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let ends = [
        "Authorizing with Application Default Credentials".to_string(),
        format!("[{INSTANCE}] Listening on 127.0.0.1:5433"),
        "The proxy has started successfully and is ready for new connections!".to_string(),
    ];
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, end) in lines.iter().zip(&ends) {
        // `YYYY/MM/DD HH:MM:SS ` then the message.
        let (prefix, rest) = line.split_at(20);
        assert_eq!(rest, end);
        let shape: String = prefix
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        assert_eq!(shape, "9999/99/99 99:99:99 ");
    }
    assert_eq!(fake.read("pod.log"), out.stdout);

    let out = fake.run(&["logs", "deploy/db", "--tail", "1"]);
    assert_eq!(out.stdout, format!("{}\n", lines[2]));
    let out = fake.run(&["logs", "--tail=2", "deploy/db"]);
    assert_eq!(out.stdout, format!("{}\n{}\n", lines[1], lines[2]));
    let out = fake.run(&["logs", "deploy/db"]);
    assert_eq!(out.stdout, fake.read("pod.log"));

    let out = fake.run(&["exec", "deploy/db", "--", "psql", "-c", "select 1"]);
    assert_eq!(out.code, Some(127));
    assert_eq!(
        out.stderr,
        "sh: 1: psql: not found\ncommand terminated with exit code 127\n"
    );
}

#[test]
fn port_forward_splices_both_ways() {
    let fake = Fake::new().backend(echo_server());
    let mut pf = fake.start(PF);
    let port = pf.forwarding(3307);
    assert_ne!(port, 0);
    let pid = poll(DEADLINE, || port_forward_pid(fake.dir.path()));
    assert_eq!(pid, Some(pf.proc.child.id()));

    echo_roundtrip(local(port), 256 * 1024);
    pf.wait_stdout(&format!("Handling connection for {port}\n"));
    echo_roundtrip(local(port), 1024);
    pf.wait_stdout_count("Handling connection", 2);
    assert_eq!(
        pf.out.text(),
        format!(
            "Forwarding from 127.0.0.1:{port} -> 3307\n\
             Handling connection for {port}\nHandling connection for {port}\n"
        )
    );

    // SIGINT: real kubectl's trap, exit 0 quietly.
    pf.signal("INT");
    assert_eq!(pf.exit_code(), Some(0));
    assert_eq!(pf.err.text(), "");
}

#[test]
fn localhost_default_forwards_on_both_loopbacks() {
    let fake = Fake::new().backend(echo_server());
    let pf = fake.start(&["--context", "c", "port-forward", "svc/db", ":3307"]);
    let port = pf.forwarding(3307);
    let ipv6 = TcpListener::bind("[::1]:0").is_ok();
    if ipv6 {
        pf.wait_stdout(&format!("Forwarding from [::1]:{port} -> 3307\n"));
        echo_roundtrip(SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port)), 4096);
    } else {
        eprintln!("no IPv6 loopback here: only the 127.0.0.1 line is expected");
    }
    echo_roundtrip(local(port), 4096);
    let forwarding = pf.out.text().matches("Forwarding from").count();
    assert_eq!(forwarding, if ipv6 { 2 } else { 1 });
}

#[test]
fn plan_fail_then_a_normal_start() {
    let fake = Fake::new()
        .backend(echo_server())
        .plan("# pod Pending once\nport-forward 1 fail\n");
    let out = fake.run(PF);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "error: unable to forward port because pod is not running. Current status=Pending\n"
    );
    assert_eq!(out.stdout, "");

    let pf = fake.start(PF);
    let port = pf.forwarding(3307);
    echo_roundtrip(local(port), 1024);
    assert_eq!(fake.read("port-forward.count").trim(), "2");
}

#[test]
fn plan_die_after_ms_ends_the_session() {
    let fake = Fake::new()
        .backend(echo_server())
        .plan("port-forward * die-after-ms 300\n");
    let started = Instant::now();
    let mut pf = fake.start(PF);
    let port = pf.forwarding(3307);
    let mut conn = TcpStream::connect(local(port)).unwrap();
    conn.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");

    assert_eq!(pf.exit_code(), Some(1));
    assert!(started.elapsed() >= Duration::from_millis(300));
    pf.wait_stderr(LOST);
    assert!(
        closed_by_peer(&mut conn),
        "spliced connection outlived kubectl"
    );
}

#[test]
fn plan_hang_accepts_and_drops_connections_but_keeps_running() {
    let fake = Fake::new()
        .backend(echo_server())
        .plan("port-forward 1 hang\n");
    let mut pf = fake.start(PF);
    let port = pf.forwarding(3307);
    for n in 1..=2 {
        let mut conn = TcpStream::connect(local(port)).unwrap();
        assert!(closed_by_peer(&mut conn), "hung kubectl kept a connection");
        poll(DEADLINE, || {
            (pf.err
                .text()
                .matches("an error occurred forwarding")
                .count()
                == n)
                .then_some(())
        })
        .unwrap_or_else(|| panic!("no per-connection error {n}: {:?}", pf.err.text()));
    }
    let err = pf.err.text();
    let first = err.lines().next().unwrap();
    assert!(first.starts_with('E'), "{first}");
    assert!(
        first.contains(&format!(
            "\"Unhandled Error\" err=\"an error occurred forwarding {port} -> 3307: error forwarding port 3307 to pod "
        )),
        "{first}"
    );
    assert!(first.ends_with("lost connection to pod\""), "{first}");
    pf.wait_stdout_count(&format!("Handling connection for {port}\n"), 2);
    assert!(!err.contains(LOST));
    assert!(pf.alive(), "a hung kubectl must not exit by itself");
}

#[test]
fn plan_slow_ms_delays_forwarding() {
    let fake = Fake::new()
        .backend(echo_server())
        .plan("port-forward 1 slow-ms 400\n");
    let started = Instant::now();
    let pf = fake.start(PF);
    pf.forwarding(3307);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[test]
fn plan_exec_fail_exec_hang_and_logs_empty() {
    let fake = Fake::new().plan("exec 1 fail\nexec 2 hang\nlogs 1 empty\n");
    let exec = ["exec", "deploy/db", "--", "cloud-sql-proxy", INSTANCE];
    let out = fake.run(&exec);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "error: unable to upgrade connection: container not found (\"cloudsql-proxy\")\n"
    );

    let mut hung = fake.start(&exec);
    hung.wait_stdout("ready for new connections!\n");
    assert!(hung.alive(), "exec hang must keep running");

    let out = fake.run(&["logs", "deploy/db"]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), ""));
    let out = fake.run(&["logs", "deploy/db"]);
    assert!(
        out.stdout
            .contains(&format!("[{INSTANCE}] Listening on 127.0.0.1:3307"))
    );
    assert!(hung.alive());
}

#[test]
fn taken_port_gives_kubectls_messages() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = taken.local_addr().unwrap().port();
    let fake = Fake::new().backend(echo_server());
    let ports = format!("{p}:3307");
    let out = fake.run(&["port-forward", "deploy/db", &ports, "--address=127.0.0.1"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "Unable to listen on port {p}: Listeners failed to create with the following errors: \
             [unable to create listener: Error listen tcp4 127.0.0.1:{p}: bind: address already in use]\n\
             error: unable to listen on any of the requested ports: [{{{p} 3307}}]\n"
        )
    );
}

#[test]
fn refused_backend_ends_the_session() {
    let fake = Fake::new().backend(refusing_addr());
    let mut pf = fake.start(PF);
    let port = pf.forwarding(3307);
    let mut conn = TcpStream::connect(local(port)).unwrap();
    assert!(closed_by_peer(&mut conn));
    assert_eq!(pf.exit_code(), Some(1));
    pf.wait_stderr(LOST);
    let err = pf.err.text();
    assert!(err.contains("connect: connection refused"), "{err}");
    pf.wait_stdout(&format!("Handling connection for {port}"));
}

#[test]
fn parallel_starts_get_distinct_numbers() {
    let fake = Arc::new(Fake::new().plan("port-forward * fail\n"));
    let barrier = Arc::new(Barrier::new(16));
    let runs: Vec<_> = (0..16)
        .map(|i| {
            let (fake, barrier) = (fake.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                if i % 2 == 0 {
                    fake.run(PF)
                } else {
                    fake.run(&["logs", "deploy/db"])
                }
                .code
            })
        })
        .collect();
    let codes: Vec<Option<i32>> = runs.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(codes.iter().filter(|&&c| c == Some(1)).count(), 8);
    assert_eq!(codes.iter().filter(|&&c| c == Some(0)).count(), 8);

    let calls = fake.calls();
    assert_eq!(calls.len(), 16);
    let pids: HashSet<u32> = calls.iter().map(|c| c.pid).collect();
    assert_eq!(pids.len(), 16);
    for sub in ["port-forward", "logs"] {
        let mut starts: Vec<u64> = calls
            .iter()
            .filter(|c| c.argv[0] == sub)
            .map(|c| c.start)
            .collect();
        starts.sort();
        assert_eq!(starts, (1..=8).collect::<Vec<_>>(), "{sub}");
        assert_eq!(fake.read(&format!("{sub}.count")).trim(), "8");
    }
    let pf_argv: Vec<String> = PF.iter().map(|s| s.to_string()).collect();
    assert!(calls.iter().any(|c| c.argv == pf_argv));
}

#[test]
fn bad_arguments_never_panic() {
    let fake = Fake::new();
    let bad: &[&[&str]] = &[
        &[],
        &["port-forward"],
        &["port-forward", "deploy/db"],
        &["port-forward", "deploy/db", "x:3307"],
        &["port-forward", "deploy/db", "0:0"],
        &["port-forward", "configmap/db", "0:3307"],
        &[
            "port-forward",
            "deploy/db",
            "0:3307",
            "--address",
            "nowhere",
        ],
        &["logs", "deploy/db", "--tail"],
        &["logs", "deploy/db", "--tail", "many"],
        &["exec", "deploy/db"],
        &["exec", "deploy/db", "--"],
        &["exec", "--tail=1", "deploy/db", "--", "true"],
        &["--bogus", "logs", "deploy/db"],
        &["-n"],
    ];
    for args in bad {
        let out = fake.run(args);
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: "),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
    let bad_plan = Fake::new().plan("port-forward 1 explode\n");
    let out = bad_plan.run(PF);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("unknown action `explode`"),
        "{}",
        out.stderr
    );
}
