//! `rhizome logs`: print a process's log, and follow it with `-f`; the logs of several processes
//! are interleaved by `merged.rs`.
//!
//! The daemon sends the log as it is stored, `HH:MM:SS <text padded to 30> [name] pid=N` lines.
//! Everything else happens here: dimming the time stamp and the `[name] pid=N` part on a terminal,
//! showing a process's control characters escaped there (so that it cannot retitle, clear or
//! overwrite the terminal), `--raw` (the process's own text, without the daemon's lines), and the
//! `--since` and `--grep` filters. In a pipe with none
//! of those the bytes pass straight through, exactly as the process wrote them.
//!
//! What the output lacks is said on stderr: lines that rotated away (or were deleted) before the
//! daemon could read them, where they are missing, and then exit 1; a daemon that went away
//! before the log ended, as an error.

use std::collections::VecDeque;
use std::io::IsTerminal;

use chrono::Local;

use self::line::Line;
use self::view::View;
use super::exit::Exit;
use super::output::{self, StdoutError, note};
use super::sanitize;
use super::style::Paint;
use super::{Client, Failure, unexpected};
use crate::cli::LogsArgs;
use crate::paths::Paths;
use crate::protocol::{GapCause, GapSize, LogGap, LogsRequest, Request, Response};

mod line;
mod merged;
mod view;

pub async fn run(paths: &Paths, args: &LogsArgs) -> anyhow::Result<Exit> {
    let view = View {
        paint: Paint::stdout(),
        escape: std::io::stdout().is_terminal(),
        raw: args.raw,
        since: args.since,
        grep: args.grep.clone(),
    };
    let mut client = Client::connect_or_start(paths).await?;
    let target = match args.targets.as_slice() {
        [one] if !args.all => one,
        _ => return merged::run(&mut client, args, view).await,
    };
    let mut out = Printer::new(view);
    if !out.view.filters() {
        // The daemon picks the last lines itself.
        stream(&mut client, target, args.lines, args.follow, &mut out).await?;
        return Ok(out.exit());
    }
    // The last LINES lines that match: look through the whole log so far and keep the last
    // matches, then follow (if asked) from where that look ended.
    if let Some(lines) = args.lines {
        out.tail = Some(VecDeque::new());
        out.tail_len = lines as usize;
        stream(&mut client, target, None, false, &mut out).await?;
        if !args.follow {
            return Ok(out.exit());
        }
        out.skip = out.seen;
        out.seen = 0;
    }
    stream(&mut client, target, None, args.follow, &mut out).await?;
    Ok(out.exit())
}

/// Sends one logs request and prints the answer until the log ends. A daemon that goes away
/// first is an error, not an end: the process may still be writing. A stdout that was closed
/// (`rhizome logs x | head`) ends it with an error that `main` takes for the normal end it is.
async fn stream(
    client: &mut Client,
    target: &str,
    lines: Option<u64>,
    follow: bool,
    out: &mut Printer,
) -> anyhow::Result<()> {
    client
        .send(&Request::Logs(LogsRequest {
            target: target.to_string(),
            lines,
            follow,
        }))
        .await?;
    loop {
        let response = match client.next().await {
            Ok(Some(response)) => response,
            // An error the daemon sent (the log could not be read) says what it is.
            Err(err) if err.is::<Failure>() => return Err(err),
            lost => {
                out.finish()?;
                return Err(daemon_lost(&format!("the log of {target}"), lost.err()));
            }
        };
        match response {
            Response::LogChunk(bytes) => out.chunk(&bytes)?,
            Response::LogGap(gap) => out.gap(&gap)?,
            Response::LogEnd => break,
            other => return Err(unexpected(other)),
        }
    }
    out.finish()?;
    Ok(())
}

/// The connection ended before `what` (the log of NAME) did: the daemon was killed, crashed or
/// stopped.
fn daemon_lost(what: &str, cause: Option<anyhow::Error>) -> anyhow::Error {
    let cause = cause.map(|err| format!(" ({err:#})")).unwrap_or_default();
    Failure::new(format!("the daemon went away before {what} ended{cause}"))
        .hint("it was killed, crashed or stopped; run the command again to start one and read on")
        .into()
}

/// What stderr says of a gap.
fn gap_note(gap: &LogGap) -> String {
    let name = &gap.name;
    let (lost, were, they) = match gap.size {
        GapSize::Lines(1) => ("1 line".to_string(), "was", "it"),
        GapSize::Lines(n) => (format!("{n} lines"), "were", "they"),
        GapSize::Bytes(n) => (format!("{n} bytes (lines not countable)"), "were", "they"),
        GapSize::Unknown => ("part".to_string(), "was", "it"),
    };
    let how = match gap.cause {
        GapCause::Rotated => "rotated away",
        GapCause::Deleted => "deleted",
    };
    let fix = match gap.cause {
        GapCause::Rotated => " (keep_files and max_file_bytes in rhizome.toml keep more)",
        GapCause::Deleted => "",
    };
    format!("rhizome: {lost} of {name}'s log {were} {how} before {they} could be read{fix}")
}

/// Turns the daemon's chunks into lines on stdout.
struct Printer {
    view: View,
    /// A line whose end has not arrived yet: chunks need not end at a line's end.
    pending: Vec<u8>,
    /// Bytes of log received so far, and how many to skip before printing anything: the part a
    /// first pass (`-n` with a filter) already looked through.
    seen: usize,
    skip: usize,
    /// With `-n` and a filter: the last `tail_len` matching lines, printed at the end.
    tail: Option<VecDeque<Vec<u8>>>,
    tail_len: usize,
    /// Gaps told so far: parts of the log the daemon could not send.
    gaps: u32,
}

impl Printer {
    fn new(view: View) -> Printer {
        Printer {
            view,
            pending: Vec::new(),
            seen: 0,
            skip: 0,
            tail: None,
            tail_len: 0,
            gaps: 0,
        }
    }

    /// Prints what `bytes` completes.
    fn chunk(&mut self, bytes: &[u8]) -> Result<(), StdoutError> {
        let skipped = self.skip.saturating_sub(self.seen).min(bytes.len());
        self.seen += bytes.len();
        let bytes = &bytes[skipped..];
        if !self.view.per_line() {
            return output::write(bytes);
        }
        self.pending.extend_from_slice(bytes);
        let Some(end) = memchr::memrchr(b'\n', &self.pending) else {
            return Ok(());
        };
        let rest = self.pending.split_off(end + 1);
        let complete = std::mem::replace(&mut self.pending, rest);
        self.lines(&complete)
    }

    /// Says on stderr, after what came before it on stdout, that lines are missing here.
    fn gap(&mut self, gap: &LogGap) -> Result<(), StdoutError> {
        let mut last = std::mem::take(&mut self.pending);
        if !last.is_empty() {
            last.push(b'\n');
            self.lines(&last)?;
        }
        self.gaps += 1;
        note(sanitize::text(&gap_note(gap)));
        Ok(())
    }

    /// How the command ends: every gap was told on stderr as it came; the status says the
    /// copy is not whole.
    fn exit(&self) -> Exit {
        if self.gaps > 0 {
            Exit::Failure
        } else {
            Exit::Success
        }
    }

    /// Prints a last line without its newline, and the kept tail.
    fn finish(&mut self) -> Result<(), StdoutError> {
        let mut last = std::mem::take(&mut self.pending);
        if !last.is_empty() {
            last.push(b'\n');
            self.lines(&last)?;
        }
        match self.tail.take() {
            Some(tail) => output::write(&tail.into_iter().flatten().collect::<Vec<u8>>()),
            None => Ok(()),
        }
    }

    fn lines(&mut self, bytes: &[u8]) -> Result<(), StdoutError> {
        let now = Local::now();
        let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 4);
        for line in bytes.split(|b| *b == b'\n') {
            if line.is_empty() {
                continue;
            }
            let line = String::from_utf8_lossy(line);
            let parts = Line::parse(&line);
            if !self.view.keep(&line, parts.as_ref(), now) {
                continue;
            }
            match &mut self.tail {
                Some(tail) => {
                    let mut one = Vec::new();
                    self.view.render(&line, parts.as_ref(), &mut one);
                    tail.push_back(one);
                    if tail.len() > self.tail_len {
                        tail.pop_front();
                    }
                }
                None => self.view.render(&line, parts.as_ref(), &mut out),
            }
        }
        output::write(&out)
    }
}
