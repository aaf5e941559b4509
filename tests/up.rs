//! `rhizome up` and `rhizome down` (issue 12): a whole environment at once, lazily, and stopped
//! again for good.

mod common;

use std::net::TcpListener;

use common::cluster::Cluster;
use common::*;

/// Five lazy-by-default services in `five` (two of them `autostart`), and `mixed` with one
/// target that is invalid.
fn cluster() -> Option<(Cluster, Rhizome, Vec<u16>)> {
    let (cluster, rh) = Cluster::new("")?;
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let mut config = String::from(
        "[forward]\ntransport = \"kubectl\"\n\n[environments.five]\ncontext = \"fake-ctx\"\nnamespace = \"db\"\n\n[environments.mixed]\ncontext = \"fake-ctx\"\nnamespace = \"db\"\n\n[environments.mixed.services.good]\nresource = \"svc/web\"\nremote_port = 8080\n\n[environments.mixed.services.bad]\nresource = \"secret/web\"\nremote_port = 8080\n",
    );
    for (i, port) in ports.iter().enumerate() {
        config.push_str(&format!(
            "\n[environments.five.services.s{i}]\nresource = \"svc/web\"\nremote_port = 8080\nlocal_port = {port}\nautostart = {}\n",
            i < 2
        ));
    }
    write_config(&rh, &config);
    Some((cluster, rh, ports))
}

fn held(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_err()
}

#[test]
fn up_opens_an_environment_lazily_and_down_stops_it() {
    let Some((cluster, rh, ports)) = cluster() else {
        return;
    };
    let out: Out = cluster
        .command(&rh, &["up", "five"])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "a header and one line per target: {out:?}");
    for (i, port) in ports.iter().enumerate() {
        let line = lines[i + 1];
        assert!(line.starts_with(&format!("five/s{i} ")), "{line}");
        assert!(line.contains(&format!("http://127.0.0.1:{port}")), "{line}");
        assert!(line.ends_with("idle"), "{line}");
        assert!(held(*port), "five/s{i} listens on {port}");
    }
    assert_eq!(cluster.calls().len(), 0, "lazy: no kubectl");
    // A forward of one of them finds it.
    let again: Out = cluster.forward(&rh, "five/s3");
    assert_eq!(
        again.stdout,
        format!("http://127.0.0.1:{}\n", ports[3]),
        "{again:?}"
    );
    assert_eq!(rh.ps()["count"], 5);

    let out: Out = cluster
        .command(&rh, &["down", "five"])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("stopped five/s") || l.starts_with("killed five/s"))
            .count(),
        5,
        "{out:?}"
    );
    assert_eq!(rh.ps()["count"], 0);
    assert!(ports.iter().all(|p| !held(*p)), "every port is free again");
}

#[test]
fn up_alone_opens_the_autostart_targets_and_down_alone_what_up_opened() {
    let Some((cluster, rh, ports)) = cluster() else {
        return;
    };
    // A tunnel opened by `forward` is not `up`'s to stop.
    let mine: Out = cluster.forward(&rh, "mixed/good");
    assert_eq!(mine.code, Some(0), "{mine:?}");
    let json: Out = cluster
        .command(&rh, &["up", "--json"])
        .output()
        .unwrap()
        .into();
    assert_eq!(json.code, Some(0), "{json:?}");
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let names: Vec<&str> = json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["five/s0", "five/s1"]);
    assert_eq!(json["failed"], 0);
    assert!(held(ports[0]) && held(ports[1]) && !held(ports[2]));

    let out: Out = cluster.command(&rh, &["down"]).output().unwrap().into();
    assert_eq!(out.code, Some(0), "{out:?}");
    let left = rh.ps();
    assert_eq!(left["count"], 1, "{left}");
    assert_eq!(left["running"][0]["name"], "mixed/good");
}

#[test]
fn up_says_which_target_failed_and_why() {
    let Some((cluster, rh, _)) = cluster() else {
        return;
    };
    let out: Out = cluster
        .command(&rh, &["up", "mixed"])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("mixed/good"), "{out:?}");
    assert!(
        out.stderr.contains(
            "error: mixed/bad: target mixed/bad: `resource` = \"secret/web\" is not allowed"
        ),
        "{out:?}"
    );
    let out = rh.run(["up", "fiv"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("did you mean five?"), "{out:?}");
}
