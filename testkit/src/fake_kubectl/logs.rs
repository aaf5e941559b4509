//! `kubectl logs TARGET [--tail N]`: prints `pod.log` (its last N lines with
//! `--tail`); nothing if there is no log yet or the plan says `empty`.

use std::io::Write as _;

use super::fail;
use super::plan::Action;
use super::state::StateDir;

pub fn run(tail: Option<usize>, state: &StateDir, actions: &[Action]) -> i32 {
    if actions.contains(&Action::Empty) {
        return 0;
    }
    let log = match state.pod_log() {
        Ok(log) => log,
        Err(e) => return fail(&format!("fake-kubectl: cannot read pod.log: {e}")),
    };
    let lines: Vec<&str> = log.lines().collect();
    let from = tail.map_or(0, |n| lines.len().saturating_sub(n));
    let mut out = std::io::stdout().lock();
    for line in &lines[from..] {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    0
}
