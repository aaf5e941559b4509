//! `rhizome logs`: print a process's log, and follow it with `-f`.
//!
//! The daemon sends the log as it is stored, `HH:MM:SS <text padded to 30> [name] pid=N` lines.
//! Everything else happens here: dimming the time stamp and the `[name] pid=N` part on a terminal,
//! showing a process's control characters escaped there (so that it cannot retitle, clear or
//! overwrite the terminal), `--raw`, and the `--since` and `--grep` filters. In a pipe with none
//! of those the bytes pass straight through, exactly as the process wrote them.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{IsTerminal, Write};

use chrono::{DateTime, Duration as ChronoDuration, Local, NaiveTime};

use super::exit::Exit;
use super::output::{self, StdoutError, note};
use super::sanitize;
use super::style::{DIM, Paint};
use super::{Client, unexpected};
use crate::cli::{LogsArgs, Since};
use crate::paths::Paths;
use crate::protocol::{LogsRequest, Request, Response};

/// Width the daemon pads a line's text to (see `daemon::logs::format`).
const TEXT_COLUMNS: usize = 30;

pub async fn run(paths: &Paths, args: &LogsArgs) -> anyhow::Result<Exit> {
    let view = View {
        paint: Paint::stdout(),
        escape: std::io::stdout().is_terminal(),
        raw: args.raw,
        since: args.since,
        grep: args.grep.clone(),
    };
    let mut client = Client::connect_or_start(paths).await?;
    let mut out = Printer::new(view);
    let target = &args.target;
    if !out.view.filters() {
        // The daemon picks the last lines itself.
        stream(&mut client, target, args.lines, args.follow, &mut out).await?;
        return Ok(Exit::Success);
    }
    // The last LINES lines that match: look through the whole log so far and keep the last
    // matches, then follow (if asked) from where that look ended.
    if let Some(lines) = args.lines {
        out.tail = Some(VecDeque::new());
        out.tail_len = lines as usize;
        if !stream(&mut client, target, None, false, &mut out).await? || !args.follow {
            return Ok(Exit::Success);
        }
        out.skip = out.seen;
        out.seen = 0;
    }
    stream(&mut client, target, None, args.follow, &mut out).await?;
    Ok(Exit::Success)
}

/// Sends one logs request and prints the answer until the log ends (true) or the daemon goes
/// away (false). A stdout that was closed (`rhizome logs x | head`) ends it with an error that
/// `main` takes for the normal end it is.
async fn stream(
    client: &mut Client,
    target: &str,
    lines: Option<u64>,
    follow: bool,
    out: &mut Printer,
) -> anyhow::Result<bool> {
    client
        .send(&Request::Logs(LogsRequest {
            target: target.to_string(),
            lines,
            follow,
        }))
        .await?;
    let ended = loop {
        match client.next().await? {
            Some(Response::LogChunk(bytes)) => out.chunk(&bytes)?,
            Some(Response::LogEnd) => break true,
            Some(other) => return Err(unexpected(other)),
            None => break false,
        }
    };
    out.finish()?;
    if !ended {
        note("rhizome: the daemon stopped; no more lines will come");
    }
    Ok(ended)
}

/// How lines are shown and which are.
struct View {
    paint: Paint,
    /// Whether control characters are shown escaped: on a terminal, whatever the colors.
    escape: bool,
    raw: bool,
    since: Option<Since>,
    grep: Option<regex::Regex>,
}

impl View {
    fn filters(&self) -> bool {
        self.since.is_some() || self.grep.is_some()
    }

    /// Whether lines must be read one by one rather than passed through.
    fn per_line(&self) -> bool {
        self.filters() || self.raw || self.paint.is_on() || self.escape
    }

    /// `text` as this view shows it: escaped on a terminal, as it is elsewhere.
    fn shown<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.escape {
            sanitize::text(text)
        } else {
            Cow::Borrowed(text)
        }
    }

    /// Whether a line passes `--since` and `--grep`; `now` is the client's clock.
    fn keep(&self, line: &str, parts: Option<&Line<'_>>, now: DateTime<Local>) -> bool {
        if let Some(pattern) = &self.grep {
            let text = parts.map(Line::text).unwrap_or(line);
            if !pattern.is_match(text) {
                return false;
            }
        }
        match (self.since, parts.and_then(|p| p.time())) {
            (Some(since), Some(time)) => match (moment(time, now), cutoff(since, now)) {
                (Some(at), Some(from)) => at >= from,
                _ => true,
            },
            _ => true,
        }
    }

    fn render(&self, line: &str, parts: Option<&Line<'_>>, out: &mut Vec<u8>) {
        match parts {
            Some(parts) if self.raw => out.extend_from_slice(self.shown(parts.text()).as_bytes()),
            Some(parts) if self.paint.is_on() => {
                let stamp = self.paint.paint(DIM, parts.stamp);
                let suffix = self.paint.paint(DIM, self.shown(parts.suffix.trim_start()));
                // The padding stays outside the colors so the columns line up as before.
                let _ = write!(out, "{stamp} {} {suffix}", self.shown(parts.padded));
            }
            _ => out.extend_from_slice(self.shown(line).as_bytes()),
        }
        out.push(b'\n');
    }
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

/// One stored log line, `HH:MM:SS <text padded to 30> [name] pid=N`, in its parts.
#[derive(Debug, PartialEq, Eq)]
struct Line<'a> {
    stamp: &'a str,
    /// The text with the padding the daemon added.
    padded: &'a str,
    /// ` [name] pid=N` (or ` [name]` for a process that never started), leading space included.
    suffix: &'a str,
}

impl<'a> Line<'a> {
    fn parse(line: &'a str) -> Option<Line<'a>> {
        let stamp = line.get(..8)?;
        let digits =
            |range: std::ops::Range<usize>| stamp.as_bytes()[range].iter().all(u8::is_ascii_digit);
        if !(digits(0..2) && digits(3..5) && digits(6..8)) || line.as_bytes().get(8) != Some(&b' ')
        {
            return None;
        }
        let rest = &line[9..];
        let body = match rest.rfind(" pid=") {
            Some(at)
                if rest[at + 5..].bytes().all(|b| b.is_ascii_digit()) && at + 5 < rest.len() =>
            {
                &rest[..at]
            }
            _ => rest,
        };
        if !body.ends_with(']') {
            return None;
        }
        let open = body.rfind(" [")?;
        Some(Line {
            stamp,
            padded: &rest[..open],
            suffix: &rest[open..],
        })
    }

    /// What the process wrote. Padding is removed only where the daemon added some: a text
    /// shorter than the column width, filled up to it.
    fn text(&self) -> &'a str {
        if self.padded.len() == TEXT_COLUMNS || self.padded.chars().count() == TEXT_COLUMNS {
            self.padded.trim_end_matches(' ')
        } else {
            self.padded
        }
    }

    fn time(&self) -> Option<NaiveTime> {
        NaiveTime::parse_from_str(self.stamp, "%H:%M:%S").ok()
    }
}

/// When a line stamped `time` was written: the latest moment at or before `now` with that time
/// of day (lines carry no date). A minute of slack lets a clock a little ahead count as now.
fn moment(time: NaiveTime, now: DateTime<Local>) -> Option<DateTime<Local>> {
    let today = now
        .date_naive()
        .and_time(time)
        .and_local_timezone(Local)
        .earliest()?;
    if today > now + ChronoDuration::minutes(1) {
        return Some(today - ChronoDuration::days(1));
    }
    Some(today)
}

/// The first moment `--since` lets through.
fn cutoff(since: Since, now: DateTime<Local>) -> Option<DateTime<Local>> {
    match since {
        Since::Ago(ago) => Some(now - ChronoDuration::from_std(ago).ok()?),
        Since::At(time) => {
            let at = moment(time, now)?;
            Some(if at > now {
                at - ChronoDuration::days(1)
            } else {
                at
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn lines_split_into_stamp_text_and_suffix() {
        let line = "08:46:06 0                              [sleeper] pid=48211";
        let parts = Line::parse(line).unwrap();
        assert_eq!(parts.stamp, "08:46:06");
        assert_eq!(parts.text(), "0");
        assert_eq!(parts.suffix, " [sleeper] pid=48211");

        let long = "08:46:06 a line longer than thirty columns, kept whole  [web] pid=7";
        assert_eq!(
            Line::parse(long).unwrap().text(),
            "a line longer than thirty columns, kept whole "
        );

        let never_started = "08:46:06 failed to start: no such file  [x y]";
        let parts = Line::parse(never_started).unwrap();
        assert_eq!(parts.suffix, " [x y]");
        assert_eq!(
            parts.text(),
            "failed to start: no such file",
            "padded to 30"
        );

        let tricky = "08:46:06 says [a] pid=1 itself           [web] pid=2";
        assert_eq!(Line::parse(tricky).unwrap().suffix, " [web] pid=2");
        assert_eq!(Line::parse("not a log line"), None);
    }

    #[test]
    fn since_reads_times_against_todays_clock() {
        let now = Local.with_ymd_and_hms(2030, 5, 6, 0, 5, 0).unwrap();
        let time = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        // Just after midnight, 23:58 was yesterday.
        assert_eq!(
            moment(time(23, 58), now),
            Local.with_ymd_and_hms(2030, 5, 5, 23, 58, 0).single()
        );
        assert_eq!(
            moment(time(0, 1), now),
            Local.with_ymd_and_hms(2030, 5, 6, 0, 1, 0).single()
        );
        let ten_minutes = cutoff(Since::Ago(std::time::Duration::from_secs(600)), now).unwrap();
        assert!(moment(time(23, 58), now).unwrap() >= ten_minutes);
        assert!(moment(time(23, 50), now).unwrap() < ten_minutes);
        assert_eq!(
            cutoff(Since::At(time(0, 0)), now),
            Local.with_ymd_and_hms(2030, 5, 6, 0, 0, 0).single()
        );
        assert_eq!(
            cutoff(Since::At(time(0, 6)), now),
            Local.with_ymd_and_hms(2030, 5, 5, 0, 6, 0).single()
        );
    }
}
