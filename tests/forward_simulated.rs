//! `rhizome forward` without a cluster (`RHIZOME_SIMULATE=1`): the whole path (listener, splice,
//! restarts) with an echo server standing in for the database.

mod common;

use std::time::Duration;

use common::*;

/// A config of `count` simulated services on free ports.
fn services(count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "[environments.sim.services.s{i}]\ncontext = \"sim\"\nnamespace = \"sim\"\nresource = \"svc/s{i}\"\nremote_port = 80\nlocal_port = {}\nscheme = \"http\"\n\n",
                free_port()
            )
        })
        .collect()
}

fn forward(rh: &Rhizome, target: &str, extra: &[&str]) -> Out {
    let mut args = vec!["forward", target];
    args.extend_from_slice(extra);
    let out = rh
        .command(&args)
        .env("RHIZOME_SIMULATE", "1")
        .output()
        .unwrap();
    out.into()
}

fn port_of(url: &str) -> u16 {
    url.trim().rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn the_built_in_target_works_without_a_cluster() {
    let rh = Rhizome::new();
    let port = free_port();
    let out = forward(
        &rh,
        "na-prod/billing-bookkeeper",
        &["--port", &port.to_string()],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("mysql://127.0.0.1:{port}\n"),
        "only the URL on stdout"
    );
    assert!(
        !out.stderr.contains("mysql://"),
        "the address only on stdout: {}",
        out.stderr
    );

    let payload = random_bytes(1 << 20);
    assert!(
        echo_round_trip(format!("127.0.0.1:{port}"), &payload) == payload,
        "1 MiB each way, intact"
    );

    let log = rh.logs("na-prod/billing-bookkeeper");
    assert!(
        log.contains("Context: gke_clover-prod-kubernetes_us-central1_na-prod-us-central1-cluster"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "Forwarding localhost:{port} -> pod:3307 (iteration 0)"
        )),
        "{log}"
    );
    assert!(log.contains("Handling connection for"), "{log}");

    let ps = rh.ps();
    let tunnel = &ps["running"][0];
    assert_eq!(tunnel["kind"], "forward");
    assert_eq!(tunnel["tunnel"]["local"], format!("127.0.0.1:{port}"));
    assert_eq!(tunnel["tunnel"]["upstream"], "pod:3307");
    assert!(tunnel["tunnel"]["bytes_up"].as_u64().unwrap() >= 1 << 20);
    let table = rh.ok(["ps"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[6..], ["PORT", "UPSTREAM", "COMMAND"], "{table}");
}

#[test]
fn output_formats_are_exact() {
    let rh = Rhizome::new();
    let port = free_port();
    let p = port.to_string();
    let target = "na-prod/billing-bookkeeper";
    assert_eq!(
        forward(&rh, target, &["--port", &p, "--format", "port", "-q"]).stdout,
        format!("{port}\n")
    );
    let quiet = forward(&rh, target, &["--port", &p, "--format", "url", "--quiet"]);
    assert_eq!(quiet.stderr, "", "--quiet prints nothing on stderr");
    let env = forward(&rh, target, &["--port", &p, "--format", "env"]).stdout;
    assert_eq!(
        env,
        format!(
            "export RHIZOME_HOST=127.0.0.1\nexport RHIZOME_PORT={port}\nexport RHIZOME_URL=mysql://127.0.0.1:{port}\n"
        )
    );
    let json: serde_json::Value =
        serde_json::from_str(&forward(&rh, target, &["--port", &p, "--format", "json"]).stdout)
            .unwrap();
    // The tunnel as `ps --json` shows it.
    let tunnel = &json["tunnel"];
    assert_eq!(tunnel["url"], format!("mysql://127.0.0.1:{port}"));
    assert_eq!(tunnel["local_port"], port);
    assert_eq!(
        tunnel["sql_connection"],
        "clover-prod-databases:us-central1:billing-bookkeeper"
    );
    assert_eq!(tunnel["target"], target);
    assert_eq!(json["name"], target);
    assert_eq!(json["id"], 1);
    assert_eq!(json["status"], "running");
    assert_eq!(json["transport"], "simulated");
    assert!(json["pid"].is_u64());
}

#[test]
fn a_second_forward_answers_with_the_same_tunnel() {
    let rh = Rhizome::new();
    write_config(&rh, &services(1));
    let first = forward(&rh, "sim/s0", &["--format", "json"]);
    let results: Vec<Out> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| s.spawn(|| forward(&rh, "sim/s0", &["--format", "json"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in results {
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.stdout, first.stdout, "identical answers");
    }
    assert_eq!(rh.ps()["count"], 1, "one tunnel");
}

#[test]
fn concurrent_first_forwards_of_one_target_make_one_tunnel() {
    let rh = Rhizome::new();
    write_config(&rh, &services(1));
    let results: Vec<Out> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| s.spawn(|| forward(&rh, "sim/s0", &["--format", "json"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &results {
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.stdout, results[0].stdout);
    }
    assert_eq!(rh.ps()["count"], 1);
}

#[test]
fn twenty_tunnels_at_once() {
    let rh = Rhizome::new();
    write_config(&rh, &services(20));
    let urls: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let rh = &rh;
                s.spawn(move || forward(rh, &format!("sim/s{i}"), &[]))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let out = h.join().unwrap();
                assert_eq!(out.code, Some(0), "{out:?}");
                out.stdout.trim().to_string()
            })
            .collect()
    });
    let mut ports: Vec<u16> = urls.iter().map(|u| port_of(u)).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 20);
    for port in ports {
        let payload = random_bytes(4096);
        assert!(echo_round_trip(format!("127.0.0.1:{port}"), &payload) == payload);
    }
    assert_eq!(rh.ps()["count"], 20);
}

#[test]
fn a_port_held_by_another_process_is_named() {
    let rh = Rhizome::new();
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let out = forward(
        &rh,
        "na-prod/billing-bookkeeper",
        &["--port", &port.to_string()],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    let expected = format!(
        "error: local port {port} is in use by pid {} (",
        std::process::id()
    );
    assert!(out.stderr.starts_with(&expected), "{}", out.stderr);
    assert!(out.stderr.contains("hint: "), "{}", out.stderr);
    assert_eq!(rh.ps()["count"], 0);
}

#[test]
fn unknown_targets_and_bad_configs_are_explained() {
    let rh = Rhizome::new();
    let out = forward(&rh, "na-prod/billing-bookeeper", &[]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("did you mean na-prod/billing-bookkeeper?"),
        "{}",
        out.stderr
    );

    write_config(&rh, "[environments.x]\ncontext = \"c\"\nnamspace = \"n\"\n");
    let out = forward(&rh, "x/y", &[]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("line 3, column 1: unknown key `namspace` in [environments.ENV]; did you mean `namespace`?"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&rh.path().join("rhizome.toml").display().to_string()),
        "{}",
        out.stderr
    );
}

#[test]
fn kill_stops_a_tunnel_for_good() {
    let rh = Rhizome::new();
    write_config(&rh, &services(1));
    let port = port_of(&forward(&rh, "sim/s0", &[]).stdout);
    let pid = rh.ps()["running"][0]["pid"].as_u64().unwrap() as u32;
    let out = rh.ok(["kill", "sim/s0"]);
    assert!(out.starts_with("killed sim/s0"), "{out}");
    assert!(!alive(pid), "the forwarder is gone");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port is closed"
    );
    let entry = &rh.ps()["finished"][0];
    assert!(
        entry["status"].as_str().unwrap().starts_with("killed"),
        "{entry}"
    );
}

#[test]
fn a_dead_forwarder_is_replaced_while_the_port_stays_open() {
    let rh = Rhizome::new();
    write_config(&rh, &services(1));
    let port = port_of(&forward(&rh, "sim/s0", &[]).stdout);
    let addr = format!("127.0.0.1:{port}");
    for round in 1..=3u64 {
        let pid = rh.ps()["running"][0]["pid"].as_u64().unwrap() as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
        wait_for("the forwarder to die", Duration::from_secs(5), || {
            (!alive(pid as u32)).then_some(())
        });
        // Connecting during the outage waits for the new forwarder instead of being refused.
        let payload = random_bytes(1000);
        let back = echo_round_trip(&addr, &payload);
        assert!(back == payload, "round {round}: {} bytes back", back.len());
        let entry = &rh.ps()["running"][0];
        assert_eq!(entry["restarts"], round);
        assert_ne!(entry["pid"], pid);
    }
    let log = rh.logs("sim/s0");
    assert!(log.contains("(iteration 3)"), "{log}");
    assert!(
        log.contains("subprocess finished (signal SIGKILL)"),
        "{log}"
    );
}

#[test]
fn a_forward_needs_kubectl_unless_simulated() {
    let rh = Rhizome::new();
    // On the kubectl transport; the native one needs no kubectl.
    write_config(&rh, "[forward]\ntransport = \"kubectl\"\n");
    let out = rh
        .command(["forward", "na-prod/billing-bookkeeper"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`kubectl` was not found on PATH (looked in /nonexistent)"),
        "{stderr}"
    );
    assert!(stderr.contains("RHIZOME_SIMULATE=1"), "{stderr}");
}
