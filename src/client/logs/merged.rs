//! `rhizome logs NAME NAME...` and `logs --all`: the logs of several processes as one stream.
//!
//! The daemon merges what the logs hold, oldest line first, then sends new lines as they are
//! written, every piece tagged with its process. Here each line is put behind its `[name]`,
//! padded to the widest name and, where colors are on, in a color of the process's own; `--raw`
//! prints the processes' own lines with no prefix, fit for `jq`. `-n` counts per process: the
//! daemon takes the last N lines of each, or, with a filter, every line is looked at here and the
//! last N that match kept for each, until the daemon says the logs so far are through.

use std::collections::{BTreeMap, VecDeque};

use anstyle::Style;
use chrono::{DateTime, Local};

use super::line::Line;
use super::view::View;
use super::{daemon_lost, gap_note};
use crate::cli::LogsArgs;
use crate::client::exit::Exit;
use crate::client::output::{self, StdoutError, note};
use crate::client::style;
use crate::client::{Client, Failure, sanitize, unexpected};
use crate::protocol::{LogGap, LogPart, MergedLogsRequest, MergedPiece, Request, Response};

pub(super) async fn run(client: &mut Client, args: &LogsArgs, view: View) -> anyhow::Result<Exit> {
    let filters = view.filters();
    // With a filter the last N shown are not the last N written: every line comes, and the
    // last N matches of each process are kept here.
    let (asked, kept) = match args.lines {
        Some(lines) if filters => (None, Some(lines as usize)),
        lines => (lines, None),
    };
    client
        .send(&Request::MergedLogs(MergedLogsRequest {
            targets: args.targets.clone(),
            all: args.all,
            lines: asked,
            follow: args.follow,
        }))
        .await?;
    let mut out = Merged {
        view,
        sources: BTreeMap::new(),
        width: 0,
        kept,
        seq: 0,
        gaps: 0,
    };
    loop {
        let response = match client.next().await {
            Ok(Some(response)) => response,
            // An error the daemon sent (a name not found, a log that could not be read).
            Err(err) if err.is::<Failure>() => return Err(err),
            lost => {
                out.finish()?;
                return Err(daemon_lost("the logs", lost.err()));
            }
        };
        match response {
            Response::MergedLog(pieces) => out.pieces(pieces)?,
            Response::LogCaughtUp => out.caught_up(args)?,
            Response::LogEnd => break,
            other => return Err(unexpected(other)),
        }
    }
    out.finish()?;
    Ok(out.exit())
}

/// Turns the daemon's tagged pieces into lines on stdout.
struct Merged {
    view: View,
    /// Every process in the stream so far, by id.
    sources: BTreeMap<u32, Source>,
    /// The widest name so far, in characters: prefixes are padded to it.
    width: usize,
    /// With `-n` and a filter, until the logs so far are through: how many matching lines of
    /// each process to keep.
    kept: Option<usize>,
    /// Counts the lines kept, so that the kept lines of all are printed in the order they came.
    seq: u64,
    /// Gaps told so far: parts of the logs the daemon could not send.
    gaps: u32,
}

/// One process in the stream.
struct Source {
    name: String,
    style: Style,
    /// A line whose end has not arrived yet.
    pending: Vec<u8>,
    /// With `-n` and a filter: its last matching lines, rendered, each with its place in the
    /// stream.
    kept: VecDeque<(u64, Vec<u8>)>,
}

impl Merged {
    fn pieces(&mut self, pieces: Vec<MergedPiece>) -> Result<(), StdoutError> {
        let now = Local::now();
        let mut out = Vec::new();
        for MergedPiece { id, part } in pieces {
            match part {
                LogPart::Source(name) => self.join(id, name),
                LogPart::Bytes(bytes) => {
                    let source = self.source(id);
                    source.pending.extend_from_slice(&bytes);
                    let Some(end) = memchr::memrchr(b'\n', &source.pending) else {
                        continue;
                    };
                    let rest = source.pending.split_off(end + 1);
                    let complete = std::mem::replace(&mut source.pending, rest);
                    self.lines(id, &complete, now, &mut out);
                }
                LogPart::Gap(gap) => {
                    self.unfinished(id, now, &mut out);
                    output::write(&std::mem::take(&mut out))?;
                    self.gap(&gap);
                }
            }
        }
        output::write(&out)
    }

    /// A process joins the stream.
    fn join(&mut self, id: u32, name: String) {
        self.width = self.width.max(name.chars().count());
        self.sources.entry(id).or_insert(Source {
            name,
            style: style::process(id),
            pending: Vec::new(),
            kept: VecDeque::new(),
        });
    }

    /// The source `id`; one the daemon did not announce goes by its id.
    fn source(&mut self, id: u32) -> &mut Source {
        if !self.sources.contains_key(&id) {
            self.join(id, id.to_string());
        }
        self.sources.get_mut(&id).expect("just added")
    }

    /// Renders the complete lines `bytes` of process `id` into `out`, or keeps them.
    fn lines(&mut self, id: u32, bytes: &[u8], now: DateTime<Local>, out: &mut Vec<u8>) {
        let Merged {
            view,
            sources,
            width,
            kept,
            seq,
            ..
        } = self;
        let Some(source) = sources.get_mut(&id) else {
            return;
        };
        let name = view.shown(&source.name);
        let pad = " ".repeat(width.saturating_sub(source.name.chars().count()));
        let prefix = format!(
            "{}{pad}",
            view.paint.paint(source.style, format!("[{name}]"))
        );
        for line in bytes.split(|b| *b == b'\n').filter(|line| !line.is_empty()) {
            let line = String::from_utf8_lossy(line);
            let parts = Line::parse(&line);
            if !view.keep(&line, parts.as_ref(), now) {
                continue;
            }
            match kept {
                Some(keep) => {
                    let mut one = Vec::new();
                    view.render_tagged(&prefix, &line, parts.as_ref(), &mut one);
                    *seq += 1;
                    source.kept.push_back((*seq, one));
                    if source.kept.len() > *keep {
                        source.kept.pop_front();
                    }
                }
                None => view.render_tagged(&prefix, &line, parts.as_ref(), out),
            }
        }
    }

    /// Takes the line of `id` whose end has not come as complete: its end will not come.
    fn unfinished(&mut self, id: u32, now: DateTime<Local>, out: &mut Vec<u8>) {
        let Some(source) = self.sources.get_mut(&id) else {
            return;
        };
        let mut last = std::mem::take(&mut source.pending);
        if !last.is_empty() {
            last.push(b'\n');
            self.lines(id, &last, now, out);
        }
    }

    /// Says on stderr, after what came before it on stdout, that lines are missing here.
    fn gap(&mut self, gap: &LogGap) {
        self.gaps += 1;
        note(sanitize::text(&gap_note(gap)));
    }

    /// The logs so far are through: the kept lines are printed, and what follows is new.
    fn caught_up(&mut self, args: &LogsArgs) -> Result<(), StdoutError> {
        if self.sources.is_empty() {
            note(if args.follow {
                "rhizome: no process is running yet; waiting for one to start (Ctrl-C stops)"
            } else {
                "rhizome: no process is running; `rhizome ps --all` lists finished ones, \
                 `rhizome logs ID` prints one's log"
            });
        }
        if !args.follow {
            // Nothing more will come: a last line without its newline is the last line.
            self.finish_lines()?;
        }
        self.print_kept()
    }

    /// Prints the lines whose end never came.
    fn finish_lines(&mut self) -> Result<(), StdoutError> {
        let now = Local::now();
        let mut out = Vec::new();
        let ids: Vec<u32> = self.sources.keys().copied().collect();
        for id in ids {
            self.unfinished(id, now, &mut out);
        }
        output::write(&out)
    }

    /// Prints the lines kept so far, in the order they came, and keeps none from now on.
    fn print_kept(&mut self) -> Result<(), StdoutError> {
        if self.kept.take().is_none() {
            return Ok(());
        }
        let mut all: Vec<(u64, Vec<u8>)> = self
            .sources
            .values_mut()
            .flat_map(|source| std::mem::take(&mut source.kept))
            .collect();
        all.sort_by_key(|(seq, _)| *seq);
        output::write(
            &all.into_iter()
                .flat_map(|(_, line)| line)
                .collect::<Vec<u8>>(),
        )
    }

    fn finish(&mut self) -> Result<(), StdoutError> {
        self.finish_lines()?;
        self.print_kept()
    }

    /// How the command ends: a gap means the copy is not whole.
    fn exit(&self) -> Exit {
        if self.gaps > 0 {
            Exit::Failure
        } else {
            Exit::Success
        }
    }
}
