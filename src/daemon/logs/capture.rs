//! Reading a child's stdout or stderr and turning it into log lines.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt};

use super::ProcessLog;
use super::format::{LineFormatter, MAX_LINE};
use super::writer::LogWriter;

/// What a supervisor that reads a child's output as well as logging it (the tunnel pipeline reads
/// kubectl's) gets: a copy of every line, dropped rather than waited for when it is full; and
/// the lines it caused itself marked as its own in the log.
#[derive(Clone)]
pub struct Tap {
    pub lines: tokio::sync::mpsc::Sender<String>,
    pub own: Option<Arc<OwnLines>>,
}

/// Lines a child prints because of something the daemon did, marked in the log so that they do
/// not read as someone else's doing: the next `expect`ed line that starts with `prefix` gets
/// `mark` appended. kubectl prints `Handling connection for N` for a tunnel's probe exactly as
/// for a client's connection. Lines carry no connection id, so a client connecting in the same
/// instant as a probe can take the mark instead: the count of marked lines is right, not always
/// which one.
pub struct OwnLines {
    prefix: &'static str,
    mark: &'static str,
    pending: AtomicU32,
}

impl OwnLines {
    pub fn new(prefix: &'static str, mark: &'static str) -> OwnLines {
        OwnLines {
            prefix,
            mark,
            pending: AtomicU32::new(0),
        }
    }

    /// One more such line is coming because of the daemon.
    pub fn expect(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// An expected line is not coming after all (the connection that would cause it failed).
    pub fn unexpect(&self) {
        let _ = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// A new child: nothing is expected of it yet.
    pub fn reset(&self) {
        self.pending.store(0, Ordering::Relaxed);
    }

    /// The mark for `line` if it is one the daemon caused: each expected line is marked once.
    fn mark_for(&self, line: &[u8]) -> Option<&'static str> {
        if !line.starts_with(self.prefix.as_bytes()) {
            return None;
        }
        self.pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .ok()
            .map(|_| self.mark)
    }
}

/// A batch is handed to the writer once it grows past this many bytes.
pub const BATCH: usize = 256 * 1024;

/// Reads `pipe` to its end, sending every line, formatted, to the writer. A last line without a
/// newline is kept; a line longer than `MAX_LINE` is split rather than buffered whole.
pub async fn capture<R: AsyncRead + Unpin>(
    mut pipe: R,
    mut fmt: LineFormatter,
    log: Arc<ProcessLog>,
    writer: LogWriter,
    tap: Option<Tap>,
) {
    // One line of output, as one log line or, past `MAX_LINE`, several.
    let line_out = |fmt: &LineFormatter, batch: &mut Vec<u8>, mut line: &[u8]| loop {
        let cut = if line.len() > MAX_LINE {
            utf8_boundary(line, MAX_LINE)
        } else {
            line.len()
        };
        let mark = tap
            .as_ref()
            .and_then(|t| t.own.as_ref())
            .and_then(|own| own.mark_for(&line[..cut]));
        match mark {
            Some(mark) => {
                let text = line[..cut].strip_suffix(b"\r").unwrap_or(&line[..cut]);
                fmt.push(batch, &[text, mark.as_bytes()].concat())
            }
            None => fmt.push(batch, &line[..cut]),
        }
        if let Some(tap) = &tap {
            let _ = tap
                .lines
                .try_send(String::from_utf8_lossy(&line[..cut]).into_owned());
        }
        line = &line[cut..];
        if line.is_empty() {
            break;
        }
    };
    // Capacity, not zeroed memory: a quiet child costs a page, not 64 KiB.
    let mut chunk: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut partial: Vec<u8> = Vec::new();
    let mut batch: Vec<u8> = Vec::new();
    loop {
        chunk.clear();
        let n = match pipe.read_buf(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        fmt.tick();
        batch.reserve(n * 2);
        let mut rest = &chunk[..n];
        while let Some(pos) = memchr::memchr(b'\n', rest) {
            if partial.is_empty() {
                line_out(&fmt, &mut batch, &rest[..pos]);
            } else {
                partial.extend_from_slice(&rest[..pos]);
                line_out(&fmt, &mut batch, &partial);
                partial.clear();
            }
            rest = &rest[pos + 1..];
            if batch.len() >= BATCH {
                writer.append(&log, std::mem::take(&mut batch)).await;
            }
        }
        partial.extend_from_slice(rest);
        // A line without its end yet is not buffered past `MAX_LINE`. Cut only with a byte beyond
        // the cut in hand, so the cut never splits a character.
        while partial.len() > MAX_LINE {
            let cut = utf8_boundary(&partial, MAX_LINE);
            line_out(&fmt, &mut batch, &partial[..cut]);
            partial.drain(..cut);
        }
        writer.append(&log, std::mem::take(&mut batch)).await;
    }
    if !partial.is_empty() {
        fmt.tick();
        line_out(&fmt, &mut batch, &partial);
    }
    writer.append(&log, batch).await;
}

/// The largest index at most `max` (with `bytes` longer than `max`) where a character starts, so
/// the cut does not split one; `max` itself when the bytes there are not UTF-8 anyway.
fn utf8_boundary(bytes: &[u8], max: usize) -> usize {
    let starts_char = |b: u8| (b as i8) >= -0x40;
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&i| i > 0 && starts_char(bytes[i]))
        .unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_expected_line_is_marked_once() {
        let own = OwnLines::new("Handling connection for ", " (probe)");
        assert_eq!(own.mark_for(b"Handling connection for 5432"), None);
        own.expect();
        assert_eq!(own.mark_for(b"Forwarding from 127.0.0.1:1"), None);
        assert_eq!(
            own.mark_for(b"Handling connection for 5432"),
            Some(" (probe)")
        );
        assert_eq!(own.mark_for(b"Handling connection for 5432"), None);
    }

    #[test]
    fn long_lines_are_cut_between_characters() {
        let mut text = vec![b'a'; MAX_LINE - 1];
        text.extend_from_slice("é".as_bytes());
        assert_eq!(utf8_boundary(&text, MAX_LINE), MAX_LINE - 1);
        assert_eq!(utf8_boundary(&[b'a'; MAX_LINE + 5], MAX_LINE), MAX_LINE);
    }
}
