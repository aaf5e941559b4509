//! What a test does when something it needs is not here (a tool, a file, root): on a laptop it
//! says so in one line, `skipped: TEST (needs ...)`, and passes; on CI (`CI=true`), which runs as
//! root with every tool installed, it fails instead, so that no test is skipped there unseen.

use std::io::Write;
use std::path::PathBuf;

/// Whether this is a CI run (`CI=true`), where nothing a test needs may be missing.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The calling test cannot run here for want of `needs`: on a laptop, a `skipped:` line and
/// `None` (for the caller to return on); with `CI=true`, a failure that says what is missing.
#[track_caller]
pub fn skip<T>(needs: &str) -> Option<T> {
    let test = match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "this test".to_string(),
    };
    assert!(
        !on_ci(),
        "{test} needs {needs}; with CI=true no test may skip (CI runs as root, with the packages .ci/run installs)"
    );
    // Past the test runner's capture of `eprintln!`, so that a skip shows in `cargo test`'s own
    // output rather than passing unseen.
    let line = format!("skipped: {test} (needs {needs})\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    None
}

/// An external tool on PATH, or [`skip`].
#[track_caller]
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => Some(path),
        None => skip(&format!("`{name}` on PATH")),
    }
}

/// A file that is not a program on PATH (bash-completion's script, say), from the Debian package
/// `package`, or [`skip`].
#[track_caller]
pub fn require_file(path: &str, package: &str) -> Option<PathBuf> {
    let path = PathBuf::from(path);
    if path.is_file() {
        return Some(path);
    }
    skip(&format!(
        "{}, from the Debian package {package}",
        path.display()
    ))
}

/// Whether the test runs as root; if not, [`skip`] (and `false`). `reason` says what root is
/// needed for: "to act as another user".
#[track_caller]
pub fn require_root_or_skip(reason: &str) -> bool {
    nix::unistd::geteuid().is_root() || skip::<()>(&format!("root {reason}")).is_some()
}

/// A binary of the test kit (`fake-kubectl`, `fake-apiserver`), which `cargo test --workspace`
/// builds next to the running test's own binary, or [`skip`].
#[track_caller]
pub fn testkit_bin(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/PROFILE/deps/TEST: the test kit's binaries are in target/PROFILE.
    let path = exe.parent()?.parent()?.join(name);
    if path.is_file() {
        return Some(path);
    }
    skip(&format!(
        "the test kit's {name} at {}, which `cargo test --workspace` builds",
        path.display()
    ))
}
