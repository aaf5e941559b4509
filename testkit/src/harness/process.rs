//! Child processes in tests: killed (by pid) and reaped when dropped, however the test ends;
//! their pipes read in the background; and what Linux's /proc says about process trees.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A child process that is killed (by its pid) and reaped when dropped.
pub struct Proc {
    pub child: Child,
    /// What it is, for the messages of a test that fails waiting on it.
    what: String,
}

impl Proc {
    /// Starts `cmd`, failing the test if it cannot.
    pub fn spawn(cmd: &mut Command, what: &str) -> Proc {
        Proc::try_spawn(cmd, what).unwrap_or_else(|e| panic!("cannot start {what}: {e}"))
    }

    /// Starts `cmd`, for callers that must not panic (a `Drop`).
    pub fn try_spawn(cmd: &mut Command, what: &str) -> std::io::Result<Proc> {
        Ok(Proc {
            child: cmd.spawn()?,
            what: what.to_string(),
        })
    }

    /// Waits until `timeout` for the process to end; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }

    /// Waits for the exit and reads both pipes (those that were piped) to their end, all within
    /// `timeout`, failing the test otherwise.
    pub fn finish(mut self, timeout: Duration) -> Out {
        let read_all = |pipe: Option<Box<dyn Read + Send>>| {
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
            });
            rx
        };
        let stdout = read_all(self.child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = read_all(self.child.stderr.take().map(|p| Box::new(p) as _));
        let started = Instant::now();
        let status = self
            .wait_timeout(timeout)
            .unwrap_or_else(|| panic!("{} did not finish within {timeout:?}", self.what));
        let left = timeout.saturating_sub(started.elapsed());
        let text = |rx: mpsc::Receiver<String>, pipe: &str| {
            rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "{} exited, but its {pipe} stayed open past {timeout:?}",
                    self.what
                )
            })
        };
        Out {
            code: status.code(),
            stdout: text(stdout, "stdout"),
            stderr: text(stderr, "stderr"),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Out {
    /// The exit code; `None` if a signal ended it.
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

/// Collects a pipe's text in the background; lines are also sent on a channel.
pub struct Collector {
    /// Everything read so far.
    pub text: Arc<Mutex<String>>,
    /// Each line as it comes, for `wait_line`.
    lines: mpsc::Receiver<String>,
}

impl Collector {
    pub fn new(pipe: impl Read + Send + 'static) -> Collector {
        let text = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let sink = text.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = String::new();
            while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                sink.lock().unwrap().push_str(&line);
                let _ = tx.send(line.trim_end().to_string());
                line.clear();
            }
        });
        Collector { text, lines }
    }

    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// The first line (from now on) for which `f` gives a value.
    pub fn wait_line<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&str) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(v) = f(&line) {
                        return Some(v);
                    }
                }
                Err(_) => return None,
            }
        }
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

/// SIGKILL to every process of the group `pgid`.
pub fn kill_group(pgid: u32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid as i32),
        nix::sys::signal::SIGKILL,
    );
}

/// Ends process groups when dropped: for children a test orphans on purpose.
pub struct GroupGuard(pub Vec<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        for pgid in &self.0 {
            kill_group(*pgid);
        }
    }
}
