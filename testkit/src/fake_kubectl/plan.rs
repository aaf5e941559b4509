//! The fault plan (`FAKE_KUBECTL_PLAN`), read at every start. Each line that
//! is neither empty nor a `#` comment is `<subcommand> <N|*> <action> [arg]`:
//! on the Nth start of that subcommand (every start for `*`) do the action.
//! Several lines may match one start (say `slow-ms` and `die-after-ms`).
//!
//! | subcommand     | actions                                         |
//! |----------------|-------------------------------------------------|
//! | `port-forward` | `fail`, `die-after-ms M`, `hang`, `slow-ms M`   |
//! | `exec`         | `fail`, `hang`, `slow-ms M`                     |
//! | `logs`         | `empty`, `slow-ms M`                            |
//!
//! Any malformed line is an error (the fake exits 1), so typos surface.

use std::path::Path;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Fail,
    Hang,
    Empty,
    DieAfterMs(Duration),
    SlowMs(Duration),
}

/// The actions for start number `start` of `subcommand`.
pub fn actions_for(path: &Path, subcommand: &str, start: u64) -> Result<Vec<Action>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the plan {}: {e}", path.display()))?;
    parse(&text, subcommand, start).map_err(|e| format!("plan {}: {e}", path.display()))
}

pub fn parse(text: &str, subcommand: &str, start: u64) -> Result<Vec<Action>, String> {
    let mut actions = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (sub, when, action) =
            parse_line(line).map_err(|e| format!("line {}: {e}: {line:?}", i + 1))?;
        if sub == subcommand && when.is_none_or(|n| n == start) {
            actions.push(action);
        }
    }
    Ok(actions)
}

/// (subcommand, start number or `None` for `*`, action)
fn parse_line(line: &str) -> Result<(&str, Option<u64>, Action), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (sub, when, name, arg) = match words.as_slice() {
        [sub, when, name] => (*sub, *when, *name, None),
        [sub, when, name, arg] => (*sub, *when, *name, Some(*arg)),
        _ => return Err("expected `<subcommand> <N|*> <action> [arg]`".into()),
    };
    let when = match when {
        "*" => None,
        n => Some(
            n.parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or("N must be `*` or a start number from 1")?,
        ),
    };
    let ms = || {
        arg.and_then(|a| a.parse().ok())
            .map(Duration::from_millis)
            .ok_or(format!("`{name}` needs a number of milliseconds"))
    };
    let action = match (name, arg) {
        ("fail", None) => Action::Fail,
        ("hang", None) => Action::Hang,
        ("empty", None) => Action::Empty,
        ("die-after-ms", _) => Action::DieAfterMs(ms()?),
        ("slow-ms", _) => Action::SlowMs(ms()?),
        _ => return Err(format!("unknown action `{name}` (or a stray argument)")),
    };
    let allowed: &[&str] = match sub {
        "port-forward" => &["fail", "die-after-ms", "hang", "slow-ms"],
        "exec" => &["fail", "hang", "slow-ms"],
        "logs" => &["empty", "slow-ms"],
        _ => return Err(format!("unknown subcommand `{sub}`")),
    };
    if !allowed.contains(&name) {
        return Err(format!("`{sub}` has no action `{name}`"));
    }
    Ok((sub, when, action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_by_number_and_star() {
        let plan = "# comment\n\nport-forward 2 fail\nport-forward * slow-ms 5\nexec 1 hang\n";
        assert_eq!(
            parse(plan, "port-forward", 1).unwrap(),
            [Action::SlowMs(Duration::from_millis(5))]
        );
        assert_eq!(
            parse(plan, "port-forward", 2).unwrap(),
            [Action::Fail, Action::SlowMs(Duration::from_millis(5))]
        );
        assert_eq!(parse(plan, "exec", 1).unwrap(), [Action::Hang]);
        assert!(parse(plan, "logs", 1).unwrap().is_empty());
    }

    #[test]
    fn rejects_typos() {
        for bad in [
            "port-forward 1 die-after-ms",
            "exec 1 empty",
            "pf 1 fail",
            "logs 0 empty",
            "exec one fail",
            "exec 1 fail now",
        ] {
            assert!(parse(bad, "exec", 1).is_err(), "{bad}");
        }
    }
}
