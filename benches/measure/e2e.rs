//! The real path, for the figures that need one: a throwaway MariaDB behind the test kit's fake
//! API server (HTTPS with its test CA, a token from its exec credential plugin, as a GKE cluster
//! is), the real kubectl (the newest the Cloud SDK ships beside the one on PATH), rhizome homes
//! whose targets point there, and what a user does by hand with bare kubectl: exec of the connect
//! command, logs, port-forward.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// The Cloud SQL instance the fake pod's proxy answers to.
pub const INSTANCE: &str = "e2e-project:us-central1:db";

/// The fake cluster in front of MariaDB, and the kubectl to drive it with.
pub struct Cluster {
    /// Declared before `db` (fields drop in order): the server goes before what it relays to.
    pub api: FakeApi,
    pub db: MariaDb,
    /// The real kubectl the bare side runs and rhizome's kubectl transport is given.
    pub kubectl: PathBuf,
    /// Where the fake wrote its kubeconfig and credential plugin; removed last.
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Builds the fake API server (`cargo bench` builds only rhizome's own binaries) and starts
    /// it in front of a new MariaDB; `None`, having said why, without MariaDB or kubectl.
    pub fn start() -> Option<Cluster> {
        let built = Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", "rhizome-testkit"])
            .args(["--bin", "fake-apiserver"])
            .status()
            .expect("cargo runs");
        assert!(built.success(), "building the fake API server failed");
        let kubectl = kubectl_versions()?.last().cloned()?;
        let db = MariaDb::start()?;
        // The figures close connections right after the greeting by the hundred; MariaDB would
        // count each against the relay's host and block it after 100.
        db.sql_direct("SET GLOBAL max_connect_errors = 4294967295")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let api = FakeApi::start(testkit_bin("fake-apiserver")?, dir.path(), &db.addr(), &[]);
        Some(Cluster {
            api,
            db,
            kubectl,
            _dir: dir,
        })
    }

    /// What a command run on behalf of `home` is given: its own HOME (so kubectl's discovery
    /// cache is that home's, warm after the first call), the fake's kubeconfig, and the kubectl
    /// rhizome's kubectl transport runs.
    pub fn env<'a>(&self, command: &'a mut Command, home: &Path) -> &'a mut Command {
        command
            .env("HOME", home)
            .env("KUBECACHEDIR", home.join("kube-cache"))
            .env("KUBECONFIG", &self.api.kubeconfig)
            .env("RHIZOME_KUBECTL", &self.kubectl)
    }

    /// A `rhizome` command for `rh`, with this cluster's environment.
    pub fn rhizome<const N: usize>(&self, rh: &Rhizome, args: [&str; N]) -> Command {
        let mut command = rh.command(args);
        self.env(&mut command, rh.path());
        command
    }

    /// `kubectl --kubeconfig K --context e2e --namespace e2e ARGS`, as rhizome's kubectl
    /// transport starts it.
    pub fn kubectl(&self, home: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.kubectl);
        command
            .arg("--kubeconfig")
            .arg(&self.api.kubeconfig)
            .args(["--context", "e2e", "--namespace", "e2e"])
            .args(args)
            .stdin(Stdio::null());
        self.env(&mut command, home);
        command
    }

    /// One `[environments.NAME]` table pointing at the fake, with `transport` if given, and a
    /// database target (its own free local port) for each of `targets`.
    pub fn environment(
        &self,
        name: &str,
        transport: Option<&str>,
        targets: impl IntoIterator<Item = String>,
    ) -> String {
        let mut text = format!(
            "[environments.{name}]\ncontext = \"e2e\"\nnamespace = \"e2e\"\ndeployment = \"db-proxy\"\nkubeconfig = {:?}\n",
            self.api.kubeconfig.display().to_string()
        );
        if let Some(transport) = transport {
            text.push_str(&format!("transport = \"{transport}\"\n"));
        }
        for target in targets {
            text.push_str(&format!(
                "\n[environments.{name}.databases.{target}]\nsql_connection = \"{INSTANCE}\"\n"
            ));
        }
        text.push('\n');
        text
    }

    /// `rhizome forward TARGET -q` for `rh`: how long it took to print the URL, and the local
    /// port in it.
    pub fn forward(&self, rh: &Rhizome, target: &str) -> (Duration, u16) {
        let mut command = self.rhizome(rh, ["forward", target, "-q"]);
        let start = Instant::now();
        let out = command.output().expect("rhizome runs");
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "forward {target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap();
        (took, url_port(&url))
    }

    /// The three steps of a first forward done by hand, each timed: `kubectl exec` of the connect
    /// command, `kubectl logs` (where the proxy's port is read), `kubectl port-forward` to its
    /// `Forwarding from` line. The forwarder keeps running until the `Bare` is dropped.
    pub fn by_hand(&self, home: &Path) -> ([Duration; 3], Bare) {
        let exec = self.kubectl(
            home,
            &["exec", "deploy/db-proxy", "--", "/connect.sh", INSTANCE],
        );
        let (exec_took, _) = run_timed(exec);
        let logs = self.kubectl(home, &["logs", "deploy/db-proxy", "--tail=500"]);
        let (logs_took, log) = run_timed(logs);
        let pattern = regex::Regex::new(&format!(
            r"\[{}\] Listening on [^ ]+:(\d+)",
            regex::escape(INSTANCE)
        ))
        .unwrap();
        let remote = rhizome::forward::kubectl::proxy_port(&pattern, &log)
            .unwrap_or_else(|| panic!("no proxy port in the pod's log:\n{log}"));
        let (forward_took, bare) = self.port_forward(home, remote);
        ([exec_took, logs_took, forward_took], bare)
    }

    /// Bare `kubectl port-forward deploy/db-proxy 0:REMOTE` (rhizome's own arguments), timed to
    /// its `Forwarding from` line.
    pub fn port_forward(&self, home: &Path, remote: u16) -> (Duration, Bare) {
        let mut command = self.kubectl(
            home,
            &[
                "port-forward",
                "deploy/db-proxy",
                &format!("0:{remote}"),
                "--address",
                "127.0.0.1",
            ],
        );
        command.stdout(Stdio::piped()).stderr(Stdio::null());
        let start = Instant::now();
        let mut kubectl = Proc::spawn(&mut command, "kubectl port-forward");
        let mut lines = BufReader::new(kubectl.child.stdout.take().unwrap()).lines();
        let line = lines
            .next()
            .expect("kubectl port-forward printed nothing")
            .unwrap();
        let took = start.elapsed();
        let port = rhizome::forward::kubectl::forwarding_port(&line)
            .unwrap_or_else(|| panic!("not a Forwarding line: {line:?}"));
        // Its later lines (`Handling connection for N`) must not fill the pipe and stall it.
        std::thread::spawn(move || for _ in lines {});
        (took, Bare { kubectl, port })
    }

    /// The port the fake pod's proxy listens on (after a first exec).
    pub fn proxy_port(&self) -> u16 {
        self.api.state()["proxy_ports"][0]
            .as_u64()
            .expect("a proxy was started") as u16
    }
}

/// A bare kubectl port-forward, killed when dropped.
pub struct Bare {
    kubectl: Proc,
    /// The local port it forwards from.
    pub port: u16,
}

impl Bare {
    /// The kubectl process's pid.
    pub fn pid(&self) -> u32 {
        self.kubectl.child.id()
    }
}

/// Runs `command` to a successful end: how long it took, and its stdout.
fn run_timed(mut command: Command) -> (Duration, String) {
    let start = Instant::now();
    let out = command.output().expect("kubectl runs");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The local port in a URL like `mysql://127.0.0.1:PORT` (a user and a path allowed).
pub fn url_port(url: &str) -> u16 {
    let rest = url.trim().split_once("://").map_or(url, |(_, rest)| rest);
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, hp)| hp);
    let host_port = host_port.split('/').next().unwrap_or(host_port);
    host_port
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in the URL {url:?}"))
}

/// From connecting to 127.0.0.1:`port` to the first byte of the MariaDB greeting; the
/// connection is closed then.
pub fn greeting(port: u16) -> Duration {
    let start = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8];
    stream
        .read_exact(&mut byte)
        .unwrap_or_else(|e| panic!("no greeting through 127.0.0.1:{port}: {e}"));
    start.elapsed()
}

/// `mariadb --batch -e SQL` through 127.0.0.1:`port`: how long it took, and how many bytes of
/// rows it printed.
pub fn read_through(port: u16, sql: &str) -> (Duration, u64) {
    let start = Instant::now();
    let mut child = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-P", &port.to_string()])
        .args(["-u", "root", "--skip-ssl", "--batch", "-e", sql])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("mariadb runs");
    let bytes = std::io::copy(&mut child.stdout.take().unwrap(), &mut std::io::sink()).unwrap();
    let status = child.wait().unwrap();
    let took = start.elapsed();
    assert!(status.success(), "mariadb through port {port} failed");
    (took, bytes)
}

/// What carries the running tunnel to `target` (`ENV/NAME`), as `ps --json` says.
pub fn transport_of(rh: &Rhizome, target: &str) -> Option<String> {
    rh.ps()["running"]
        .as_array()?
        .iter()
        .find(|p| p["tunnel"]["target"] == target)?["transport"]
        .as_str()
        .map(str::to_string)
}

/// The result of `sql` read through 127.0.0.1:`port` by a minimal client of MariaDB's protocol
/// (log in as root with no password, one query, every packet read and dropped, quit): the path's
/// own throughput, without the `mariadb` client's formatting of rows. How long from connect to
/// the last packet, and the bytes of its row packets.
pub fn raw_read(port: u16, sql: &str) -> (Duration, u64) {
    use std::io::Write;
    let start = Instant::now();
    let stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut payload = Vec::new();
    let mut packet = |payload: &mut Vec<u8>| {
        let mut header = [0u8; 4];
        reader.read_exact(&mut header).expect("a packet's header");
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        payload.resize(len, 0);
        reader.read_exact(payload).expect("a packet's payload");
    };
    let send = |writer: &mut TcpStream, seq: u8, body: &[u8]| {
        let len = (body.len() as u32).to_le_bytes();
        writer.write_all(&[len[0], len[1], len[2], seq]).unwrap();
        writer.write_all(body).unwrap();
    };
    packet(&mut payload);
    assert_eq!(payload.first(), Some(&10), "a protocol 10 greeting");
    // HandshakeResponse41: LONG_PASSWORD | PROTOCOL_41 | SECURE_CONNECTION, 16 MiB packets,
    // utf8, 23 reserved bytes, the user, an empty auth response.
    let mut login = Vec::new();
    login.extend_from_slice(&(0x0001u32 | 0x0200 | 0x8000).to_le_bytes());
    login.extend_from_slice(&(16u32 << 20).to_le_bytes());
    login.push(33);
    login.extend_from_slice(&[0; 23]);
    login.extend_from_slice(b"root\0");
    login.push(0);
    send(&mut writer, 1, &login);
    packet(&mut payload);
    assert_eq!(payload.first(), Some(&0), "logged in: {payload:?}");
    let mut query = vec![0x03];
    query.extend_from_slice(sql.as_bytes());
    send(&mut writer, 0, &query);
    let is_eof = |p: &[u8]| p.first() == Some(&0xfe) && p.len() < 9;
    packet(&mut payload);
    assert_ne!(
        payload.first(),
        Some(&0xff),
        "the query failed: {payload:?}"
    );
    // The column definitions, up to their EOF; then the rows, up to theirs.
    loop {
        packet(&mut payload);
        if is_eof(&payload) {
            break;
        }
    }
    let mut bytes = 0u64;
    loop {
        packet(&mut payload);
        assert_ne!(payload.first(), Some(&0xff), "the rows failed: {payload:?}");
        if is_eof(&payload) {
            break;
        }
        bytes += payload.len() as u64;
    }
    let took = start.elapsed();
    send(&mut writer, 0, &[0x01]);
    (took, bytes)
}
