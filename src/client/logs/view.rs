//! How `rhizome logs` shows a stored line, and which lines it shows: the one view behind the log
//! of one process and the merged logs of several.

use std::borrow::Cow;
use std::io::Write;

use chrono::{DateTime, Local};

use super::line::{Line, cutoff, moment};
use crate::cli::Since;
use crate::client::sanitize;
use crate::client::style::{DIM, Paint};

/// How lines are shown and which are.
pub(super) struct View {
    pub(super) paint: Paint,
    /// Whether control characters are shown escaped: on a terminal, whatever the colors.
    pub(super) escape: bool,
    pub(super) raw: bool,
    pub(super) since: Option<Since>,
    pub(super) grep: Option<regex::Regex>,
}

impl View {
    /// Whether some lines are left out, so that `-n` must count the ones shown.
    pub(super) fn filters(&self) -> bool {
        self.since.is_some() || self.grep.is_some() || self.raw
    }

    /// Whether lines must be read one by one rather than passed through.
    pub(super) fn per_line(&self) -> bool {
        self.filters() || self.raw || self.paint.is_on() || self.escape
    }

    /// `text` as this view shows it: escaped on a terminal, as it is elsewhere.
    pub(super) fn shown<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.escape {
            sanitize::text(text)
        } else {
            Cow::Borrowed(text)
        }
    }

    /// Whether a line passes `--since` and `--grep`; `now` is the client's clock.
    pub(super) fn keep(&self, line: &str, parts: Option<&Line<'_>>, now: DateTime<Local>) -> bool {
        // `--raw` is what the process wrote, fit for `jq`: not the daemon's own lines.
        if self.raw && parts.is_some_and(Line::is_daemons) {
            return false;
        }
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

    pub(super) fn render(&self, line: &str, parts: Option<&Line<'_>>, out: &mut Vec<u8>) {
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

impl View {
    /// `line` of one process among several, behind its `prefix` (`[name]`, padded and colored):
    /// the name is left out of the line's end, which the prefix already says. `--raw` shows
    /// what the process wrote and nothing else, so that `jq` can read the merged output too.
    pub(super) fn render_tagged(
        &self,
        prefix: &str,
        line: &str,
        parts: Option<&Line<'_>>,
        out: &mut Vec<u8>,
    ) {
        if self.raw {
            return self.render(line, parts, out);
        }
        out.extend_from_slice(prefix.as_bytes());
        out.push(b' ');
        match parts {
            Some(parts) => {
                let stamp = self.paint.paint(DIM, parts.stamp);
                let _ = match parts.pid() {
                    // Padded only where something follows, so that no line ends in spaces.
                    "" => write!(out, "{stamp} {}", self.shown(parts.text())),
                    pid => write!(
                        out,
                        "{stamp} {}{}",
                        self.shown(parts.padded),
                        self.paint.paint(DIM, pid)
                    ),
                };
            }
            None => out.extend_from_slice(self.shown(line).as_bytes()),
        }
        out.push(b'\n');
    }
}
