//! Per-process log files: where they live, how they rotate, and how readers learn of new lines.
//!
//! Only the log-writer thread (`writer.rs`) writes; readers (`read.rs`) open the files by path
//! and wait on `Progress` to learn that more was written, that the file rotated, or that the
//! writer moved on to a new file. What a reader loses (files gone before it read them) is
//! counted for it in `readers.rs`.

pub mod capture;
pub mod format;
pub mod merge;
pub mod read;
pub mod readers;
pub mod redact;
#[cfg(test)]
mod tests;
pub mod writer;

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use self::readers::{Readers, Tally};
use crate::config::Rotation;
use crate::protocol::GapCause;

/// What has been written so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Counts rotations: the file `age` rotations old holds generation `generation - age`. It
    /// starts at `keep - 1`, so that the files a previous daemon rotated have generations too.
    pub generation: u64,
    /// The current file's size.
    pub len: u64,
    /// The file the writer has open, `None` while it has none. A reader holding a file that was
    /// deleted knows from a change here that the writer has left it (it opens files by path,
    /// never a deleted one again), so whatever it holds is complete.
    pub writing: Option<FileId>,
}

/// Which file a descriptor is, whatever its name now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// The log of one managed process: `logs/<id>-<name>.log`, then `.log.1`, `.log.2` as it rotates.
#[derive(Debug)]
pub struct ProcessLog {
    path: PathBuf,
    rotation: Rotation,
    progress: watch::Sender<Progress>,
    /// The open current file; touched only by the writer thread, so the lock is never contended.
    file: Mutex<Option<OpenLog>>,
    /// The readers and what they lost. Its lock also makes a rotation and a reader's move to
    /// another file one at a time, so that under it generation G is `path_at(generation - G)`.
    readers: Mutex<Readers>,
}

/// The current file, and when it was last checked to still be in its directory.
#[derive(Debug)]
struct OpenLog {
    file: File,
    id: FileId,
    checked: Instant,
}

/// How often an open log is checked for having been deleted (then it is opened afresh).
const RECHECK: Duration = Duration::from_secs(1);

impl ProcessLog {
    pub fn new(dir: &Path, id: u32, name: &str, rotation: Rotation) -> Self {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{id}-{safe}.log"));
        let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let generation = rotation.keep.max(1) as u64 - 1;
        ProcessLog {
            path,
            rotation,
            progress: watch::Sender::new(Progress {
                generation,
                len,
                writing: None,
            }),
            file: Mutex::new(None),
            readers: Mutex::new(Readers::default()),
        }
    }

    /// The file `age` rotations old: 0 is the current file.
    pub fn path_at(&self, age: u64) -> PathBuf {
        if age == 0 {
            self.path.clone()
        } else {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{age}"));
            PathBuf::from(name)
        }
    }

    /// The ages of the kept files that exist, newest first.
    fn kept_ages(&self) -> Vec<u64> {
        (0..self.keep())
            .filter(|&age| self.path_at(age).exists())
            .collect()
    }

    fn keep(&self) -> u64 {
        self.rotation.keep.max(1) as u64
    }

    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    fn readers(&self) -> MutexGuard<'_, Readers> {
        self.readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends whole lines, rotating whenever the next line would push the file past its limit.
    /// Called only from the writer thread. On error the file is dropped, so the next append opens it
    /// afresh (recreating a removed directory) and logging resumes by itself.
    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        let mut slot = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let result = self.append_locked(&mut slot, bytes);
        if result.is_err() {
            self.let_go(&mut slot);
        }
        result
    }

    fn append_locked(&self, slot: &mut Option<OpenLog>, mut bytes: &[u8]) -> io::Result<()> {
        self.check_deleted(slot)?;
        while !bytes.is_empty() {
            // Opened first, so that the size is the file's own (see `open`).
            let open = match slot {
                Some(open) => open,
                None => slot.insert(self.open()?),
            };
            let len = self.progress.borrow().len;
            let mut take = fitting(bytes, self.rotation.max_bytes.saturating_sub(len));
            if take == 0 {
                if len > 0 {
                    self.let_go(slot);
                    self.rotate()?;
                    continue;
                }
                // A line longer than a whole file is written alone, into a file of its own, not
                // split: a piece would have no time stamp and no name, and the capture already
                // cuts lines at 64 KiB, so such a file is at most that large.
                take = memchr::memchr(b'\n', bytes).map_or(bytes.len(), |i| i + 1);
            }
            open.file.write_all(&bytes[..take])?;
            self.progress.send_modify(|p| p.len += take as u64);
            bytes = &bytes[take..];
        }
        Ok(())
    }

    /// Writing to a file someone deleted (or whose directory went) succeeds, into nowhere: once a
    /// second, look, and start the file again if it went. Readers that do not hold it never see
    /// what went into it; they are told how much that was.
    fn check_deleted(&self, slot: &mut Option<OpenLog>) -> io::Result<()> {
        let Some(open) = slot
            .as_mut()
            .filter(|open| open.checked.elapsed() >= RECHECK)
        else {
            return Ok(());
        };
        open.checked = Instant::now();
        if open.file.metadata()?.nlink() > 0 {
            return Ok(());
        }
        tracing::warn!(
            "the log {} was deleted; starting it again",
            self.path.display()
        );
        let generation = self.progress.borrow().generation;
        let mut readers = self.readers();
        if readers.would_lose(generation, Some(open.id)) {
            let tally = Tally::count(&open.file);
            readers.credit(generation, Some(open.id), GapCause::Deleted, tally);
        }
        drop(readers);
        self.let_go(slot);
        Ok(())
    }

    fn open(&self) -> io::Result<OpenLog> {
        if let Some(dir) = self.path.parent() {
            crate::paths::ensure_private_dir(dir).map_err(io::Error::other)?;
        }
        // Readable too: a deleted file is counted through it for the readers that lost it.
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        // The file may have been removed while we were not looking: trust its real size.
        let meta = file.metadata()?;
        let id = FileId::of(&meta);
        self.progress.send_modify(|p| {
            p.len = meta.len();
            p.writing = Some(id);
        });
        Ok(OpenLog {
            file,
            id,
            checked: Instant::now(),
        })
    }

    /// Closes the current file, and tells readers the writer has left it.
    fn let_go(&self, slot: &mut Option<OpenLog>) {
        if slot.take().is_some() {
            self.progress.send_modify(|p| p.writing = None);
        }
    }

    /// Shifts every kept file one age older, dropping the oldest (or, keeping one, the current):
    /// readers that had not read the dropped file are credited with its lines.
    fn rotate(&self) -> io::Result<()> {
        let keep = self.keep();
        let mut readers = self.readers();
        let generation = self.progress.borrow().generation;
        let dropped = generation + 1 - keep;
        // Looked at and counted only when some reader may miss it: with every reader past it
        // (or none), rotation costs nothing more than the renames.
        let doomed = if readers.all_past(dropped) {
            None
        } else {
            self.doomed(&readers, dropped)
        };
        for age in (1..keep).rev() {
            match fs::rename(self.path_at(age - 1), self.path_at(age)) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        if keep == 1 {
            match fs::remove_file(&self.path) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        if let Some((id, cause, tally)) = doomed {
            readers.credit(dropped, id, cause, tally);
        }
        self.progress.send_modify(|p| {
            p.generation += 1;
            p.len = 0;
        });
        Ok(())
    }

    /// The file of `generation` that the rotation drops, and what it holds, if some reader
    /// would lose it.
    fn doomed(
        &self,
        readers: &Readers,
        generation: u64,
    ) -> Option<(Option<FileId>, GapCause, Tally)> {
        match open_if_exists(&self.path_at(self.keep() - 1)) {
            Ok(Some(file)) => {
                let id = file.metadata().ok().map(|m| FileId::of(&m));
                readers
                    .would_lose(generation, id)
                    .then(|| (id, GapCause::Rotated, Tally::count(&file)))
            }
            // Someone deleted it before it rotated away.
            Ok(None) => readers
                .would_lose(generation, None)
                .then(|| (None, GapCause::Deleted, Tally::unknown())),
            Err(_) => readers
                .would_lose(generation, None)
                .then(|| (None, GapCause::Rotated, Tally::unknown())),
        }
    }

    /// Closes the current file: the process is over and writes nothing more.
    fn close(&self) {
        let mut slot = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.let_go(&mut slot);
    }

    /// Deletes every kept file; for processes the table forgets.
    fn remove_files(&self) {
        self.close();
        for age in 0..self.rotation.keep as u64 {
            let _ = fs::remove_file(self.path_at(age));
        }
    }
}

/// How many of `bytes` fit in `room`: all of them, or the whole lines that do.
fn fitting(bytes: &[u8], room: u64) -> usize {
    if bytes.len() as u64 <= room {
        return bytes.len();
    }
    memchr::memrchr(b'\n', &bytes[..room as usize]).map_or(0, |i| i + 1)
}

/// Opens `path` for reading, `None` if there is no such file.
fn open_if_exists(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}
