//! One stored log line in its parts, and the times `--since` compares.

use chrono::{DateTime, Duration as ChronoDuration, Local, NaiveTime};

use crate::cli::Since;

/// Width the daemon pads a line's text to (see `daemon::logs::format`).
const TEXT_COLUMNS: usize = 30;

/// One stored log line, `HH:MM:SS <text padded to 30> [name] pid=N`, in its parts.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Line<'a> {
    pub(super) stamp: &'a str,
    /// The text with the padding the daemon added.
    pub(super) padded: &'a str,
    /// ` [name] pid=N` (or ` [name]` for a process that never started), leading space included.
    pub(super) suffix: &'a str,
}

impl<'a> Line<'a> {
    pub(super) fn parse(line: &'a str) -> Option<Line<'a>> {
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
    pub(super) fn text(&self) -> &'a str {
        if self.padded.len() == TEXT_COLUMNS || self.padded.chars().count() == TEXT_COLUMNS {
            self.padded.trim_end_matches(' ')
        } else {
            self.padded
        }
    }

    /// Whether the daemon wrote this line rather than the process: `subprocess started`,
    /// `subprocess finished (...)`, or a line without a pid (`failed to start: ...`, a tunnel's
    /// steps). The stored format does not mark them otherwise, so a process that prints exactly
    /// such a line itself has it left out of `--raw` too.
    pub(super) fn is_daemons(&self) -> bool {
        if !self.suffix.contains("] pid=") {
            return true;
        }
        let text = self.text();
        text == "subprocess started"
            || text
                .strip_prefix("subprocess finished (")
                .and_then(|rest| rest.strip_suffix(')'))
                .is_some_and(|how| {
                    how.strip_prefix("exit ")
                        .is_some_and(|code| code.parse::<i64>().is_ok())
                        || how.strip_prefix("signal ").is_some_and(|name| {
                            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric())
                        })
                })
    }

    /// ` pid=N`, the end of the suffix without the name; empty for a line without a pid.
    pub(super) fn pid(&self) -> &'a str {
        match self.suffix.rfind("] pid=") {
            Some(at) => &self.suffix[at + 1..],
            None => "",
        }
    }

    pub(super) fn time(&self) -> Option<NaiveTime> {
        NaiveTime::parse_from_str(self.stamp, "%H:%M:%S").ok()
    }
}

/// When a line stamped `time` was written: the latest moment at or before `now` with that time
/// of day (lines carry no date). A minute of slack lets a clock a little ahead count as now.
pub(super) fn moment(time: NaiveTime, now: DateTime<Local>) -> Option<DateTime<Local>> {
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
pub(super) fn cutoff(since: Since, now: DateTime<Local>) -> Option<DateTime<Local>> {
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
        assert_eq!(Line::parse(tricky).unwrap().pid(), " pid=2");
        assert_eq!(Line::parse(never_started).unwrap().pid(), "");
        assert_eq!(Line::parse("not a log line"), None);
    }

    #[test]
    fn the_daemons_lines_are_told_from_the_process_s() {
        let daemons = |line: &str| Line::parse(line).unwrap().is_daemons();
        assert!(daemons(
            "08:46:06 subprocess started             [web] pid=7"
        ));
        assert!(daemons(
            "08:46:06 subprocess finished (exit 0)   [web] pid=7"
        ));
        assert!(daemons(
            "08:46:06 subprocess finished (signal SIGTERM) [web] pid=7"
        ));
        assert!(daemons("08:46:06 failed to start: no such file  [web]"));
        assert!(!daemons(
            "08:46:06 {\"level\":\"info\"}               [web] pid=7"
        ));
        assert!(!daemons(
            "08:46:06 subprocess started, said the app [web] pid=7"
        ));
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
