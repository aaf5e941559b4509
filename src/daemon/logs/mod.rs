//! Per-process log files: where they live, how they rotate, and how readers learn of new lines.
//!
//! Only the log-writer thread (`writer.rs`) writes; readers (`read.rs`) open the files by path
//! and wait on `Progress` to learn that more was written or that the file rotated.

pub mod capture;
pub mod format;
pub mod read;
pub mod redact;
#[cfg(test)]
mod tests;
pub mod writer;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::Rotation;

/// What has been written so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Counts rotations: the file `age` rotations old holds generation `generation - age`. It
    /// starts at `keep - 1`, so that the files a previous daemon rotated have generations too.
    pub generation: u64,
    /// The current file's size.
    pub len: u64,
}

/// The log of one managed process: `logs/<id>-<name>.log`, then `.log.1`, `.log.2` as it rotates.
#[derive(Debug)]
pub struct ProcessLog {
    path: PathBuf,
    rotation: Rotation,
    progress: watch::Sender<Progress>,
    /// The open current file; touched only by the writer thread, so the lock is never contended.
    file: Mutex<Option<OpenLog>>,
}

/// The current file, and when it was last checked to still be in its directory.
#[derive(Debug)]
struct OpenLog {
    file: File,
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
            progress: watch::Sender::new(Progress { generation, len }),
            file: Mutex::new(None),
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
            *slot = None;
        }
        result
    }

    fn append_locked(&self, slot: &mut Option<OpenLog>, mut bytes: &[u8]) -> io::Result<()> {
        // Writing to a file someone deleted (or whose directory went) succeeds, into nowhere.
        if let Some(open) = slot
            .as_mut()
            .filter(|open| open.checked.elapsed() >= RECHECK)
        {
            open.checked = Instant::now();
            if open.file.metadata()?.nlink() == 0 {
                tracing::warn!(
                    "the log {} was deleted; starting it again",
                    self.path.display()
                );
                *slot = None;
            }
        }
        while !bytes.is_empty() {
            // Opened first, so that the size is the file's own (see `open`).
            let open = match slot {
                Some(open) => open,
                None => slot.insert(OpenLog {
                    file: self.open()?,
                    checked: Instant::now(),
                }),
            };
            let len = self.progress.borrow().len;
            let mut take = fitting(bytes, self.rotation.max_bytes.saturating_sub(len));
            if take == 0 {
                if len > 0 {
                    *slot = None;
                    self.rotate()?;
                    self.progress.send_modify(|p| {
                        p.generation += 1;
                        p.len = 0;
                    });
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

    fn open(&self) -> io::Result<File> {
        if let Some(dir) = self.path.parent() {
            crate::paths::ensure_private_dir(dir).map_err(io::Error::other)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        // The file may have been removed while we were not looking: trust its real size.
        let len = file.metadata()?.len();
        self.progress.send_modify(|p| p.len = len);
        Ok(file)
    }

    fn rotate(&self) -> io::Result<()> {
        let keep = self.rotation.keep.max(1) as u64;
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
        Ok(())
    }

    /// Closes the current file: the process is over and writes nothing more.
    fn close(&self) {
        *self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    /// Deletes every kept file; for processes the table forgets.
    fn remove_files(&self) {
        *self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
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
