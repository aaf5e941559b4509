//! The log line format inherited from the original design:
//! `HH:MM:SS <line padded to 30 columns> [name] pid=PID`, in local time.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Local};

/// Lines longer than this are split into several log lines, so no line is buffered whole.
pub const MAX_LINE: usize = 64 * 1024;

/// Width the message is padded to, in characters.
const MESSAGE_COLUMNS: usize = 30;

/// Formats lines for one run of one process (its name and pid are fixed for the run).
/// Formatting local time is comparatively slow, so the stamp is computed once per second.
#[derive(Debug, Clone)]
pub struct LineFormatter {
    suffix: String,
    stamp_second: u64,
    stamp: String,
}

impl LineFormatter {
    pub fn new(name: &str, pid: Option<u32>) -> Self {
        let suffix = match pid {
            Some(pid) => format!(" [{name}] pid={pid}\n"),
            None => format!(" [{name}]\n"),
        };
        LineFormatter {
            suffix,
            stamp_second: u64::MAX,
            stamp: String::new(),
        }
    }

    /// Refreshes the time stamp; call once per batch of lines rather than per line.
    pub fn tick(&mut self) {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if second != self.stamp_second {
            self.stamp_second = second;
            self.stamp = DateTime::<Local>::from(now).format("%H:%M:%S").to_string();
        }
    }

    /// Appends one formatted line to `out`. `line` is the child's bytes without the newline;
    /// invalid UTF-8 is replaced, a trailing carriage return dropped.
    pub fn push(&self, out: &mut Vec<u8>, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let lossy = String::from_utf8_lossy(line);
        let text = super::redact::redact(&lossy);
        out.extend_from_slice(self.stamp.as_bytes());
        out.push(b' ');
        out.extend_from_slice(text.as_bytes());
        let columns = if text.is_ascii() {
            text.len()
        } else {
            text.chars().count()
        };
        out.resize(out.len() + MESSAGE_COLUMNS.saturating_sub(columns), b' ');
        out.extend_from_slice(self.suffix.as_bytes());
    }

    /// Formats a line of the daemon's own (`subprocess started`, ...) as a fresh batch.
    pub fn lifecycle(&mut self, message: &str) -> Vec<u8> {
        self.tick();
        let mut out = Vec::with_capacity(64 + message.len());
        self.push(&mut out, message.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_the_message_and_names_the_process() {
        let mut f = LineFormatter::new("sleeper", Some(42));
        let line = String::from_utf8(f.lifecycle("subprocess started")).unwrap();
        let (stamp, rest) = line.split_at(8);
        assert!(
            stamp.chars().all(|c| c.is_ascii_digit() || c == ':'),
            "{line}"
        );
        assert_eq!(rest, " subprocess started             [sleeper] pid=42\n");
    }

    #[test]
    fn keeps_invalid_utf8_and_long_lines() {
        let mut f = LineFormatter::new("x", Some(1));
        f.tick();
        let mut out = Vec::new();
        f.push(
            &mut out,
            b"caf\xe9 latte that is longer than thirty columns\r",
        );
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.contains(" caf\u{fffd} latte that is longer than thirty columns [x] pid=1\n"),
            "{line}"
        );
    }
}
