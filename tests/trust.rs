//! Trust and deadlines. What the client checks before it says anything to whatever listens at its
//! socket path; that the daemon's directories are never reached through a link; that a daemon
//! puts back its socket and lock when something removes them; and that every command has a
//! deadline when the daemon does not answer.
//!
//! The other-user cases run as root and act as `nobody` with `setpriv`. They use a machine
//! without `RHIZOME_HOME` or `XDG_RUNTIME_DIR`, where the socket's directory is
//! `$TMPDIR/rhizome-$UID`: `TMPDIR` is a world-writable, sticky directory of the test's own, like
//! `/tmp`, so the machine's real `/tmp/rhizome-0` is never touched.

mod common;

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const NOBODY: u32 = 65534;

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether this test may act as another user: root only. Elsewhere it says so and is skipped,
/// except on CI, where a missing privilege is a failure.
fn privileged() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        !on_ci(),
        "this test must run as root on CI: it acts as another user"
    );
    eprintln!("skipped: needs root");
    false
}

/// `setpriv` as `nobody`, ready for the command to run.
fn as_nobody() -> Command {
    let mut command = Command::new("setpriv");
    command.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    command
}

/// A python3 that `nobody` can run (one under root's home, as pyenv's, is not), and setpriv.
fn tools_for_nobody() -> Option<PathBuf> {
    require_tool("setpriv")?;
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("python3"))
            .collect::<Vec<_>>()
    });
    let found = on_path
        .chain([PathBuf::from("/usr/bin/python3")])
        .filter(|candidate| candidate.is_file())
        .find(|python| {
            as_nobody()
                .arg(python)
                .args(["-c", ""])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    if found.is_none() {
        assert!(!on_ci(), "CI needs a python3 that another user can run");
        eprintln!("skipped: no python3 that another user can run");
    }
    found
}

/// A Unix socket listener in python that records every byte it receives and answers nothing
/// (or, given `greeting`, sends those bytes once the first frame came in, then nothing more).
const LISTENER: &str = r#"
import os, socket, sys
path, record, greeting = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
open(record, 'wb').close()
open(record + '.connections', 'w').close()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(64)
print('ready', flush=True)
while True:
    conn, _ = s.accept()
    with open(record + '.connections', 'a') as f:
        f.write('connection\n')
    conn.settimeout(30)
    received = b''
    greeted = not greeting
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            received += data
            with open(record, 'ab') as f:
                f.write(data)
            if not greeted and len(received) >= 4 and len(received) >= 4 + int.from_bytes(received[:4], 'big'):
                conn.sendall(greeting)
                greeted = True
    except OSError:
        pass
    conn.close()
"#;

/// A listener this test started; killed (by the pid it was started with) when dropped.
struct Listener {
    child: Child,
    record: PathBuf,
}

impl Listener {
    fn start(mut command: Command, python: &Path, socket: &Path, record: &Path) -> Listener {
        Listener::greeting(&mut command, python, socket, record, &[])
    }

    fn greeting(
        command: &mut Command,
        python: &Path,
        socket: &Path,
        record: &Path,
        greeting: &[u8],
    ) -> Listener {
        let hex: String = greeting.iter().map(|b| format!("{b:02x}")).collect();
        let mut child = command
            .arg(python)
            .args(["-c", LISTENER])
            .arg(socket)
            .arg(record)
            .arg(hex)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the listener starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let listener = Listener {
            child,
            record: record.to_path_buf(),
        };
        assert_eq!(line.trim(), "ready", "the listener did not start");
        listener
    }

    fn received(&self) -> Vec<u8> {
        fs::read(&self.record).unwrap()
    }

    fn connections(&self) -> usize {
        let mut name = self.record.clone().into_os_string();
        name.push(".connections");
        fs::read_to_string(name).unwrap().lines().count()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command under a limit of the test's own, so that a command that hangs fails the test
/// instead of hanging it; returns what it printed and how long it took.
fn run_limited(mut command: Command, limit: Duration) -> (Out, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let started = Instant::now();
    let mut child = command
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = started.elapsed();
    let out = Out {
        code,
        stdout: fs::read_to_string(stdout).unwrap(),
        stderr: fs::read_to_string(stderr).unwrap(),
    };
    (out, took)
}

/// The refusal every trust check ends in: one `error:` line that names `path` and `owner`, one
/// `hint:` line, exit 1.
fn assert_refused(out: &Out, path: &Path, owner: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one error line and one hint: {out:?}");
    assert!(lines[0].starts_with("error: "), "{out:?}");
    assert!(
        lines[0].contains(&path.display().to_string()),
        "names {}: {out:?}",
        path.display()
    );
    assert!(lines[0].contains(owner), "names {owner}: {out:?}");
    assert!(lines[1].starts_with("hint: "), "{out:?}");
    assert!(lines[1].contains("RHIZOME_HOME"), "{out:?}");
}

/// A machine without `RHIZOME_HOME` or `XDG_RUNTIME_DIR`: the socket lives in
/// `$TMPDIR/rhizome-$UID`, with this test's own shared `TMPDIR`.
struct SharedTmp {
    rh: Rhizome,
    tmp: tempfile::TempDir,
}

impl SharedTmp {
    fn new() -> SharedTmp {
        let tmp = tempfile::Builder::new()
            .prefix("rt")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        SharedTmp {
            rh: Rhizome::new(),
            tmp,
        }
    }

    /// Where rhizome puts its socket and lock here.
    fn runtime_dir(&self) -> PathBuf {
        self.tmp
            .path()
            .join(format!("rhizome-{}", nix::unistd::geteuid()))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.rh.command(args);
        command
            .env_remove("RHIZOME_HOME")
            .env_remove("XDG_RUNTIME_DIR")
            .env("TMPDIR", self.tmp.path())
            .env("HOME", self.rh.path())
            .env("XDG_STATE_HOME", self.rh.path().join("state-home"))
            .env("XDG_CONFIG_HOME", self.rh.path().join("config-home"));
        command
    }
}

/// Stops, by the pid in each lock file, any daemon that holds one of these locks when the test
/// ends: a daemon that today's code would start in a place it should have refused.
struct StopDaemonsAt(Vec<PathBuf>);

impl Drop for StopDaemonsAt {
    fn drop(&mut self) {
        for lock in &self.0 {
            if !held(lock) {
                continue;
            }
            let Some(pid) = fs::read_to_string(lock)
                .ok()
                .and_then(|text| text.trim().parse::<i32>().ok())
            else {
                continue;
            };
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while held(lock) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if held(lock) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// Whether some process holds the lock at `path`.
fn held(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock))
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

// Finding 1: the client trusts nothing that another user made.

#[test]
fn a_socket_directory_another_user_made_first_gets_not_one_byte() {
    if !privileged() {
        return;
    }
    let Some(python) = tools_for_nobody() else {
        return;
    };
    let shared = SharedTmp::new();
    let dir = shared.runtime_dir();
    let _stop = StopDaemonsAt(vec![dir.join("rhizome.lock")]);
    // Another user was first: the directory, open to all, and a listener in it.
    let made = as_nobody()
        .args(["mkdir", "-m", "0777"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(made.success());
    let record = shared.tmp.path().join("received");
    let listener = Listener::start(as_nobody(), &python, &dir.join("rhizome.sock"), &record);

    for args in [
        &["run", "--name", "web", "--", "sleep", "1"][..],
        &["ps"],
        &["daemon", "status"],
        &["daemon", "start"],
    ] {
        let (out, _) = run_limited(shared.command(args), Duration::from_secs(10));
        assert_refused(&out, &dir, "uid 65534");
    }
    assert_eq!(
        listener.received(),
        b"",
        "not one byte reached the listener"
    );
    assert_eq!(listener.connections(), 0, "the client did not even connect");
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["rhizome.sock"], "rhizome put nothing there");
}

#[test]
fn a_socket_served_by_another_user_is_refused_before_the_greeting() {
    if !privileged() {
        return;
    }
    let Some(python) = tools_for_nobody() else {
        return;
    };
    let rh = Rhizome::new();
    // The listener binds in a directory of its own, and its socket is then moved into ours: the
    // directory passes every check, only the peer's credentials tell.
    let theirs = tempfile::Builder::new()
        .prefix("rn")
        .tempdir_in("/tmp")
        .unwrap();
    nix::unistd::chown(theirs.path(), Some(NOBODY.into()), Some(NOBODY.into())).unwrap();
    let record = theirs.path().join("received");
    let listener = Listener::start(as_nobody(), &python, &theirs.path().join("s"), &record);
    let socket = rh.path().join("rhizome.sock");
    fs::rename(theirs.path().join("s"), &socket).unwrap();

    for args in [&["run", "--name", "web", "--", "sleep", "1"][..], &["ps"]] {
        let (out, _) = run_limited(rh.command(args), Duration::from_secs(10));
        assert_refused(&out, &socket, "uid 65534");
    }
    assert_eq!(listener.received(), b"", "not even the greeting was sent");
}

// Finding 2: directories are never reached through a link rhizome did not make.

#[test]
fn a_link_planted_at_the_socket_directory_is_not_followed() {
    if !privileged() {
        return;
    }
    if require_tool("setpriv").is_none() {
        return;
    }
    let shared = SharedTmp::new();
    let dir = shared.runtime_dir();
    let victim = shared.tmp.path().join("victim");
    fs::create_dir(&victim).unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o755)).unwrap();
    let _stop = StopDaemonsAt(vec![victim.join("rhizome.lock"), dir.join("rhizome.lock")]);
    let linked = as_nobody()
        .args(["ln", "-s"])
        .arg(&victim)
        .arg(&dir)
        .status()
        .unwrap();
    assert!(linked.success());

    for args in [&["daemon", "start"][..], &["ps"], &["daemon", "run"]] {
        let (out, _) = run_limited(shared.command(args), Duration::from_secs(10));
        assert_refused(&out, &dir, "uid 65534");
        assert!(out.stderr.contains("symbolic link"), "{out:?}");
    }
    assert_eq!(mode(&victim), 0o755, "the link's target was not tightened");
    assert_eq!(fs::read_dir(&victim).unwrap().count(), 0, "nor written to");
}

#[test]
fn directories_under_the_home_are_not_reached_through_links() {
    let rh = Rhizome::new();
    let victim = rh.path().join("victim");
    fs::create_dir(&victim).unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o755)).unwrap();
    let logs = rh.path().join("logs");
    std::os::unix::fs::symlink(&victim, &logs).unwrap();
    let (out, _) = run_limited(rh.command(["daemon", "start"]), Duration::from_secs(10));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.starts_with("error: "), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("{} is a symbolic link", logs.display())),
        "{out:?}"
    );
    assert!(out.stderr.contains("\nhint: "), "{out:?}");

    // A home given as a link is checked the same way: its path is trusted up to the link.
    let home = rh.path().join("home");
    std::os::unix::fs::symlink(&victim, &home).unwrap();
    let mut ps = rh.command(["ps"]);
    ps.env("RHIZOME_HOME", &home);
    let (out, _) = run_limited(ps, Duration::from_secs(10));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("is a symbolic link"), "{out:?}");

    assert_eq!(mode(&victim), 0o755, "the link's target was not tightened");
    assert_eq!(fs::read_dir(&victim).unwrap().count(), 0, "nor written to");
}

// Finding 10: files removed under a running daemon.

/// Ends a daemon that should have stopped by itself (SIGTERM, then SIGKILL), by the pid this
/// test read from its own lock file, if it is still a rhizome: declared before the `Rhizome`, it
/// runs after the harness has stopped whatever its lock names.
struct EndIfAlive(u32);

impl Drop for EndIfAlive {
    fn drop(&mut self) {
        let ours = || {
            let cmdline = fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
            alive(self.0) && String::from_utf8_lossy(&cmdline).contains("rhizome")
        };
        if !ours() {
            return;
        }
        let pid = Pid::from_raw(self.0 as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while ours() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if ours() {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

#[test]
fn a_removed_socket_comes_back_and_daemon_commands_find_the_daemon_without_it() {
    let (_end_old, _end_new);
    let rh = Rhizome::new();
    rh.start(["sleeper", "--count", "1000"]);
    let old = rh.daemon_pid().unwrap();
    _end_old = EndIfAlive(old);
    let socket = rh.path().join("rhizome.sock");

    fs::remove_file(&socket).unwrap();
    let out = rh.run(["daemon", "status"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains(&format!("pid       {old}")), "{out:?}");
    wait_for("the socket to come back", Duration::from_secs(5), || {
        socket.exists().then_some(())
    });
    assert_eq!(rh.ps()["count"], 1, "the same daemon, with its sleeper");
    assert_eq!(rh.daemon_pid(), Some(old));

    fs::remove_file(&socket).unwrap();
    let out = rh.run(["daemon", "restart"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let new = rh.daemon_pid().unwrap();
    _end_new = EndIfAlive(new);
    assert_ne!(new, old, "{out:?}");
    assert_eq!(out.stdout, format!("daemon restarted  pid={new}\n"));
    wait_for("the old daemon to exit", Duration::from_secs(5), || {
        (!alive(old)).then_some(())
    });

    fs::remove_file(&socket).unwrap();
    let out = rh.run(["daemon", "stop"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .starts_with(&format!("daemon stopped  pid={new}")),
        "{out:?}"
    );
    assert!(!rh.daemon_running());
    assert!(!alive(new));
}

#[test]
fn a_removed_lock_and_socket_come_back_and_no_second_daemon_starts() {
    let _end;
    let rh = Rhizome::new();
    rh.start(["sleeper", "--count", "1000"]);
    let pid = rh.daemon_pid().unwrap();
    _end = EndIfAlive(pid);
    let socket = rh.path().join("rhizome.sock");
    fs::remove_file(&socket).unwrap();
    fs::remove_file(rh.path().join("rhizome.lock")).unwrap();
    wait_for(
        "the socket and the lock to come back",
        Duration::from_secs(5),
        || (socket.exists() && rh.daemon_running() && rh.daemon_pid() == Some(pid)).then_some(()),
    );
    assert_eq!(rh.ps()["count"], 1, "the same daemon, with its sleeper");
    let out = rh.ok(["daemon", "start"]);
    assert_eq!(out, format!("daemon already running  pid={pid}\n"));
}

#[test]
fn a_daemon_started_while_both_files_were_gone_is_the_only_one_left() {
    let (_end_old, _end_new);
    let rh = Rhizome::new();
    rh.start(["run", "--restart", "always", "--", "sleep", "1000"]);
    let old = rh.daemon_pid().unwrap();
    _end_old = EndIfAlive(old);
    fs::remove_file(rh.path().join("rhizome.sock")).unwrap();
    fs::remove_file(rh.path().join("rhizome.lock")).unwrap();
    // At once, before the daemon can notice: this starts a second daemon for the same home.
    let out = rh.run(["ps", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    _end_new = EndIfAlive(rh.daemon_pid().unwrap());
    wait_for("one daemon to be left", Duration::from_secs(10), || {
        let holder = rh.daemon_pid()?;
        (rh.daemon_running() && (holder == old || !alive(old))).then_some(())
    });
    wait_for("the command to run once", Duration::from_secs(10), || {
        let ps = rh.ps();
        let running = ps["running"].as_array()?.len();
        let holder = rh.daemon_pid()?;
        (running == 1 && children_of(holder).len() == 1).then_some(())
    });
}

// Finding 12: deadlines.

/// Continues a stopped daemon when the test ends, before the harness stops it.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0 as i32), Signal::SIGCONT);
    }
}

const PROMPT: Duration = Duration::from_secs(6);

#[test]
fn a_stopped_daemon_is_reported_not_waited_for() {
    let rh = Rhizome::new();
    let (_, sleeper) = rh.start(["sleeper", "--count", "1000"]);
    let pid = rh.daemon_pid().unwrap();
    let _resume = Resume(pid);
    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();

    for args in [
        &["ps"][..],
        &["run", "--name", "web", "--", "sleep", "1"],
        &["logs", "1"],
        &["logs", "-f", "1"],
        &["kill", "1"],
    ] {
        let (out, took) = run_limited(rh.command(args), Duration::from_secs(20));
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert!(
            out.stderr
                .starts_with(&format!("error: the daemon (pid {pid}) is not answering")),
            "{args:?}: {out:?}"
        );
        assert!(took < PROMPT, "{args:?} took {took:?}");
    }

    let (out, took) = run_limited(rh.command(["daemon", "status"]), Duration::from_secs(20));
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stdout.contains("not answering"), "{out:?}");
    assert!(out.stdout.contains(&pid.to_string()), "{out:?}");
    assert!(took < PROMPT, "daemon status took {took:?}");

    // --timeout bounds the whole command, shorter than the connection's own deadline.
    let (out, took) = run_limited(
        rh.command([
            "forward",
            "--simulate",
            "--timeout",
            "0.5",
            "na-prod/billing-bookkeeper",
        ]),
        Duration::from_secs(20),
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(took < Duration::from_millis(1500), "forward took {took:?}");

    let (out, took) = run_limited(rh.command(["daemon", "stop"]), Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("not answering"), "{out:?}");
    assert!(out.stdout.contains("SIGTERM"), "{out:?}");
    assert!(took < Duration::from_secs(15), "daemon stop took {took:?}");
    assert!(!rh.daemon_running());
    assert!(!alive(pid));
    wait_for("the sleeper to be stopped", Duration::from_secs(5), || {
        (!alive(sleeper)).then_some(())
    });
}

#[test]
fn a_silent_listener_is_reported_not_waited_for() {
    let Some(python) = require_tool("python3") else {
        return;
    };
    let rh = Rhizome::new();
    let socket = rh.path().join("rhizome.sock");
    let _listener = Listener::start(
        Command::new("env"),
        &python,
        &socket,
        &rh.path().join("received"),
    );

    let (out, took) = run_limited(rh.command(["ps"]), Duration::from_secs(20));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.starts_with("error: the daemon") && out.stderr.contains("is not answering"),
        "{out:?}"
    );
    assert!(took < PROMPT, "ps took {took:?}");

    let (out, took) = run_limited(rh.command(["daemon", "status"]), Duration::from_secs(20));
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(took < PROMPT, "daemon status took {took:?}");

    // Nothing holds the lock, so there is no pid to signal: said, not guessed.
    let (out, took) = run_limited(rh.command(["daemon", "stop"]), Duration::from_secs(20));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("no daemon holds"), "{out:?}");
    assert!(took < PROMPT, "daemon stop took {took:?}");
}

#[test]
fn forward_timeout_bounds_a_daemon_that_greets_and_then_says_nothing() {
    let Some(python) = require_tool("python3") else {
        return;
    };
    let rh = Rhizome::new();
    let hello = postcard::to_stdvec(&rhizome::protocol::Response::Hello(
        rhizome::protocol::Hello::ours(),
    ))
    .unwrap();
    let mut frame = (hello.len() as u32).to_be_bytes().to_vec();
    frame.extend(hello);
    let _listener = Listener::greeting(
        &mut Command::new("env"),
        &python,
        &rh.path().join("rhizome.sock"),
        &rh.path().join("received"),
        &frame,
    );
    let (out, took) = run_limited(
        rh.command([
            "forward",
            "--simulate",
            "--timeout",
            "1",
            "na-prod/billing-bookkeeper",
        ]),
        Duration::from_secs(20),
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.starts_with("error: "), "{out:?}");
    assert!(took < Duration::from_secs(2), "forward took {took:?}");
}
