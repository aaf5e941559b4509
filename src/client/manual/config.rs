//! `config::keys` rendered twice: as the rhizome.toml(5) man page, and as the table of keys in
//! the README's configuration section, between two marker lines that `__generate` rewrites.

use super::roff;
use crate::config::keys::{EXAMPLE, TABLES, Table, Unset, Value};

/// The line above the README's table of keys.
const BEGIN: &str = "<!-- The table of keys is generated from src/config/keys.rs by `cargo run -q -- __generate .`: edit it there. -->";
/// The line below it.
const END: &str = "<!-- End of the generated table of keys. -->";

/// The keys a table documents: its own values; a key that is a table has its own heading.
fn values(table: &Table) -> impl Iterator<Item = &crate::config::keys::Key> {
    table.keys.iter().filter(|key| key.value != Value::Table)
}

fn heading(table: &Table) -> &str {
    if table.header.is_empty() {
        "The top level"
    } else {
        table.header
    }
}

fn value(value: Value) -> String {
    match value {
        Value::Text => "text".to_string(),
        Value::List => "list of text".to_string(),
        Value::Bool => "true or false".to_string(),
        Value::Number(range) => format!("{} to {}", range.min, range.max),
        Value::Table => "table".to_string(),
        Value::Choice(words) => words
            .iter()
            .map(|w| format!("`\"{w}\"`"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn unset(unset: Unset) -> &'static str {
    match unset {
        Unset::Required => "(required)",
        Unset::Default(default) => default,
    }
}

/// The README's table of keys, markers included.
pub fn readme_keys() -> String {
    let mut table = format!("{BEGIN}\n| key | value | default | meaning |\n|---|---|---|---|\n");
    for t in TABLES {
        let cell = |text: &str| text.replace('|', "\\|");
        let name = if t.header.is_empty() {
            "top level".to_string()
        } else {
            format!("`{}`", t.header)
        };
        table += &format!("| **{name}** | | | {} |\n", cell(t.about));
        for key in values(&t) {
            table += &format!(
                "| `{}` | {} | {} | {} |\n",
                key.name,
                value(key.value),
                cell(unset(key.unset)),
                cell(key.meaning)
            );
        }
    }
    table + END + "\n"
}

/// `readme` with its table of keys as generated now; `None` when it has no markers.
pub fn readme_with_keys(readme: &str) -> Option<String> {
    let start = readme.find(BEGIN)?;
    let end = readme[start..].find(END)? + start + END.len();
    let end = end + usize::from(readme[end..].starts_with('\n'));
    Some(format!(
        "{}{}{}",
        &readme[..start],
        readme_keys(),
        &readme[end..]
    ))
}

/// rhizome.toml(5).
pub fn toml_page(date: &str, source: &str) -> String {
    let mut page = format!(
        "{}.TH rhizome.toml 5 {date} \"{source}\" \"rhizome manual\"\n",
        roff::PREAMBLE
    );
    page += &roff::section("NAME");
    page += "rhizome.toml \\- the configuration file of rhizome\n";
    page += &roff::section("SYNOPSIS");
    page += &format!(
        "{}\n",
        roff::text(
            "`$XDG_CONFIG_HOME/rhizome/rhizome.toml`, `~/.config/rhizome/rhizome.toml`, or on macOS `~/Library/Application Support/rhizome/rhizome.toml`; `$RHIZOME_HOME/rhizome.toml` with RHIZOME_HOME set; the file named by RHIZOME_CONFIG."
        )
    );
    page += &roff::section("DESCRIPTION");
    for (i, paragraph) in [
        "A TOML file: the kubectl program, the rotation of the process logs, how tunnels are kept up, and the targets of `rhizome forward`, by environment: the target `ENV/NAME` is `[environments.ENV.databases.NAME]` or `[environments.ENV.services.NAME]`. The built-in targets come first; the file's settings win over theirs, and its targets add to them. A missing file is an empty one.",
        "`forward` and `targets` read the file on every call; the daemon reads `[logs]` when it starts. A key rhizome does not know, a key in the wrong table, a value of the wrong type and a number outside its range are refused with the line and column, and with the key it was probably meant to be or the table it belongs in. Text values are checked when a target is used.",
        "`rhizome daemon status` shows which file is in use and whether it is there.",
    ]
    .iter()
    .enumerate()
    {
        // A paragraph macro right after a heading is one too many (mandoc lint says so).
        let start = if i == 0 { "" } else { ".PP\n" };
        page += &format!("{start}{}\n", roff::text(paragraph));
    }
    page += &roff::section("KEYS");
    for table in TABLES {
        page += &format!(
            ".SS \"{}\"\n{}\n",
            roff::literal(heading(&table)),
            roff::text(&format!("{}.", capitalized(table.about)))
        );
        for key in values(&table) {
            let tag = format!(
                "{} = \\fI{}\\fR",
                roff::bold(key.name),
                roff::literal(&value(key.value))
            );
            let default = match key.unset {
                Unset::Required => "Required.".to_string(),
                Unset::Default(default) => format!("Default: {default}."),
            };
            page += &roff::item(&tag, &format!("{}. {default}", capitalized(key.meaning)));
        }
    }
    page += &roff::section("EXAMPLES");
    page += ".nf\n";
    for line in EXAMPLE.lines() {
        page += &roff::literal(line);
        page += "\n";
    }
    page += ".fi\n";
    page += &roff::section("SEE ALSO");
    page += "\\fBrhizome\\fR(1), \\fBrhizome\\-forward\\fR(1), \\fBrhizome\\-targets\\fR(1)\n";
    page
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_whole_code_spans() {
        for table in TABLES {
            for key in table.keys {
                for text in [key.meaning, unset(key.unset)] {
                    assert_eq!(text.matches('`').count() % 2, 0, "{}: {text}", key.name);
                }
            }
        }
    }

    #[test]
    fn the_readme_block_is_replaced_whole() {
        let readme = format!("intro\n{BEGIN}\nold\n{END}\nrest\n");
        let new = readme_with_keys(&readme).unwrap();
        assert!(
            new.starts_with(&format!("intro\n{BEGIN}\n| key |")),
            "{new}"
        );
        assert!(new.ends_with(&format!("{END}\nrest\n")), "{new}");
        assert_eq!(readme_with_keys(&new).unwrap(), new);
        assert_eq!(readme_with_keys("no markers"), None);
    }
}
