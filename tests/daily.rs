//! The tenth day (issue 13): `logs --raw` fit for `jq`, Ctrl-C in `forward` that says what goes
//! on, `run` errors that teach, and smaller things a person meets every day.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use common::cluster::Cluster;
use common::*;

/// Waits until the process with `id` has finished by itself.
fn wait_finished(rh: &Rhizome, id: u64) {
    wait_for("the process to finish", Duration::from_secs(10), || {
        let status = rh.process(id)["status"].as_str().unwrap_or("").to_string();
        status.starts_with("exited").then_some(())
    });
}

#[test]
fn logs_raw_is_only_what_the_process_wrote() {
    let rh = Rhizome::new();
    let (id, _) = rh.start([
        "run",
        "--name",
        "json",
        "--",
        "sh",
        "-c",
        r#"printf '{"level":"info","n":1}\n{"level":"warn","n":2}\n'"#,
    ]);
    wait_finished(&rh, id);
    let raw = rh.ok(["logs", "--raw", "json"]);
    let lines: Vec<serde_json::Value> = raw
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not JSON: {line:?} ({err}) in {raw:?}"))
        })
        .collect();
    assert_eq!(lines.len(), 2, "{raw:?}");
    assert_eq!(lines[1]["level"], "warn");
    // Without --raw the daemon's own lines are still there.
    let log = rh.ok(["logs", "json"]);
    assert!(log.contains("subprocess started"), "{log}");
    assert!(log.contains("subprocess finished (exit 0)"), "{log}");
    // And a client nobody here wrote reads it, where python3 is.
    if let Some(python) = require_tool("python3") {
        let mut tool = std::process::Command::new(python)
            .args(["-m", "json.tool", "--json-lines"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        tool.stdin
            .take()
            .unwrap()
            .write_all(raw.as_bytes())
            .unwrap();
        let out = tool.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The screen a person would be left looking at.
fn screen(bytes_as_chars: &str) -> String {
    // rexpect hands back each byte as a char; the terminal would read UTF-8.
    let bytes: Vec<u8> = bytes_as_chars.chars().map(|c| c as u32 as u8).collect();
    let size = |n| std::num::NonZeroU16::new(n).unwrap();
    let mut parser = vt100::Parser::new(size(24), size(120), 0);
    parser.process(&bytes);
    parser.screen().contents()
}

/// `forward fake/orders` on a pty, Ctrl-C once its spinner shows `step`: it exits 130, and this
/// is what the screen then shows.
fn ctrl_c_in_forward(cluster: &Cluster, rh: &Rhizome, step: &str) -> String {
    let mut command = cluster.command(rh, &["forward", "fake/orders"]);
    command
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::inherit());
    let mut session = rexpect::session::spawn_command(command, Some(20_000)).expect("a pty");
    let before = session
        .exp_string(step)
        .expect("the spinner shows the daemon's step");
    session.send_control('c').unwrap();
    let rest = session.exp_eof().expect("Ctrl-C ends the command");
    let status = session.process().wait().unwrap();
    assert!(
        format!("{status:?}").contains(", 130)"),
        "exit 130: {status:?}"
    );
    screen(&format!("{before}{step}{rest}"))
}

#[test]
fn ctrl_c_in_forward_clears_the_spinner_and_says_the_tunnel_goes_on() {
    // The proxy step takes long enough to press Ctrl-C in.
    let Some((cluster, rh)) = Cluster::new("exec * slow-ms 6000\n") else {
        return;
    };
    let step = "starting proxy in pod";
    let shown = ctrl_c_in_forward(&cluster, &rh, step);
    assert!(
        !shown.contains("fake/orders:"),
        "no spinner line left: {shown:?}"
    );
    assert!(
        shown.contains(
            "rhizome: still starting in the background; rhizome kill fake/orders stops it"
        ),
        "{shown:?}"
    );
    // Ctrl-C in front of a tunnel that was already starting: nothing of it is this command's.
    let shown = ctrl_c_in_forward(&cluster, &rh, step);
    assert_eq!(
        shown.trim(),
        "",
        "nothing left, nothing announced: {shown:?}"
    );

    // It is so: the tunnel is still there, and comes up by itself.
    wait_for("the tunnel to be running", Duration::from_secs(20), || {
        rh.processes()
            .into_iter()
            .any(|p| p["name"] == "fake/orders" && p["status"] == "running")
            .then_some(())
    });
}

#[test]
fn run_errors_teach() {
    let rh = Rhizome::new();
    let out = rh.run(["run", "nosuchprog"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("after `--`") && out.stderr.contains("rhizome run -- nosuchprog"),
        "{}",
        out.stderr
    );

    let out = rh.run(["run", "--", "python3 -m http.server"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("no shell"), "{}", out.stderr);
    assert!(out.stderr.contains("sh -c"), "{}", out.stderr);

    let dir = tempfile::tempdir().unwrap();
    let out: Out = rh
        .command(["run", "--", "./nope"])
        .current_dir(dir.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("no such file"), "{}", out.stderr);
    assert!(!out.stderr.contains("PATH"), "{}", out.stderr);

    let script = dir.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out: Out = rh
        .command(["run", "--", "./script.sh"])
        .current_dir(dir.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("chmod +x ./script.sh"),
        "{}",
        out.stderr
    );
}

#[test]
fn forward_env_lines_are_exported() {
    let rh = Rhizome::new();
    let port = free_port();
    let out: Out = rh
        .command([
            "forward",
            "na-prod/billing-bookkeeper",
            "--port",
            &port.to_string(),
            "--format",
            "env",
        ])
        .env("RHIZOME_SIMULATE", "1")
        .output()
        .unwrap()
        .into();
    assert_eq!(
        out.stdout,
        format!(
            "export RHIZOME_HOST=127.0.0.1\nexport RHIZOME_PORT={port}\nexport RHIZOME_URL=mysql://127.0.0.1:{port}\n"
        ),
        "{out:?}"
    );
    // A shell's child sees them.
    if let Some(sh) = require_tool("sh") {
        let seen = std::process::Command::new(sh)
            .args([
                "-c",
                "eval \"$1\"; sh -c 'echo $RHIZOME_PORT'",
                "sh",
                &out.stdout,
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&seen.stdout), format!("{port}\n"));
    }
}

#[test]
fn sleeper_is_the_last_command_in_help() {
    let help = Rhizome::new().ok(["--help"]);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|&c| c != "help")
        .collect();
    assert_eq!(commands.first(), Some(&"run"), "{help}");
    assert_eq!(commands.last(), Some(&"sleeper"), "{help}");
}

#[test]
fn a_kill_with_an_unknown_target_says_nothing_was_stopped() {
    let rh = Rhizome::new();
    let (id, _) = rh.start(["run", "--name", "nap", "--", "sleep", "600"]);
    let out = rh.run(["kill", "nap", "nosuch"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("nosuch"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was stopped"), "{}", out.stderr);
    assert_eq!(rh.process(id)["status"], "running");
}

#[test]
fn a_name_means_the_running_process_of_that_name() {
    let rh = Rhizome::new();
    let (running, pid) = rh.start(["run", "--name", "sleeper", "--", "sleep", "1000"]);
    let (finished, _) = rh.start(["run", "--name", "sleeper", "--", "true"]);
    wait_finished(&rh, finished);
    let out = rh.ok(["kill", "sleeper"]);
    assert!(
        out.starts_with(&format!("killed sleeper  id={running}  pid={pid}")),
        "the running one, not the newest: {out}"
    );
    assert!(!alive(pid));
    let again = rh.ok(["kill", &finished.to_string()]);
    assert!(
        again.contains("was not running: it had already finished"),
        "a finished process is not stopped: {again}"
    );
}

#[test]
fn a_name_shared_by_running_processes_is_refused_with_their_ids() {
    let rh = Rhizome::new();
    let (a, pid_a) = rh.start(["run", "--name", "web", "--", "sleep", "1000"]);
    let (b, pid_b) = rh.start(["run", "--name", "web", "--", "sleep", "1000"]);
    let out = rh.run(["kill", "web"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "2 processes named `web` are running (ids {a}, {b})"
        )),
        "{}",
        out.stderr
    );
    assert!(alive(pid_a) && alive(pid_b), "nothing was killed");
}

#[test]
fn a_lost_one_shot_says_so_in_its_log() {
    let rh = Rhizome::new();
    let (once, _) = rh.start(["run", "--name", "once", "--", "sleep", "1000"]);
    rh.kill_daemon_hard();
    rh.ok(["ps"]);
    wait_for(
        "the log to say what happened",
        Duration::from_secs(10),
        || {
            rh.logs("once")
                .contains("lost: it was running when its daemon died")
                .then_some(())
        },
    );
    assert!(
        !rh.logs("once").contains("restored after"),
        "{}",
        rh.logs("once")
    );
    assert_eq!(rh.process(once)["status"], "lost");
}

#[test]
fn a_short_target_name_is_the_one_target_of_that_name() {
    let rh = Rhizome::new();
    let svc = |env: &str, name: &str| {
        format!(
            "[environments.{env}.services.{name}]\nresource = \"svc/{name}\"\nremote_port = 80\ncontext = \"c\"\nnamespace = \"n\"\n"
        )
    };
    write_config(
        &rh,
        &(svc("staging", "web") + &svc("prod", "web") + &svc("staging", "api")),
    );
    let out: Out = rh
        .command(["forward", "api", "--port", "0"])
        .env("RHIZOME_SIMULATE", "1")
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("http://127.0.0.1:"), "{out:?}");
    assert!(
        out.stderr.contains("rhizome: api is staging/api"),
        "{out:?}"
    );
    let ps = rh.ps();
    assert_eq!(ps["running"][0]["name"], "staging/api", "{ps}");

    let out = rh.run(["forward", "web"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("`web` is a target in several environments: prod/web, staging/web"),
        "{out:?}"
    );
    assert!(out.stderr.contains("rhizome forward prod/web"), "{out:?}");
}

#[test]
fn a_misspelt_process_name_gets_a_suggestion() {
    let rh = Rhizome::new();
    rh.start(["run", "--name", "worker", "--", "sleep", "600"]);
    for command in ["kill", "logs"] {
        let out = rh.run([command, "wokrer"]);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr.contains("no managed process is named `wokrer`"),
            "{command}: {out:?}"
        );
        assert!(
            out.stderr.contains("did you mean worker?"),
            "{command}: {out:?}"
        );
    }
}

#[test]
fn a_resource_without_a_config_entry_is_forwarded_and_managed() {
    let Some((cluster, rh)) = Cluster::new("") else {
        return;
    };
    let args = [
        "forward",
        "--context",
        "fake-ctx",
        "--namespace",
        "db",
        "svc/web",
        ":8080",
    ];
    let out: Out = cluster.command(&rh, &args).output().unwrap().into();
    assert_eq!(out.code, Some(0), "{out:?}");
    let url = out.stdout.trim();
    let port: u16 = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a URL with a free port: {out:?}"));
    assert_eq!(
        echo_round_trip(format!("127.0.0.1:{port}"), b"ping"),
        b"ping"
    );
    let row = &rh.ps()["running"][0];
    assert_eq!(row["name"], "db/svc/web", "{row}");
    // The same command finds the tunnel rather than opening a second.
    let again: Out = cluster.command(&rh, &args).output().unwrap().into();
    assert_eq!(again.stdout.trim(), url, "{again:?}");
    assert_eq!(rh.ps()["running"].as_array().map(Vec::len), Some(1));
    let killed = rh.ok(["kill", "db/svc/web"]);
    assert!(killed.starts_with("killed db/svc/web"), "{killed}");

    let out: Out = cluster
        .command(&rh, &["forward", "--namespace", "db", "svc/web", "8080"])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("needs --context"), "{out:?}");
    let out = rh.run(["forward", "svc/web"]);
    assert!(
        out.stderr
            .contains("give its ports: `rhizome forward --context CONTEXT --namespace NAMESPACE svc/web LOCAL:REMOTE`"),
        "{out:?}"
    );
}

#[test]
fn the_tunnels_own_connections_are_marked_in_its_log() {
    let rh = Rhizome::new();
    write_config(&rh, "[forward]\nprobe_interval_secs = 1\n");
    let port = free_port();
    let out: Out = rh
        .command([
            "forward",
            "na-prod/billing-bookkeeper",
            "--port",
            &port.to_string(),
        ])
        .env("RHIZOME_SIMULATE", "1")
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{out:?}");
    let own = "(rhizome's own connection)";
    let handling = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains("Handling connection for"))
            .map(str::to_string)
            .collect()
    };
    // The readiness check and then a probe a second later: both rhizome's own.
    let log = wait_for("a probe", Duration::from_secs(10), || {
        let log = rh.logs("na-prod/billing-bookkeeper");
        (handling(&log).len() >= 2).then_some(log)
    });
    assert!(handling(&log).iter().all(|l| l.contains(own)), "{log}");
    assert_eq!(
        echo_round_trip(format!("127.0.0.1:{port}"), b"hello"),
        b"hello"
    );
    let log = wait_for("the client's connection", Duration::from_secs(10), || {
        let log = rh.logs("na-prod/billing-bookkeeper");
        handling(&log)
            .iter()
            .any(|l| !l.contains(own))
            .then_some(log)
    });
    assert_eq!(
        handling(&log).iter().filter(|l| !l.contains(own)).count(),
        1,
        "one client connection: {log}"
    );
}

#[test]
fn the_daemon_log_names_pids_as_numbers() {
    let rh = Rhizome::new();
    let (_, pid) = rh.start(["run", "--name", "nap", "--", "sleep", "600"]);
    rh.ok(["kill", "nap"]);
    let log = wait_for(
        "the daemon's log of the start",
        Duration::from_secs(10),
        || {
            let dir = rh.path().join("logs");
            let text: String = std::fs::read_dir(&dir)
                .ok()?
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("daemon"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect();
            text.contains(&format!("pid={pid}")).then_some(text)
        },
    );
    assert!(!log.contains("Some("), "no Rust debug output: {log}");
}
