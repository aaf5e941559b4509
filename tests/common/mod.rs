//! The test harness: an isolated rhizome (its own `RHIZOME_HOME`) driven through the real binary,
//! with a guard that stops its daemon and children however the test ends.
#![allow(dead_code)]

pub mod e2e;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_rhizome");

/// One isolated rhizome home. Dropping it stops its daemon and everything the daemon runs.
pub struct Rhizome {
    pub home: tempfile::TempDir,
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Out {
    fn from(output: Output) -> Out {
        Out {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Rhizome {
    pub fn new() -> Rhizome {
        // Short, so the socket path stays far below the limit on every OS.
        let home = tempfile::Builder::new()
            .prefix("rh")
            .tempdir_in("/tmp")
            .expect("a temporary directory");
        Rhizome { home }
    }

    pub fn path(&self) -> &Path {
        self.home.path()
    }

    /// A `rhizome` command for this home, with none of the caller's rhizome settings.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("RHIZOME_HOME", self.path())
            .env_remove("RHIZOME_CONFIG")
            .env_remove("RHIZOME_KUBECTL")
            .env_remove("RHIZOME_SIMULATE")
            .env_remove("SLEEP_OVERRIDE")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }

    /// Runs a command to completion.
    pub fn run<I, S>(&self, args: I) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args).output().expect("rhizome runs").into()
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let out = self.run(args);
        assert_eq!(
            out.code,
            Some(0),
            "`rhizome {}` failed: {out:?}",
            shown.join(" ")
        );
        out.stdout
    }

    /// `ps --all --json`.
    pub fn ps(&self) -> Value {
        serde_json::from_str(&self.ok(["ps", "--all", "--json"])).expect("ps --json prints JSON")
    }

    /// Every process `ps --all --json` lists, running and finished.
    pub fn processes(&self) -> Vec<Value> {
        let ps = self.ps();
        let mut all: Vec<Value> = ps["running"].as_array().cloned().unwrap_or_default();
        all.extend(ps["finished"].as_array().cloned().unwrap_or_default());
        all
    }

    /// The entry with this id in `ps --all --json`.
    pub fn process(&self, id: u64) -> Value {
        self.processes()
            .into_iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("no process with id {id} in ps --all"))
    }

    /// Starts a process with `run` and returns its id and pid from the `started` line.
    pub fn start<I, S>(&self, args: I) -> (u64, u32)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let line = self.ok(args);
        parse_started(&line)
    }

    /// The pid written into the lock file by the last daemon.
    pub fn daemon_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.path().join("rhizome.lock"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether a daemon holds this home's lock.
    pub fn daemon_running(&self) -> bool {
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path().join("rhizome.lock"))
        else {
            return false;
        };
        match file.try_lock() {
            Ok(()) => false,
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(err) => panic!("could not test the lock: {err:?}"),
        }
    }

    /// The log of process `id`, as `rhizome logs` prints it.
    pub fn logs(&self, target: &str) -> String {
        self.ok(["logs", target])
    }

    /// The log of `target` once its run has ended (its `subprocess finished` line is in).
    pub fn finished_log(&self, target: &str) -> String {
        wait_for(
            &format!("{target} to finish"),
            Duration::from_secs(10),
            || {
                let log = self.logs(target);
                log.contains("subprocess finished").then_some(log)
            },
        )
    }
}

impl Drop for Rhizome {
    fn drop(&mut self) {
        if !self.daemon_running() {
            return;
        }
        let stopped = self
            .command(["daemon", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
            .and_then(|mut child| {
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => return Some(status.success()),
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return None;
                        }
                    }
                }
            });
        if stopped != Some(true) && self.daemon_running() {
            // The daemon would not stop: end its children's groups, then the daemon, by pid.
            if let Some(pid) = self.daemon_pid() {
                for child in children_of(pid) {
                    kill_group(child);
                }
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::SIGKILL,
                );
            }
        }
    }
}

/// The id and pid in a `started NAME  id=N  pid=P` line.
pub fn parse_started(line: &str) -> (u64, u32) {
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
            .to_string()
    };
    (
        field("id=").parse().unwrap(),
        field("pid=").parse().unwrap(),
    )
}

/// Polls `check` every 10 ms until it returns `Some`, failing the test with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok(),
    }
}

/// Live processes whose process group is `pgid` (Linux: read from /proc).
pub fn group_members(pgid: u32) -> Vec<u32> {
    procs()
        .filter(|(_, _, group)| *group == pgid)
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Live processes whose parent is `ppid`.
pub fn children_of(ppid: u32) -> Vec<u32> {
    procs()
        .filter(|(_, parent, _)| *parent == ppid)
        .map(|(pid, _, _)| pid)
        .collect()
}

/// (pid, ppid, pgid) of every live, non-zombie process.
fn procs() -> impl Iterator<Item = (u32, u32, u32)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (_, rest) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.first() == Some(&"Z") {
                return None;
            }
            Some((
                pid,
                fields.get(1)?.parse().ok()?,
                fields.get(2)?.parse().ok()?,
            ))
        })
}

pub fn kill_group(pgid: u32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid as i32),
        nix::sys::signal::SIGKILL,
    );
}

/// Ends a process group when dropped: for children a test orphans on purpose.
pub struct GroupGuard(pub Vec<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        for pgid in &self.0 {
            kill_group(*pgid);
        }
    }
}

/// Finds an external tool on PATH. Missing: `None` with a note on a laptop; a failure on CI.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").map(|v| v != "true").unwrap_or(true),
            "`{name}` is required on CI but was not found on PATH"
        );
        eprintln!("SKIPPED: `{name}` is not on PATH; install it to run this test");
    }
    found
}

/// Lines of a log without their time stamps.
pub fn messages(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| l.get(9..).unwrap_or("").to_string())
        .collect()
}

/// A port that was free a moment ago, chosen below the kernel's ephemeral range (32768 and up on
/// Linux), so that no process binding "any port" in the meantime can take it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id() % 6_000 * 2;
    loop {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (20_000 + (offset + step * 7) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Writes this home's `rhizome.toml`.
pub fn write_config(rh: &Rhizome, text: &str) {
    std::fs::write(rh.path().join("rhizome.toml"), text).unwrap();
}

/// Sends `bytes` through `addr` and reads back as many (the far end echoes), writing and reading
/// at the same time so that neither side's buffers fill.
pub fn echo_round_trip(addr: &str, bytes: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let payload = bytes.to_vec();
    let sender = std::thread::spawn(move || {
        writer.write_all(&payload).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::with_capacity(bytes.len());
    stream.read_to_end(&mut back).unwrap();
    sender.join().unwrap();
    back
}

/// Random bytes, from the kernel.
pub fn random_bytes(len: usize) -> Vec<u8> {
    use std::io::Read;
    let mut bytes = vec![0u8; len];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
}

/// A TCP echo server on a free port, for as long as the test runs.
pub fn echo_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = conn.try_clone().unwrap();
                let mut writer = conn;
                let _ = std::io::copy(&mut reader, &mut writer);
                let _ = writer.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

/// A binary of the test kit (`testkit/`), built by `cargo test --workspace` next to this test's
/// own binary. Missing: `None` with a note on a laptop; a failure on CI.
pub fn testkit_bin(name: &str) -> Option<PathBuf> {
    let dir = std::env::current_exe()
        .ok()?
        .parent()?
        .parent()?
        .to_path_buf();
    let path = dir.join(name);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").map(|v| v != "true").unwrap_or(true),
        "{} is required on CI; `cargo test --workspace` builds it",
        path.display()
    );
    eprintln!(
        "SKIPPED: {} is not built; run `cargo test --workspace`",
        path.display()
    );
    None
}

/// Finds a file a test needs that is not a program on PATH (bash-completion's script, say).
/// Missing: `None` with a note on a laptop; a failure on CI, like `require_tool`.
pub fn require_file(path: &str, package: &str) -> Option<PathBuf> {
    let path = PathBuf::from(path);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").map(|v| v != "true").unwrap_or(true),
        "{} (Debian package {package}) is required on CI but is missing",
        path.display()
    );
    eprintln!(
        "SKIPPED: {} is missing; install {package} to run this test",
        path.display()
    );
    None
}
