//! Secrets a command is given or prints never reach its log or `ps`: each form is echoed by a
//! real process, then its log and `ps --json` are read as a user would.

mod common;

use common::*;

/// The forms: the arguments a command is given (and echoes), what its log line must read, and the
/// secrets that must appear nowhere.
const FORMS: &[(&[&str], &str, &[&str])] = &[
    (&["--password", "hunter5"], "--password ***", &["hunter5"]),
    (&["-p", "hunter6"], "-p ***", &["hunter6"]),
    (&["-phunter7"], "-p***", &["hunter7"]),
    (&["--api-key", "K9"], "--api-key ***", &["K9"]),
    (
        &["Authorization: Basic dXNlcjpodW50ZXI4"],
        "Authorization: Basic ***",
        &["dXNlcjpodW50ZXI4"],
    ),
    (
        &["mysql://root:pa@ss@host/db"],
        "mysql://root:***@host/db",
        &["pa@ss", "ss@host"],
    ),
];

#[test]
fn secrets_in_arguments_and_output_reach_neither_logs_nor_ps() {
    if require_tool("sh").is_none() {
        return;
    }
    let rh = Rhizome::new();
    for (i, (args, _, _)) in FORMS.iter().enumerate() {
        let name = format!("form{i}");
        let mut argv = vec![
            "run",
            "--name",
            &name,
            "--",
            "sh",
            "-c",
            "echo \"$@\"",
            "sh",
        ];
        argv.extend_from_slice(args);
        rh.ok(argv);
    }
    // Every form is checked before the test fails, so that a failure lists all the leaks.
    let mut leaks = Vec::new();
    let ps = rh.ps();
    let finished = ps["finished"].as_array().cloned().unwrap_or_default();
    for (i, (args, line, secrets)) in FORMS.iter().enumerate() {
        let name = format!("form{i}");
        let log = messages(&rh.finished_log(&name));
        let expected = format!("{line:<30} [{name}]");
        if !log.iter().any(|l| l.starts_with(&expected)) {
            leaks.push(format!("{args:?}: the log should read `{line}`: {log:?}"));
        }
        let entry = finished
            .iter()
            .find(|p| p["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} in ps --all: {ps}"));
        let command: Vec<&str> = entry["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        if command[4..].join(" ") != *line {
            leaks.push(format!("{args:?}: ps should show `{line}`: {command:?}"));
        }
        for secret in *secrets {
            if log.iter().any(|l| l.contains(secret)) {
                leaks.push(format!("{args:?}: {secret} reached the log"));
            }
        }
    }
    let ps = rh.ok(["ps", "--all", "--json"]);
    let logs: String = std::fs::read_dir(rh.path().join("logs"))
        .unwrap()
        .map(|file| std::fs::read_to_string(file.unwrap().path()).unwrap_or_default())
        .collect();
    for secret in FORMS.iter().flat_map(|(_, _, secrets)| secrets.iter()) {
        if ps.contains(secret) {
            leaks.push(format!("{secret} reached ps --json"));
        }
        if logs.contains(secret) {
            leaks.push(format!("{secret} reached a log file"));
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}
