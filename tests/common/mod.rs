//! What rhizome's tests add to the shared harness (`rhizome_testkit::harness`, re-exported here):
//! an isolated rhizome (its own `RHIZOME_HOME`) driven through the real binary, with a guard that
//! stops its daemon and children however the test ends, readers of rhizome's own output, a fake
//! cluster for `rhizome forward` (in `cluster`), and the real path, a database behind the fake
//! API server on the transport a test asks for (in `e2e`).
#![allow(dead_code)]

pub mod cluster;
pub mod disk;
pub mod e2e;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub use rhizome_testkit::harness::*;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_rhizome");

/// One isolated rhizome home. Dropping it stops its daemon and everything the daemon runs.
pub struct Rhizome {
    pub home: tempfile::TempDir,
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

    /// The status of process `id` as the `ps` table shows it (`exited(3)`), from its JSON.
    pub fn status(&self, id: u64) -> String {
        status_label(&self.process(id))
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

    /// Kills this home's daemon with SIGKILL, as a crash would, and waits until it is gone: its
    /// lock is free, or held by the next daemon, which a client still at work may start at once.
    /// Returns its pid.
    pub fn kill_daemon_hard(&self) -> u32 {
        let pid = self.daemon_pid().expect("a daemon");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::SIGKILL,
        )
        .unwrap();
        wait_for(
            "the killed daemon to be gone",
            Duration::from_secs(10),
            // Its lock is free, or another daemon's: every file it had is closed.
            || (!self.daemon_running() || self.daemon_pid() != Some(pid)).then_some(()),
        );
        pid
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
        let mut stop = self.command(["daemon", "stop"]);
        stop.stdout(Stdio::null()).stderr(Stdio::null());
        // `daemon stop` itself is killed (dropped) if it does not end in time.
        let stopped = Proc::try_spawn(&mut stop, "rhizome daemon stop")
            .ok()
            .and_then(|mut stop| stop.wait_timeout(Duration::from_secs(20)));
        if !stopped.is_some_and(|s| s.success()) && self.daemon_running() {
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

/// A process's status as the `ps` table shows it, made from its `ps --json` fields: the word,
/// with the exit code or the signal that ended it (`exited(3)`, `killed(SIGTERM)`, `failed`).
pub fn status_label(entry: &Value) -> String {
    let word = entry["status"].as_str().unwrap_or("?");
    match (&entry["exit_code"], entry["signal"].as_str()) {
        (Value::Number(code), _) => format!("{word}({code})"),
        (_, Some(signal)) => format!("{word}({signal})"),
        _ => word.to_string(),
    }
}

/// The columns of a table's header line: each one's name and where it runs, from its header to
/// two characters (the gap) before the next one's, the last one to the end of the line.
pub fn columns_of(header: &str) -> Vec<(&str, usize, Option<usize>)> {
    let starts: Vec<(usize, &str)> = header
        .char_indices()
        .filter(|&(i, c)| c != ' ' && (i == 0 || header.as_bytes()[i - 1] == b' '))
        .map(|(i, _)| (i, header[i..].split(' ').next().unwrap_or("")))
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &(start, name))| (name, start, starts.get(n + 1).map(|&(next, _)| next - 2)))
        .collect()
}

/// The text of `column` in the table row that starts with `id` (trimmed; empty if blank).
pub fn cell(table: &str, id: u64, column: &str) -> String {
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    let &(_, start, end) = columns_of(header)
        .iter()
        .find(|(name, ..)| *name == column)
        .unwrap_or_else(|| panic!("no column {column} in {header:?}"));
    let row = lines
        .find(|l| l.split(' ').next() == Some(&id.to_string()))
        .unwrap_or_else(|| panic!("no row {id} in\n{table}"));
    let chars: Vec<char> = row.chars().collect();
    let end = end.unwrap_or(chars.len()).min(chars.len());
    chars[start.min(end)..end]
        .iter()
        .collect::<String>()
        .trim()
        .to_string()
}

/// `text` with the cells of the named columns of a table replaced by `*` (left-aligned, the
/// column's width kept), for snapshots of tables with pids and uptimes. The header line is the
/// first line; blank cells stay blank.
pub fn mask_columns(text: &str, columns: &[&str]) -> String {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return String::new();
    };
    let spans: Vec<(usize, Option<usize>)> = columns_of(header)
        .into_iter()
        .filter(|(name, ..)| columns.contains(name))
        .map(|(_, start, end)| (start, end))
        .collect();
    let mut out = format!("{header}\n");
    for line in lines {
        let mut chars: Vec<char> = line.chars().collect();
        for &(start, end) in &spans {
            let end = end.unwrap_or(chars.len()).min(chars.len());
            if start >= end || chars[start..end].iter().all(|&c| c == ' ') {
                continue;
            }
            chars[start] = '*';
            chars[start + 1..end].iter_mut().for_each(|c| *c = ' ');
        }
        let masked: String = chars.into_iter().collect();
        out.push_str(masked.trim_end());
        out.push('\n');
    }
    out
}

/// Lines of a log without their time stamps.
pub fn messages(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| l.get(9..).unwrap_or("").to_string())
        .collect()
}

/// Writes one frame of rhizome's protocol: the body's length (4 bytes, big-endian), then the body.
pub fn send_frame(stream: &mut impl Write, body: &[u8]) {
    stream
        .write_all(&(body.len() as u32).to_be_bytes())
        .unwrap();
    stream.write_all(body).unwrap();
}

/// Reads one frame of rhizome's protocol, undecoded; `None` once the other end hung up.
pub fn read_frame(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

/// Writes this home's `rhizome.toml`.
pub fn write_config(rh: &Rhizome, text: &str) {
    std::fs::write(rh.path().join("rhizome.toml"), text).unwrap();
}

/// Every file under `dir` whose bytes contain `needle`: where a secret must not be.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => todo.push(path),
                Ok(t)
                    if t.is_file()
                        && std::fs::read(&path)
                            .is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle)) =>
                {
                    found.push(path)
                }
                _ => {}
            }
        }
    }
    found
}

/// A fake `op` (1Password's CLI) in `dir`: prints `secret` for `read`, fails otherwise.
pub fn fake_op(dir: &Path, secret: &str) -> PathBuf {
    let op = dir.join("op");
    std::fs::write(
        &op,
        format!(
            "#!/bin/sh\nif [ \"$1\" = read ]; then echo '{secret}'; exit 0; fi\necho \"[ERROR] unknown command $1\" >&2\necho 'op: giving up' >&2\nexit 3\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&op, std::fs::Permissions::from_mode(0o755)).unwrap();
    op
}
