//! Helpers for tests that run real processes against `fake-apiserver`:
//! child processes killed by pid on drop, background pipe collectors,
//! deadline-bounded polling, a TCP echo "database", the fake API server
//! itself, and raw HTTP requests to its control API.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- processes

/// A child process that is killed (by its pid) and reaped when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, what: &str) -> Proc {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Proc { child }
    }

    /// Waits for the exit code until `timeout`; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status.code().unwrap_or(-1)),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
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

/// Collects a pipe's text in the background; lines are also sent on a channel.
pub struct Collector {
    pub text: Arc<Mutex<String>>,
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

/// Polls `f` every 10 ms until it gives a value or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------- echo "database"

/// A TCP echo server on a free port, served by a background thread.
pub fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || {
                let mut buf = [0u8; 64 * 1024];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

// ---------------------------------------------------------------- fake API server

pub struct FakeApi {
    pub addr: String,
    pub kubeconfig: PathBuf,
    // Dropping stdin (EOF) also stops the server; the Proc kills it anyway.
    pub stdin: ChildStdin,
    pub proc: Proc,
}

impl FakeApi {
    pub fn start(dir: &Path, db: &str, extra: &[&str]) -> FakeApi {
        let kubeconfig = dir.join("kubeconfig");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"));
        cmd.arg("--db")
            .arg(db)
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut proc = Proc::spawn(&mut cmd, "fake-apiserver");
        let stdin = proc.child.stdin.take().unwrap();
        let out = Collector::new(proc.child.stdout.take().unwrap());
        let addr = out
            .wait_line(Duration::from_secs(10), |l| {
                l.strip_prefix("listening on ").map(str::to_string)
            })
            .expect("fake-apiserver did not print `listening on ADDR`");
        assert!(kubeconfig.exists(), "kubeconfig not written");
        FakeApi {
            addr,
            kubeconfig,
            stdin,
            proc,
        }
    }

    pub fn control(&self, path: &str) -> serde_json::Value {
        let (code, body) = http(&self.addr, "POST", path);
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    pub fn state(&self) -> serde_json::Value {
        self.control("/_control/state")
    }
}

/// One raw HTTP/1.1 request with `Connection: close`; (status, body).
pub fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}
