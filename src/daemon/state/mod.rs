//! The daemon's desired state on disk: what should be running, so that a daemon that died (or was
//! restarted, or upgraded) can stop what its predecessor left behind and bring the rest back.
//!
//! `state/processes.json` is rewritten, atomically (temporary file, fsync, rename), whenever the
//! table changes. It is JSON so that a person can read it. It holds every process of the table:
//! what should run, with what it needs to run again, and the newest finished processes (the
//! table keeps `KEEP_FINISHED`), so that `ps --all` and `logs` still know them; `file.rs` has
//! its shape, `repair.rs` what makes a hand-edited file safe to load.

mod file;
mod repair;

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

pub use self::file::{Ended, FORMAT, OsBytes, SavedEnd, SavedForward, SavedProcess, StateFile};
pub use self::repair::MAX_ID;
use super::process::Process;

/// What was found on disk at start.
pub enum Loaded {
    Nothing,
    State(StateFile),
    /// The file could not be used; it was moved to `moved_to`.
    Rejected {
        moved_to: PathBuf,
        why: String,
    },
}

/// Where the state lives and whether it may still be written.
pub struct Store {
    path: PathBuf,
    /// Told by every change of the table.
    pub changed: Arc<Notify>,
    /// Set when the daemon stops: the children it then ends should come back next time, so their
    /// deaths are not recorded.
    frozen: AtomicBool,
    /// One write at a time, each of the table as it is when that write begins: the last write is
    /// always the newest state.
    writing: Mutex<()>,
}

impl Store {
    pub fn new(state_dir: &Path) -> Store {
        Store {
            path: state_dir.join("processes.json"),
            changed: Arc::new(Notify::new()),
            frozen: AtomicBool::new(false),
            writing: Mutex::new(()),
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state left by the previous daemon. A file that cannot be used is moved aside to
    /// `state/rejected-<time>.json`: the daemon never refuses to start because of its own files.
    pub fn load(&self) -> Loaded {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Loaded::Nothing,
            Err(err) => return self.reject(format!("it could not be read: {err}")),
        };
        match serde_json::from_str::<StateFile>(&text) {
            Ok(file) if file.format > FORMAT => self.reject(format!(
                "it was written by a newer rhizome (format {}, this one reads {FORMAT})",
                file.format
            )),
            Ok(file) => Loaded::State(file),
            Err(err) => self.reject(format!("it is not valid: {err}")),
        }
    }

    fn reject(&self, why: String) -> Loaded {
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let moved_to = self.path.with_file_name(format!("rejected-{stamp}.json"));
        match fs::rename(&self.path, &moved_to) {
            Ok(()) => Loaded::Rejected { moved_to, why },
            Err(err) => Loaded::Rejected {
                moved_to: self.path.clone(),
                why: format!("{why}; moving it aside failed too ({err})"),
            },
        }
    }

    /// Writes the state `snapshot` gives, unless the store is frozen. Blocks on file I/O.
    pub fn save(&self, snapshot: impl FnOnce() -> StateFile) -> io::Result<()> {
        let _one_at_a_time = self
            .writing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.frozen.load(Ordering::SeqCst) {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&snapshot()).map_err(io::Error::other)?;
        write_atomically(&self.path, &bytes)
    }

    /// Whether the last write is done: the daemon is stopping.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::SeqCst)
    }

    /// Writes the state one last time and ignores every later change.
    pub fn freeze(&self, snapshot: impl FnOnce() -> StateFile) -> io::Result<()> {
        let result = self.save(snapshot);
        self.frozen.store(true, Ordering::SeqCst);
        result
    }

    /// Ignores every later change without writing: the file belongs to another daemon now.
    pub fn abandon(&self) {
        let _one_at_a_time = self.writing.lock();
        self.frozen.store(true, Ordering::SeqCst);
    }
}

/// The file of the table as it is now.
pub fn snapshot(next_id: u32, processes: &[Arc<Process>]) -> StateFile {
    StateFile {
        format: FORMAT,
        next_id,
        processes: processes.iter().map(|p| SavedProcess::of(p)).collect(),
    }
}

/// Temporary file, fsync, rename over the old one, fsync the directory: after a crash the file is
/// the old one or the new one, never a mix.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::paths::ensure_private_dir(dir).map_err(io::Error::other)?;
    let temporary = path.with_extension("json.tmp");
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_newer_files_are_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        assert!(matches!(store.load(), Loaded::Nothing));
        for text in [
            "{\"format\": 1, \"next_i",
            "\u{0}garbage",
            "{\"format\": 99, \"next_id\": 1, \"processes\": []}",
        ] {
            fs::write(dir.path().join("processes.json"), text).unwrap();
            let Loaded::Rejected { moved_to, .. } = store.load() else {
                panic!("{text:?} was accepted");
            };
            assert!(
                moved_to
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("rejected-")
            );
            assert!(moved_to.exists() && !dir.path().join("processes.json").exists());
            fs::remove_file(moved_to).unwrap();
        }
    }

    #[test]
    fn a_frozen_store_writes_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let empty = |next_id| {
            move || StateFile {
                format: FORMAT,
                next_id,
                processes: vec![],
            }
        };
        store.freeze(empty(7)).unwrap();
        store.save(empty(8)).unwrap();
        let Loaded::State(file) = store.load() else {
            panic!()
        };
        assert_eq!(file.next_id, 7);
    }
}
