//! What a managed process may be called. A name is shown by `ps` and in log lines and typed back
//! to `logs` and `kill`, so it must read as exactly what it is: not a number (that would be taken
//! for an id or pid), nothing invisible, nothing that reorders the text around it. The client
//! checks a name before it sends it (and can then tell a name taken from the command from one
//! given with `--name`); the daemon checks again for any client.

use std::fmt;

/// The longest name, in bytes: names are part of log file names, which have a limit of their own.
pub const MAX_LEN: usize = 100;

/// A name that breaks one of the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// The name as given.
    pub name: String,
    /// The rule it breaks.
    pub rule: Rule,
}

/// The rules a name can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Empty,
    TooLong,
    /// All digits once trimmed (`42`, ` 1`, `+7`): `logs 42` means the id or pid 42.
    Number,
    /// Starts or ends with whitespace, which `ps` cannot show.
    Padded,
    /// Starts with `-`, which the command line reads as an option.
    Dash,
    /// A control character (a tab, a newline, an escape).
    Control(char),
    /// A character that shows as nothing or reorders the text: bidirectional controls (U+202E),
    /// zero-width characters (U+200B), and the other Unicode format characters.
    Invisible(char),
    /// Whitespace that is not a plain space (U+00A0, U+3000): it looks like one but is not.
    OddSpace(char),
}

impl Rule {
    /// What is wrong, as the end of a sentence that starts with the name.
    fn describe(&self) -> String {
        match self {
            Rule::Empty => "is empty".into(),
            Rule::TooLong => format!("is longer than {MAX_LEN} bytes"),
            Rule::Number => {
                "is a number, which `logs` and `kill` would read as an id or pid".into()
            }
            Rule::Padded => "starts or ends with whitespace, which `ps` cannot show".into(),
            Rule::Dash => "starts with `-`, which the command line would read as an option".into(),
            Rule::Control(c) => format!("contains the control character {}", code(*c)),
            Rule::Invisible(c) => format!(
                "contains {}, an invisible character that hides or reorders what `ps` shows",
                code(*c)
            ),
            Rule::OddSpace(c) => {
                format!("contains {}, a space that is not a plain space", code(*c))
            }
        }
    }

    /// How to choose a name that passes.
    pub fn hint(&self) -> &'static str {
        match self {
            Rule::Empty | Rule::TooLong => "choose a name of 1 to 100 bytes",
            Rule::Number => "choose a name with a letter in it",
            Rule::Padded => "remove the whitespace at either end",
            Rule::Dash => "start the name with a letter or a digit",
            Rule::Control(_) | Rule::Invisible(_) | Rule::OddSpace(_) => {
                "use only visible characters and plain spaces"
            }
        }
    }
}

fn code(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

impl NameError {
    /// The error for a name rhizome took from the command's file name (no `--name` was given).
    pub fn from_command(&self) -> String {
        format!(
            "the process name {:?}, taken from the command, {}",
            self.name,
            self.rule.describe()
        )
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "the process name {:?} {}",
            self.name,
            self.rule.describe()
        )
    }
}

impl std::error::Error for NameError {}

/// Whether `name` may name a process; the error says which rule it breaks.
pub fn check(name: &str) -> Result<(), NameError> {
    let broken = |rule| {
        Err(NameError {
            name: name.to_string(),
            rule,
        })
    };
    if name.is_empty() {
        return broken(Rule::Empty);
    }
    if name.len() > MAX_LEN {
        return broken(Rule::TooLong);
    }
    // Before the other rules, so that ` 1` is told the rule that matters.
    let trimmed = name.trim();
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return broken(Rule::Number);
    }
    for c in name.chars() {
        if c.is_control() {
            return broken(Rule::Control(c));
        }
        if is_invisible(c) {
            return broken(Rule::Invisible(c));
        }
    }
    if trimmed.len() != name.len() {
        return broken(Rule::Padded);
    }
    if let Some(c) = name.chars().find(|&c| c.is_whitespace() && c != ' ') {
        return broken(Rule::OddSpace(c));
    }
    if name.starts_with('-') {
        return broken(Rule::Dash);
    }
    Ok(())
}

/// Unicode's format characters (general category Cf: bidirectional controls, zero-width
/// characters, the byte order mark, tags...), and the letters that are drawn as blanks.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// What a name typed back to `logs`, `kill` or `restart` means among the processes of that name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning<T> {
    /// The one process of that name that is running.
    Running(T),
    /// Several of that name run: a name alone does not say which (ids, or `--all`, do).
    Several(Vec<T>),
    /// None runs: the newest that finished, whose log is still worth reading.
    Finished(T),
    /// No process has that name.
    Unknown,
}

/// The one rule by which a name is read, by the daemon and by completion alike: the running
/// process of that name; with several running, none of them; with none running, the newest
/// finished one. `named` are the processes of that name, oldest first, each with whether it is
/// running (not yet final).
pub fn meaning<T>(named: impl IntoIterator<Item = (T, bool)>) -> Meaning<T> {
    let mut running = Vec::new();
    let mut newest_finished = None;
    for (process, is_running) in named {
        if is_running {
            running.push(process);
        } else {
            newest_finished = Some(process);
        }
    }
    if running.len() > 1 {
        return Meaning::Several(running);
    }
    match (running.pop(), newest_finished) {
        (Some(one), _) => Meaning::Running(one),
        (None, Some(finished)) => Meaning::Finished(finished),
        (None, None) => Meaning::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_confuse_are_refused_by_rule() {
        for (name, rule) in [
            ("", Rule::Empty),
            (&"x".repeat(101)[..], Rule::TooLong),
            ("1", Rule::Number),
            ("42", Rule::Number),
            ("+7", Rule::Number),
            (" 1", Rule::Number),
            ("1 ", Rule::Number),
            ("99999999999999999999", Rule::Number),
            (" web", Rule::Padded),
            ("web ", Rule::Padded),
            ("web\u{3000}", Rule::Padded),
            ("-x", Rule::Dash),
            ("we\tb", Rule::Control('\t')),
            ("web\n", Rule::Control('\n')),
            ("\u{1b}[31mweb", Rule::Control('\u{1b}')),
            ("gpj.\u{202E}exe", Rule::Invisible('\u{202E}')),
            ("a\u{2066}b", Rule::Invisible('\u{2066}')),
            ("a\u{200B}b", Rule::Invisible('\u{200B}')),
            ("\u{FEFF}web", Rule::Invisible('\u{FEFF}')),
            ("web\u{200D}", Rule::Invisible('\u{200D}')),
            ("a\u{3164}b", Rule::Invisible('\u{3164}')),
            ("a\u{00A0}b", Rule::OddSpace('\u{00A0}')),
        ] {
            assert_eq!(
                check(name).map_err(|err| err.rule),
                Err(rule),
                "{name:?} should break {rule:?}"
            );
        }
    }

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "web",
            "web 2",
            "sleeper",
            "na-prod/billing",
            "1a",
            "v1.2",
            "3.14",
            "日本語",
            "café",
            "❤\u{FE0F}",
            &"x".repeat(100),
        ] {
            assert_eq!(check(name), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn the_message_shows_what_is_hidden_and_states_the_rule() {
        let err = check("a\u{202E}b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the process name \"a\\u{202e}b\" contains U+202E, an invisible character that hides or reorders what `ps` shows"
        );
        let err = check(" 1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the process name \" 1\" is a number, which `logs` and `kill` would read as an id or pid"
        );
        assert_eq!(
            err.from_command(),
            "the process name \" 1\", taken from the command, is a number, which `logs` and `kill` would read as an id or pid"
        );
    }

    #[test]
    fn a_name_means_its_running_process_else_its_newest_finished_one() {
        assert_eq!(meaning::<u32>([]), Meaning::Unknown);
        assert_eq!(meaning([(15, true), (16, false)]), Meaning::Running(15));
        assert_eq!(meaning([(3, false), (7, false)]), Meaning::Finished(7));
        assert_eq!(
            meaning([(1, true), (2, false), (3, true)]),
            Meaning::Several(vec![1, 3])
        );
    }
}
