//! `ps` and `targets` as a daily user meets them: one documented JSON shape for a process in
//! every `--json` (pinned here key by key, so a change is deliberate), the real kubectl command
//! line, filters by id, name, pid and state, tables that fit 80 and 120 columns exactly, an empty
//! list that says so, and `targets` failing on an invalid target.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::cluster::Cluster;
use common::*;
use serde_json::Value;

/// A JSON value's type, as the README's table of fields names it.
fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of a process object, with the types its value may have.
const PROCESS: &[(&str, &[&str])] = &[
    ("id", &["number"]),
    ("name", &["string"]),
    ("kind", &["string"]),
    ("status", &["string"]),
    ("exit_code", &["number", "null"]),
    ("signal", &["string", "null"]),
    ("reason", &["string", "null"]),
    ("pid", &["number", "null"]),
    ("command", &["array"]),
    ("transport", &["string", "null"]),
    ("transport_reason", &["string", "null"]),
    ("restart", &["string"]),
    ("restarts", &["number"]),
    ("started_at", &["string", "null"]),
    ("ended_at", &["string", "null"]),
    ("uptime_secs", &["number", "null"]),
    ("detail", &["string", "null"]),
    ("tunnel", &["object", "null"]),
];

/// Every key of a process's `tunnel`.
const TUNNEL: &[(&str, &[&str])] = &[
    ("target", &["string"]),
    ("url", &["string"]),
    ("local", &["string"]),
    ("local_port", &["number"]),
    ("remote_port", &["number", "null"]),
    ("upstream", &["string", "null"]),
    ("sql_connection", &["string", "null"]),
    ("connections_open", &["number"]),
    ("connections_total", &["number"]),
    ("bytes_up", &["number"]),
    ("bytes_down", &["number"]),
];

/// `ps --json`, and `processes` in `daemon status --json`.
const PROCESSES: &[(&str, &[&str])] = &[
    ("running", &["array"]),
    ("count", &["number"]),
    ("finished", &["array"]),
];

const DAEMON: &[(&str, &[&str])] = &[
    ("status", &["string"]),
    ("pid", &["number", "null"]),
    ("version", &["string", "null"]),
    ("started_at", &["string", "null"]),
    ("uptime_secs", &["number", "null"]),
    ("socket", &["string"]),
    ("home", &["string"]),
    ("processes", &["object", "null"]),
];

const TARGETS: &[(&str, &[&str])] = &[
    ("targets", &["array"]),
    ("count", &["number"]),
    ("invalid", &["number"]),
];

const TARGET: &[(&str, &[&str])] = &[
    ("name", &["string"]),
    ("kind", &["string", "null"]),
    ("context", &["string", "null"]),
    ("namespace", &["string", "null"]),
    ("kubeconfig", &["string", "null"]),
    ("resource", &["string", "null"]),
    ("sql_connection", &["string", "null"]),
    ("local_port", &["number", "null"]),
    ("remote_port", &["number", "null"]),
    ("scheme", &["string", "null"]),
    ("error", &["string", "null"]),
];

/// `value` is an object with exactly the keys of `shape`, each of one of its types, in order.
fn assert_shape(value: &Value, shape: &[(&str, &[&str])], what: &str) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{what} is an object: {value}"));
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    let want: Vec<&str> = shape.iter().map(|(key, _)| *key).collect();
    let (mut sorted_keys, mut sorted_want) = (keys.clone(), want.clone());
    sorted_keys.sort();
    sorted_want.sort();
    assert_eq!(sorted_keys, sorted_want, "the keys of {what}: {value}");
    for (key, types) in shape {
        let found = type_of(&value[*key]);
        assert!(
            types.contains(&found),
            "{what}.{key} is {found}, not one of {types:?}: {value}"
        );
    }
}

/// A process object, its tunnel included.
fn assert_process(value: &Value, what: &str) {
    assert_shape(value, PROCESS, what);
    if !value["tunnel"].is_null() {
        assert_shape(&value["tunnel"], TUNNEL, &format!("{what}.tunnel"));
    }
}

/// A list of processes, and every process in it.
fn assert_processes(value: &Value, what: &str) {
    assert_shape(value, PROCESSES, what);
    for list in ["running", "finished"] {
        for (i, p) in value[list].as_array().unwrap().iter().enumerate() {
            assert_process(p, &format!("{what}.{list}[{i}]"));
        }
    }
}

/// A time as every `--json` writes it: RFC 3339, in UTC.
fn assert_utc(value: &Value) {
    let text = value.as_str().unwrap_or_else(|| panic!("a time: {value}"));
    assert!(text.ends_with('Z'), "{text} is in UTC");
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"));
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

/// `rhizome forward TARGET --port 0` with no cluster, the tunnel's JSON on stdout.
fn forward_simulated(rh: &Rhizome, target: &str) -> Value {
    let out: Out = rh
        .command(["forward", target, "--port", "0", "-q", "--format", "json"])
        .env("RHIZOME_SIMULATE", "1")
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{out:?}");
    json(&out.stdout)
}

/// Waits until process `id` has reached `status` (a word), and returns its JSON.
fn wait_status(rh: &Rhizome, id: u64, status: &str) -> Value {
    wait_for(
        &format!("process {id} to be {status}"),
        Duration::from_secs(20),
        || {
            let entry = rh.process(id);
            (entry["status"] == status).then_some(entry)
        },
    )
}

/// `rhizome ARGS` at `columns` columns (COLUMNS, as a shell sets it).
fn at_columns(rh: &Rhizome, columns: u16, args: &[&str]) -> Out {
    rh.command(args)
        .env("COLUMNS", columns.to_string())
        .output()
        .unwrap()
        .into()
}

#[test]
fn every_json_that_shows_a_process_has_the_one_documented_shape() {
    let rh = Rhizome::new();
    rh.start(["run", "--name", "web", "--", "sleep", "1000"]);
    let (once, _) = rh.start(["run", "--name", "once", "--", "sh", "-c", "exit 3"]);
    let (killed, _) = rh.start(["run", "--name", "stopped", "--", "sleep", "1000"]);
    rh.ok(["kill", "stopped"]);
    assert_eq!(rh.run(["run", "--", "/no/such/program"]).code, Some(1));
    wait_status(&rh, once, "exited");

    // `forward` adds the target's login to the process (the password only when asked).
    let mut forwarded = forward_simulated(&rh, "na-prod/billing-bookkeeper");
    let login = forwarded.as_object_mut().unwrap();
    for key in ["user", "database"] {
        let value = login.remove(key);
        assert!(
            value.as_ref().is_some_and(|v| v.is_null() || v.is_string()),
            "{key}: {value:?}"
        );
    }
    assert_process(&forwarded, "forward --format json");
    assert_eq!(forwarded["transport"], "simulated");
    assert_eq!(forwarded["tunnel"]["remote_port"], 3307);

    let ps = json(&rh.ok(["ps", "--all", "--json"]));
    assert_processes(&ps, "ps --all --json");
    assert_eq!(ps["count"], 2, "web and the tunnel run: {ps}");
    assert_eq!(ps["finished"].as_array().unwrap().len(), 3, "{ps}");
    let tunnel = ps["running"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "forward")
        .expect("the tunnel");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(tunnel),
        keys(&forwarded),
        "forward prints what ps shows"
    );
    assert_eq!(tunnel["id"], forwarded["id"]);
    assert_eq!(
        rh.process(killed)["transport"],
        Value::Null,
        "a command has no transport"
    );

    let status = json(&rh.ok(["daemon", "status", "--json"]));
    assert_shape(&status, DAEMON, "daemon status --json");
    assert_processes(&status["processes"], "daemon status --json: processes");
    assert_eq!(status["status"], "running");
    assert_utc(&status["started_at"]);
    assert_eq!(status["processes"]["count"], 2);

    rh.ok(["daemon", "stop"]);
    let out = rh.run(["daemon", "status", "--json"]);
    assert_eq!(out.code, Some(3), "not running: {out:?}");
    let stopped = json(&out.stdout);
    assert_shape(&stopped, DAEMON, "daemon status --json, no daemon");
    assert_eq!(stopped["status"], "not running");
    assert_eq!(stopped["processes"], Value::Null);
}

#[test]
fn a_status_is_one_word_with_its_code_signal_reason_and_times_beside_it() {
    let rh = Rhizome::new();
    let (running, pid) = rh.start(["run", "--name", "web", "--", "sleep", "1000"]);
    let (exited, _) = rh.start(["run", "--name", "once", "--", "sh", "-c", "exit 3"]);
    let (killed, _) = rh.start(["run", "--name", "stopped", "--", "sleep", "1000"]);
    rh.ok(["kill", "stopped"]);
    let out = rh.run(["run", "--name", "missing", "--", "/no/such/program"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    wait_status(&rh, exited, "exited");

    let web = rh.process(running);
    assert_eq!(
        (&web["status"], &web["pid"]),
        (&"running".into(), &pid.into())
    );
    assert!(web["uptime_secs"].is_u64(), "{web}");
    assert_eq!(web["ended_at"], Value::Null);
    assert_utc(&web["started_at"]);

    let once = rh.process(exited);
    assert_eq!(once["status"], "exited");
    assert_eq!(once["exit_code"], 3);
    assert_eq!(once["signal"], Value::Null);
    assert_eq!(
        once["uptime_secs"],
        Value::Null,
        "no uptime once over: {once}"
    );
    assert_utc(&once["ended_at"]);
    assert!(
        once["ended_at"].as_str() >= once["started_at"].as_str(),
        "{once}"
    );

    let stopped = rh.process(killed);
    assert_eq!(
        (
            &stopped["status"],
            &stopped["signal"],
            &stopped["exit_code"]
        ),
        (&"killed".into(), &"SIGTERM".into(), &Value::Null)
    );
    assert_utc(&stopped["ended_at"]);

    let failed = rh
        .processes()
        .into_iter()
        .find(|p| p["name"] == "missing")
        .unwrap();
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("/no/such/program")),
        "{failed}"
    );

    // Times survive the daemon, and a file from before they were kept still loads.
    rh.ok(["daemon", "restart"]);
    assert_eq!(rh.process(exited)["ended_at"], once["ended_at"]);
    rh.ok(["daemon", "stop"]);
    let path = rh.path().join("state/processes.json");
    let mut state = json(&std::fs::read_to_string(&path).unwrap());
    for saved in state["processes"].as_array_mut().unwrap() {
        if let Some(end) = saved["ended"].as_object_mut() {
            end.remove("ended_at_ms");
        }
    }
    std::fs::write(&path, state.to_string()).unwrap();
    let old = rh.process(exited);
    assert_eq!(old["ended_at"], Value::Null, "not known: {old}");
    assert_eq!(old["exit_code"], 3);
}

#[test]
fn a_tunnel_shows_the_kubectl_command_that_runs() {
    let Some((cluster, rh)) = Cluster::new("") else {
        return;
    };
    let out = cluster.forward(&rh, "fake/web");
    assert_eq!(out.code, Some(0), "{out:?}");
    let web = rh
        .processes()
        .into_iter()
        .find(|p| p["name"] == "fake/web")
        .unwrap();
    let args = |p: &Value| -> Vec<String> {
        p["command"].as_array().unwrap()[1..]
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        web["command"][0]
            .as_str()
            .unwrap()
            .ends_with("fake-kubectl"),
        "{web}"
    );
    assert_eq!(
        args(&web),
        [
            "--context",
            "fake-ctx",
            "--namespace",
            "db",
            "port-forward",
            "svc/web",
            "0:8080",
            "--address",
            "127.0.0.1"
        ],
        "the port-forward that ran: {web}"
    );
    assert_eq!(web["transport"], "kubectl");
    assert_eq!(web["tunnel"]["remote_port"], 8080);
    // The table shows kubectl by its name.
    let table = rh.ok(["ps"]);
    assert!(
        cell(&table, web["id"].as_u64().unwrap(), "COMMAND")
            .starts_with("fake-kubectl --context fake-ctx"),
        "{table}"
    );
}

#[test]
fn a_tunnel_that_never_got_through_shows_its_command_reason_and_end() {
    let Some((cluster, rh)) = Cluster::new("port-forward * fail\n") else {
        return;
    };
    let out = cluster.forward(&rh, "fake/web");
    assert_eq!(out.code, Some(1), "{out:?}");
    let entry = &rh.ps()["finished"][0];
    assert_eq!(entry["status"], "failed", "{entry}");
    assert!(
        entry["reason"]
            .as_str()
            .is_some_and(|r| r.contains("port-forward")),
        "{entry}"
    );
    let command: Vec<&str> = entry["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        command
            .windows(3)
            .any(|w| w == ["port-forward", "svc/web", "0:8080"]),
        "not 0:0: {entry}"
    );
    assert_utc(&entry["ended_at"]);
    assert_eq!(entry["uptime_secs"], Value::Null);
}

#[test]
fn a_database_tunnel_shows_the_exec_while_its_proxy_port_is_not_known() {
    let Some((cluster, rh)) = Cluster::new("exec * slow-ms 8000\n") else {
        return;
    };
    let mut forward = cluster.command(&rh, &["forward", "fake/orders", "-q"]);
    forward.stdout(Stdio::null()).stderr(Stdio::null());
    let _forward = Proc::spawn(&mut forward, "rhizome forward fake/orders");
    let entry = wait_for("the tunnel to be starting", Duration::from_secs(20), || {
        rh.processes()
            .into_iter()
            .find(|p| p["name"] == "fake/orders" && p["status"] == "starting")
    });
    let command = entry["command"].to_string();
    assert!(
        command.contains(r#""exec","deploy/cloudsql","--""#),
        "the exec that starts the proxy is what runs: {entry}"
    );
    assert!(!command.contains("port-forward"), "{entry}");
}

#[test]
fn the_pid_is_empty_while_a_tunnel_has_no_live_kubectl() {
    // The second port-forward takes long to start: the tunnel is reconnecting meanwhile.
    let Some((cluster, rh)) = Cluster::new("port-forward 2 slow-ms 8000\n") else {
        return;
    };
    assert_eq!(cluster.forward(&rh, "fake/web").code, Some(0));
    let id = rh.processes()[0]["id"].as_u64().unwrap();
    let table = rh.ok(["ps"]);
    let pid = cell(&table, id, "PID");
    assert_eq!(pid, rh.process(id)["pid"].to_string(), "{table}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid.parse().unwrap()),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let entry = wait_status(&rh, id, "reconnecting");
    assert_eq!(entry["pid"], Value::Null, "{entry}");
    let table = rh.ok(["ps"]);
    assert_eq!(cell(&table, id, "PID"), "", "{table}");
    assert_eq!(cell(&table, id, "STATUS"), "reconnecting", "{table}");
    assert_eq!(cell(&table, id, "UPTIME"), "", "{table}");
}

#[test]
fn ps_narrows_to_ids_names_pids_and_states() {
    let rh = Rhizome::new();
    let (web, web_pid) = rh.start(["run", "--name", "web", "--", "sleep", "1000"]);
    let (api, _) = rh.start(["run", "--name", "api", "--", "sleep", "1000"]);
    let (once, _) = rh.start(["run", "--name", "web", "--", "sh", "-c", "exit 3"]);
    wait_status(&rh, once, "exited");
    let ids = |args: &[&str]| -> Vec<u64> {
        let mut command = vec!["ps", "--json"];
        command.extend(args);
        let ps = json(&rh.ok(&command));
        ["running", "finished"]
            .iter()
            .flat_map(|list| ps[list].as_array().unwrap().clone())
            .map(|p| p["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&[]), [web, api]);
    assert_eq!(
        ids(&["web"]),
        [web],
        "a name: the running ones of that name"
    );
    assert_eq!(ids(&["web", "--all"]), [web, once]);
    assert_eq!(ids(&[&once.to_string()]), [once], "an id, finished or not");
    assert_eq!(ids(&[&web_pid.to_string(), "api"]), [web, api], "a pid");
    assert_eq!(ids(&["--status", "exited"]), [once], "a finished state");
    assert_eq!(ids(&["--status", "exited,running"]), [web, api, once]);
    assert_eq!(
        ids(&["--status", "exited", "--status", "running", "web"]),
        [web, once]
    );
    assert_eq!(ids(&["--status", "failed"]), Vec::<u64>::new());

    let table = rh.ok(["ps", "--status", "exited"]);
    assert_eq!(table.lines().count(), 2, "a header and one row: {table}");
    assert_eq!(cell(&table, once, "STATUS"), "exited(3)");
    assert_eq!(
        rh.ok(["ps", "--status", "failed"]),
        "no process matches; `rhizome ps --all` lists every one the daemon remembers\n"
    );

    let out = rh.run(["ps", "web", "nosuch"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "", "nothing is listed");
    assert!(
        out.stderr
            .starts_with("error: no managed process is named `nosuch`\n"),
        "{}",
        out.stderr
    );
    let out = rh.run(["ps", "--status", "sleeping"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr
            .contains("starting, idle, running, restarting, reconnecting, exited, killed, failed, lost, crash-loop"),
        "the states are offered: {}",
        out.stderr
    );
}

#[test]
fn completion_offers_the_states_of_ps_status_and_the_processes() {
    let rh = Rhizome::new();
    rh.start(["run", "--name", "web", "--", "sleep", "1000"]);
    let complete = |words: &[&str]| -> Out {
        let mut args = vec!["--", "rhizome", "ps"];
        args.extend(words);
        rh.command(args)
            .env("COMPLETE", "fish")
            .env("RHIZOME_COMPLETE_TIMEOUT_MS", "5000")
            .output()
            .unwrap()
            .into()
    };
    let out = complete(&["--status", "running,f"]);
    assert_eq!(
        out.stdout, "running,failed\tcould not be started, or a tunnel that never got through\n",
        "{out:?}"
    );
    let out = complete(&[""]);
    assert!(
        out.stdout.contains("1\tweb running\n") && out.stdout.contains("web\tid 1, running\n"),
        "ids and names: {out:?}"
    );
}

#[test]
fn an_empty_ps_says_so_and_its_json_keeps_its_shape() {
    let rh = Rhizome::new();
    let out = rh.run(["ps"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "no processes; rhizome run -- CMD starts one\n");
    assert_eq!(
        rh.ok(["ps", "--json"]),
        "{\"running\":[],\"count\":0,\"finished\":[]}\n"
    );
    let (id, _) = rh.start(["run", "--", "true"]);
    wait_status(&rh, id, "exited");
    assert_eq!(
        rh.ok(["ps"]),
        "no running processes (1 finished: rhizome ps --all); rhizome run -- CMD starts one\n"
    );
}

/// Three processes whose table at 80 columns must give way: a long name, a long command, and
/// one that exited.
fn three_processes(rh: &Rhizome) {
    rh.start(["run", "--name", "web", "--", "sleep", "1000"]);
    rh.start([
        "run",
        "--name",
        "worker-with-a-rather-long-name",
        "--",
        "sh",
        "-c",
        "sleep 1000 # keeps running; this comment makes the command wider than eighty columns",
    ]);
    let (once, _) = rh.start(["run", "--name", "once", "--", "sh", "-c", "exit 3"]);
    wait_status(rh, once, "exited");
}

#[test]
fn ps_fits_80_columns_exactly() {
    let rh = Rhizome::new();
    three_processes(&rh);
    let out = at_columns(&rh, 80, &["ps", "--all"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        mask_columns(&out.stdout, &["PID", "UPTIME"]),
        "\
ID  NAME                PID      STATUS     UPTIME  RESTARTS  COMMAND
1   web                 *        running    *       0         sleep 1000
2   worker-with-a-rat…  *        running    *       0         sh -c sleep 1000 …
3   once                         exited(3)          0         sh -c exit 3
"
    );
    for line in out.stdout.lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
        assert_eq!(line, line.trim_end(), "no trailing spaces");
    }
    // Without a terminal or COLUMNS nothing is cut: a script reads it whole.
    let piped = rh.ok(["ps", "--all"]);
    assert!(piped.contains("wider than eighty columns"), "{piped}");
}

#[test]
fn ps_at_120_columns_cuts_only_what_does_not_fit() {
    let rh = Rhizome::new();
    three_processes(&rh);
    let out = at_columns(&rh, 120, &["ps", "--all"]);
    assert_eq!(
        mask_columns(&out.stdout, &["PID", "UPTIME"]),
        "\
ID  NAME                            PID      STATUS     UPTIME  RESTARTS  COMMAND
1   web                             *        running    *       0         sleep 1000
2   worker-with-a-rather-long-name  *        running    *       0         sh -c sleep 1000 # keeps running; this commen…
3   once                                     exited(3)          0         sh -c exit 3
"
    );
}

const CONFIG: &str = r#"[environments.staging]
context = "gke_acme-staging_europe-west1_staging-cluster"
namespace = "shop"

[environments.staging.services.web]
resource = "svc/web"
remote_port = 80
local_port = 8080
scheme = "http"

[environments.staging.services.broken]
resource = "svc/x"
remote_port = 80
namespace = "Bad_Name"
"#;

#[test]
fn targets_fit_80_columns_and_an_invalid_one_fails_the_command() {
    let rh = Rhizome::new();
    write_config(&rh, CONFIG);
    let out = at_columns(&rh, 80, &["targets"]);
    assert_eq!(
        out.stdout,
        "\
TARGET                KIND      LOCAL  CONTEXT               UPSTREAM
na-prod/billing-boo…  database  3306   gke_clover-prod-kub…  gke-cloudsql-acces…
staging/broken        invalid                                `namespace` = \"Bad…
staging/web           service   8080   gke_acme-staging_eu…  shop/svc/web:80
"
    );
    assert_eq!(out.code, Some(1), "an invalid target fails: {out:?}");
    assert!(
        out.stderr
            .starts_with("error: target staging/broken: `namespace` = \"Bad_Name\" is not allowed"),
        "the whole reason: {}",
        out.stderr
    );
    assert!(out.stderr.contains("hint: fix "), "{}", out.stderr);

    write_config(
        &rh,
        &CONFIG[..CONFIG
            .find("[environments.staging.services.broken]")
            .unwrap()],
    );
    let out = rh.run(["targets"]);
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[test]
fn targets_json_is_an_object_with_remote_ports() {
    let rh = Rhizome::new();
    write_config(&rh, CONFIG);
    let out = rh.run(["targets", "--json"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let list = json(&out.stdout);
    assert_shape(&list, TARGETS, "targets --json");
    assert_eq!((&list["count"], &list["invalid"]), (&3.into(), &1.into()));
    let targets = list["targets"].as_array().unwrap();
    for (i, target) in targets.iter().enumerate() {
        assert_shape(target, TARGET, &format!("targets[{i}]"));
    }
    let by_name = |name: &str| targets.iter().find(|t| t["name"] == name).unwrap();
    let web = by_name("staging/web");
    assert_eq!(
        (&web["kind"], &web["remote_port"], &web["local_port"]),
        (&"service".into(), &80.into(), &8080.into())
    );
    assert_eq!(web["error"], Value::Null);
    let database = by_name("na-prod/billing-bookkeeper");
    assert_eq!(
        database["remote_port"],
        Value::Null,
        "learnt from the proxy"
    );
    let broken = by_name("staging/broken");
    assert_eq!(broken["kind"], Value::Null);
    assert!(broken["error"].as_str().unwrap().contains("Bad_Name"));
}
