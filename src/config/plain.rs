//! The parser's messages in the words of someone who writes `rhizome.toml` and never saw the Rust
//! types behind it: `expected a sequence` becomes `expected a list`, and a key the parser does not
//! know is answered with the key it was probably meant to be, or with the table it belongs in.
//! The messages are serde's and toml's (`unknown field`, `missing field`, `invalid type`), whose
//! wording has been stable for years; one they do not match is passed on as it is.

use super::keys::{self, Table, Unset};
use crate::similar::closest;

/// `message` (a toml error's, without its position) said plainly.
pub(super) fn plain(message: &str) -> String {
    if let Some((key, listed)) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
    {
        let expected: Vec<&str> = listed.split('`').skip(1).step_by(2).collect();
        return unknown_key(key, &expected);
    }
    if let Some(key) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return missing_key(key);
    }
    if let Some((word, listed)) = message
        .strip_prefix("unknown variant `")
        .and_then(|rest| rest.split_once("`, expected "))
    {
        let words: Vec<String> = listed
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|w| format!("\"{w}\""))
            .collect();
        let suggestion = closest(word, listed.split('`').skip(1).step_by(2))
            .first()
            .map(|w| format!("did you mean \"{w}\"? "))
            .unwrap_or_default();
        return format!(
            "\"{word}\" is not a value this key takes; {suggestion}it takes {}",
            or(&words)
        );
    }
    for kind in ["invalid type: ", "invalid value: "] {
        // The found value is quoted text that may hold anything; the expectation is ours.
        if let Some((found, wanted)) = message
            .strip_prefix(kind)
            .and_then(|rest| rest.rsplit_once(", expected "))
        {
            return mismatch(found, wanted);
        }
    }
    message.to_string()
}

/// A key that is not one of `expected`, the keys of the table it stands in.
fn unknown_key(key: &str, expected: &[&str]) -> String {
    let here = keys::table_with_keys(expected);
    let place = here.map_or_else(|| "here".to_string(), Table::place);
    let homes: Vec<&Table> = keys::tables_with(key)
        .filter(|table| here.is_none_or(|here| here.header != table.header))
        .collect();
    if !homes.is_empty() {
        return format!(
            "`{key}` does not go {place}; it belongs {}",
            belongs(&homes)
        );
    }
    let near = closest(key, expected.iter().copied());
    if !near.is_empty() {
        let near: Vec<String> = near.iter().map(|name| format!("`{name}`")).collect();
        return format!("unknown key `{key}` {place}; did you mean {}?", or(&near));
    }
    let everywhere = keys::TABLES
        .iter()
        .flat_map(|table| table.keys.iter().map(|key| key.name));
    if let Some(best) = closest(key, everywhere).first() {
        let homes: Vec<&Table> = keys::tables_with(best).collect();
        return format!(
            "unknown key `{key}` {place}; did you mean `{best}`, which belongs {}?",
            belongs(&homes)
        );
    }
    let listed: Vec<String> = expected.iter().map(|name| format!("`{name}`")).collect();
    match listed.len() {
        0 => format!("unknown key `{key}` {place}, which takes no keys"),
        _ => format!(
            "unknown key `{key}` {place}; the keys there are {}",
            and(&listed)
        ),
    }
}

/// Where the tables are, after "belongs": "at the top level", "in [forward]".
fn belongs(tables: &[&Table]) -> String {
    match tables {
        [table] if table.header.is_empty() => "at the top level, above every [table]".to_string(),
        _ => {
            let headers: Vec<String> = tables.iter().map(|t| t.header.to_string()).collect();
            format!("in {}", or(&headers))
        }
    }
}

/// A key the file must have, missing from its table (the position is the table's).
fn missing_key(key: &str) -> String {
    let needing: Vec<(&Table, &keys::Key)> = keys::TABLES
        .iter()
        .filter_map(|table| table.key(key).map(|k| (table, k)))
        .filter(|(_, k)| k.unset == Unset::Required)
        .collect();
    match needing.as_slice() {
        [(table, k)] => format!(
            "`{key}` is missing: every {} needs it ({})",
            table.header,
            k.meaning.replace('`', "")
        ),
        _ => format!("`{key}` is missing, and this table needs it"),
    }
}

/// A value of the wrong type, or one the key does not take.
fn mismatch(found: &str, wanted: &str) -> String {
    let numeric = wanted.contains("number");
    let quoted_number = found
        .strip_prefix("string \"")
        .and_then(|s| s.strip_suffix('"'))
        .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    let hint = if numeric && quoted_number {
        " (a number goes without quotes)"
    } else {
        ""
    };
    let found = found_plainly(found);
    // The ranges' own expectation: "`keep_files` to be a number of files from 1 to 100".
    if let Some((key, how)) = wanted
        .strip_prefix('`')
        .and_then(|rest| rest.split_once("` to be "))
    {
        return format!("`{key}` must be {how}, not {found}{hint}");
    }
    format!("expected {}, not {found}{hint}", wanted_plainly(wanted))
}

fn found_plainly(found: &str) -> String {
    let inner = |prefix: &str| {
        found
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix('`'))
    };
    if let Some(number) = inner("integer `").or_else(|| inner("floating point `")) {
        return format!("the number {number}");
    }
    if let Some(text) = found.strip_prefix("string ") {
        return format!("the text {text}");
    }
    if let Some(value) = inner("boolean `") {
        return value.to_string();
    }
    match found {
        "sequence" => "a list".to_string(),
        "map" => "a table".to_string(),
        other => other.to_string(),
    }
}

fn wanted_plainly(wanted: &str) -> String {
    match wanted {
        "a string" => "text in quotes".to_string(),
        "a sequence" => "a list, like [\"a\", \"b\"]".to_string(),
        "a map" => "a table".to_string(),
        "a boolean" => "true or false".to_string(),
        "u16" => "a whole number from 0 to 65535".to_string(),
        "u8" | "u32" | "u64" | "usize" => "a whole number of 0 or more".to_string(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_string(),
        other if other.starts_with("struct ") => "a table".to_string(),
        other => other.to_string(),
    }
}

/// `a`, `a or b`, `a, b or c`.
fn or(items: &[String]) -> String {
    join(items, "or")
}

fn and(items: &[String]) -> String {
    join(items, "and")
}

fn join(items: &[String], word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {word} {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests;
