//! Several logs read as one, oldest line first: the order of `rhizome logs NAME NAME...`.
//!
//! Lines carry a time of day to the second and no date, so they are ordered by how long before
//! now their stamp was (read, as `--since` reads it, as the latest such moment at or before now).
//! A merge only interleaves: each process's own lines keep their order whatever their stamps say
//! (a clock set back, a log older than a day), and lines of one second keep together, the
//! process named first going first. The pieces are fed in by the caller, which does the reading:
//! this module does no I/O, so that the order can be tested on its own.

use std::collections::VecDeque;

use chrono::{Local, Timelike};

use crate::protocol::{LogGap, LogPart, MergedPiece};

const DAY: i64 = 24 * 60 * 60;

/// A stamp up to this far ahead of the daemon's clock counts as now, not as yesterday's.
const SLACK: i64 = 60;

/// Now, as the seconds since local midnight, to read stamps against.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    now: i64,
}

impl Clock {
    pub fn now() -> Clock {
        Clock::at(i64::from(Local::now().time().num_seconds_from_midnight()))
    }

    pub fn at(seconds_of_day: i64) -> Clock {
        Clock {
            now: seconds_of_day,
        }
    }

    /// How many seconds before now a line stamped `HH:MM:SS` was written: negative for a stamp
    /// a little ahead, `None` for a line without a stamp.
    fn age(&self, line: &[u8]) -> Option<i64> {
        let stamp = line.get(..8)?;
        let field = |at: usize| -> Option<i64> {
            let pair = &stamp[at..at + 2];
            pair.iter()
                .all(u8::is_ascii_digit)
                .then(|| i64::from((pair[0] - b'0') * 10 + (pair[1] - b'0')))
        };
        if stamp[2] != b':' || stamp[5] != b':' {
            return None;
        }
        let at = field(0)? * 3600 + field(3)? * 60 + field(6)?;
        let ahead = (at - self.now).rem_euclid(DAY);
        Some(if ahead <= SLACK {
            -ahead
        } else {
            (self.now - at).rem_euclid(DAY)
        })
    }
}

/// What the reader found in one log.
#[derive(Debug)]
pub enum Fed {
    Bytes(Vec<u8>),
    Gap(Vec<LogGap>),
    /// The end of what is written now.
    End,
}

/// One process's part of the merge: what was read of its log and not yet sent.
#[derive(Debug)]
struct Lines {
    id: u32,
    buf: Vec<u8>,
    /// Where the first line not yet sent starts in `buf`.
    at: usize,
    /// Gaps found after `buf`: told once what came before them is sent.
    gaps: VecDeque<Vec<LogGap>>,
    ended: bool,
    /// The age of the last line sent: a line without a stamp goes with the one before it.
    age: i64,
}

impl Lines {
    /// The end of the first whole line not yet sent.
    fn line_end(&self) -> Option<usize> {
        memchr::memchr(b'\n', &self.buf[self.at..]).map(|i| self.at + i + 1)
    }

    /// Whether the merge must wait for more of this log before it can choose.
    fn needs(&self) -> bool {
        !self.ended && self.gaps.is_empty() && self.line_end().is_none()
    }

    /// The age of the next line, or `None` with nothing to send.
    fn head(&self, clock: &Clock) -> Option<i64> {
        if self.at == self.buf.len() {
            return None;
        }
        Some(clock.age(&self.buf[self.at..]).unwrap_or(self.age))
    }
}

/// The merge of several logs' backlogs.
#[derive(Debug)]
pub struct Merge {
    sources: Vec<Lines>,
    clock: Clock,
}

impl Merge {
    /// A merge of the logs of `ids`, in this order (which breaks ties).
    pub fn new(ids: impl IntoIterator<Item = u32>, clock: Clock) -> Merge {
        let sources = ids
            .into_iter()
            .map(|id| Lines {
                id,
                buf: Vec::new(),
                at: 0,
                gaps: VecDeque::new(),
                ended: false,
                age: i64::MAX,
            })
            .collect();
        Merge { sources, clock }
    }

    /// The sources (by their index) that must be read before the next `take`.
    pub fn needs(&self) -> Vec<usize> {
        (0..self.sources.len())
            .filter(|&i| self.sources[i].needs())
            .collect()
    }

    /// Adds what was read of source `index`.
    pub fn feed(&mut self, index: usize, fed: Fed) {
        let lines = &mut self.sources[index];
        match fed {
            Fed::Bytes(bytes) => {
                // Read only while no gap waits (see `needs`): bytes are never put before one.
                debug_assert!(lines.gaps.is_empty(), "bytes fed after a gap");
                lines.buf.drain(..lines.at);
                lines.at = 0;
                lines.buf.extend_from_slice(&bytes);
            }
            Fed::Gap(gaps) => lines.gaps.push_back(gaps),
            Fed::End => lines.ended = true,
        }
    }

    /// Moves the next run of lines (or gap) into `out`: `false` once everything fed is out.
    /// Call only when `needs` is empty.
    pub fn take(&mut self, out: &mut Vec<MergedPiece>) -> bool {
        // A gap is told where it is, once the lines before it are out.
        if let Some(lines) = self
            .sources
            .iter_mut()
            .find(|l| l.at == l.buf.len() && !l.gaps.is_empty())
        {
            let id = lines.id;
            for gap in lines.gaps.pop_front().unwrap_or_default() {
                out.push(MergedPiece {
                    id,
                    part: LogPart::Gap(gap),
                });
            }
            return true;
        }
        let clock = self.clock;
        let heads: Vec<Option<i64>> = self.sources.iter().map(|l| l.head(&clock)).collect();
        // The oldest line first; among lines of one age, the source named first.
        let Some((chosen, _)) = heads
            .iter()
            .enumerate()
            .filter_map(|(i, age)| Some((i, (*age)?)))
            .max_by_key(|&(i, age)| (age, std::cmp::Reverse(i)))
        else {
            return false;
        };
        let next_oldest = heads
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != chosen)
            .filter_map(|(_, age)| *age)
            .max();
        let lines = &mut self.sources[chosen];
        let start = lines.at;
        // Its lines until another source's is older, or until it must be read again.
        while let Some(end) = lines.line_end() {
            let age = clock.age(&lines.buf[lines.at..]).unwrap_or(lines.age);
            if lines.at > start && next_oldest.is_some_and(|other| other > age) {
                break;
            }
            lines.age = age;
            lines.at = end;
        }
        if lines.at == start
            || (lines.line_end().is_none() && (lines.ended || !lines.gaps.is_empty()))
        {
            // The rest of a line whose end is not written yet (or will never come): it goes as
            // it is, and the client keeps it until its end arrives.
            lines.at = lines.buf.len();
        }
        let bytes = lines.buf[start..lines.at].to_vec();
        push_bytes(out, lines.id, bytes);
        true
    }
}

/// Appends bytes of process `id` to `out`, joining them to its last piece when that is its.
pub fn push_bytes(out: &mut Vec<MergedPiece>, id: u32, bytes: Vec<u8>) {
    if let Some(MergedPiece {
        id: last,
        part: LogPart::Bytes(previous),
    }) = out.last_mut()
        && *last == id
    {
        previous.extend_from_slice(&bytes);
        return;
    }
    out.push(MergedPiece {
        id,
        part: LogPart::Bytes(bytes),
    });
}

/// How many bytes of log `pieces` carry.
pub fn size(pieces: &[MergedPiece]) -> usize {
    pieces
        .iter()
        .map(|piece| match &piece.part {
            LogPart::Bytes(bytes) => bytes.len(),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{GapCause, GapSize};

    /// Runs a merge of whole logs, as (id, text) runs.
    fn merge(clock: Clock, logs: &[(u32, &str)]) -> Vec<(u32, String)> {
        let mut merge = Merge::new(logs.iter().map(|(id, _)| *id), clock);
        // Fed a line at a time, as short reads would.
        let mut left: Vec<VecDeque<Vec<u8>>> = logs
            .iter()
            .map(|(_, text)| text.split_inclusive('\n').map(|l| l.into()).collect())
            .collect();
        let mut out = Vec::new();
        loop {
            let needs = merge.needs();
            if !needs.is_empty() {
                for i in needs {
                    match left[i].pop_front() {
                        Some(line) => merge.feed(i, Fed::Bytes(line)),
                        None => merge.feed(i, Fed::End),
                    }
                }
                continue;
            }
            if !merge.take(&mut out) {
                break;
            }
        }
        out.into_iter()
            .map(|piece| match piece.part {
                LogPart::Bytes(bytes) => (piece.id, String::from_utf8(bytes).unwrap()),
                other => (piece.id, format!("{other:?}")),
            })
            .collect()
    }

    #[test]
    fn lines_interleave_oldest_first_and_a_second_keeps_together() {
        let clock = Clock::at(10 * 3600 + 5);
        let web = "10:00:01 a\n10:00:03 c\n10:00:03 d\n";
        let db = "10:00:02 b\n10:00:03 x\n10:00:04 e\n";
        assert_eq!(
            merge(clock, &[(1, web), (2, db)]),
            vec![
                (1, "10:00:01 a\n".into()),
                (2, "10:00:02 b\n".into()),
                (1, "10:00:03 c\n10:00:03 d\n".into()),
                (2, "10:00:03 x\n10:00:04 e\n".into()),
            ]
        );
    }

    #[test]
    fn yesterday_evening_comes_before_this_morning() {
        let clock = Clock::at(60);
        let late = "23:59:58 late\n";
        let early = "00:00:30 early\n00:01:30 ahead of the clock\n";
        assert_eq!(
            merge(clock, &[(1, early), (2, late)]),
            vec![
                (2, "23:59:58 late\n".into()),
                (1, "00:00:30 early\n00:01:30 ahead of the clock\n".into()),
            ]
        );
    }

    #[test]
    fn a_log_keeps_its_own_order_and_odd_lines_go_with_the_one_before() {
        let clock = Clock::at(10 * 3600);
        // A clock set back: the second line is "older", yet stays second.
        let back = "09:00:05 first\n09:00:01 second\nno stamp\n";
        let other = "09:00:03 other\n";
        assert_eq!(
            merge(clock, &[(1, back), (2, other)]),
            vec![
                (2, "09:00:03 other\n".into()),
                (1, "09:00:05 first\n09:00:01 second\nno stamp\n".into()),
            ]
        );
    }

    #[test]
    fn a_line_without_its_end_and_a_gap_go_where_they_are() {
        let clock = Clock::at(10 * 3600);
        let mut merge = Merge::new([1, 2], clock);
        merge.feed(0, Fed::Bytes(b"09:00:01 a\n09:00:02 half".to_vec()));
        let gap = LogGap {
            name: "web".into(),
            cause: GapCause::Rotated,
            size: GapSize::Lines(3),
        };
        merge.feed(0, Fed::Gap(vec![gap.clone()]));
        merge.feed(1, Fed::Bytes(b"09:00:03 b\n".to_vec()));
        merge.feed(1, Fed::End);
        assert_eq!(merge.needs(), Vec::<usize>::new());
        let mut out = Vec::new();
        while merge.take(&mut out) {
            if merge.needs() == [0] {
                merge.feed(0, Fed::End);
            }
        }
        assert_eq!(
            out,
            vec![
                MergedPiece {
                    id: 1,
                    part: LogPart::Bytes(b"09:00:01 a\n09:00:02 half".to_vec())
                },
                MergedPiece {
                    id: 1,
                    part: LogPart::Gap(gap)
                },
                MergedPiece {
                    id: 2,
                    part: LogPart::Bytes(b"09:00:03 b\n".to_vec())
                },
            ]
        );
    }
}
