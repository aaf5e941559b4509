//! The config file's rules, checked on text as a user writes it.

use super::*;

#[test]
fn unknown_keys_are_named_with_their_position() {
    let err = parse("[logs]\nmax_file_bytes = 100\nkeep = 3\n").unwrap_err();
    assert!(
        err.starts_with("line 3, column 1: unknown key `keep` in [logs]"),
        "{err}"
    );
}

#[test]
fn the_users_file_adds_to_and_overrides_the_built_ins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rhizome.toml");
    std::fs::write(
        &path,
        "[environments.na-prod]\nnamespace = \"mine\"\n\n[environments.na-prod.databases.extra]\nsql_connection = \"p:r:extra\"\n",
    )
    .unwrap();
    let config = load_with_built_ins(&path).unwrap();
    let env = &config.environments["na-prod"];
    assert_eq!(env.namespace.as_deref(), Some("mine"));
    assert_eq!(env.deployment.as_deref(), Some("gke-cloudsql-access"));
    assert!(env.databases.contains_key("billing-bookkeeper"));
    assert!(env.databases.contains_key("extra"));
}

#[test]
fn numbers_outside_their_range_are_refused_at_the_value() {
    let service = "[environments.e.services.s]\nresource = \"svc/x\"\n";
    for (text, expected) in [
        (
            "[logs]\nkeep_files = 100000000\n".to_string(),
            "line 2, column 14: `keep_files` must be from 1 to 100, not 100000000",
        ),
        (
            "[logs]\nkeep_files = 0\n".into(),
            "line 2, column 14: `keep_files` must be from 1 to 100, not 0",
        ),
        (
            "[logs]\nkeep_files = -3\n".into(),
            "line 2, column 14: `keep_files` must be from 1 to 100, not -3",
        ),
        (
            "[logs]\nmax_file_bytes = 100\n".into(),
            "line 2, column 18: `max_file_bytes` must be from 4096 to 1073741824, not 100",
        ),
        (
            "[logs]\nmax_file_bytes = 1073741825\n".into(),
            "line 2, column 18: `max_file_bytes` must be from 4096 to 1073741824, not 1073741825",
        ),
        (
            "[forward]\nbackoff_max_secs = 0\n".into(),
            "line 2, column 20: `backoff_max_secs` must be from 1 to 3600, not 0",
        ),
        (
            "[forward]\nprobe_interval_secs = 86400\n".into(),
            "line 2, column 23: `probe_interval_secs` must be from 0 to 3600, not 86400",
        ),
        (
            format!("{service}remote_port = 0\n"),
            "line 3, column 15: `remote_port` must be from 1 to 65535, not 0",
        ),
        (
            format!("{service}remote_port = 80\nlocal_port = 70000\n"),
            "line 4, column 14: `local_port` must be from 0 to 65535, not 70000",
        ),
        (
            "[environments.e.databases.d]\nsql_connection = \"p:r:d\"\nlocal_port = -1\n".into(),
            "line 3, column 14: `local_port` must be from 0 to 65535, not -1",
        ),
        (
            "[logs]\nkeep_files = 2.5\n".into(),
            "line 2, column 14: `keep_files` must be a number of files from 1 to 100, not the number 2.5",
        ),
        (
            "[logs]\nkeep_files = \"3\"\n".into(),
            "line 2, column 14: `keep_files` must be a number of files from 1 to 100, not the text \"3\" (a number goes without quotes)",
        ),
    ] {
        let err = parse(&text).unwrap_err();
        assert_eq!(err, expected, "{text}");
    }
}

#[test]
fn every_range_takes_its_ends_and_refuses_past_them() {
    let file = |key: &str, value: i128| match key {
        "max_file_bytes" | "keep_files" => format!("[logs]\n{key} = {value}\n"),
        "backoff_max_secs" | "probe_interval_secs" | "idle_stop_secs" => {
            format!("[forward]\n{key} = {value}\n")
        }
        "remote_port" => {
            format!("[environments.e.services.s]\nresource = \"svc/x\"\nremote_port = {value}\n")
        }
        "local_port" => format!(
            "[environments.e.services.s]\nresource = \"svc/x\"\nremote_port = 1\nlocal_port = {value}\n"
        ),
        other => panic!("no test file for `{other}`"),
    };
    for range in RANGES {
        for inside in [range.min, range.max] {
            let text = file(range.key, inside.into());
            assert!(parse(&text).is_ok(), "{text}: {:?}", parse(&text).err());
        }
        for outside in [i128::from(range.min) - 1, i128::from(range.max) + 1] {
            let text = file(range.key, outside);
            let err = parse(&text).unwrap_err();
            assert!(
                err.contains(&format!("`{}` must be from", range.key)),
                "{err}"
            );
        }
    }
    let config = parse("[logs]\nmax_file_bytes = 4096\nkeep_files = 100\n").unwrap();
    assert_eq!(
        config.logs.rotation(),
        Rotation {
            max_bytes: 4096,
            keep: 100
        }
    );
}

#[test]
fn the_readme_documents_every_range() {
    let readme = include_str!("../../README.md");
    for range in RANGES {
        let row = format!("| `{}` | {} to {} |", range.key, range.min, range.max);
        assert!(readme.contains(&row), "README.md lacks the row `{row}`");
    }
}

#[test]
fn columns_count_characters() {
    let err = parse("kubectl = \"kübectl\"; [logs]\n").unwrap_err();
    assert!(err.starts_with("line 1, column 20: "), "{err}");
}

#[test]
fn an_empty_file_is_the_default() {
    let config = parse("").unwrap();
    assert_eq!(config.logs.rotation(), Rotation::default());
}
