//! The files the fake keeps in `FAKE_KUBECTL_DIR`:
//! - `calls.log`: one JSON line per invocation,
//!   `{"pid":N,"argv":[...],"start":K}`; `K` is the 1-based start number of
//!   that subcommand, or 0 for an invocation rejected before it started
//!   (bad arguments, unknown context).
//! - `exec.count`, `logs.count`, `port-forward.count`: the start counters,
//!   incremented under an exclusive `flock`, so parallel starts never share a
//!   number; a subcommand's lines reach `calls.log` in start order.
//! - `pod.log`: the fake pod's log (what `logs` prints).
//! - `port-forward.pid`: the pid of the latest port-forward to print its
//!   Forwarding lines (written atomically).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: &Path) -> StateDir {
        StateDir {
            dir: dir.to_path_buf(),
        }
    }

    /// Counts a start of `subcommand` (if any) and logs the call; the start
    /// number (0 without a subcommand).
    pub fn record(&self, subcommand: Option<&str>, argv: &[String]) -> io::Result<u64> {
        let Some(sub) = subcommand else {
            self.log_call(argv, 0)?;
            return Ok(0);
        };
        let path = self.dir.join(format!("{sub}.count"));
        let mut counter = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| with_path(e, &path))?;
        counter.lock()?;
        let mut text = String::new();
        counter.read_to_string(&mut text)?;
        let start = text.trim().parse::<u64>().unwrap_or(0) + 1;
        counter.set_len(0)?;
        counter.seek(SeekFrom::Start(0))?;
        writeln!(counter, "{start}")?;
        // Still holding the counter's lock: calls.log stays in start order.
        self.log_call(argv, start)?;
        Ok(start)
    }

    fn log_call(&self, argv: &[String], start: u64) -> io::Result<()> {
        let argv = serde_json::to_string(argv)?;
        let pid = std::process::id();
        let line = format!("{{\"pid\":{pid},\"argv\":{argv},\"start\":{start}}}\n");
        self.append("calls.log", &line)
    }

    /// Appends to `pod.log`.
    pub fn append_pod_log(&self, text: &str) -> io::Result<()> {
        self.append("pod.log", text)
    }

    /// `pod.log`'s text; empty if it does not exist.
    pub fn pod_log(&self) -> io::Result<String> {
        match fs::read_to_string(self.dir.join("pod.log")) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
            other => other,
        }
    }

    /// Writes this process's pid to `name` (temp file, then rename).
    pub fn write_pid(&self, name: &str) -> io::Result<()> {
        let pid = std::process::id();
        let tmp = self.dir.join(format!(".{name}.{pid}.tmp"));
        fs::write(&tmp, format!("{pid}\n"))?;
        fs::rename(&tmp, self.dir.join(name))
    }

    /// One write of `text` in append mode under an exclusive lock.
    fn append(&self, name: &str, text: &str) -> io::Result<()> {
        let path = self.dir.join(name);
        let mut file: File = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| with_path(e, &path))?;
        file.lock()?;
        file.write_all(text.as_bytes())
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
