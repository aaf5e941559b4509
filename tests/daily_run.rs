//! `run` as people reach for it every day (issue 13, item 9): `--env` and `--cwd`, a crash loop
//! that stops restarting (`--max-restarts`) and shows in `ps`, a log that says when the next
//! restart comes, and errors that teach where the command, a directory or a file is wrong.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A directory to run from, with `work/` in it; canonical, so it reads as `pwd` prints it.
fn workdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join("work")).unwrap();
    (dir, root)
}

/// A `rhizome` command run from `dir`.
fn from(rh: &Rhizome, dir: &Path, args: &[&str]) -> Command {
    let mut command = rh.command(args);
    command.current_dir(dir);
    command
}

fn out(mut command: Command) -> Out {
    command.output().unwrap().into()
}

/// Waits until `ps` shows process `id` with a status that starts with `status`, and returns it.
fn wait_status(rh: &Rhizome, id: u64, status: &str) -> serde_json::Value {
    wait_for(
        &format!("process {id} to be {status}"),
        Duration::from_secs(20),
        || {
            let process = rh.process(id);
            let now = process["status"].as_str().unwrap_or("").to_string();
            now.starts_with(status).then_some(process)
        },
    )
}

#[test]
fn env_and_cwd_reach_the_command_over_this_shells_own() {
    let rh = Rhizome::new();
    let (_dir, root) = workdir();
    let mut command = from(
        &rh,
        &root,
        &[
            "run",
            "--name",
            "show",
            "--env",
            "GREETING=hello there",
            "-e",
            "FROM_SHELL=overridden",
            "--env",
            "URL=a=b",
            "--cwd",
            "work",
            "--",
            "sh",
            "-c",
            r#"printf '%s|%s|%s|%s|%s|%s\n' "$GREETING" "$FROM_SHELL" "$URL" "$KEPT" "$(pwd)" "$PWD""#,
        ],
    );
    command.env("FROM_SHELL", "outer").env("KEPT", "kept");
    let started = out(command);
    assert_eq!(started.code, Some(0), "{started:?}");
    let (id, _) = parse_started(&started.stdout);
    wait_status(&rh, id, "exited");
    let work = root.join("work").display().to_string();
    assert_eq!(
        rh.ok(["logs", "--raw", "show"]),
        format!("hello there|overridden|a=b|kept|{work}|{work}\n"),
        "--env wins over the shell's variable, the rest of the shell's stays, PWD follows --cwd"
    );
}

#[test]
fn a_restarted_command_keeps_its_env_cwd_and_limit_across_a_daemon_crash() {
    let rh = Rhizome::new();
    let (_dir, root) = workdir();
    let started = out(from(
        &rh,
        &root,
        &[
            "run",
            "--name",
            "keeper",
            "--restart",
            "always",
            "--max-restarts",
            "4",
            "--env",
            "MARK=kept",
            "--cwd",
            "work",
            "--",
            "sh",
            "-c",
            r#"echo "$MARK in $(pwd)"; exec sleep 1000"#,
        ],
    ));
    let (id, _) = parse_started(&started.stdout);
    let line = format!("kept in {}", root.join("work").display());
    wait_for("the first run's line", Duration::from_secs(10), || {
        rh.ok(["logs", "--raw", "keeper"])
            .contains(&line)
            .then_some(())
    });
    let state = std::fs::read_to_string(rh.path().join("state/processes.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["processes"][0]["max_restarts"], 4, "{state}");

    rh.kill_daemon_hard();
    rh.ok(["ps"]);
    wait_for("the run after the crash", Duration::from_secs(20), || {
        (rh.ok(["logs", "--raw", "keeper"]).matches(&line).count() == 2).then_some(())
    });
    assert_eq!(rh.process(id)["status"], "running");
}

#[test]
fn a_crash_loop_stops_restarting_says_so_and_shows_in_ps() {
    let rh = Rhizome::new();
    let (id, _) = rh.start([
        "run",
        "--name",
        "flaky",
        "--restart",
        "always",
        "--max-restarts",
        "2",
        "--",
        "sh",
        "-c",
        "echo try; exit 3",
    ]);
    let process = wait_status(&rh, id, "crash-loop");
    assert_eq!(process["restarts"], 2);
    assert!(
        process["reason"]
            .as_str()
            .is_some_and(|r| r.contains("restarted 2 times in a row")),
        "{process}"
    );

    let log = rh.logs("flaky");
    let said: Vec<String> = messages(&log)
        .into_iter()
        .filter(|m| !m.starts_with("try") && !m.starts_with("subprocess"))
        .map(|m| m.split(" [flaky]").next().unwrap().trim_end().to_string())
        .collect();
    assert_eq!(
        said,
        [
            "restarting in 0.1s (restart 1; failed restarts in a row: 0 of at most 2)",
            "restarting in 0.2s (restart 2; failed restarts in a row: 1 of at most 2)",
            "crash loop: 2 restarts in a row each ended within 60s; not restarting (--max-restarts 2)",
        ],
        "{log}"
    );
    assert_eq!(rh.ok(["logs", "--raw", "flaky"]), "try\ntry\ntry\n");

    // Listed by a plain `ps`: it was meant to run, and waits for a person.
    let table = rh.ok(["ps"]);
    let row = table
        .lines()
        .find(|l| l.contains("flaky"))
        .unwrap_or_else(|| panic!("ps lists the crash loop: {table}"));
    assert!(row.contains("crash-loop"), "{table}");

    // Nothing runs to kill.
    let killed = rh.ok(["kill", "flaky"]);
    assert!(killed.contains("was not running"), "{killed}");

    // The next daemon finds it as it was, and does not start it again.
    rh.kill_daemon_hard();
    assert!(
        rh.process(id)["status"]
            .as_str()
            .unwrap()
            .starts_with("crash-loop"),
        "{}",
        rh.process(id)
    );
    assert_eq!(rh.ok(["logs", "--raw", "flaky"]), "try\ntry\ntry\n");
}

#[test]
fn a_restart_without_a_limit_is_announced_with_its_wait() {
    let rh = Rhizome::new();
    let (id, _) = rh.start([
        "run",
        "--name",
        "fails",
        "--restart",
        "on-failure",
        "--",
        "sh",
        "-c",
        "exit 1",
    ]);
    wait_for("three restarts", Duration::from_secs(20), || {
        (rh.process(id)["restarts"].as_u64() >= Some(3)).then_some(())
    });
    let log = rh.logs("fails");
    for wanted in [
        "restarting in 0.1s (restart 1)",
        "restarting in 0.2s (restart 2)",
        "restarting in 0.4s (restart 3)",
    ] {
        assert!(log.contains(wanted), "{wanted:?} in {log}");
    }
    rh.ok(["kill", "fails"]);
}

#[test]
fn flags_that_cannot_work_are_refused_before_anything_starts() {
    let rh = Rhizome::new();
    let (_dir, root) = workdir();
    std::fs::write(root.join("file"), "").unwrap();
    let refused = |args: &[&str], wanted: &[&str]| {
        let got = out(from(&rh, &root, args));
        assert_eq!(got.code, Some(2), "{args:?}: {got:?}");
        for w in wanted {
            assert!(got.stderr.contains(w), "{args:?}: {w:?} in {}", got.stderr);
        }
    };
    let missing = root.join("nope").display().to_string();
    refused(
        &["run", "--cwd", "nope", "--", "true"],
        &[
            &format!("--cwd nope: {missing} does not exist"),
            &format!(
                "a relative --cwd starts at this shell's directory, {}",
                root.display()
            ),
        ],
    );
    refused(
        &["run", "--cwd", "file", "--", "true"],
        &["is not a directory"],
    );
    refused(
        &["run", "--cwd", "~/src", "--", "true"],
        &["`~` was not expanded"],
    );
    refused(
        &["run", "--env", "DEBUG", "--", "true"],
        &["write DEBUG=VALUE"],
    );
    refused(
        &["run", "--env", "=1", "--", "true"],
        &["no name before `=`"],
    );
    refused(
        &["run", "--max-restarts", "3", "--", "true"],
        &["add --restart on-failure"],
    );
    refused(&["run", "--max-restarts", "-1", "--", "true"], &["-1"]);
    assert!(!rh.daemon_running(), "nothing was started for any of them");
}

#[test]
fn errors_that_teach_name_the_fix() {
    let rh = Rhizome::new();
    let (_dir, root) = workdir();
    let fails = |args: &[&str]| {
        let got = out(from(&rh, &root, args));
        assert_eq!(got.code, Some(1), "{args:?}: {got:?}");
        got.stderr
    };

    // The command before `--`: the line that works, with every flag given.
    let got = out(from(
        &rh,
        &root,
        &["run", "--env", "A=1 2", "--cwd", "work", "nosuchprog", "-v"],
    ));
    assert_eq!(got.code, Some(2), "{got:?}");
    assert!(
        got.stderr
            .contains("rhizome run --env 'A=1 2' --cwd work -- nosuchprog -v"),
        "{}",
        got.stderr
    );

    // A relative path starts at --cwd, and is not looked up on PATH.
    let err = fails(&["run", "--cwd", "work", "--", "./nope"]);
    let work = root.join("work").display().to_string();
    assert!(
        err.contains(&format!("no such file (from {work})")),
        "{err}"
    );
    assert!(
        err.contains(&format!("a relative one starts at {work}")),
        "{err}"
    );
    assert!(!err.contains("PATH"), "{err}");
    let err = fails(&["run", "--", "/nonexistent/rhizome-prog"]);
    assert!(
        err.contains("no such file") && !err.contains("PATH"),
        "{err}"
    );

    // A script here, named without `./`: not on PATH, and said how to name it.
    let script = root.join("serve.sh");
    std::fs::write(&script, "#!/bin/sh\necho served\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = fails(&["run", "--", "serve.sh"]);
    assert!(err.contains("rhizome run -- ./serve.sh"), "{err}");

    // A directory is not a program.
    let err = fails(&["run", "--", "./work"]);
    assert!(err.contains("`./work` is a directory"), "{err}");

    // Not executable, found from --cwd.
    std::fs::write(root.join("work/tool"), "#!/bin/sh\n").unwrap();
    let err = fails(&["run", "--cwd", "work", "--", "./tool"]);
    assert!(err.contains("chmod +x ./tool"), "{err}");
}
