//! Who is reading a log, and what each has lost. Every reader has a place: the generation it has
//! reached and the file it holds. When a file goes (rotated away past `keep_files`, or deleted
//! under the writer) the writer counts it and credits every reader that had not read it; the
//! reader reports what it was credited as a gap, where the lines are missing from its stream.
//!
//! The places sit behind the log's one lock that also orders rotations with readers moving to
//! the next file, so a file is counted for a reader exactly when that reader will never open it.

use std::fs::File;
use std::io;

use super::FileId;
use crate::protocol::{GapCause, GapSize, LogGap};

/// What went in the files one reader lost for one cause. A measure is `None` once part of it
/// could not be known: a file that could not be read (bytes but no lines), or one already gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    files: u64,
    lines: Option<u64>,
    bytes: Option<u64>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            files: 0,
            lines: Some(0),
            bytes: Some(0),
        }
    }
}

impl Tally {
    /// A file that went before anything about it could be known.
    pub fn unknown() -> Tally {
        Tally {
            files: 1,
            lines: None,
            bytes: None,
        }
    }

    /// Counts the lines of a file the writer is about to let go. Read from the start with
    /// positioned reads, so a descriptor's own offset is left alone.
    pub fn count(file: &File) -> Tally {
        use std::os::unix::fs::FileExt;
        let Ok(bytes) = file.metadata().map(|m| m.len()) else {
            return Tally::unknown();
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut lines = 0u64;
        let mut offset = 0u64;
        while offset < bytes {
            match file.read_at(&mut buf, offset) {
                Ok(0) => break,
                Ok(n) => {
                    lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
                    offset += n as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    return Tally {
                        files: 1,
                        lines: None,
                        bytes: Some(bytes),
                    };
                }
            }
        }
        // A last line without its newline (a file someone else wrote) is a line too.
        if offset > 0 && last_byte(file, offset).is_some_and(|b| b != b'\n') {
            lines += 1;
        }
        Tally {
            files: 1,
            lines: Some(lines),
            bytes: Some(bytes),
        }
    }

    fn add(&mut self, other: Tally) {
        self.files += other.files;
        self.lines = self.lines.zip(other.lines).map(|(a, b)| a + b);
        self.bytes = self.bytes.zip(other.bytes).map(|(a, b)| a + b);
    }

    /// How to say what was lost; `None` when nothing was.
    fn size(&self) -> Option<GapSize> {
        if self.files == 0 {
            return None;
        }
        Some(match (self.lines, self.bytes) {
            (Some(lines), _) => GapSize::Lines(lines),
            (None, Some(bytes)) => GapSize::Bytes(bytes),
            (None, None) => GapSize::Unknown,
        })
    }
}

fn last_byte(file: &File, len: u64) -> Option<u8> {
    use std::os::unix::fs::FileExt;
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, len - 1).ok()?;
    Some(byte[0])
}

/// Everything one reader lost since it last reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Missed {
    pub rotated: Tally,
    pub deleted: Tally,
}

impl Missed {
    /// A file this reader came to was gone, and nobody knows what it held.
    pub fn deleted_unseen(&mut self) {
        self.deleted.add(Tally::unknown());
    }

    pub fn is_empty(&self) -> bool {
        self.rotated.files == 0 && self.deleted.files == 0
    }

    /// The gaps to tell the client of, for the process `name`.
    pub fn gaps(&self, name: &str) -> Vec<LogGap> {
        [
            (GapCause::Rotated, self.rotated),
            (GapCause::Deleted, self.deleted),
        ]
        .into_iter()
        .filter_map(|(cause, tally)| {
            Some(LogGap {
                name: name.to_string(),
                cause,
                size: tally.size()?,
            })
        })
        .collect()
    }
}

/// The readers of one log.
#[derive(Debug, Default)]
pub struct Readers {
    next_id: u64,
    places: Vec<Place>,
}

#[derive(Debug)]
struct Place {
    id: u64,
    /// The generation whose file the reader holds, or will open once it exists.
    generation: u64,
    /// The file it holds, if any: a reader holding a file that goes has lost nothing.
    holding: Option<FileId>,
    missed: Missed,
}

impl Readers {
    /// A new reader at `generation`, holding `holding`; returns its id.
    pub fn join(&mut self, generation: u64, holding: Option<FileId>) -> u64 {
        self.next_id += 1;
        self.places.push(Place {
            id: self.next_id,
            generation,
            holding,
            missed: Missed::default(),
        });
        self.next_id
    }

    pub fn leave(&mut self, id: u64) {
        self.places.retain(|place| place.id != id);
    }

    /// Records that reader `id` is now at `generation`, holding `holding`.
    pub fn hold(&mut self, id: u64, generation: u64, holding: Option<FileId>) {
        if let Some(place) = self.places.iter_mut().find(|place| place.id == id) {
            place.generation = generation;
            place.holding = holding;
        }
    }

    /// What reader `id` lost since it last asked.
    pub fn take_missed(&mut self, id: u64) -> Missed {
        self.places
            .iter_mut()
            .find(|place| place.id == id)
            .map(|place| std::mem::take(&mut place.missed))
            .unwrap_or_default()
    }

    /// Whether every reader has moved past `generation`: none can lose any file of it.
    pub fn all_past(&self, generation: u64) -> bool {
        self.places
            .iter()
            .all(|place| place.generation > generation)
    }

    /// Whether some reader would lose the file `file` of `generation` if it went now.
    pub fn would_lose(&self, generation: u64, file: Option<FileId>) -> bool {
        self.places
            .iter()
            .any(|place| place.loses(generation, file))
    }

    /// The file `file` of `generation` is going, for `cause`, holding `tally`: every reader that
    /// has not read it and does not hold it has lost it. A file already gone (`None`) is lost to
    /// the readers that have not reached its generation.
    pub fn credit(&mut self, generation: u64, file: Option<FileId>, cause: GapCause, tally: Tally) {
        for place in self
            .places
            .iter_mut()
            .filter(|place| place.loses(generation, file))
        {
            match cause {
                GapCause::Rotated => place.missed.rotated.add(tally),
                GapCause::Deleted => place.missed.deleted.add(tally),
            }
        }
    }
}

impl Place {
    fn loses(&self, generation: u64, file: Option<FileId>) -> bool {
        self.generation < generation
            || (self.generation == generation && file.is_some() && self.holding != file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, text).unwrap();
        let file = File::open(&path).unwrap();
        (dir, file)
    }

    #[test]
    fn counts_the_lines_of_a_file() {
        let (_dir, f) = file("a\nb\nc\n");
        assert_eq!(Tally::count(&f).size(), Some(GapSize::Lines(3)));
        let (_dir, f) = file("a\nb");
        assert_eq!(Tally::count(&f).size(), Some(GapSize::Lines(2)));
        let (_dir, f) = file("");
        assert_eq!(Tally::count(&f).size(), Some(GapSize::Lines(0)));
    }

    #[test]
    fn a_reader_loses_what_goes_before_it_gets_there() {
        let id = |ino| Some(FileId { dev: 1, ino });
        let mut readers = Readers::default();
        let behind = readers.join(3, id(3));
        let holding = readers.join(5, id(5));
        let waiting = readers.join(5, None);
        let ahead = readers.join(6, None);
        let (_dir, f) = file("x\ny\n");
        readers.credit(4, id(4), GapCause::Rotated, Tally::count(&f));
        readers.credit(5, id(5), GapCause::Deleted, Tally::count(&f));
        readers.credit(5, None, GapCause::Deleted, Tally::unknown());

        let gaps = |readers: &mut Readers, id| readers.take_missed(id).gaps("web");
        let behind = gaps(&mut readers, behind);
        assert_eq!(behind.len(), 2);
        assert_eq!(behind[0].cause, GapCause::Rotated);
        assert_eq!(behind[0].size, GapSize::Lines(2));
        assert_eq!(behind[1].size, GapSize::Unknown, "a file gone unseen");
        assert!(gaps(&mut readers, holding).is_empty(), "it holds the file");
        let waiting = gaps(&mut readers, waiting);
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].size, GapSize::Lines(2));
        assert!(gaps(&mut readers, ahead).is_empty());
        readers.leave(ahead);
        assert!(
            !readers.would_lose(3, id(3)),
            "only the reader holding it is at 3"
        );
        assert!(readers.would_lose(6, id(6)));
    }
}
