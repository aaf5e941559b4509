//! The generated files that are checked in (completions/, man/) are what the binary generates
//! today, the man pages render without a warning, and `rhizome completions` prints the same
//! scripts a shell gets from `COMPLETE=SHELL rhizome`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const REFRESH: &str = "cargo run -q -- __generate .";

/// Every file in `dir`, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

#[test]
fn checked_in_completions_and_man_pages_are_fresh() {
    let rh = Rhizome::new();
    let fresh = tempfile::tempdir().unwrap();
    rh.ok(["__generate".as_ref(), fresh.path().as_os_str()]);
    for sub in ["completions", "man"] {
        let generated = files(&fresh.path().join(sub));
        let checked_in = files(&Path::new(REPO).join(sub));
        let mut stale: Vec<String> = Vec::new();
        for (name, bytes) in &generated {
            match checked_in.get(name) {
                Some(ours) if ours == bytes => {}
                Some(_) => stale.push(format!("{sub}/{name} differs")),
                None => stale.push(format!("{sub}/{name} is missing")),
            }
        }
        for name in checked_in.keys().filter(|n| !generated.contains_key(*n)) {
            stale.push(format!("{sub}/{name} is no longer generated"));
        }
        assert!(
            stale.is_empty(),
            "the checked-in generated files are stale ({}); refresh them with `{REFRESH}` from the \
             repository's root and commit the result",
            stale.join(", ")
        );
    }
    assert!(
        files(&Path::new(REPO).join("man")).contains_key("rhizome-forward.1"),
        "one page per subcommand"
    );
}

#[test]
fn completions_prints_the_script_a_shell_gets_from_complete() {
    let rh = Rhizome::new();
    for (shell, file) in [
        ("bash", "rhizome.bash"),
        ("zsh", "_rhizome"),
        ("fish", "rhizome.fish"),
    ] {
        let printed = rh.ok(["completions", shell]);
        let checked_in =
            std::fs::read_to_string(Path::new(REPO).join("completions").join(file)).unwrap();
        assert_eq!(printed, checked_in, "`rhizome completions {shell}`");
        // `source <(COMPLETE=bash rhizome)` in a profile, rhizome found on PATH.
        let bin_dir = Path::new(BIN).parent().unwrap();
        let out = Command::new("rhizome")
            .env("PATH", bin_dir)
            .env("COMPLETE", shell)
            .env("RHIZOME_HOME", rh.path())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            checked_in,
            "`COMPLETE={shell} rhizome`"
        );
    }
    for shell in ["elvish", "powershell"] {
        assert!(rh.ok(["completions", shell]).contains("rhizome"), "{shell}");
    }
    let out = rh.run(["completions", "tcsh"]);
    assert_eq!(
        out.code,
        Some(2),
        "an unknown shell is a usage error: {out:?}"
    );
    assert!(!rh.daemon_running(), "printing a script needs no daemon");
}

#[test]
fn man_pages_render_without_warnings() {
    let Some(mandoc) = require_tool("mandoc") else {
        return;
    };
    let pages = files(&Path::new(REPO).join("man"));
    assert!(pages.len() > 10, "{:?}", pages.keys());
    for name in pages.keys() {
        let path = Path::new(REPO).join("man").join(name);
        let out = Command::new(&mandoc)
            .args(["-T", "lint", "-W", "warning"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "mandoc -T lint {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&pages[name]);
        assert!(
            text.contains("\n.SH EXAMPLES\n"),
            "{name} has examples:\n{text}"
        );
    }
}
