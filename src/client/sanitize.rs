//! What text from outside may not do to the terminal showing it. A managed process's output, its
//! name and command, a kubectl line, a message built from any of them: none may set the window's
//! title, clear the screen, write the clipboard (OSC 52) or paint a forged line over a real one
//! with a carriage return. Control characters in them are shown escaped instead (`\x1b`, `\r`),
//! visible and harmless, as fd does with file names. `logs` escapes only on a terminal, so a pipe
//! gets the bytes exactly as the process wrote them; names and messages are always escaped, being
//! written for people.

use std::borrow::Cow;
use std::fmt::Write;

/// Text of many lines (a log line, an error message): every control character but newline and
/// tab escaped.
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, |c| c != '\n' && c != '\t' && needs_escape(c))
}

/// One value in a line or a table cell (a name, a path): newline and tab escaped too, so that it
/// cannot start a line of its own or push the columns apart.
pub fn field(s: &str) -> Cow<'_, str> {
    escape(s, needs_escape)
}

/// C0 and C1 controls and DEL, which terminals act on, and the bidirectional overrides and
/// isolates, which make text read differently than it is.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn escape(s: &str, needs: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(&needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if !needs(c) => out.push(c),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_borrowed_as_it_is() {
        for s in [
            "hello",
            "résumé 文档 🦀",
            "a\tb\nc",
            "back\\slash",
            "\u{fffd}",
        ] {
            assert!(matches!(text(s), Cow::Borrowed(_)), "{s:?}");
        }
        assert!(matches!(field("na-prod/billing"), Cow::Borrowed(_)));
    }

    #[test]
    fn terminal_commands_become_visible_text() {
        assert_eq!(text("a\x1b]0;title\x07b"), r"a\x1b]0;title\x07b");
        assert_eq!(text("\x1b[2Jcleared"), r"\x1b[2Jcleared");
        assert_eq!(text("\x1b]52;c;cHduZWQ=\x07"), r"\x1b]52;c;cHduZWQ=\x07");
        assert_eq!(
            text("working\r12:00:00 subprocess finished"),
            r"working\r12:00:00 subprocess finished"
        );
        assert_eq!(text("nul\0 del\x7f"), r"nul\x00 del\x7f");
        // C1 controls: U+009B is a CSI of its own on some terminals.
        assert_eq!(text("\u{9b}2J"), r"\u{9b}2J");
        assert_eq!(text("abc\u{202e}fed"), r"abc\u{202e}fed");
    }

    #[test]
    fn fields_escape_newlines_and_tabs_too() {
        assert_eq!(text("one\ntwo\tthree"), "one\ntwo\tthree");
        assert_eq!(field("one\ntwo\tthree"), r"one\ntwo\tthree");
        assert_eq!(field("evil\x1b]0;t\x07\rname"), r"evil\x1b]0;t\x07\rname");
    }
}
