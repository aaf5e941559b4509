//! The real kubectl's failures that need no cluster reach the user of `rhizome forward` as
//! kubectl said them, promptly, and are not retried forever.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_context_that_does_not_exist_is_reported_as_kubectl_said_it() {
    let Some(kubectl) = require_tool("kubectl") else {
        return;
    };
    let rh = Rhizome::new();
    let kubeconfig = rh.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
    )
    .unwrap();
    write_config(
        &rh,
        &format!(
            "[forward]\ntransport = \"kubectl\"\n\n[environments.ghost]\ncontext = \"no-such-context\"\nnamespace = \"db\"\ndeployment = \"proxy\"\nkubeconfig = \"{}\"\n\n[environments.ghost.databases.orders]\nsql_connection = \"p:r:orders\"\nlocal_port = {}\n",
            kubeconfig.display(),
            free_port()
        ),
    );
    let started = Instant::now();
    let out = rh
        .command(["forward", "ghost/orders"])
        .env("RHIZOME_KUBECTL", &kubectl)
        .env("HOME", rh.path())
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(r#"error: context "no-such-context" does not exist"#),
        "{stderr}"
    );
    assert!(
        took < Duration::from_secs(15),
        "reported promptly, not after the timeout: {took:?}"
    );
    let entry = &rh.ps()["finished"][0];
    assert!(entry["status"] == "failed", "{entry}");
    assert_eq!(
        entry["restarts"], 2,
        "three attempts, then the error: {entry}"
    );
    let log = rh.logs("ghost/orders");
    assert!(log.matches("does not exist").count() >= 3, "{log}");
}
