//! Reading a process log back: the last N lines across rotated files, then whatever is appended,
//! across rotations and a file deleted and started again, with what could not be read told as
//! a gap rather than skipped.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use super::readers::Missed;
use super::{FileId, ProcessLog, open_if_exists};

/// Bytes sent to the client per message.
const CHUNK: usize = 64 * 1024;

/// What a cursor read next.
#[derive(Debug)]
pub enum Piece {
    Bytes(Vec<u8>),
    /// Lines that went before they could be read belong here.
    Gap(Missed),
}

/// A reading position in a log that survives rotation: it holds the open file of one generation and
/// moves on to the next generation once that file is complete. Nothing is looked up per read: the
/// files are looked at again only when `Progress` says the writer rotated or changed files.
pub struct LogCursor {
    /// `None` only while a read is under way on the blocking pool.
    at: Option<Position>,
}

struct Position {
    log: Arc<ProcessLog>,
    /// This reader's entry among the log's readers; left when the position is dropped.
    place: u64,
    generation: u64,
    file: Option<Held>,
    /// The writer's file when last looked at: a change is when a deleted `file` may be complete.
    writing: Option<FileId>,
}

struct Held {
    file: File,
    id: FileId,
}

impl Held {
    fn open(path: &std::path::Path) -> io::Result<Option<Held>> {
        let Some(file) = open_if_exists(path)? else {
            return Ok(None);
        };
        let id = FileId::of(&file.metadata()?);
        Ok(Some(Held { file, id }))
    }

    fn deleted(&self) -> io::Result<bool> {
        Ok(self.file.metadata()?.nlink() == 0)
    }
}

impl Drop for Position {
    fn drop(&mut self) {
        self.log.readers().leave(self.place);
    }
}

impl LogCursor {
    /// A cursor at the start of the last `lines` lines, or of everything kept when `None`.
    pub async fn open(log: Arc<ProcessLog>, lines: Option<u64>) -> io::Result<LogCursor> {
        let at = tokio::task::spawn_blocking(move || Position::open(log, lines))
            .await
            .map_err(io::Error::other)??;
        Ok(LogCursor { at: Some(at) })
    }

    /// The next bytes written or gap found, or `None` when the cursor has reached the end of
    /// what is written now.
    pub async fn next(&mut self) -> io::Result<Option<Piece>> {
        let mut at = self
            .at
            .take()
            .ok_or_else(|| io::Error::other("a log cursor was used after a failed read"))?;
        let (at, piece) = tokio::task::spawn_blocking(move || {
            let piece = at.step();
            (at, piece)
        })
        .await
        .map_err(io::Error::other)?;
        self.at = Some(at);
        piece
    }
}

/// Where a reader starts: `age` files back, at `offset`, as found when the newest generation
/// was `latest`.
struct Start {
    latest: u64,
    age: u64,
    offset: u64,
}

impl Position {
    fn open(log: Arc<ProcessLog>, lines: Option<u64>) -> io::Result<Position> {
        // Found without holding up rotation, and found again under the lock in the rare case a
        // rotation came in between (its files then moved, or went).
        let first = find_start(&log, lines);
        let mut readers = log.readers();
        let now = *log.progress.borrow();
        let start = match first {
            Ok(start) if start.latest == now.generation => start,
            _ => find_start(&log, lines)?,
        };
        let mut file = Held::open(&log.path_at(start.age))?;
        if let Some(held) = &mut file {
            held.file.seek(SeekFrom::Start(start.offset))?;
        }
        let generation = now.generation - start.age;
        let place = readers.join(generation, file.as_ref().map(|h| h.id));
        drop(readers);
        Ok(Position {
            log,
            place,
            generation,
            file,
            writing: now.writing,
        })
    }

    fn step(&mut self) -> io::Result<Option<Piece>> {
        loop {
            if let Some(bytes) = self.read()? {
                return Ok(Some(Piece::Bytes(bytes)));
            }
            let now = *self.log.progress.borrow();
            if now.generation != self.generation {
                // Our generation rotated away and the writer has left its files for good:
                // what was written to ours before that is there now. Read it, then move on.
                if let Some(bytes) = self.read()? {
                    return Ok(Some(Piece::Bytes(bytes)));
                }
                if let Some(missed) = self.next_file()? {
                    return Ok(Some(Piece::Gap(missed)));
                }
                continue;
            }
            if let Some(held) = &self.file {
                if now.writing == self.writing {
                    return Ok(None);
                }
                // The writer opened or closed a file. Ours is complete only if it was deleted
                // and is not the writer's: the writer opens files by path, never a deleted one.
                if now.writing == Some(held.id) || !held.deleted()? {
                    self.writing = now.writing;
                    return Ok(None);
                }
                if let Some(bytes) = self.read()? {
                    return Ok(Some(Piece::Bytes(bytes)));
                }
            }
            if !self.reopen()? {
                return Ok(None);
            }
        }
    }

    /// The bytes past the offset of the file held, `None` at its end (or holding none).
    fn read(&mut self) -> io::Result<Option<Vec<u8>>> {
        let Some(held) = &mut self.file else {
            return Ok(None);
        };
        let mut buf = vec![0u8; CHUNK];
        let n = held.file.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some(buf))
    }

    /// Takes the current file at its path, in place of a complete deleted one or of none: false
    /// when there is none yet.
    fn reopen(&mut self) -> io::Result<bool> {
        let mut readers = self.log.readers();
        let now = *self.log.progress.borrow();
        if now.generation != self.generation {
            // It rotated meanwhile: the caller goes round again and moves on properly.
            return Ok(true);
        }
        self.writing = now.writing;
        self.file = Held::open(&self.log.path_at(0))?;
        readers.hold(
            self.place,
            self.generation,
            self.file.as_ref().map(|h| h.id),
        );
        Ok(self.file.is_some())
    }

    /// Moves on from a generation that rotated away: to the next file, or, if rotation dropped
    /// files this reader never got to, to the oldest kept one, returning what was lost.
    fn next_file(&mut self) -> io::Result<Option<Missed>> {
        let keep = self.log.keep();
        let mut readers = self.log.readers();
        let now = *self.log.progress.borrow();
        self.writing = now.writing;
        // Our generation's file is still kept, and is not the one we hold: ours was deleted and
        // the writer started the generation again, or we held none yet. Read it first.
        let age = now.generation - self.generation;
        let ours_went = match &self.file {
            Some(held) => held.deleted()?,
            None => true,
        };
        if age < keep
            && ours_went
            && let Some(next) = Held::open(&self.log.path_at(age))?
            && self.file.as_ref().map(|h| h.id) != Some(next.id)
        {
            readers.hold(self.place, self.generation, Some(next.id));
            self.file = Some(next);
            return Ok(None);
        }
        let oldest = now.generation + 1 - keep;
        self.generation = (self.generation + 1).max(oldest);
        let age = now.generation - self.generation;
        self.file = Held::open(&self.log.path_at(age))?;
        readers.hold(
            self.place,
            self.generation,
            self.file.as_ref().map(|h| h.id),
        );
        let mut missed = readers.take_missed(self.place);
        if self.file.is_none() && age > 0 {
            // Rotated, so once written: someone deleted it.
            missed.deleted_unseen();
        }
        Ok((!missed.is_empty()).then_some(missed))
    }
}

/// Where the last `lines` lines start, or the start of the oldest kept file when `None`.
fn find_start(log: &ProcessLog, lines: Option<u64>) -> io::Result<Start> {
    let latest = log.progress.borrow().generation;
    let ages = log.kept_ages();
    let oldest = ages.last().copied().unwrap_or(0);
    let Some(wanted) = lines else {
        return Ok(Start {
            latest,
            age: oldest,
            offset: 0,
        });
    };
    let mut remaining = wanted;
    for &age in &ages {
        match start_of_last_lines(&log.path_at(age), remaining)? {
            Tail::StartsAt(offset) => {
                return Ok(Start {
                    latest,
                    age,
                    offset,
                });
            }
            Tail::Short(counted) => remaining -= counted,
        }
    }
    Ok(Start {
        latest,
        age: oldest,
        offset: 0,
    })
}

enum Tail {
    /// The last N lines start at this offset.
    StartsAt(u64),
    /// The whole file holds fewer lines than wanted: this many.
    Short(u64),
}

/// Scans `path` backwards for the start of its last `wanted` lines.
fn start_of_last_lines(path: &std::path::Path, wanted: u64) -> io::Result<Tail> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if wanted == 0 {
        return Ok(Tail::StartsAt(len));
    }
    let mut buf = vec![0u8; CHUNK];
    let mut end = len;
    let mut newlines = 0u64;
    // The final newline ends the last line; it does not start another.
    let mut skip_final = true;
    while end > 0 {
        let start = end.saturating_sub(CHUNK as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        for i in (0..n).rev() {
            if buf[i] != b'\n' {
                skip_final = false;
                continue;
            }
            if skip_final && start + i as u64 == len - 1 {
                skip_final = false;
                continue;
            }
            newlines += 1;
            if newlines == wanted {
                return Ok(Tail::StartsAt(start + i as u64 + 1));
            }
        }
        end = start;
    }
    let lines = newlines + u64::from(len > 0);
    Ok(if lines >= wanted {
        Tail::StartsAt(0)
    } else {
        Tail::Short(lines)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(text: &str, wanted: u64) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, text).unwrap();
        match start_of_last_lines(&path, wanted).unwrap() {
            Tail::StartsAt(offset) => text[offset as usize..].to_string(),
            Tail::Short(n) => format!("short {n}"),
        }
    }

    #[test]
    fn finds_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail("a\nb\nc\n", 3), "a\nb\nc\n");
        assert_eq!(tail("a\nb\nc\n", 4), "short 3");
        assert_eq!(tail("a\nb\nc", 1), "c");
        assert_eq!(tail("", 1), "short 0");
        assert_eq!(tail("a\n", 0), "");
    }
}
