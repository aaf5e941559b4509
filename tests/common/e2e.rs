//! The real path for the transport tests (issue 11): a database behind testkit's fake API server
//! (HTTPS with its test CA, the token of its exec credential plugin), a home whose one target
//! `e2e/db` goes through it on the transport a test asks for, the kubectl rhizome is given (the
//! real one, or the fake kubectl as a tripwire that fails and logs every call), and timed
//! connections through the tunnel.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::*;

/// The Cloud SQL instance of `e2e/db`, the one the fake's `exec` recognises.
pub const INSTANCE: &str = "e2e-project:us-central1:db";

/// The kubectl that rhizome is given (`RHIZOME_KUBECTL`).
pub enum Kubectl {
    /// A real kubectl binary.
    Real(PathBuf),
    /// testkit's fake kubectl, whose every `exec` and `port-forward` fails: a native tunnel must
    /// never call it, and its call log says whether anything did.
    Tripwire,
}

/// What rhizome is given as its kubectl, resolved.
enum KubectlBin {
    Real(PathBuf),
    Tripwire {
        bin: PathBuf,
        dir: tempfile::TempDir,
    },
}

/// A fake cluster in front of a database, and a home configured for it. Fields drop in order:
/// the home's daemon stops before the server and the database go.
pub struct E2e {
    pub rh: Rhizome,
    pub api: FakeApi,
    /// The local port of `e2e/db`.
    pub port: u16,
    kubectl: KubectlBin,
    /// The server's kubeconfig, its plugin and its token file.
    pub dir: tempfile::TempDir,
    /// The bulk server behind the fake, for [`E2e::bulk`].
    pub bulk: Option<BulkServer>,
    _db: Option<MariaDb>,
}

impl E2e {
    /// MariaDB (with `shop.orders`) behind the fake API server started with `server_args`;
    /// `None` (a skip) without MariaDB, kubectl or the test kit's binaries.
    pub fn mariadb(transport: Option<&str>, kubectl: Kubectl, server_args: &[&str]) -> Option<E2e> {
        let db = MariaDb::start()?;
        let addr = db.addr();
        E2e::new(&addr, Some(db), None, transport, kubectl, server_args)
    }

    /// The harness's bulk server behind the fake API server, for byte-exact bulk reads.
    pub fn bulk(transport: Option<&str>, kubectl: Kubectl, server_args: &[&str]) -> Option<E2e> {
        let bulk = BulkServer::start();
        E2e::new(
            &bulk.addr.to_string(),
            None,
            Some(bulk),
            transport,
            kubectl,
            server_args,
        )
    }

    fn new(
        db_addr: &str,
        db: Option<MariaDb>,
        bulk: Option<BulkServer>,
        transport: Option<&str>,
        kubectl: Kubectl,
        server_args: &[&str],
    ) -> Option<E2e> {
        let kubectl = match kubectl {
            Kubectl::Real(bin) => KubectlBin::Real(bin),
            Kubectl::Tripwire => {
                let dir = tempfile::tempdir().unwrap();
                std::fs::write(
                    dir.path().join("plan"),
                    "exec * fail\nport-forward * fail\n",
                )
                .unwrap();
                KubectlBin::Tripwire {
                    bin: testkit_bin("fake-kubectl")?,
                    dir,
                }
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let api = FakeApi::start(
            testkit_bin("fake-apiserver")?,
            dir.path(),
            db_addr,
            server_args,
        );
        let e2e = E2e {
            rh: Rhizome::new(),
            api,
            port: free_port(),
            kubectl,
            dir,
            bulk,
            _db: db,
        };
        let forward = transport
            .map(|t| format!("transport = \"{t}\"\n"))
            .unwrap_or_default();
        e2e.configure(&forward, "", "", &e2e.api.kubeconfig.clone());
        Some(e2e)
    }

    /// Writes the home's config: `forward` lines in `[forward]`, `env` lines in
    /// `[environments.e2e]`, `target` lines in `e2e/db`'s table, and `kubeconfig` as the
    /// environment's.
    pub fn configure(&self, forward: &str, env: &str, target: &str, kubeconfig: &Path) {
        write_config(
            &self.rh,
            &format!(
                "[forward]\nbackoff_max_secs = 1\n{forward}\n[environments.e2e]\ncontext = \"e2e\"\nnamespace = \"e2e\"\ndeployment = \"db-proxy\"\nkubeconfig = \"{}\"\n{env}\n[environments.e2e.databases.db]\nsql_connection = \"{INSTANCE}\"\nlocal_port = {}\n{target}",
                kubeconfig.display(),
                self.port
            ),
        );
    }

    /// A `rhizome` command for the home, with its kubectl (and, for the real one, a discovery
    /// cache of its own).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.rh.command(args);
        command
            .env("HOME", self.rh.path())
            .env("KUBECACHEDIR", self.rh.path().join("kube-cache"))
            .env_remove("KUBECONFIG");
        match &self.kubectl {
            KubectlBin::Real(bin) => {
                command.env("RHIZOME_KUBECTL", bin);
            }
            KubectlBin::Tripwire { bin, dir } => {
                command
                    .env("RHIZOME_KUBECTL", bin)
                    .env("FAKE_KUBECTL_DIR", dir.path())
                    .env("FAKE_KUBECTL_PLAN", dir.path().join("plan"));
            }
        }
        command
    }

    /// `rhizome forward e2e/db` with `extra` arguments.
    pub fn forward(&self, extra: &[&str]) -> Out {
        let mut args = vec!["forward", "e2e/db"];
        args.extend_from_slice(extra);
        self.command(&args).output().unwrap().into()
    }

    /// `forward`, which must print the URL.
    pub fn forward_ok(&self, extra: &[&str]) {
        let out = self.forward(extra);
        assert_eq!(out.code, Some(0), "{out:?}\n{}", self.log());
        assert_eq!(out.stdout, format!("mysql://127.0.0.1:{}\n", self.port));
    }

    /// The tunnel's entry in `ps --json`.
    pub fn entry(&self) -> Value {
        let ps = self.rh.ps();
        ps["running"]
            .as_array()
            .and_then(|r| r.iter().find(|p| p["name"] == "e2e/db"))
            .cloned()
            .unwrap_or_else(|| panic!("e2e/db is not running: {ps}"))
    }

    pub fn restarts(&self) -> u64 {
        self.entry()["restarts"].as_u64().expect("restarts")
    }

    /// The tunnel's log, as `rhizome logs e2e/db` prints it.
    pub fn log(&self) -> String {
        self.rh.run(["logs", "e2e/db"]).stdout
    }

    /// The tunnel's log lines without their time stamps.
    pub fn log_messages(&self) -> Vec<String> {
        messages(&self.log())
    }

    /// The first line of the tunnel's log (its time stamp off) that `matches`, waited for up to
    /// 10 s, as the log is written while things happen; the test fails, showing the log, if
    /// there is none. `what` says what the line should say.
    pub fn logged(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        poll(Duration::from_secs(10), || {
            self.log_messages().into_iter().find(|l| matches(l))
        })
        .unwrap_or_else(|| panic!("no line {what} in the tunnel's log:\n{}", self.log()))
    }

    /// The tripwire's calls: every time anything ran it as kubectl.
    pub fn tripwire_calls(&self) -> Vec<KubectlCall> {
        match &self.kubectl {
            KubectlBin::Tripwire { dir, .. } => kubectl_calls(dir.path()),
            KubectlBin::Real(_) => panic!("this home has the real kubectl"),
        }
    }

    /// No kubectl ran for this home, and its daemon has no child process: the native transport
    /// is all in the daemon.
    pub fn assert_no_kubectl(&self) {
        if let KubectlBin::Tripwire { .. } = self.kubectl {
            assert_eq!(self.tripwire_calls(), vec![], "no kubectl ran");
        }
        let daemon = self.rh.daemon_pid().expect("a daemon");
        let children: Vec<String> = children_of(daemon)
            .into_iter()
            .map(|pid| cmdline(pid).join(" "))
            .collect();
        assert_eq!(children, Vec::<String>::new(), "the daemon runs no process");
    }

    /// A kubectl port-forward carries the tunnel: the pid `ps` shows is one, alive.
    pub fn assert_kubectl_runs(&self) {
        let entry = self.entry();
        let pid = entry["pid"]
            .as_u64()
            .unwrap_or_else(|| panic!("no pid: {entry}")) as u32;
        let argv = cmdline(pid);
        assert!(
            argv.first().is_some_and(|a| a.contains("kubectl"))
                && argv.iter().any(|a| a == "port-forward"),
            "pid {pid} is {argv:?}, not a kubectl port-forward: {entry}"
        );
    }

    /// `len` bytes of `seed` from the bulk server through the tunnel, checked byte for byte.
    pub fn bulk_read(&self, seed: u64, len: usize) -> Result<(), String> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| format!("connect: {e}"))?;
        bulk_ask(&mut stream, seed, len, Duration::ZERO).map_err(|e| format!("ask: {e}"))?;
        read_expecting(&mut stream, &bulk_bytes(seed, len), 0)
    }

    /// The current pod and its proxy's port, as the fake says.
    pub fn pod_and_port(&self) -> (String, u16) {
        let state = self.api.state();
        let pod = state["pod"].as_str().expect("a pod").to_string();
        let port = state["proxy_ports"][0].as_u64().expect("a proxy") as u16;
        (pod, port)
    }

    /// SQL through the tunnel, the `mariadb` client killed if no answer came within `timeout`.
    pub fn query_within(&self, sql: &str, timeout: Duration) -> Result<String, String> {
        query_within(self.port, sql, timeout)
    }
}

/// A process's command line, from /proc.
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// SQL through 127.0.0.1:`port` with the `mariadb` client, killed if no answer came within
/// `timeout`: its rows, or why not.
pub fn query_within(port: u16, sql: &str, timeout: Duration) -> Result<String, String> {
    let mut cmd = Command::new("mariadb");
    cmd.args(["-h", "127.0.0.1", "-P", &port.to_string(), "--skip-ssl"])
        .args(["-u", "root", "--batch", "--skip-column-names"])
        .arg(format!("--connect-timeout={}", timeout.as_secs().max(1)))
        .args(["-e", sql])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut proc = Proc::spawn(&mut cmd, "mariadb");
    let Some(status) = proc.wait_timeout(timeout) else {
        return Err(format!("no answer within {timeout:?}"));
    };
    let read = |pipe: Option<&mut dyn Read>| {
        let mut text = String::new();
        if let Some(pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    };
    let stdout = read(proc.child.stdout.as_mut().map(|p| p as &mut dyn Read));
    let stderr = read(proc.child.stderr.as_mut().map(|p| p as &mut dyn Read));
    if status.success() {
        Ok(stdout)
    } else {
        Err(stderr)
    }
}
