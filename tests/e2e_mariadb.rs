//! The main job end to end: the real kubectl, unmodified, against the test suite's fake Kubernetes
//! API server (testkit's `fake-apiserver`, over HTTPS with its test CA and the token of its exec
//! credential plugin, as a GKE cluster is), in front of a real MariaDB server. Needs kubectl and
//! MariaDB; without them the tests say so and pass, except on CI (`CI=true`), where they fail.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// A home whose config has the target `e2e/db` through `api`.
fn home_for(api: &FakeApi, local_port: u16) -> Rhizome {
    let rh = Rhizome::new();
    write_config(
        &rh,
        &format!(
            "[forward]\ntransport = \"kubectl\"\nbackoff_max_secs = 1\n\n[environments.e2e]\ncontext = \"e2e\"\nnamespace = \"e2e\"\ndeployment = \"db-proxy\"\nkubeconfig = \"{}\"\n\n[environments.e2e.databases.db]\nsql_connection = \"e2e-project:us-central1:db\"\nlocal_port = {local_port}\n",
            api.kubeconfig.display()
        ),
    );
    rh
}

fn forward(rh: &Rhizome, kubectl: &Path) -> Out {
    let out = rh
        .command(["forward", "e2e/db"])
        .env("RHIZOME_KUBECTL", kubectl)
        // Each run gets its own discovery cache.
        .env("HOME", rh.path())
        .env("KUBECACHEDIR", rh.path().join("kube-cache"))
        .output()
        .unwrap();
    out.into()
}

fn restarts(rh: &Rhizome) -> u64 {
    rh.ps()["running"][0]["restarts"].as_u64().unwrap_or(0)
}

/// Forward, query, three dropped streams under a query loop, then a replaced pod.
fn the_main_job_with(kubectl: &Path) {
    let Some(db) = MariaDb::start() else { return };
    let home = tempfile::tempdir().unwrap();
    let Some(apiserver) = testkit_bin("fake-apiserver") else {
        return;
    };
    let api = FakeApi::start(apiserver, home.path(), &db.addr(), &[]);
    let port = free_port();
    let rh = home_for(&api, port);
    let name = kubectl.file_name().unwrap().to_string_lossy().into_owned();

    let out = forward(&rh, kubectl);
    assert_eq!(out.code, Some(0), "{name}: {out:?}");
    assert_eq!(out.stdout, format!("mysql://127.0.0.1:{port}\n"));
    let rows = query_port(port, "SELECT id, item FROM shop.orders ORDER BY id").unwrap();
    assert_eq!(rows, "1\tapple\n2\tpear\n3\tplum\n", "{name}");
    assert!(
        api.plugin_calls() >= 1,
        "{name}: kubectl got its token from the exec credential plugin"
    );
    assert_eq!(api.state()["unauthorized"], 0, "{name}");

    // Three dropped streams while queries keep coming.
    for drop in 1..=3u64 {
        api.control("/_control/drop-streams");
        wait_for(
            &format!("{name}: restart {drop}"),
            Duration::from_secs(30),
            || (restarts(&rh) >= drop).then_some(()),
        );
        let recovered = wait_for(
            &format!("{name}: recovery {drop}"),
            Duration::from_secs(30),
            || query_port(port, "SELECT COUNT(*) FROM shop.orders").ok(),
        );
        assert_eq!(recovered, "3\n");
        // Once recovered, every query succeeds.
        for _ in 0..5 {
            assert_eq!(
                query_port(port, "SELECT COUNT(*) FROM shop.orders").as_deref(),
                Ok("3\n"),
                "{name}"
            );
        }
    }
    assert_eq!(restarts(&rh), 3, "{name}");
    let log = rh.logs("e2e/db");
    assert!(
        log.contains("error: lost connection to pod"),
        "{name}: kubectl's own words are logged: {log}"
    );

    // A new pod, with a new proxy port: the tunnel follows with no user action.
    let before = rh.ps()["running"][0]["tunnel"]["upstream"].clone();
    api.control("/_control/replace-pod");
    let started = Instant::now();
    wait_for(
        &format!("{name}: the tunnel through the new pod"),
        Duration::from_secs(30),
        || {
            query_port(port, "SELECT item FROM shop.orders WHERE id = 2")
                .ok()
                .filter(|r| r == "pear\n")
        },
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let after = rh.ps()["running"][0]["tunnel"]["upstream"].clone();
    assert_ne!(before, after, "{name}: the new proxy port is used");
    assert_eq!(api.state()["proxy_ports"].as_array().unwrap().len(), 1);
}

#[test]
fn the_main_job_with_the_oldest_and_newest_kubectl() {
    let Some(versions) = kubectl_versions() else {
        return;
    };
    for kubectl in versions {
        the_main_job_with(&kubectl);
    }
}

#[test]
fn the_real_kubectls_failures_reach_the_user() {
    let Some(kubectl) = require_tool("kubectl") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    // A database address nobody listens on: these failures come before any query.
    let Some(apiserver) = testkit_bin("fake-apiserver") else {
        return;
    };
    let api = FakeApi::start(
        apiserver,
        home.path(),
        &format!("127.0.0.1:{}", free_port()),
        &[],
    );

    // A pod that is not Running.
    api.control("/_control/pod-phase?phase=Pending");
    let rh = home_for(&api, free_port());
    let out = forward(&rh, &kubectl);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("pod is not running") || out.stderr.contains("not found"),
        "{}",
        out.stderr
    );
    api.control("/_control/pod-phase?phase=Running");

    // An API server that is down.
    let dead = rh.path().join("dead-kubeconfig");
    let text = std::fs::read_to_string(&api.kubeconfig)
        .unwrap()
        .replace(&api.addr, &format!("127.0.0.1:{}", free_port()));
    std::fs::write(&dead, text).unwrap();
    let rh = Rhizome::new();
    write_config(
        &rh,
        &format!(
            "[forward]\ntransport = \"kubectl\"\n\n[environments.e2e]\ncontext = \"e2e\"\nnamespace = \"e2e\"\ndeployment = \"db-proxy\"\nkubeconfig = \"{}\"\n\n[environments.e2e.databases.db]\nsql_connection = \"e2e-project:us-central1:db\"\nlocal_port = {}\n",
            dead.display(),
            free_port()
        ),
    );
    let started = Instant::now();
    let out = forward(&rh, &kubectl);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("connection refused"), "{}", out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}
