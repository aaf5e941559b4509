//! What a person who mistyped `rhizome.toml` reads.

use crate::config::parse;

fn error(text: &str) -> String {
    parse(text).unwrap_err()
}

#[test]
fn a_key_in_the_wrong_table_is_told_where_it_belongs() {
    for (text, expected) in [
        (
            "probe_interval_secs = 3\n",
            "line 1, column 1: `probe_interval_secs` does not go at the top level; it belongs in [forward]",
        ),
        (
            "[forward]\nkeep_files = 3\n",
            "line 2, column 1: `keep_files` does not go in [forward]; it belongs in [logs]",
        ),
        (
            "[logs]\nkubectl = \"k\"\n",
            "line 2, column 1: `kubectl` does not go in [logs]; it belongs at the top level, above every [table]",
        ),
        (
            "[environments.e]\nlocal_port = 1\n",
            "line 2, column 1: `local_port` does not go in [environments.ENV]; it belongs in [environments.ENV.databases.NAME] or [environments.ENV.services.NAME]",
        ),
        (
            "[environments.e]\nsql_connection = \"p:r:i\"\n",
            "line 2, column 1: `sql_connection` does not go in [environments.ENV]; it belongs in [environments.ENV.databases.NAME]",
        ),
        (
            "[environments.e.services.s]\nresource = \"svc/x\"\nremote_port = 1\nsql_connection = \"x\"\n",
            "line 4, column 1: `sql_connection` does not go in [environments.ENV.services.NAME]; it belongs in [environments.ENV.databases.NAME]",
        ),
    ] {
        assert_eq!(error(text), expected, "{text}");
    }
}

#[test]
fn a_misspelt_key_gets_did_you_mean() {
    for (text, expected) in [
        (
            "[forward]\nprobe_intervall_secs = 3\n",
            "line 2, column 1: unknown key `probe_intervall_secs` in [forward]; did you mean `probe_interval_secs`?",
        ),
        (
            "[logs]\nkeep = 3\n",
            "line 2, column 1: unknown key `keep` in [logs]; did you mean `keep_files`?",
        ),
        (
            "[environments.e]\nnamespce = \"x\"\n",
            "line 2, column 1: unknown key `namespce` in [environments.ENV]; did you mean `namespace`?",
        ),
        (
            "[forwrd]\n",
            "line 1, column 2: unknown key `forwrd` at the top level; did you mean `forward`?",
        ),
        (
            "[environments.e.service.s]\n",
            "line 1, column 17: unknown key `service` in [environments.ENV]; did you mean `services`?",
        ),
        (
            "probe_intervall_secs = 3\n",
            "line 1, column 1: unknown key `probe_intervall_secs` at the top level; did you mean `probe_interval_secs`, which belongs in [forward]?",
        ),
    ] {
        assert_eq!(error(text), expected, "{text}");
    }
}

#[test]
fn a_key_like_nothing_lists_the_tables_keys() {
    assert_eq!(
        error("[forward]\nzzz = 1\n"),
        "line 2, column 1: unknown key `zzz` in [forward]; the keys there are `backoff_max_secs`, `probe_interval_secs`, `lazy`, `idle_stop_secs` and `transport`"
    );
}

#[test]
fn types_are_named_as_the_file_writes_them() {
    let service = "[environments.e.services.s]\nresource = \"svc/x\"\n";
    for (text, expected) in [
        (
            format!("{service}remote_port = \"80\"\n"),
            "line 3, column 15: `remote_port` must be a port number from 1 to 65535, not the text \"80\" (a number goes without quotes)",
        ),
        (
            "[logs]\nkeep_files = 2.5\n".to_string(),
            "line 2, column 14: `keep_files` must be a number of files from 1 to 100, not the number 2.5",
        ),
        (
            "kubectl = 3\n".into(),
            "line 1, column 11: expected text in quotes, not the number 3",
        ),
        (
            "[environments.e]\nconnect = \"/connect.sh\"\n".into(),
            "line 2, column 11: expected a list, like [\"a\", \"b\"], not the text \"/connect.sh\"",
        ),
        (
            "logs = \"x\"\n".into(),
            "line 1, column 8: expected a table, not the text \"x\"",
        ),
        (
            "[forward]\nbackoff_max_secs = true\n".into(),
            "line 2, column 20: `backoff_max_secs` must be a number of seconds from 1 to 3600, not true",
        ),
    ] {
        assert_eq!(error(&text), expected, "{text}");
    }
}

#[test]
fn a_missing_key_says_which_table_needs_it() {
    assert_eq!(
        error("[environments.e.services.s]\nresource = \"svc/x\"\n"),
        "line 1, column 1: `remote_port` is missing: every [environments.ENV.services.NAME] needs it (the port on the resource)"
    );
    assert_eq!(
        error("[environments.e.databases.d]\nlocal_port = 1\n"),
        "line 1, column 1: `sql_connection` is missing: every [environments.ENV.databases.NAME] needs it (the instance, PROJECT:REGION:INSTANCE)"
    );
}

#[test]
fn text_that_looks_like_a_message_is_not_taken_for_one() {
    let err = error("kubectl = [\"a, expected b\"]\n");
    assert_eq!(
        err,
        "line 1, column 11: expected text in quotes, not a list"
    );
}

#[test]
fn a_transport_that_is_not_one_of_the_three_names_them() {
    assert_eq!(
        error("[forward]\ntransport = \"grpc\"\n"),
        "line 2, column 13: \"grpc\" is not a value this key takes; it takes \"auto\", \"native\" or \"kubectl\""
    );
    assert_eq!(
        error("[forward]\ntransport = \"natve\"\n"),
        "line 2, column 13: \"natve\" is not a value this key takes; did you mean \"native\"? it takes \"auto\", \"native\" or \"kubectl\""
    );
}
