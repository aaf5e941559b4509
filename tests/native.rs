//! The native transport (issue 11) as a user meets it: `rhizome forward` through the fake API
//! server (HTTPS with its test CA, the token of its exec credential plugin) to a real MariaDB,
//! with no kubectl anywhere; and the choice of transport: `auto` uses kubectl, and says why,
//! for a kubeconfig the native client cannot use or a server that refuses WebSocket streaming,
//! and `transport = "kubectl"` (or `--transport`) is honoured where it is set. Needs MariaDB
//! and kubectl; without them the tests say so and pass, except on CI (`CI=true`).

mod common;

use std::path::Path;

use common::e2e::{E2e, Kubectl};
use common::*;
use serde_json::Value;

const ROWS: &str = "1\tapple\n2\tpear\n3\tplum\n";
const ORDERS: &str = "SELECT id, item FROM shop.orders ORDER BY id";

/// The tunnel's log lines that say a client connection was handled, as kubectl's do and the
/// README says: `Handling connection for LOCAL`, LOCAL being the tunnel's local port; rhizome's
/// own (a readiness check) left out.
fn client_connections(e2e: &E2e) -> Vec<String> {
    let line = format!("Handling connection for {}", e2e.port);
    e2e.log_messages()
        .into_iter()
        .filter(|l| {
            l.trim_start()
                .strip_prefix(&line)
                .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
                && !l.contains("(rhizome's own connection)")
        })
        .collect()
}

/// Whether `line` is auto's fallback, as the README gives it: `using kubectl (PATH): WHY`.
fn fallback_line(line: &str, kubectl: &Path, why: &str) -> bool {
    line.trim_start()
        .strip_prefix(&format!("using kubectl ({}): ", kubectl.display()))
        .is_some_and(|rest| rest.contains(why))
}

#[test]
fn native_forward_reads_the_rows_over_tls_with_plugin_auth_and_runs_no_kubectl() {
    // No `transport` anywhere: the default, auto, is the native client.
    let Some(e2e) = E2e::mariadb(None, Kubectl::Tripwire, &[]) else {
        return;
    };
    e2e.forward_ok(&[]);
    for _ in 0..3 {
        assert_eq!(query_port(e2e.port, ORDERS).as_deref(), Ok(ROWS));
    }

    let entry = e2e.entry();
    assert_eq!(entry["transport"], "native", "{entry}");
    assert_eq!(entry["transport_reason"], Value::Null, "{entry}");
    let (pod, proxy) = e2e.pod_and_port();
    assert_eq!(
        entry["tunnel"]["upstream"],
        format!("{pod}:{proxy}"),
        "{entry}"
    );
    assert_eq!(entry["restarts"], 0, "{entry}");

    // Over TLS (the fake serves nothing else) with the plugin's token, on the API's WebSocket
    // streams.
    assert!(e2e.api.plugin_calls() >= 1, "the credential plugin ran");
    let state = e2e.api.state();
    assert_eq!(state["unauthorized"], 0, "{state}");
    assert!(state["websocket_upgrades"].as_u64() >= Some(1), "{state}");
    assert_eq!(state["spdy_upgrades"], 0, "{state}");

    // The log says what the path did, in kubectl's spirit.
    e2e.logged(&format!("`pod {pod} chosen`"), |l| {
        l.contains(&format!("pod {pod} chosen"))
    });
    e2e.logged("naming the proxy's port", |l| {
        l.contains(&format!("the proxy listens on port {proxy} in the pod"))
    });
    let up = format!(
        "tunnel up: 127.0.0.1:{} -> {pod}:{proxy} (native)",
        e2e.port
    );
    e2e.logged(&format!("`{up}`"), |l| l.contains(&up));
    let handled = client_connections(&e2e);
    assert_eq!(
        handled.len(),
        3,
        "one line per client connection: {handled:#?}\n{}",
        e2e.log()
    );

    e2e.assert_no_kubectl();
}

/// `auto` with a user whose credential is the legacy `auth-provider: oidc`, which kubectl still
/// serves: the tunnel runs on kubectl, and the log and `ps` say why.
#[test]
fn auto_uses_kubectl_for_a_legacy_auth_provider_and_says_why() {
    let Some(kubectl) = find_kubectl("kubectl") else {
        return;
    };
    let token = oidc_id_token();
    let Some(e2e) = E2e::mariadb(None, Kubectl::Real(kubectl.clone()), &["--token", &token]) else {
        return;
    };
    let oidc = e2e.dir.path().join("kubeconfig-oidc");
    e2e.api
        .write_kubeconfig_with_user(&oidc, &oidc_user(&token));
    e2e.configure("transport = \"auto\"\n", "", "", &oidc);

    e2e.forward_ok(&[]);
    assert_eq!(query_port(e2e.port, ORDERS).as_deref(), Ok(ROWS));
    let entry = e2e.entry();
    assert_eq!(entry["transport"], "kubectl", "{entry}");
    let reason = entry["transport_reason"].as_str().unwrap_or("");
    assert!(reason.contains("auth-provider"), "ps says why: {entry}");
    e2e.logged(
        "`using kubectl (PATH): WHY` naming the auth-provider",
        |l| fallback_line(l, &kubectl, "auth-provider"),
    );
    e2e.assert_kubectl_runs();
    assert_eq!(
        e2e.api.plugin_calls(),
        0,
        "this user's token is the id-token"
    );
    assert_eq!(e2e.api.state()["unauthorized"], 0);
}

/// `auto` against a server that refuses every WebSocket upgrade (as an old API server or a
/// proxy in front of it may): the native client cannot stream, kubectl falls back to SPDY.
#[test]
fn auto_uses_kubectl_when_the_server_refuses_websocket_and_says_why() {
    let Some(kubectl) = find_kubectl("kubectl") else {
        return;
    };
    let Some(e2e) = E2e::bulk(None, Kubectl::Real(kubectl.clone()), &["--no-websocket"]) else {
        return;
    };
    e2e.forward_ok(&[]);
    assert_eq!(e2e.bulk_read(1, 1 << 20), Ok(()));
    let entry = e2e.entry();
    assert_eq!(entry["transport"], "kubectl", "{entry}");
    let reason = entry["transport_reason"].as_str().unwrap_or("");
    assert!(reason.contains("WebSocket"), "ps says why: {entry}");
    e2e.logged("`using kubectl (PATH): WHY` naming WebSocket", |l| {
        fallback_line(l, &kubectl, "WebSocket")
    });
    e2e.assert_kubectl_runs();
    let state = e2e.api.state();
    assert!(state["spdy_upgrades"].as_u64() >= Some(1), "{state}");
}

/// `transport = "kubectl"` in a target's table wins over `[forward]`'s `native`; `--transport`
/// wins over the environment's `kubectl`, for that call.
#[test]
fn a_chosen_transport_is_honoured_where_it_is_set() {
    let Some(kubectl) = find_kubectl("kubectl") else {
        return;
    };
    let Some(target) = E2e::bulk(Some("native"), Kubectl::Real(kubectl.clone()), &[]) else {
        return;
    };
    target.configure(
        "transport = \"native\"\n",
        "",
        "transport = \"kubectl\"\n",
        &target.api.kubeconfig,
    );
    target.forward_ok(&[]);
    assert_eq!(target.bulk_read(1, 1 << 20), Ok(()));
    let entry = target.entry();
    assert_eq!(entry["transport"], "kubectl", "{entry}");
    assert_eq!(
        entry["transport_reason"],
        Value::Null,
        "chosen, not fallen back to: {entry}"
    );
    target.assert_kubectl_runs();

    let Some(flag) = E2e::bulk(None, Kubectl::Real(kubectl), &[]) else {
        return;
    };
    flag.configure("", "transport = \"kubectl\"\n", "", &flag.api.kubeconfig);
    flag.forward_ok(&["--transport", "native"]);
    assert_eq!(flag.bulk_read(2, 1 << 20), Ok(()));
    let entry = flag.entry();
    assert_eq!(entry["transport"], "native", "{entry}");
    flag.assert_no_kubectl();
}
