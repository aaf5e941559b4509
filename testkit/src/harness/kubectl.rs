//! The real kubectl binaries: the `kubectl` on PATH and, in its directory (links resolved), the
//! versioned `kubectl.1.NN` binaries the Cloud SDK ships.

use std::path::PathBuf;

use super::skip::{require_tool, skip};

/// The directory of the real kubectl: the `kubectl` on PATH, links resolved; or [`skip`].
fn kubectl_dir() -> Option<PathBuf> {
    let kubectl = require_tool("kubectl")?;
    let real = std::fs::canonicalize(&kubectl).unwrap_or(kubectl);
    real.parent().map(PathBuf::from)
}

/// The kubectl binary `name` (`kubectl`, `kubectl.1.27`, ...) in the real kubectl's directory,
/// or [`skip`].
pub fn find_kubectl(name: &str) -> Option<PathBuf> {
    let bin = kubectl_dir()?.join(name);
    if bin.is_file() {
        return Some(bin);
    }
    skip(&format!("{}, beside the kubectl on PATH", bin.display()))
}
