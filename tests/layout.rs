//! The shape of the code, kept true: `forward/` is a library the daemon uses, `cli/` is only
//! the clap definitions, `protocol/` depends on nothing of the crate, and no file outgrows one
//! sitting. Read from the sources, so a change that breaks the shape fails here.

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn src(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(path)
}

/// The lines of `files` that mention `needle` outside comments, as `file:line: text`.
fn mentions(files: &[PathBuf], needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if !code.starts_with("//") && code.contains(needle) {
                hits.push(format!("{}:{}: {}", file.display(), n + 1, code));
            }
        }
    }
    hits
}

#[test]
fn forward_imports_nothing_from_the_daemon() {
    let hits = mentions(&sources(&src("forward")), "crate::daemon");
    assert!(
        hits.is_empty(),
        "forward/ must not use the daemon:\n{}",
        hits.join("\n")
    );
}

#[test]
fn native_imports_neither_the_daemon_nor_the_client() {
    let files = sources(&src("native"));
    assert!(!files.is_empty());
    let hits: Vec<String> = ["crate::daemon", "crate::client"]
        .iter()
        .flat_map(|needle| mentions(&files, needle))
        .collect();
    assert!(
        hits.is_empty(),
        "native/ must use neither the daemon nor the client:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_daemon_imports_nothing_from_the_client() {
    let hits = mentions(&sources(&src("daemon")), "crate::client");
    assert!(
        hits.is_empty(),
        "daemon/ must not use the client:\n{}",
        hits.join("\n")
    );
}

#[test]
fn cli_imports_no_client_code() {
    let hits = mentions(&sources(&src("cli")), "crate::client");
    assert!(
        hits.is_empty(),
        "cli/ must not use the client:\n{}",
        hits.join("\n")
    );
}

#[test]
fn protocol_depends_on_nothing_of_the_crate() {
    let files = sources(&src("protocol"));
    assert!(!files.is_empty());
    let hits = mentions(&files, "crate::");
    assert!(
        hits.is_empty(),
        "protocol/ must stand alone:\n{}",
        hits.join("\n")
    );
}

#[test]
fn no_source_file_is_over_400_lines() {
    let long: Vec<String> = sources(&src(""))
        .into_iter()
        .filter_map(|file| {
            let lines = fs::read_to_string(&file).unwrap().lines().count();
            (lines > 400).then(|| format!("{}: {lines} lines", file.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these:\n{}", long.join("\n"));
}
