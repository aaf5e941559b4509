//! The real kubectl binaries: the `kubectl` on PATH and, in its directory (links resolved), the
//! versioned `kubectl.1.NN` binaries the Cloud SDK ships.

use std::path::PathBuf;

use super::skip::{require_tool, skip};

/// The directory of the real kubectl: the `kubectl` on PATH, links resolved; or [`skip`].
#[track_caller]
fn kubectl_dir() -> Option<PathBuf> {
    let kubectl = require_tool("kubectl")?;
    let real = std::fs::canonicalize(&kubectl).unwrap_or(kubectl);
    real.parent().map(PathBuf::from)
}

/// The kubectl binary `name` (`kubectl`, `kubectl.1.27`, ...) in the real kubectl's directory,
/// or [`skip`].
#[track_caller]
pub fn find_kubectl(name: &str) -> Option<PathBuf> {
    let bin = kubectl_dir()?.join(name);
    if bin.is_file() {
        return Some(bin);
    }
    skip(&format!("{}, beside the kubectl on PATH", bin.display()))
}

/// The oldest and the newest of the versioned kubectl binaries (just one if there is one; the
/// `kubectl` itself if there are none), or [`skip`].
#[track_caller]
pub fn kubectl_versions() -> Option<Vec<PathBuf>> {
    let dir = kubectl_dir()?;
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let minor = name.strip_prefix("kubectl.1.")?.parse().ok()?;
            Some((minor, e.path()))
        })
        .collect();
    versions.sort();
    Some(match (versions.first(), versions.last()) {
        (Some(oldest), Some(newest)) if oldest.0 != newest.0 => {
            vec![oldest.1.clone(), newest.1.clone()]
        }
        (Some(only), _) => vec![only.1.clone()],
        _ => vec![dir.join("kubectl")],
    })
}
