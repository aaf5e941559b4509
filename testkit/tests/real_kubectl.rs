//! Runs the real kubectl (every installed version: `kubectl.1.27` …
//! `kubectl.1.33` next to the `kubectl` on PATH, plus `kubectl` itself)
//! against the `fake-apiserver` binary, over TLS with the token of its exec
//! credential plugin: exec, logs, port-forward with 1 MiB
//! echoed through the fake Cloud SQL proxy, and the fault controls
//! (drop-streams, a port with no listener, a Pending pod, refused upgrades,
//! replace-pod). Also checks the control API over raw TCP without kubectl.
//!
//! Without kubectl on PATH the kubectl tests print a skip message and pass,
//! unless CI=true, where they fail.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rhizome_testkit::harness::{
    Collector, FakeApi, Out, Proc, echo_round_trip, echo_server, find_kubectl, free_port, http,
    https, poll, random_bytes,
};

const INSTANCE: &str = "e2e-project:us-central1:db";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- kubectl

/// Which transports a kubectl version is expected to end up on.
#[derive(Debug, Clone, Copy)]
enum Transports {
    /// Known version: (exec over WebSocket, port-forward over WebSocket).
    Known { exec_ws: bool, pf_ws: bool },
    /// Not known in advance (the version-dispatching `kubectl`): just report.
    Report,
}

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: PathBuf,
    env: Vec<(String, String)>,
}

impl Kubectl {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--context", "e2e", "--namespace", "e2e"])
            .args(args)
            .env("HOME", &self.home)
            .env("KUBECACHEDIR", self.home.join("cache"))
            .env_remove("KUBECONFIG")
            .env_remove("KUBECTL_REMOTE_COMMAND_WEBSOCKETS")
            .env_remove("KUBECTL_PORT_FORWARD_WEBSOCKETS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs to completion (killed after COMMAND_TIMEOUT).
    fn run(&self, args: &[&str]) -> Out {
        let what = format!("kubectl {}", args.join(" "));
        Proc::spawn(&mut self.command(args), &what).finish(COMMAND_TIMEOUT)
    }

    /// Starts `port-forward deploy/db-proxy 0:PORT` and waits for its
    /// `Forwarding from 127.0.0.1:N -> PORT` line; returns (process, N, stderr).
    fn port_forward(&self, port: u16) -> (Proc, u16, Collector) {
        let spec = format!("0:{port}");
        let args = [
            "port-forward",
            "deploy/db-proxy",
            &spec,
            "--address",
            "127.0.0.1",
        ];
        let mut p = Proc::spawn(&mut self.command(&args), "kubectl port-forward");
        let out = Collector::new(p.child.stdout.take().unwrap());
        let err = Collector::new(p.child.stderr.take().unwrap());
        let want = format!(" -> {port}");
        let local = out.wait_line(COMMAND_TIMEOUT, |l| {
            let rest = l.strip_prefix("Forwarding from 127.0.0.1:")?;
            let (n, tail) = rest.split_once(' ')?;
            (format!(" {tail}") == want).then(|| n.parse::<u16>().ok())?
        });
        let Some(local) = local else {
            let code = p.wait_timeout(Duration::from_millis(500));
            panic!(
                "no `Forwarding from` line (exit {code:?}); stdout {:?} stderr {:?}",
                out.text(),
                err.text()
            );
        };
        (p, local, err)
    }
}

/// The port in `[INSTANCE] Listening on 127.0.0.1:PORT`.
fn listening_port(text: &str) -> Option<u16> {
    let marker = format!("[{INSTANCE}] Listening on 127.0.0.1:");
    let at = text.find(&marker)? + marker.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Sends `data` through `port` and reads the echo back.
fn echo_through(port: u16, data: &[u8]) -> Vec<u8> {
    echo_round_trip(("127.0.0.1", port), data)
}

fn counters(api: &FakeApi) -> (u64, u64) {
    let s = api.state();
    (
        s["websocket_upgrades"].as_u64().unwrap(),
        s["spdy_upgrades"].as_u64().unwrap(),
    )
}

/// Checks (or reports) which transport the last upgrade used.
fn check_transport(
    label: &str,
    what: &str,
    before: (u64, u64),
    after: (u64, u64),
    expect_ws: Option<bool>,
) -> &'static str {
    let used = match (after.0 - before.0, after.1 - before.1) {
        (1, 0) => "WebSocket",
        (0, 1) => "SPDY",
        other => {
            panic!("{label}: {what}: expected exactly one upgrade, got (ws, spdy) = {other:?}")
        }
    };
    if let Some(ws) = expect_ws {
        let want = if ws { "WebSocket" } else { "SPDY" };
        assert_eq!(used, want, "{label}: {what} transport");
    }
    used
}

// ---------------------------------------------------------------- the scenario

fn scenario(name: &str, env: &[(&str, &str)], server_args: &[&str], transports: Transports) {
    let Some(bin) = find_kubectl(name) else {
        return;
    };
    let mut label = name.to_string();
    for (k, v) in env {
        label.push_str(&format!(" {k}={v}"));
    }
    for a in server_args {
        label.push_str(&format!(" server {a}"));
    }
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let db = echo_server().to_string();
    let api = FakeApi::start(
        env!("CARGO_BIN_EXE_fake-apiserver"),
        tmp.path(),
        &db,
        server_args,
    );
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let k = Kubectl {
        bin,
        kubeconfig: api.kubeconfig.clone(),
        home,
        env: env
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    };
    let (exec_ws, pf_ws) = match transports {
        Transports::Known { exec_ws, pf_ws } => (Some(exec_ws), Some(pf_ws)),
        Transports::Report => (None, None),
    };

    // exec starts the proxy.
    let before = counters(&api);
    let connect = ["exec", "deploy/db-proxy", "--", "/connect.sh", INSTANCE];
    let out = k.run(&connect);
    assert_eq!(out.code, Some(0), "{label}: exec failed: {}", out.stderr);
    let port = listening_port(&out.stdout)
        .unwrap_or_else(|| panic!("{label}: no Listening line in {:?}", out.stdout));
    assert!(out.stdout.contains("The proxy has started successfully"));
    let exec_used = check_transport(&label, "exec", before, counters(&api), exec_ws);

    // exec again: same port.
    let out = k.run(&connect);
    assert_eq!(out.code, Some(0), "{label}: second exec: {}", out.stderr);
    assert_eq!(
        listening_port(&out.stdout),
        Some(port),
        "{label}: second exec port"
    );

    // Unknown command: exit code 127.
    let out = k.run(&["exec", "deploy/db-proxy", "--", "ls", "-l"]);
    assert_eq!(
        out.code,
        Some(127),
        "{label}: unknown command: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("fake pod: unknown command"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("command terminated with exit code 127"),
        "{}",
        out.stderr
    );

    // logs show the proxy's lines.
    let out = k.run(&["logs", "deploy/db-proxy", "--tail=5"]);
    assert_eq!(out.code, Some(0), "{label}: logs: {}", out.stderr);
    assert_eq!(
        listening_port(&out.stdout),
        Some(port),
        "{label}: logs {:?}",
        out.stdout
    );

    // port-forward carries 1 MiB both ways, then drop-streams ends it.
    let before = counters(&api);
    let (mut pf, local, pf_err) = k.port_forward(port);
    let pf_used = check_transport(&label, "port-forward", before, counters(&api), pf_ws);
    let data = random_bytes(1 << 20);
    let got = echo_through(local, &data);
    assert!(
        got == data,
        "{label}: echo differs ({} of {} bytes)",
        got.len(),
        data.len()
    );
    // Several connections at once share the session.
    let parallel: Vec<_> = (0..4u8)
        .map(|i| {
            thread::spawn(move || {
                let mut data = random_bytes(256 * 1024);
                data[0] = i;
                echo_through(local, &data) == data
            })
        })
        .collect();
    for t in parallel {
        assert!(
            t.join().unwrap(),
            "{label}: a parallel connection's echo differs"
        );
    }
    assert_eq!(api.state()["open_streams"], 1, "{label}: open_streams");
    api.control("/_control/drop-streams");
    let code = pf
        .wait_timeout(Duration::from_secs(10))
        .and_then(|s| s.code());
    assert_eq!(code, Some(1), "{label}: port-forward after drop-streams");
    let stderr = pf_err.text();
    let _ = poll(Duration::from_secs(2), || {
        pf_err
            .text()
            .contains("lost connection to pod")
            .then_some(())
    });
    assert!(
        pf_err.text().contains("error: lost connection to pod"),
        "{label}: stderr {stderr:?}"
    );
    drop(pf);

    // port-forward to a port where nothing listens: the connection fails
    // and kubectl reports the kubelet's error, then gives up.
    let dead_port = free_port();
    let (mut pf, local, pf_err) = k.port_forward(dead_port);
    let mut s = TcpStream::connect(("127.0.0.1", local)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(b"hello");
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "{label}: data from a port with no listener");
    let code = pf
        .wait_timeout(Duration::from_secs(10))
        .and_then(|s| s.code());
    assert_eq!(code, Some(1), "{label}: port-forward to a dead port");
    let want = format!("failed to connect to localhost:{dead_port}");
    let _ = poll(Duration::from_secs(2), || {
        pf_err.text().contains(&want).then_some(())
    });
    assert!(
        pf_err.text().contains(&want),
        "{label}: {:?}",
        pf_err.text()
    );
    drop(pf);

    // A Pending pod cannot be port-forwarded to.
    api.control("/_control/pod-phase?phase=Pending");
    let spec = format!("0:{port}");
    let out = k.run(&[
        "port-forward",
        "deploy/db-proxy",
        &spec,
        "--address",
        "127.0.0.1",
    ]);
    assert_eq!(out.code, Some(1), "{label}: port-forward to Pending pod");
    assert!(
        out.stderr
            .contains("unable to forward port because pod is not running. Current status=Pending"),
        "{label}: {:?}",
        out.stderr
    );
    api.control("/_control/pod-phase?phase=Running");

    // refuse-upgrades=1: the next command's upgrade fails (a refused
    // WebSocket attempt and its SPDY retry count once), the one after works.
    api.control("/_control/refuse-upgrades?n=1");
    let out = k.run(&connect);
    assert_eq!(
        out.code,
        Some(1),
        "{label}: exec with refused upgrade: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains("upgrade refused"),
        "{label}: {:?}",
        out.stderr
    );
    let out = k.run(&connect);
    assert_eq!(
        out.code,
        Some(0),
        "{label}: exec after the refusal: {}",
        out.stderr
    );

    // replace-pod: a forward to the old pod ends, the old proxy is gone,
    // and a new exec gets a new port.
    let (mut pf, local, pf_err) = k.port_forward(port);
    assert_eq!(echo_through(local, b"before replace"), b"before replace");
    let old_pod = api.state()["pod"].as_str().unwrap().to_string();
    let new_pod = api.control("/_control/replace-pod")["pod"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(old_pod, new_pod);
    let code = pf
        .wait_timeout(Duration::from_secs(10))
        .and_then(|s| s.code());
    assert_eq!(code, Some(1), "{label}: port-forward to a replaced pod");
    let _ = poll(Duration::from_secs(2), || {
        pf_err
            .text()
            .contains("lost connection to pod")
            .then_some(())
    });
    assert!(
        pf_err.text().contains("error: lost connection to pod"),
        "{label}"
    );
    drop(pf);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "{label}: the old pod's proxy still listens"
    );
    assert_eq!(api.state()["proxy_ports"], serde_json::json!([]));
    let out = k.run(&["logs", "deploy/db-proxy"]);
    assert_eq!(
        out.code,
        Some(0),
        "{label}: logs of the new pod: {}",
        out.stderr
    );
    assert_eq!(out.stdout, "", "{label}: the new pod's log starts empty");
    let out = k.run(&connect);
    assert_eq!(
        out.code,
        Some(0),
        "{label}: exec in the new pod: {}",
        out.stderr
    );
    let new_port = listening_port(&out.stdout).unwrap();
    assert_ne!(new_port, port, "{label}: the new pod's proxy port");
    let got = {
        let (_pf, local, _err) = k.port_forward(new_port);
        echo_through(local, b"after replace")
    };
    assert_eq!(got, b"after replace");

    // Every request came over TLS with the token the exec credential plugin handed out.
    assert!(
        api.plugin_calls() >= 1,
        "{label}: the credential plugin never ran"
    );
    assert_eq!(api.state()["unauthorized"], 0, "{label}");

    eprintln!(
        "RESULT {label}: ok in {:.1}s; exec over {exec_used}, port-forward over {pf_used}",
        started.elapsed().as_secs_f64()
    );
    drop(api);
}

fn known(minor: u32) -> Transports {
    Transports::Known {
        exec_ws: minor >= 30,
        pf_ws: minor >= 31,
    }
}

macro_rules! per_version {
    ($($test:ident => $minor:expr),* $(,)?) => {$(
        #[test]
        fn $test() {
            scenario(&format!("kubectl.1.{}", $minor), &[], &[], known($minor));
        }
    )*};
}

per_version! {
    kubectl_1_27 => 27,
    kubectl_1_28 => 28,
    kubectl_1_29 => 29,
    kubectl_1_30 => 30,
    kubectl_1_31 => 31,
    kubectl_1_32 => 32,
    kubectl_1_33 => 33,
}

/// The `kubectl` on PATH itself (on this machine, gcloud's dispatcher, which
/// asks `/version` and runs the matching `kubectl.1.NN`).
#[test]
fn kubectl_on_path() {
    scenario("kubectl", &[], &[], Transports::Report);
}

/// The newest kubectl with WebSockets switched off by its own env vars: SPDY only.
#[test]
fn kubectl_1_33_spdy_by_env() {
    let env = [
        ("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false"),
        ("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false"),
    ];
    let t = Transports::Known {
        exec_ws: false,
        pf_ws: false,
    };
    scenario("kubectl.1.33", &env, &[], t);
}

/// The newest kubectl against a server that refuses WebSocket upgrades:
/// kubectl falls back to SPDY for both commands.
#[test]
fn kubectl_1_33_websocket_refused() {
    let t = Transports::Known {
        exec_ws: false,
        pf_ws: false,
    };
    scenario("kubectl.1.33", &[], &["--no-websocket"], t);
}

// ---------------------------------------------------------------- no kubectl needed

#[test]
fn control_api_and_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(
        env!("CARGO_BIN_EXE_fake-apiserver"),
        tmp.path(),
        &echo_server().to_string(),
        &["--namespace", "ns1"],
    );
    let kc = std::fs::read_to_string(&api.kubeconfig).unwrap();
    assert!(
        kc.contains(&format!("server: https://{}", api.addr)),
        "{kc}"
    );
    assert!(kc.contains("certificate-authority-data: "), "{kc}");
    assert!(kc.contains("exec:\n"), "{kc}");
    assert!(kc.contains("namespace: ns1"), "{kc}");

    // The API wants TLS and the plugin's token, as a real cluster does.
    let (code, body) = http(&api.addr, "GET", "/api");
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("Client sent an HTTP request to an HTTPS server"),
        "{body}"
    );
    let ca = api.ca_pem.clone().expect("the test CA");
    let (code, body) = https(&api.addr, &ca, None, "GET", "/api");
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"reason\":\"Unauthorized\""), "{body}");
    let (code, _) = https(&api.addr, &ca, Some("wrong"), "GET", "/api");
    assert_eq!(code, 401);
    assert_eq!(api.state()["unauthorized"], 2);
    let (code, body) = api.api("GET", "/api");
    assert_eq!(code, 200, "{body}");

    // Garbage and half requests are answered or dropped, never fatal.
    for junk in [
        &b"\x16\x03\x01\x00\xa5\x01\x00\x00"[..],
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"POST /api/v1/namespaces/ns1/pods/x/exec HTTP/1.1\r\nUpgrade: SPDY/3.1\r\n\r\n",
    ] {
        let mut c = TcpStream::connect(&api.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.write_all(junk);
        let _ = c.shutdown(Shutdown::Write);
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink);
    }
    // A SPDY upgrade that then sends garbage frames (on plain HTTP, to write raw frames).
    std::fs::create_dir_all(tmp.path().join("plain")).unwrap();
    let plain = FakeApi::start(
        env!("CARGO_BIN_EXE_fake-apiserver"),
        &tmp.path().join("plain"),
        &echo_server().to_string(),
        &["--namespace", "ns1", "--plain-http"],
    );
    let kc = std::fs::read_to_string(&plain.kubeconfig).unwrap();
    assert!(
        kc.contains(&format!("server: http://{}", plain.addr)),
        "{kc}"
    );
    assert!(kc.contains("  user: {}\n"), "{kc}");
    assert_eq!(plain.ca_pem, None);
    let pod = plain.state()["pod"].as_str().unwrap().to_string();
    let mut c = TcpStream::connect(&plain.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(c, "POST /api/v1/namespaces/ns1/pods/{pod}/portforward HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    c.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    let _ = c.write_all(&[
        0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0e, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xde, 0xad,
        0xbe, 0xef, 1, 2,
    ]);
    let mut sink = Vec::new();
    let _ = c.read_to_end(&mut sink);
    assert_eq!(
        poll(Duration::from_secs(5), || (plain.state()["open_streams"]
            == 0)
            .then_some(())),
        Some(()),
        "a broken SPDY session was not closed"
    );
    let (code, body) = http(&plain.addr, "GET", "/apis/apps/v1");
    assert_eq!(code, 200, "plain HTTP, no token, with --plain-http: {body}");
    drop(plain);

    // Discovery and objects.
    let (code, body) = api.api("GET", "/apis/apps/v1");
    assert_eq!(code, 200);
    assert!(body.contains("\"deploy\""), "{body}");
    let (code, _) = api.api("GET", "/apis/apps/v1/namespaces/ns1/deployments/nope");
    assert_eq!(code, 404);

    // Fault switches.
    assert_eq!(
        api.control("/_control/refuse-upgrades?n=2")["refuse_upgrades"],
        2
    );
    assert_eq!(api.state()["refuse_upgrades"], 2);
    api.control("/_control/refuse-upgrades?n=0");
    let (code, _) = http(&api.addr, "POST", "/_control/pod-phase?phase=Sleeping");
    assert_eq!(code, 400);
    let (code, _) = http(&api.addr, "POST", "/_control/nope");
    assert_eq!(code, 404);
    assert_eq!(
        api.control("/_control/pod-phase?phase=Pending")["phase"],
        "Pending"
    );
    let pod = api.state()["pod"].as_str().unwrap().to_string();
    let (_, pod_json) = api.api("GET", &format!("/api/v1/namespaces/ns1/pods/{pod}"));
    assert!(pod_json.contains("\"phase\":\"Pending\""), "{pod_json}");

    api.control("/_control/delay?ms=300");
    let t = Instant::now();
    let (code, _) = api.api("GET", "/api");
    assert_eq!(code, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "delay not applied"
    );
    let t = Instant::now();
    api.state();
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "control requests must not be delayed"
    );
    api.control("/_control/delay?ms=0");

    let requests = api.state()["requests"].as_u64().unwrap();
    assert!(requests >= 4, "requests counted: {requests}");

    // The pod's life as a watch sees it: resource versions grow, events are lines of JSON.
    api.control("/_control/pod-phase?phase=Running");
    let list = |api: &FakeApi| -> serde_json::Value {
        let (code, body) = api.api("GET", "/api/v1/namespaces/ns1/pods");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    let rv: u64 = list(&api)["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    api.set_ready(false);
    assert_eq!(api.state()["ready"], false);
    let deleted = api.control("/_control/delete-pod")["deleted"].clone();
    assert_eq!(deleted, pod.as_str());
    assert_eq!(
        list(&api)["items"],
        serde_json::json!([]),
        "no pod after delete-pod"
    );
    let (code, _) = http(&api.addr, "POST", "/_control/delete-pod");
    assert_eq!(code, 409, "nothing to delete");
    let created = api.control("/_control/create-pod?ready=false")["pod"].clone();
    api.set_ready(true);
    let (code, body) = api.api(
        "GET",
        &format!("/api/v1/namespaces/ns1/pods?watch=1&resourceVersion={rv}&timeoutSeconds=1"),
    );
    assert_eq!(code, 200, "{body}");
    let events: Vec<(String, String)> = body
        .lines()
        .map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            let name = e["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string();
            (e["type"].as_str().unwrap().to_string(), name)
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("MODIFIED", &deleted),
        ("DELETED", &deleted),
        ("ADDED", &created),
        ("MODIFIED", &created),
    ]
    .iter()
    .map(|(t, n)| (t.to_string(), n.as_str().unwrap().to_string()))
    .collect();
    assert_eq!(events, want, "{body}");
    api.control("/_control/compact");
    let (_, body) = api.api(
        "GET",
        &format!("/api/v1/namespaces/ns1/pods?watch=1&resourceVersion={rv}"),
    );
    assert!(
        body.contains("\"code\":410"),
        "a compacted version is gone: {body}"
    );

    // A stalled server answers its API nothing for that long; /_control still answers.
    api.stall(Duration::from_millis(300));
    let t = Instant::now();
    api.state();
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "control requests are not stalled"
    );
    let (code, _) = api.api("GET", "/api");
    assert_eq!(code, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "stall not applied"
    );

    // stdin EOF stops the server.
    let FakeApi {
        proc: mut p, stdin, ..
    } = api;
    drop(stdin);
    assert!(
        p.wait_timeout(Duration::from_secs(5)).is_some(),
        "no exit on stdin EOF"
    );
}
