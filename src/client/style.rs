//! Colors, only where they help: anstream decides whether a stream gets them (a terminal, no
//! `NO_COLOR`, a `TERM` other than dumb, or `--color always`), anstyle says what they are.

use std::ffi::OsString;
use std::fmt::Display;

use anstream::ColorChoice;
use anstyle::{AnsiColor, Style};

use crate::cli::ColorWhen;
use crate::protocol::Status;

/// Healthy: a running process.
pub const GOOD: Style = AnsiColor::Green.on_default();
/// On its way somewhere: starting, restarting, reconnecting.
pub const BUSY: Style = AnsiColor::Yellow.on_default();
/// Needs a look: failed, or exited with an error.
pub const BAD: Style = AnsiColor::Red.on_default();
/// Context the eye can skip: time stamps, `[name] pid=N`.
pub const DIM: Style = Style::new().dimmed();
pub const BOLD: Style = Style::new().bold();
/// The `error:` and `hint:` labels, as clap colors its own.
pub const ERROR: Style = AnsiColor::Red.on_default().bold();
pub const HINT: Style = AnsiColor::Cyan.on_default().bold();

/// Applies `--color` to every stream, clap's help and errors included.
pub fn choose(when: ColorWhen) {
    ColorChoice::write_global(match when {
        ColorWhen::Auto => ColorChoice::Auto,
        ColorWhen::Always => ColorChoice::Always,
        ColorWhen::Never => ColorChoice::Never,
    });
}

/// Applies a `--color WHEN` found in the arguments before clap reads them, so that the help and
/// usage errors clap prints while parsing follow it too. Anything odd is left to clap.
pub fn choose_early(args: impl IntoIterator<Item = OsString>) {
    let mut args = args.into_iter().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.to_str() {
            Some("--") => return,
            Some("--color") => args.next(),
            Some(arg) => arg.strip_prefix("--color=").map(OsString::from),
            None => None,
        };
        let when = match value.as_ref().and_then(|v| v.to_str()) {
            Some("always") => ColorWhen::Always,
            Some("never") => ColorWhen::Never,
            Some("auto") => ColorWhen::Auto,
            _ => continue,
        };
        choose(when);
    }
}

/// Whether one stream gets colors, decided once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paint {
    on: bool,
}

impl Paint {
    pub fn stdout() -> Paint {
        Paint {
            on: anstream::AutoStream::choice(&std::io::stdout()) != ColorChoice::Never,
        }
    }

    pub fn stderr() -> Paint {
        Paint {
            on: anstream::AutoStream::choice(&std::io::stderr()) != ColorChoice::Never,
        }
    }

    pub fn is_on(self) -> bool {
        self.on
    }

    /// `text` in `style`, or plain when this stream gets no colors.
    pub fn paint(self, style: Style, text: impl Display) -> String {
        if self.on && style != Style::new() {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }
}

/// The colors that tell processes apart in merged logs: none that means trouble (red), none
/// that fades (dim).
const PROCESSES: [Style; 10] = [
    AnsiColor::Cyan.on_default(),
    AnsiColor::Magenta.on_default(),
    AnsiColor::Yellow.on_default(),
    AnsiColor::Blue.on_default(),
    AnsiColor::Green.on_default(),
    AnsiColor::BrightCyan.on_default(),
    AnsiColor::BrightMagenta.on_default(),
    AnsiColor::BrightYellow.on_default(),
    AnsiColor::BrightBlue.on_default(),
    AnsiColor::BrightGreen.on_default(),
];

/// The color of process `id` among others: chosen by its id, so it is the same every time its
/// logs are shown, and processes started one after another differ.
pub fn process(id: u32) -> Style {
    PROCESSES[id as usize % PROCESSES.len()]
}

/// How a status reads at a glance.
pub fn status(status: &Status) -> Style {
    match status {
        Status::Running => GOOD,
        Status::Starting | Status::Restarting | Status::Reconnecting => BUSY,
        Status::Failed(_) | Status::CrashLoop { .. } => BAD,
        Status::Exited(code) if *code != 0 => BAD,
        _ => Style::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_is_plain_when_off() {
        let off = Paint { on: false };
        let on = Paint { on: true };
        assert_eq!(off.paint(GOOD, "running"), "running");
        assert_eq!(on.paint(GOOD, "running"), "\x1b[32mrunning\x1b[0m");
        assert_eq!(on.paint(Style::new(), "exited(0)"), "exited(0)");
    }
}
