//! The fake Kubernetes API server (`fake-apiserver`) as a test drives it: started on a free port
//! with a kubeconfig for it, its fault controls, and stopped when dropped.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

use super::net::http;
use super::process::{Collector, Proc};

/// A running fake API server.
pub struct FakeApi {
    /// Where it listens, `127.0.0.1:PORT`.
    pub addr: String,
    /// A kubeconfig whose one context (`e2e` unless `--context` says otherwise) points at it.
    pub kubeconfig: PathBuf,
    /// Its stdin: closing it (EOF) stops the server, which a test may check.
    pub stdin: ChildStdin,
    /// The process, killed when dropped whether or not it stopped by itself.
    pub proc: Proc,
}

impl FakeApi {
    /// Starts `bin` (the `fake-apiserver` binary) with its relay to the database at `db`, its
    /// kubeconfig written into `dir`, and `extra` arguments.
    pub fn start(bin: impl AsRef<OsStr>, dir: &Path, db: &str, extra: &[&str]) -> FakeApi {
        let kubeconfig = dir.join("kubeconfig");
        let mut cmd = Command::new(bin);
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

    /// A fault control or the state: `/_control/drop-streams`, `/_control/pod-phase?phase=P`,
    /// ...; its JSON answer, which must be a 200.
    pub fn control(&self, path: &str) -> serde_json::Value {
        let (code, body) = http(&self.addr, "POST", path);
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// What the server counted and holds: upgrades, open streams, the pod, proxy ports.
    pub fn state(&self) -> serde_json::Value {
        self.control("/_control/state")
    }
}
