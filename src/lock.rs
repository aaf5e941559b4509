//! The lock file that makes the daemon one per home.
//!
//! The daemon holds an exclusive `flock` on `rhizome.lock` for its whole life and writes its pid
//! into it. The kernel drops the lock when the process dies, however it dies, so a lock file left
//! by a killed daemon never blocks the next one; and a client can tell that a daemon is truly gone
//! by taking the lock itself.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// An acquired daemon lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct Lock {
    file: File,
}

impl Lock {
    /// Takes the lock without waiting; `Ok(None)` when another process holds it.
    pub fn try_acquire(path: &Path) -> io::Result<Option<Lock>> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Lock { file })),
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
}

/// True when some process holds the lock: a daemon is running, starting or stopping.
pub fn is_held(path: &Path) -> io::Result<bool> {
    match Lock::try_acquire(path) {
        Ok(lock) => Ok(lock.is_none()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// The pid the last daemon wrote into the lock file, if any.
pub fn read_pid(path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}
