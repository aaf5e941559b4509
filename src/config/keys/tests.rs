//! The table of keys is the truth about the file: the keys the parser takes, their ranges and
//! their defaults.

use super::*;
use crate::config::{Config, ForwardConfig, LogsConfig, RANGES, parse};

/// A file with `line` in the table `header` stands for (the placeholders filled in).
fn file_with(header: &str, line: &str) -> String {
    let header = header.replace("ENV", "e").replace("NAME", "n");
    if header.is_empty() {
        format!("{line}\n")
    } else {
        format!("{header}\n{line}\n")
    }
}

/// The keys serde lists for a key it does not know in `header`'s table.
fn serde_keys(header: &str) -> Vec<String> {
    let text = file_with(header, "zz_not_a_key = 1");
    let err = toml::from_str::<Config>(&text)
        .unwrap_err()
        .message()
        .to_string();
    let listed = err.split_once("expected ").map(|(_, l)| l).unwrap_or("");
    listed
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

#[test]
fn every_table_lists_the_keys_the_parser_takes_in_its_order() {
    for table in TABLES {
        let ours: Vec<&str> = table.keys.iter().map(|k| k.name).collect();
        assert_eq!(serde_keys(table.header), ours, "{}", table.header);
        assert_eq!(
            table_with_keys(&ours).map(|t| t.header),
            Some(table.header),
            "the keys of {} tell it from the other tables",
            table.header
        );
    }
}

#[test]
fn every_range_is_a_keys_range() {
    for range in RANGES {
        assert!(
            tables_with(range.key).all(|t| t.key(range.key).unwrap().value == Value::Number(range)),
            "{}",
            range.key
        );
        assert!(tables_with(range.key).next().is_some(), "{}", range.key);
    }
}

#[test]
fn the_defaults_are_the_parsers() {
    let logs = LogsConfig::default();
    let forward = ForwardConfig::default();
    for (table, name, value) in [
        (&LOGS, "max_file_bytes", logs.max_file_bytes),
        (&LOGS, "keep_files", logs.keep_files as u64),
        (&FORWARD, "backoff_max_secs", forward.backoff_max_secs),
        (&FORWARD, "probe_interval_secs", forward.probe_interval_secs),
    ] {
        let unset = table.key(name).unwrap().unset;
        assert!(
            matches!(unset, Unset::Default(d) if d == value.to_string()),
            "{name}: {unset:?}"
        );
    }
    let pattern = format!("`{}`", crate::forward::target::DEFAULT_PORT_PATTERN);
    let unset = ENVIRONMENT.key("port_pattern").unwrap().unset;
    assert!(
        matches!(unset, Unset::Default(d) if d == pattern),
        "{unset:?}"
    );
}

#[test]
fn a_required_key_is_refused_when_missing() {
    for table in TABLES {
        for key in table.keys.iter().filter(|k| k.unset == Unset::Required) {
            let others: String = table
                .keys
                .iter()
                .filter(|k| k.unset == Unset::Required && k.name != key.name)
                .map(|k| match k.value {
                    Value::Number(_) => format!("{} = 1\n", k.name),
                    _ => format!("{} = \"svc/x\"\n", k.name),
                })
                .collect();
            let text = file_with(table.header, &others);
            let err = parse(&text).unwrap_err();
            assert!(err.contains(&format!("`{}`", key.name)), "{text}: {err}");
        }
    }
}

#[test]
fn the_example_parses_and_its_targets_resolve() {
    let config = parse(EXAMPLE).unwrap();
    for name in ["staging/orders", "staging/api"] {
        crate::forward::target::resolve(&config, name).unwrap();
    }
    assert_eq!(config.forward.probe_interval_secs, 0);
}
