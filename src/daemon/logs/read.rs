//! Reading a process log back: the last N lines across rotated files, then whatever is appended.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use super::ProcessLog;

/// Bytes sent to the client per message.
const CHUNK: usize = 64 * 1024;

/// A reading position in a log that survives rotation: it holds the open file of one generation and
/// moves on to the next generation once that file is complete.
pub struct LogCursor {
    log: Arc<ProcessLog>,
    file: Option<File>,
    generation: u64,
}

impl LogCursor {
    /// A cursor at the start of the last `lines` lines, or of everything kept when `None`.
    pub async fn open(log: Arc<ProcessLog>, lines: Option<u64>) -> io::Result<LogCursor> {
        tokio::task::spawn_blocking(move || LogCursor::open_blocking(log, lines))
            .await
            .map_err(io::Error::other)?
    }

    fn open_blocking(log: Arc<ProcessLog>, lines: Option<u64>) -> io::Result<LogCursor> {
        let progress = *log.progress.borrow();
        // Real ages, newest first: a file missing in between must not shift the older ones.
        let ages = log.kept_ages();
        let oldest = ages.last().copied().unwrap_or(0);
        let (age, offset) = match lines {
            None => (oldest, 0),
            Some(wanted) => {
                let mut found = (oldest, 0);
                let mut remaining = wanted;
                for &age in &ages {
                    match start_of_last_lines(&log.path_at(age), remaining)? {
                        Tail::StartsAt(offset) => {
                            found = (age, offset);
                            break;
                        }
                        Tail::Short(counted) => remaining -= counted,
                    }
                }
                found
            }
        };
        let mut file = match File::open(log.path_at(age)) {
            Ok(file) => Some(file),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(err),
        };
        if let Some(file) = &mut file {
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(LogCursor {
            generation: progress.generation - age,
            log,
            file,
        })
    }

    /// The next bytes written, or `None` when the cursor has reached the end of what is written now.
    pub async fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let file = self.file.take();
        let log = self.log.clone();
        let generation = self.generation;
        let (file, generation, chunk) =
            tokio::task::spawn_blocking(move || next_chunk_blocking(&log, file, generation))
                .await
                .map_err(io::Error::other)??;
        self.file = file;
        self.generation = generation;
        Ok(chunk)
    }
}

type Step = (Option<File>, u64, Option<Vec<u8>>);

fn next_chunk_blocking(
    log: &ProcessLog,
    mut file: Option<File>,
    mut generation: u64,
) -> io::Result<Step> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        if let Some(f) = &mut file {
            let n = f.read(&mut buf)?;
            if n > 0 {
                buf.truncate(n);
                return Ok((file, generation, Some(buf)));
            }
        }
        let latest = log.progress.borrow().generation;
        if generation >= latest {
            if file.is_none() {
                // The log did not exist yet when the cursor opened; it may now.
                file = open_if_exists(&log.path_at(0))?;
                if file.is_some() {
                    continue;
                }
            }
            return Ok((file, generation, None));
        }
        // The file rotated away. Anything written to it before the rotation is there now: read it
        // once more before moving on.
        if let Some(f) = &mut file {
            let n = f.read(&mut buf)?;
            if n > 0 {
                buf.truncate(n);
                return Ok((file, generation, Some(buf)));
            }
        }
        let keep = log.keep();
        generation = (generation + 1).max(latest.saturating_sub(keep - 1));
        file = open_if_exists(&log.path_at(latest - generation))?;
    }
}

fn open_if_exists(path: &std::path::Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
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
