//! A small file system that a test can fill: a tmpfs mounted (as root) over a directory of the
//! test's home, unmounted by its guard.

use std::path::{Path, PathBuf};

use rhizome_testkit::harness::{require_root_or_skip, skip};

/// Unmounts its tmpfs when dropped.
pub struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Mounts a tmpfs of 1 MiB over `dir` (created first), or says why it cannot and skips.
pub fn small_disk(dir: &Path, why: &str) -> Option<Tmpfs> {
    if !require_root_or_skip(why) {
        return None;
    }
    std::fs::create_dir_all(dir).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
        .arg(dir)
        .status();
    if !matches!(mounted, Ok(s) if s.success()) {
        skip::<()>(&format!(
            "permission to mount a tmpfs (CAP_SYS_ADMIN); mount gave {mounted:?}"
        ));
        return None;
    }
    Some(Tmpfs(dir.to_path_buf()))
}

/// Fills the file system holding `dir` with `dir/filler` and checks that it really is full.
pub fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    // As much as fits: the write itself ends with ENOSPC once the space is taken.
    let _ = std::fs::write(&filler, vec![0u8; 1 << 20]);
    assert_full(dir);
    filler
}

/// The file system holding `dir` really is full: no block is free, and a write of one byte fails
/// with ENOSPC.
pub fn assert_full(dir: &Path) {
    let stat = nix::sys::statvfs::statvfs(dir).unwrap();
    assert_eq!(
        stat.blocks_available(),
        0,
        "{} has {} blocks of {} bytes free: the disk is not full",
        dir.display(),
        stat.blocks_available(),
        stat.fragment_size()
    );
    let probe = dir.join("probe");
    let written = std::fs::write(&probe, b"x");
    let _ = std::fs::remove_file(&probe);
    let err = written.expect_err("a byte could still be written: the disk is not full");
    assert_eq!(
        err.raw_os_error(),
        Some(nix::errno::Errno::ENOSPC as i32),
        "a byte's write failed, but not for want of space: {err}"
    );
}
