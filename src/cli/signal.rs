//! kill(1)'s ways of naming a signal: `--signal INT`, `-s 9`, and the words `-9`, `-KILL`,
//! `-SIGINT` that clap cannot parse (to it `-9` is an unknown flag), rewritten before it reads them.

use std::ffi::OsString;

use crate::protocol::Signal;

/// The subcommands that take `--signal`.
const SIGNALLED: [&str; 2] = ["kill", "restart"];

/// `--signal SIG`: a name (`TERM`, `SIGTERM`, `term`) or a number (`15`).
pub(super) fn parse_signal(text: &str) -> Result<Signal, String> {
    let text = text.trim();
    let named = match text.parse::<i32>() {
        Ok(number) => nix::sys::signal::Signal::try_from(number)
            .ok()
            .and_then(|os| Signal::from_name(os.as_str())),
        Err(_) => Signal::from_name(text),
    };
    named.ok_or_else(|| format!("`{text}` is not a signal rhizome sends; {}", accepted()))
}

/// The names and numbers `--signal` takes, for its error.
fn accepted() -> String {
    let names: Vec<String> = Signal::ALL
        .iter()
        .map(|signal| {
            let name = signal.short_name();
            match number(*signal) {
                Some(number) => format!("{name} ({number})"),
                None => name.to_string(),
            }
        })
        .collect();
    format!("use one of {}", names.join(", "))
}

/// The number of a signal on this system.
fn number(signal: Signal) -> Option<i32> {
    nix::sys::signal::Signal::iterator()
        .find(|os| Signal::from_name(os.as_str()) == Some(signal))
        .map(|os| os as i32)
}

/// The command line with kill(1)'s `-SIG` words of `kill` and `restart` made `--signal=SIG`,
/// so that `rhizome kill -9 web` means what it does to kill(1). Only words before `--` and
/// after the subcommand are touched, and only those that name a signal (`-9`, `-KILL`, `-int`,
/// `-SIGHUP`) or look like one in kill(1)'s capitals (`-NOPE`, which `--signal` then refuses
/// with the names it takes); everything else, `-s9` included, is left to clap.
pub fn expand_signal_words(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let Some(start) = subcommand(&args).filter(|&i| SIGNALLED.contains(&text(&args[i]))) else {
        return args;
    };
    let mut takes_value = false;
    for arg in &mut args[start + 1..] {
        let word = text(arg);
        if word == "--" {
            break;
        }
        if std::mem::take(&mut takes_value) {
            continue;
        }
        takes_value = matches!(word, "-s" | "--signal" | "--timeout" | "--color");
        if let Some(signal) = word.strip_prefix('-').filter(|s| names_a_signal(s)) {
            *arg = format!("--signal={signal}").into();
        }
    }
    args
}

/// The index of the subcommand: the first word that is neither an option nor `--color`'s value.
fn subcommand(args: &[OsString]) -> Option<usize> {
    let mut skip_value = false;
    for (i, arg) in args.iter().enumerate().skip(1) {
        let word = text(arg);
        if std::mem::take(&mut skip_value) {
            continue;
        }
        match word {
            "--" => return None,
            "--color" => skip_value = true,
            _ if word.starts_with('-') => {}
            _ => return Some(i),
        }
    }
    None
}

/// Whether `word` (a flag without its dash) is kill(1)'s signal: a number, a signal's name in any
/// case, or capitals and digits as signal names are written.
fn names_a_signal(word: &str) -> bool {
    let capitals = word.starts_with(|c: char| c.is_ascii_uppercase())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let number = !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit());
    number || capitals || Signal::from_name(word).is_some()
}

fn text(arg: &OsString) -> &str {
    arg.to_str().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(line: &str) -> String {
        let args = line.split(' ').map(OsString::from);
        let out: Vec<String> = expand_signal_words(args)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        out.join(" ")
    }

    #[test]
    fn kill_1_spellings_become_the_signal_flag() {
        for (line, want) in [
            ("rhizome kill -9 web", "rhizome kill --signal=9 web"),
            ("rhizome kill -KILL web", "rhizome kill --signal=KILL web"),
            (
                "rhizome kill -SIGINT web 3",
                "rhizome kill --signal=SIGINT web 3",
            ),
            ("rhizome kill -int web", "rhizome kill --signal=int web"),
            ("rhizome kill --all -HUP", "rhizome kill --all --signal=HUP"),
            ("rhizome kill -NOPE web", "rhizome kill --signal=NOPE web"),
            (
                "rhizome --color never restart -USR1 web",
                "rhizome --color never restart --signal=USR1 web",
            ),
        ] {
            assert_eq!(expanded(line), want, "{line}");
        }
    }

    #[test]
    fn everything_else_is_left_to_clap() {
        for line in [
            // Already clap's.
            "rhizome kill -s 9 web",
            "rhizome kill -s9 web",
            "rhizome kill --signal -9 web",
            "rhizome kill --timeout 2 web",
            "rhizome kill -h",
            // Lower case that names no signal is a mistyped flag, clap's to explain.
            "rhizome kill -nope web",
            // After `--`, and other subcommands.
            "rhizome run -- kill -9 1234",
            "rhizome run --name kill -- sleep -9",
            "rhizome logs -n 5 kill",
            "rhizome daemon restart -9",
            "rhizome -9 kill",
        ] {
            assert_eq!(expanded(line), line);
        }
    }

    #[test]
    fn signals_are_named_as_kill_1_names_them() {
        for text in ["TERM", "SIGTERM", "term", "SigTerm", "15", " 15 "] {
            assert_eq!(parse_signal(text), Ok(Signal::Term), "{text}");
        }
        assert_eq!(parse_signal("9"), Ok(Signal::Kill));
        assert_eq!(parse_signal("2"), Ok(Signal::Int));
        assert_eq!(parse_signal("usr1"), Ok(Signal::Usr1));
        for text in ["NOPE", "0", "-1", "19", "SIGSTOP", ""] {
            let err = parse_signal(text).unwrap_err();
            assert!(
                err.contains("is not a signal rhizome sends")
                    && err.contains("TERM (15), INT (2), HUP (1), QUIT (3), KILL (9), USR1"),
                "{text}: {err}"
            );
        }
    }
}
