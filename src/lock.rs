//! The lock file that makes the daemon one per home.
//!
//! The daemon holds an exclusive `flock` on `rhizome.lock` for its whole life and writes its pid
//! into it. The kernel drops the lock when the process dies, however it dies, so a lock file left
//! by a killed daemon never blocks the next one; and a client can tell that a daemon is truly gone
//! by taking the lock itself.
//!
//! A lock is on a file, not on a path: when something removes `rhizome.lock` (tmp cleaners do),
//! the daemon still holds the removed file and a second daemon could lock a new one. `FileId`
//! lets the daemon see that the file at the path is no longer the one it holds, and put it back.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::libc;

/// An acquired daemon lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct Lock {
    file: File,
    /// The locked file, to compare with whatever is at the path later.
    id: FileId,
}

/// Which file a path names: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// The file at `path`, itself if it is a link; `None` when there is none.
    pub fn at(path: &Path) -> io::Result<Option<FileId>> {
        match fs::symlink_metadata(path) {
            Ok(meta) => Ok(Some(FileId::of(&meta))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }
}

impl Lock {
    /// Takes the lock without waiting; `Ok(None)` when another process holds it. The file is
    /// emptied at once, so that until the new daemon writes its pid the file names nobody, never a
    /// pid of an earlier daemon that may since belong to another process.
    pub fn try_acquire(path: &Path) -> io::Result<Option<Lock>> {
        let file = open(path, true)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                let id = FileId::of(&file.metadata()?);
                Ok(Some(Lock { file, id }))
            }
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(err)) => Err(err),
        }
    }

    /// Records the pid of the process that now holds the lock (after any fork).
    pub fn write_pid(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        writeln!(self.file, "{}", std::process::id())?;
        self.file.sync_all()
    }

    /// The file this lock is on.
    pub fn id(&self) -> FileId {
        self.id
    }
}

/// Who holds a lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// Nobody: no daemon runs (or there is no lock file).
    Nobody,
    /// A process that has not written its pid yet: a daemon that is starting.
    Starting,
    /// The daemon with this pid.
    Daemon(u32),
}

/// Who holds the lock at `path`, read without creating or changing the file.
pub fn holder(path: &Path) -> io::Result<Holder> {
    if !is_held(path)? {
        return Ok(Holder::Nobody);
    }
    Ok(read_pid(path).map_or(Holder::Starting, Holder::Daemon))
}

/// True when some process holds the lock: a daemon is running, starting or stopping.
pub fn is_held(path: &Path) -> io::Result<bool> {
    let file = match open(path, false) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    match file.try_lock() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(err)) => Err(err),
    }
}

/// The pid the last daemon wrote into the lock file, if any.
pub fn read_pid(path: &Path) -> Option<u32> {
    let mut text = String::new();
    open(path, false).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Opens the lock file, never through a link: the daemon creates it (`create`) in a directory of
/// its own, so a link there was put by someone else.
fn open(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}
