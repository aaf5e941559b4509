//! `rhizome __generate DIR`: the files generated and checked in: from the clap definition, the
//! completion scripts (`completions/`) and the man pages (`man/`, with the sections of `manual`);
//! from `config::keys`, rhizome.toml(5) and the README's table of keys. Tests regenerate them and
//! fail when the checked-in copies differ.

use std::fs;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use super::exit::Exit;
use super::output;
use crate::cli::Cli;

/// The command that refreshes the checked-in files, from the repository's root.
pub const REFRESH: &str = "cargo run -q -- __generate .";

/// The date on the man pages: when their text last changed in substance. A fixed date keeps the
/// generated pages the same from one run to the next; bump it with a release.
const MAN_DATE: &str = "2026-11-25";

/// The scripts in `completions/`, named as each shell looks for them.
pub const SCRIPTS: [(Shell, &str); 3] = [
    (Shell::Bash, "rhizome.bash"),
    (Shell::Zsh, "_rhizome"),
    (Shell::Fish, "rhizome.fish"),
];

/// Writes `DIR/completions/*` and `DIR/man/*.[15]`, replacing what is there, and the table of keys
/// in `DIR/README.md` if there is one.
pub fn run(dir: &Path) -> anyhow::Result<Exit> {
    let completions = dir.join("completions");
    let man = dir.join("man");
    for sub in [&completions, &man] {
        fs::create_dir_all(sub).with_context(|| format!("could not create {}", sub.display()))?;
    }
    for (shell, file) in SCRIPTS {
        let mut script = Vec::new();
        super::complete::write_script(shell, &mut script)?;
        write(&completions.join(file), &script)?;
    }
    // Pages of subcommands that are gone go too.
    for entry in fs::read_dir(&man)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "1" || e == "5") {
            fs::remove_file(&path)
                .with_context(|| format!("could not remove {}", path.display()))?;
        }
    }
    for (file, page) in man_pages()? {
        write(&man.join(file), &page)?;
    }
    let readme = dir.join("README.md");
    if let Ok(text) = fs::read_to_string(&readme) {
        let fresh = super::manual::readme_with_keys(&text).with_context(|| {
            format!(
                "{} has lost the marker lines around its table of keys",
                readme.display()
            )
        })?;
        if fresh != text {
            write(&readme, fresh.as_bytes())?;
        }
    }
    output::println(format_args!(
        "wrote {} and {}",
        completions.display(),
        man.display()
    ))?;
    Ok(Exit::Success)
}

/// `rhizome completions SHELL`.
pub fn print_script(shell: Shell) -> anyhow::Result<Exit> {
    let mut script = Vec::new();
    super::complete::write_script(shell, &mut script)?;
    output::write(&script)?;
    Ok(Exit::Success)
}

/// Every man page: `rhizome.1` (with the sections clap does not make), then one per visible
/// subcommand (`rhizome-forward.1`, `rhizome-daemon-start.1`, ...), and `rhizome.toml.5`, as
/// (file name, roff).
pub fn man_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    add_pages(cmd, &mut pages)?;
    if let Some((_, main)) = pages.first_mut() {
        let text = String::from_utf8(std::mem::take(main))?;
        let examples = "\n.SH EXAMPLES\n";
        let text = text.replacen(
            examples,
            &format!("\n{}{}", super::manual::main_sections(), &examples[1..]),
            1,
        );
        *main = (text + &super::manual::see_also()).into_bytes();
    }
    pages.push((
        "rhizome.toml.5".to_string(),
        super::manual::toml_page(MAN_DATE, &source()).into_bytes(),
    ));
    Ok(pages)
}

/// The man pages' source: the name and version.
fn source() -> String {
    format!("rhizome {}", env!("CARGO_PKG_VERSION"))
}

fn add_pages(cmd: clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone())
        .date(MAN_DATE)
        .source(source())
        .manual("rhizome manual");
    let mut page = Vec::new();
    man.render(&mut page)?;
    pages.push((
        man.get_filename(),
        polish(String::from_utf8(page)?).into_bytes(),
    ));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        add_pages(sub.clone(), pages)?;
    }
    Ok(())
}

/// Two touches on clap_mangen's roff so that `mandoc -T lint` finds nothing to warn about and
/// the sections read as they should: its blank line between an option's help and its possible
/// values is a `.br`, a blank line and a `.br` (lint: "skipping paragraph macro"), which is what
/// `.sp` means; and the `after_help` text, which holds the examples on every command here, goes
/// under EXAMPLES rather than EXTRA.
fn polish(page: String) -> String {
    page.replace("\n.br\n\n.br\n", "\n.sp\n")
        .replace("\n.SH EXTRA\n", "\n.SH EXAMPLES\n")
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    fs::write(path, bytes).with_context(|| format!("could not write {}", path.display()))
}
