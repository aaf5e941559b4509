//! Reading a child's stdout or stderr and turning it into log lines.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::ProcessLog;
use super::format::{LineFormatter, MAX_LINE};
use super::writer::LogWriter;

/// A copy of every captured line, for a supervisor that reads the output as well as logging it
/// (the tunnel pipeline reads kubectl's). Lines are dropped rather than waited for when it is full.
pub type Tap = tokio::sync::mpsc::Sender<String>;

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
        fmt.push(batch, &line[..cut]);
        if let Some(tap) = &tap {
            let _ = tap.try_send(String::from_utf8_lossy(&line[..cut]).into_owned());
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
    fn long_lines_are_cut_between_characters() {
        let mut text = vec![b'a'; MAX_LINE - 1];
        text.extend_from_slice("é".as_bytes());
        assert_eq!(utf8_boundary(&text, MAX_LINE), MAX_LINE - 1);
        assert_eq!(utf8_boundary(&[b'a'; MAX_LINE + 5], MAX_LINE), MAX_LINE);
    }
}
