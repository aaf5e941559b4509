//! What people read in the shell, in pipes: `logs` filters, `rhizome` alone, help with examples,
//! and errors with hints.

mod common;

use std::time::Duration;

use common::*;

/// Runs a prepared command to its end.
fn output(mut command: std::process::Command) -> Out {
    let out = command.output().unwrap();
    out.into()
}

/// Starts a process that prints `lines` and waits until its log is complete.
fn finished(rh: &Rhizome, name: &str, script: &str) -> u64 {
    let (id, _) = rh.start(["run", "--name", name, "--", "sh", "-c", script]);
    rh.finished_log(name);
    id
}

#[test]
fn logs_filters_by_pattern_and_time_and_prints_raw_text() {
    let rh = Rhizome::new();
    finished(
        &rh,
        "talker",
        "echo 'GET /a 200'; echo 'GET /b 500'; echo 'POST /c 200'; echo 'GET /d 503'; echo '  indented  '",
    );

    let grep = rh.ok(["logs", "--grep", " 5[0-9]{2}$", "talker"]);
    let lines: Vec<&str> = grep.lines().collect();
    assert_eq!(lines.len(), 2, "{grep}");
    assert!(
        lines[0].contains(" GET /b 500 ") && lines[0].contains("[talker] pid="),
        "{grep}"
    );
    assert!(lines[1].contains(" GET /d 503 "), "{grep}");

    // -n with a filter counts matching lines: the last one that matches.
    let last = rh.ok(["logs", "-n", "1", "--grep", "GET", "talker"]);
    assert_eq!(last.lines().count(), 1, "{last}");
    assert!(last.contains("GET /d 503"), "{last}");

    let raw = rh.ok(["logs", "--raw", "talker"]);
    assert_eq!(
        raw, "GET /a 200\nGET /b 500\nPOST /c 200\nGET /d 503\n  indented\n",
        "the process's text, without time stamp, name or the daemon's lines (padding cannot be told from trailing spaces)"
    );
    let raw_grep = rh.ok(["logs", "--raw", "--grep", "(?i)post", "talker"]);
    assert_eq!(raw_grep, "POST /c 200\n");

    // Everything was written within the last hour, nothing after now.
    assert_eq!(
        rh.ok(["logs", "--since", "1h", "talker"]),
        rh.logs("talker")
    );
    assert_eq!(rh.ok(["logs", "--since", "0s", "talker"]), "");

    for bad in [
        vec!["logs", "--since", "ten", "talker"],
        vec!["logs", "--grep", "(", "talker"],
    ] {
        let out = rh.run(&bad);
        assert_eq!(out.code, Some(2), "a usage error: {out:?}");
        assert!(out.stderr.starts_with("error: invalid value"), "{out:?}");
    }
}

#[test]
fn logs_follow_with_a_filter_prints_the_last_matches_then_new_ones() {
    let rh = Rhizome::new();
    let started = rh
        .command(["sleeper", "--count", "60"])
        .env("SLEEP_OVERRIDE", "0.05")
        .output()
        .unwrap();
    let (id, _) = parse_started(&String::from_utf8_lossy(&started.stdout));
    wait_for("a few lines", Duration::from_secs(10), || {
        rh.logs(&id.to_string()).contains(" 20 ").then_some(())
    });
    let out = rh.ok([
        "logs",
        "-f",
        "-n",
        "2",
        "--raw",
        "--grep",
        "^[0-9]*0$",
        &id.to_string(),
    ]);
    let numbers: Vec<u64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(numbers.last(), Some(&50), "followed to the end: {out}");
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 10),
        "each multiple of 10 once, in order, from the last two that had been written: {out}"
    );
    assert!(numbers.len() <= 5 && numbers[0] >= 10, "{out}");
}

#[test]
fn rhizome_alone_shows_a_short_status_and_never_starts_the_daemon() {
    let rh = Rhizome::new();
    let out = rh.run(Vec::<&str>::new());
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("daemon     not running"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("rhizome forward ENV/NAME"),
        "{}",
        out.stdout
    );
    assert!(!rh.daemon_running(), "looking did not start a daemon");

    rh.start(["sleeper", "--count", "1000"]);
    let out = rh.ok(Vec::<&str>::new());
    assert!(out.contains("daemon     running"), "{out}");
    assert!(out.contains("processes  1 running, 0 finished"), "{out}");
}

#[test]
fn every_command_has_an_example_in_its_help() {
    let rh = Rhizome::new();
    for command in [
        vec!["sleeper"],
        vec!["run"],
        vec!["ps"],
        vec!["logs"],
        vec!["kill"],
        vec!["daemon"],
        vec!["daemon", "start"],
        vec!["daemon", "stop"],
        vec!["daemon", "restart"],
        vec!["daemon", "status"],
        vec!["daemon", "run"],
        vec!["forward"],
        vec!["targets"],
        vec!["completions"],
        vec![],
    ] {
        let mut args = command.clone();
        args.push("--help");
        let help = rh.ok(&args);
        assert!(
            help.contains("Example"),
            "`rhizome {}` has an example:\n{help}",
            args.join(" ")
        );
    }
    assert!(!rh.daemon_running());
}

#[test]
fn errors_are_one_line_with_a_hint_where_there_is_a_fix() {
    let rh = Rhizome::new();
    let hinted = |out: &Out, error: &str, hint: &str| {
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "one error line, one hint line: {out:?}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(error),
            "{out:?}"
        );
        assert!(
            lines[1].starts_with("hint: ") && lines[1].contains(hint),
            "{out:?}"
        );
        assert_eq!(out.code, Some(1));
    };

    // No daemon.
    hinted(
        &rh.run(["kill", "web"]),
        "no rhizome daemon is running",
        "rhizome ps",
    );
    // An unknown target, with the near match.
    let mut command = rh.command(["forward", "na-prod/billing-bookeeper"]);
    command.env("RHIZOME_SIMULATE", "1");
    let out = output(command);
    hinted(
        &out,
        "there is no target `na-prod/billing-bookeeper`",
        "did you mean na-prod/billing-bookkeeper?",
    );
    // kubectl missing, on the kubectl transport.
    let mut command = rh.command([
        "forward",
        "na-prod/billing-bookkeeper",
        "--transport",
        "kubectl",
    ]);
    command.env("RHIZOME_KUBECTL", "/nonexistent/kubectl");
    let out = output(command);
    hinted(&out, "kubectl could not be found", "RHIZOME_KUBECTL");
    // A port in use, and by whom.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let mut command = rh.command(["forward", "na-prod/billing-bookkeeper", "--port", &port]);
    command.env("RHIZOME_SIMULATE", "1");
    let out = output(command);
    let stderr: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.starts_with("rhizome: "))
        .collect();
    assert_eq!(stderr.len(), 2, "{out:?}");
    assert!(
        stderr[0].starts_with(&format!(
            "error: local port {port} is in use by pid {}",
            std::process::id()
        )),
        "{out:?}"
    );
    assert!(
        stderr[1].starts_with("hint: ") && stderr[1].contains("--port"),
        "{out:?}"
    );
    // A name nobody has.
    hinted(&rh.run(["logs", "nosuch"]), "nosuch", "rhizome ps --all");
}
