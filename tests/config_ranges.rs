//! Every number in rhizome.toml has a range: outside it the file is refused with the value's line
//! and column, and a daemon that meets such a file keeps supervising with the default rotation.

mod common;

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Runs a command that must end within `limit`; one that does not is killed and fails the test.
fn run_within<I, S>(rh: &Rhizome, args: I, limit: Duration) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    let mut child = rh
        .command(&args)
        .env("SLEEP_OVERRIDE", "0.01")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rhizome runs");
    let deadline = Instant::now() + limit;
    while child
        .try_wait()
        .expect("the child can be waited for")
        .is_none()
    {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`rhizome {}` took more than {limit:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("its output").into()
}

#[test]
fn a_number_outside_its_range_is_refused_with_its_position() {
    let rh = Rhizome::new();
    let service = "[environments.e.services.s]\nresource = \"svc/x\"\n";
    for (text, expected) in [
        (
            "[logs]\nkeep_files = 100000000\n".to_string(),
            "line 2, column 14: `keep_files` must be from 1 to 100, not 100000000",
        ),
        (
            "[logs]\nmax_file_bytes = 1\n".into(),
            "line 2, column 18: `max_file_bytes` must be from 4096 to 1073741824, not 1",
        ),
        (
            "[forward]\nbackoff_max_secs = 999999\n".into(),
            "line 2, column 20: `backoff_max_secs` must be from 1 to 3600, not 999999",
        ),
        (
            "[forward]\nprobe_interval_secs = -1\n".into(),
            "line 2, column 23: `probe_interval_secs` must be from 0 to 3600, not -1",
        ),
        (
            format!("{service}remote_port = 0\n"),
            "line 3, column 15: `remote_port` must be from 1 to 65535, not 0",
        ),
        (
            format!("{service}remote_port = 80\nlocal_port = 65536\n"),
            "line 4, column 14: `local_port` must be from 0 to 65535, not 65536",
        ),
    ] {
        write_config(&rh, &text);
        let out = rh.run(["targets"]);
        assert_eq!(out.code, Some(1), "{text}: {out:?}");
        assert!(
            out.stderr.contains(&format!("is invalid: {expected}\n")),
            "{text}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("hint: fix "), "{}", out.stderr);
    }
    assert!(!rh.daemon_running(), "reading the config starts no daemon");

    write_config(
        &rh,
        "[logs]\nmax_file_bytes = 4096\nkeep_files = 100\n\n[forward]\nbackoff_max_secs = 3600\nprobe_interval_secs = 0\n",
    );
    let out = rh.run(["targets"]);
    assert_eq!(
        out.code,
        Some(0),
        "the ends of the ranges are taken: {out:?}"
    );
}

#[test]
fn a_daemon_given_a_huge_keep_files_uses_the_default_rotation_and_stays_quick() {
    let rh = Rhizome::new();
    write_config(&rh, "[logs]\nkeep_files = 100000000\n");
    let limit = Duration::from_secs(10);
    let started = run_within(&rh, ["sleeper", "--count", "3"], limit);
    assert_eq!(started.code, Some(0), "{started:?}");

    let log = run_within(&rh, ["logs", "-f", "1"], limit);
    assert_eq!(log.code, Some(0), "{log:?}");
    assert!(log.stdout.contains("subprocess finished"), "{log:?}");

    let out = rh.run(["targets"]);
    assert_eq!(
        out.code,
        Some(1),
        "a command that needs the config reports it"
    );
    assert!(
        out.stderr.contains("`keep_files` must be from 1 to 100"),
        "{out:?}"
    );

    let stop = run_within(&rh, ["daemon", "stop"], limit);
    assert_eq!(stop.code, Some(0), "{stop:?}");
    let daemon_log: String = std::fs::read_dir(rh.path().join("logs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("daemon."))
        })
        .map(|path| std::fs::read_to_string(path).unwrap_or_default())
        .collect();
    assert!(
        daemon_log.contains("`keep_files` must be from 1 to 100")
            && daemon_log.contains("using the default log rotation"),
        "the daemon says why it ignores the file: {daemon_log}"
    );
}
