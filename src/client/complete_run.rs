//! What TAB offers after `rhizome run --`: for the program, the commands on PATH and the
//! executables and directories here; for its arguments, files. Before the `--` it offers no
//! program, since a command there is refused (it goes after `--`).
//!
//! clap's completion engine hands the words after `--` to the first positional argument and
//! cannot say whether a `--` came before them, so the line is read here: the shell runs
//! `COMPLETE=SHELL rhizome -- WORDS...`, and `_CLAP_COMPLETE_INDEX`, where the shell sets it
//! (bash, zsh), says which word is being completed; otherwise it is the last (fish).

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clap_complete::CompletionCandidate;
use clap_complete::engine::{PathCompleter, ValueCompleter};

/// The candidates for the word `current` of the command after `run --`. Paths are relative to
/// the `--cwd` given before the `--`, as the command will be.
pub fn command_word(current: &OsStr) -> Vec<CompletionCandidate> {
    let (words, index) = line();
    let Some(word) = locate(&words, index) else {
        return Vec::new();
    };
    let Some(dir) = word.dir() else {
        return Vec::new();
    };
    if word.position > 0 {
        return PathCompleter::any().current_dir(dir).complete(current);
    }
    let mut found = if current.as_bytes().contains(&b'/') {
        Vec::new()
    } else {
        programs_on_path(current, std::env::var_os("PATH").as_deref())
    };
    found.extend(
        PathCompleter::any()
            .filter(is_executable)
            .current_dir(dir)
            .complete(current),
    );
    found
}

/// Where the word being completed stands in `rhizome run ... -- CMD...`.
#[derive(Debug, PartialEq, Eq)]
struct CommandWord<'a> {
    /// 0 for the program, 1 and on for its arguments.
    position: usize,
    /// The `--cwd` before the `--`, as typed (the last one, as for the command line).
    cwd: Option<&'a OsStr>,
}

impl CommandWord<'_> {
    /// The directory the command will run in, from this shell's: `--cwd` as typed, with the `~`
    /// that a shell expands before running rhizome (but not while completing).
    fn dir(&self) -> Option<PathBuf> {
        let here = std::env::current_dir().ok()?;
        let Some(cwd) = self.cwd else {
            return Some(here);
        };
        let cwd = Path::new(cwd);
        Some(match cwd.strip_prefix("~") {
            Ok(rest) => PathBuf::from(std::env::var_os("HOME")?).join(rest),
            Err(_) => here.join(cwd),
        })
    }
}

/// The words of the line being completed (the program's name first) and the index of the one
/// being completed.
fn line() -> (Vec<OsString>, usize) {
    let words: Vec<OsString> = std::env::args_os()
        .skip_while(|arg| arg != "--")
        .skip(1)
        .collect();
    let index = std::env::var("_CLAP_COMPLETE_INDEX")
        .ok()
        .and_then(|i| i.parse().ok())
        .unwrap_or(words.len().saturating_sub(1));
    (words, index)
}

/// The word at `index` as part of the command of `rhizome run ... -- CMD...`; `None` when the
/// line is not `run`, or no `--` precedes the word.
fn locate(words: &[OsString], index: usize) -> Option<CommandWord<'_>> {
    let before = &words[..index.min(words.len())];
    let mut rest = before.iter().enumerate().skip(1);
    // Past the global options to the subcommand.
    let run = loop {
        let (at, word) = rest.next()?;
        if word == "--color" {
            rest.next();
        } else if !word.as_bytes().starts_with(b"-") {
            break (word == "run").then_some(at)?;
        }
    };
    let dashes = run + 1 + before[run + 1..].iter().position(|w| w == "--")?;
    let flags = &before[run + 1..dashes];
    let cwd = flags.iter().enumerate().rev().find_map(|(at, word)| {
        match word.as_bytes().strip_prefix(b"--cwd") {
            Some(b"") => flags.get(at + 1).map(OsString::as_os_str),
            Some([b'=', dir @ ..]) => Some(OsStr::from_bytes(dir)),
            _ => None,
        }
    });
    Some(CommandWord {
        position: index - dashes - 1,
        cwd,
    })
}

/// Every executable on `path` whose name starts with `prefix`, once (the one the shell would
/// run), sorted, each described by its directory.
fn programs_on_path(prefix: &OsStr, path: Option<&OsStr>) -> Vec<CompletionCandidate> {
    let mut seen = HashSet::new();
    let mut found: Vec<(OsString, String)> = Vec::new();
    for dir in std::env::split_paths(path.unwrap_or_default()) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.as_bytes().starts_with(prefix.as_bytes())
                && !seen.contains(&name)
                && is_executable(&entry.path())
            {
                seen.insert(name.clone());
                found.push((name, dir.display().to_string()));
            }
        }
    }
    found.sort();
    found
        .into_iter()
        .map(|(name, dir)| CompletionCandidate::new(name).help(Some(dir.into())))
        .collect()
}

/// A file (or a link to one) that someone may execute.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `locate` for the last word of `line`, as (position, --cwd).
    fn at(line: &str) -> Option<(usize, Option<String>)> {
        let mut words: Vec<OsString> = line.split(' ').map(OsString::from).collect();
        let index = words.len() - 1;
        words.pop();
        locate(&words, index).map(|w| (w.position, w.cwd.map(|c| c.to_string_lossy().into_owned())))
    }

    #[test]
    fn only_words_after_the_dashes_of_run_are_the_command() {
        let program = Some((0, None));
        assert_eq!(at("rhizome run -- py"), program);
        assert_eq!(at("rhizome run -- "), program);
        assert_eq!(
            at("rhizome run --name web -e A=1 -- python3 -m "),
            Some((2, None))
        );
        assert_eq!(at("rhizome --color never run -- ls "), Some((1, None)));
        assert_eq!(
            at("rhizome run -- sh -c -- "),
            Some((3, None)),
            "the first `--` counts"
        );
        assert_eq!(at("rhizome run py"), None, "no command before `--`");
        assert_eq!(at("rhizome run --name "), None);
        assert_eq!(at("rhizome kill run -- "), None, "not run");
        assert_eq!(at("rhizome logs -- "), None);
        assert_eq!(at("rhizome "), None);
    }

    #[test]
    fn paths_start_at_the_cwd_given_before_the_dashes() {
        let cwd = |dir: &str, position| Some((position, Some(dir.to_string())));
        assert_eq!(at("rhizome run --cwd sub -- ./"), cwd("sub", 0));
        assert_eq!(at("rhizome run --cwd=a --cwd b -- cat "), cwd("b", 1));
        assert_eq!(at("rhizome run --cwd=~/src -- ./"), cwd("~/src", 0));
        assert_eq!(
            at("rhizome run -- sh --cwd x "),
            Some((3, None)),
            "the command's own"
        );
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let word = CommandWord {
            position: 0,
            cwd: Some(OsStr::new("~/src")),
        };
        assert_eq!(word.dir(), home.map(|h| h.join("src")));
    }

    #[test]
    fn programs_are_found_once_in_path_order() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        let make = |dir: &Path, name: &str, mode: u32| {
            let file = dir.join(name);
            std::fs::write(&file, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        make(first.path(), "rh-tool", 0o755);
        make(first.path(), "rh-notes", 0o644);
        make(second.path(), "rh-tool", 0o755);
        make(second.path(), "rh-other", 0o755);
        make(second.path(), "unrelated", 0o755);
        std::fs::create_dir(second.path().join("rh-dir")).unwrap();
        let path = std::env::join_paths([first.path(), second.path()]).unwrap();
        let found: Vec<(String, String)> = programs_on_path(OsStr::new("rh-"), Some(&path))
            .iter()
            .map(|c| {
                (
                    c.get_value().to_string_lossy().into_owned(),
                    c.get_help().unwrap().to_string(),
                )
            })
            .collect();
        let dir = |d: &tempfile::TempDir| d.path().display().to_string();
        assert_eq!(
            found,
            [
                ("rh-other".to_string(), dir(&second)),
                ("rh-tool".to_string(), dir(&first)),
            ]
        );
    }
}
