//! The values of flags that clap cannot parse by itself: durations, times of day, seconds,
//! patterns, `run --env KEY=VALUE`, and the restart policy as the command line spells it.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveTime;

use crate::protocol::{RestartPolicy, State};

/// `--since`: how far back `logs` looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// This long before now.
    Ago(Duration),
    /// The latest moment, at or before now, with this time of day.
    At(NaiveTime),
}

impl FromStr for Since {
    type Err = String;

    fn from_str(text: &str) -> Result<Since, String> {
        let text = text.trim();
        if text.contains(':') {
            return NaiveTime::parse_from_str(text, "%H:%M:%S")
                .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
                .map(Since::At)
                .map_err(|_| format!("`{text}` is not a time of day; write 14:30 or 14:30:15"));
        }
        let bad = || format!("`{text}` is not a duration; write 90s, 10m, 1h30m or 2d");
        let mut total = 0u64;
        let mut number = String::new();
        for c in text.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                _ => return Err(bad()),
            };
            let n: u64 = number.parse().map_err(|_| bad())?;
            total = n
                .checked_mul(unit)
                .and_then(|s| total.checked_add(s))
                .ok_or_else(bad)?;
            number.clear();
        }
        if !number.is_empty() || text.is_empty() {
            return Err(bad());
        }
        Ok(Since::Ago(Duration::from_secs(total)))
    }
}

/// `--timeout SECS`: a number of seconds, fractions allowed.
pub(super) fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("`{text}` is not a number of seconds of 0 or more"))
}

/// `sleeper --interval SECS`: as `--timeout`, so never NaN, infinite or negative.
pub(super) fn parse_interval(text: &str) -> Result<f64, String> {
    parse_seconds(text).map(|interval| interval.as_secs_f64())
}

/// `run --restart`: when a command that ended by itself starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Restart {
    Never,
    OnFailure,
    Always,
}

impl From<Restart> for RestartPolicy {
    fn from(restart: Restart) -> RestartPolicy {
        match restart {
            Restart::Never => RestartPolicy::Never,
            Restart::OnFailure => RestartPolicy::OnFailure,
            Restart::Always => RestartPolicy::Always,
        }
    }
}

/// `run --env KEY=VALUE`: one variable set for the command, over this shell's environment.
/// Bytes, like the environment itself: neither part has to be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: OsString,
    pub value: OsString,
}

/// Splits `KEY=VALUE` at its first `=`; a word without one, or with nothing before it, is
/// refused with what to write instead.
pub(super) fn parse_env(word: OsString) -> Result<EnvVar, String> {
    let bytes = word.as_bytes();
    let shown = word.to_string_lossy();
    match bytes.iter().position(|&b| b == b'=') {
        Some(0) => Err(format!("`{shown}` has no name before `=`; write KEY=VALUE")),
        Some(at) => Ok(EnvVar {
            key: OsString::from_vec(bytes[..at].to_vec()),
            value: OsString::from_vec(bytes[at + 1..].to_vec()),
        }),
        None => Err(format!(
            "`{shown}` has no `=`; write {shown}=VALUE (the command gets this shell's environment already)"
        )),
    }
}

/// `ps --status STATE`: the words are the protocol's, so the filter, the JSON and completion
/// offer the same ones.
impl clap::ValueEnum for State {
    fn value_variants<'a>() -> &'a [Self] {
        &State::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let help = match self {
            State::Starting => "not up yet",
            State::Running => "up",
            State::Restarting => "ended by itself, waiting to start again",
            State::Reconnecting => "a tunnel rebuilding its path; its port stays open",
            State::Exited => "ended by itself, not started again",
            State::Killed => "stopped by `rhizome kill` or the daemon stopping",
            State::Failed => "could not be started, or a tunnel that never got through",
            State::Lost => "a one-shot that was running when its daemon died",
            State::Idle => {
                "a lazy tunnel: its port open, nothing behind it until a client connects"
            }
            State::CrashLoop => "restarted --max-restarts times, each run ending early; stopped",
        };
        Some(clap::builder::PossibleValue::new(self.word()).help(help))
    }
}

pub(super) fn parse_pattern(text: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(text).map_err(|err| format!("not a regular expression: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_words_split_at_their_first_equals_sign() {
        let var = |word: &str| parse_env(word.into());
        assert_eq!(
            var("URL=a=b").unwrap(),
            EnvVar {
                key: "URL".into(),
                value: "a=b".into()
            }
        );
        assert_eq!(var("EMPTY=").unwrap().value, OsString::new());
        let bytes = OsString::from_vec(b"K=\xff".to_vec());
        assert_eq!(
            parse_env(bytes).unwrap().value,
            OsString::from_vec(vec![0xff])
        );
        assert!(var("=x").unwrap_err().contains("no name before `=`"));
        assert!(var("DEBUG").unwrap_err().contains("write DEBUG=VALUE"));
    }

    #[test]
    fn since_reads_durations_and_times_of_day() {
        let ago = |s| Since::Ago(Duration::from_secs(s));
        assert_eq!("90s".parse(), Ok(ago(90)));
        assert_eq!("10m".parse(), Ok(ago(600)));
        assert_eq!("1h30m".parse(), Ok(ago(5400)));
        assert_eq!("2d".parse(), Ok(ago(172800)));
        assert_eq!(
            "14:30".parse(),
            Ok(Since::At(NaiveTime::from_hms_opt(14, 30, 0).unwrap()))
        );
        assert_eq!(
            "14:30:15".parse(),
            Ok(Since::At(NaiveTime::from_hms_opt(14, 30, 15).unwrap()))
        );
        for bad in ["", "10", "m", "10x", "1h30", "25:00", "ten minutes"] {
            assert!(bad.parse::<Since>().is_err(), "{bad:?} should be refused");
        }
    }
}
