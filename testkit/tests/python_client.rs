//! Keeps the fake API server honest: the official Kubernetes Python client (PyPI `kubernetes`),
//! which nobody here wrote, lists, execs, port-forwards and watches against it over TLS with the
//! exec plugin's token (the checks are in `python_client.py`, beside this file).
//!
//! The client comes from a virtual environment that `.ci/run` makes; its interpreter is named by
//! `RHIZOME_TEST_PYTHON`. Without it the test says so and passes, except on CI (`CI=true`),
//! where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rhizome_testkit::harness::{FakeApi, Proc, echo_server, skip};

const INSTANCE: &str = "e2e-project:us-central1:db";

/// The Python that has the `kubernetes` package, or [`skip`].
fn python() -> Option<PathBuf> {
    match std::env::var_os("RHIZOME_TEST_PYTHON") {
        Some(p) if Path::new(&p).is_file() => Some(PathBuf::from(p)),
        Some(p) => skip(&format!(
            "RHIZOME_TEST_PYTHON={} to be a Python with the `kubernetes` package (.ci/run makes one)",
            Path::new(&p).display()
        )),
        None => skip(
            "RHIZOME_TEST_PYTHON naming a Python with the `kubernetes` package (.ci/run makes one)",
        ),
    }
}

#[test]
fn the_official_python_client_lists_execs_port_forwards_and_watches() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(
        env!("CARGO_BIN_EXE_fake-apiserver"),
        tmp.path(),
        &echo_server().to_string(),
        &[],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python_client.py");
    let mut cmd = Command::new(python);
    cmd.arg(&script)
        .arg(&api.kubeconfig)
        .arg(&api.addr)
        .arg(INSTANCE)
        .env("HOME", tmp.path())
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = Proc::spawn(&mut cmd, "python_client.py").finish(Duration::from_secs(120));
    assert_eq!(
        out.code,
        Some(0),
        "the Python client failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    for check in [
        "list pods over TLS with the exec plugin's token",
        "a wrong token gets 401",
        "exec over WebSocket: output, exit codes",
        "port-forward over WebSocket: 512 KiB echoed byte-exact",
        "port-forward to a dead port reports the kubelet's error",
        "fail-stream fails one connection, the other goes on",
        "watch from a resource version: MODIFIED, DELETED, ADDED",
        "a new pod, a new proxy port, bytes through it",
        "watch from a compacted version gets 410 Gone",
    ] {
        assert!(
            out.stdout.contains(&format!("ok: {check}\n")),
            "{check}: not reported:\n{}",
            out.stdout
        );
    }
    // The server saw the refused token, and WebSocket upgrades only (no SPDY from Python).
    let state = api.state();
    assert!(state["unauthorized"].as_u64().unwrap() >= 1, "{state}");
    assert_eq!(state["spdy_upgrades"], 0, "{state}");
}
