//! Names that would confuse `ps`, `logs` and `kill` are refused before anything starts, with the
//! rule they break; a name taken from the command says to pass `--name`. Intervals that are not a
//! number of seconds are refused too.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

/// Names given with `--name`, and the rule each breaks as the error states it.
const REFUSED: &[(&str, &str)] = &[
    (" 1", "is a number"),
    ("1 ", "is a number"),
    ("42", "is a number"),
    (" web", "starts or ends with whitespace"),
    ("web ", "starts or ends with whitespace"),
    ("we\tb", "contains the control character U+0009"),
    ("gpj.\u{202E}exe", "contains U+202E, an invisible character"),
    ("a\u{2067}b", "contains U+2067, an invisible character"),
    ("a\u{200B}b", "contains U+200B, an invisible character"),
    ("web\u{FEFF}", "contains U+FEFF, an invisible character"),
    (
        "a\u{00A0}b",
        "contains U+00A0, a space that is not a plain space",
    ),
];

#[test]
fn confusing_names_are_refused_with_their_rule() {
    let rh = Rhizome::new();
    let mut accepted = Vec::new();
    for (name, rule) in REFUSED {
        let out = rh.run(["run", "--name", name, "--", "true"]);
        if out.code != Some(1)
            || !out
                .stderr
                .contains(&format!("error: the process name {name:?} {rule}"))
            || !out.stderr.contains("\nhint: ")
        {
            accepted.push(format!("{name:?}: {out:?}"));
        }
    }
    assert!(accepted.is_empty(), "{}", accepted.join("\n"));
    assert!(!rh.daemon_running(), "a refused name starts no daemon");

    for name in ["web 2", "日本語", "v1.2"] {
        rh.ok(["run", "--name", name, "--", "true"]);
    }
    assert!(rh.finished_log("web 2").contains("[web 2]"));
}

#[test]
fn a_confusing_name_taken_from_the_command_asks_for_name() {
    if require_tool("sh").is_none() {
        return;
    }
    let rh = Rhizome::new();
    let bin = tempfile::tempdir().unwrap();
    let mut refused = Vec::new();
    for (file, rule) in [
        ("42", "is a number"),
        (" 7", "is a number"),
        ("tool ", "starts or ends with whitespace"),
        ("txt.\u{202E}exe", "contains U+202E"),
        ("to\u{200D}ol", "contains U+200D"),
    ] {
        let program = bin.path().join(file);
        std::fs::write(&program, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = rh.run(["run".as_ref(), "--".as_ref(), program.as_os_str()]);
        let message = format!("error: the process name {file:?}, taken from the command, {rule}");
        if out.code != Some(1)
            || !out.stderr.contains(&message)
            || !out.stderr.contains("hint: pass --name NAME")
        {
            refused.push(format!("{file:?}: {out:?}"));
        }
        let named = rh.run([
            "run".as_ref(),
            "--name".as_ref(),
            "fine".as_ref(),
            "--".as_ref(),
            program.as_os_str(),
        ]);
        assert_eq!(named.code, Some(0), "with --name it starts: {named:?}");
    }
    assert!(refused.is_empty(), "{}", refused.join("\n"));
}

#[test]
fn a_sleeper_interval_must_be_a_number_of_seconds() {
    let rh = Rhizome::new();
    for interval in ["nan", "inf", "-inf", "-1", "NaN", "soon"] {
        let out = rh.run(["sleeper", &format!("--interval={interval}")]);
        assert_eq!(out.code, Some(2), "{interval}: {out:?}");
        assert!(
            out.stderr.contains(&format!(
                "`{interval}` is not a number of seconds of 0 or more"
            )),
            "{interval}: {}",
            out.stderr
        );
    }
    assert!(!rh.daemon_running(), "a refused interval starts no daemon");
    let out = rh
        .command(["sleeper", "--count", "1", "--interval", "0.01"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
