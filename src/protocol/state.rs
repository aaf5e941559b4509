//! A status in one word: what `ps --status` filters by and what `--json` writes as `status`.
//! The words are part of the JSON shape; a new `Status` gets a new word here.

use std::fmt;

use super::Status;

/// The kind of a `Status`, without what it carries (the exit code, the signal, the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Starting,
    Running,
    Restarting,
    Reconnecting,
    Exited,
    Killed,
    Failed,
    Lost,
    /// Restarted `--max-restarts` times in a row, each run ending early: stopped, waiting for a
    /// person.
    CrashLoop,
    /// A lazy tunnel with nothing behind its port until a client connects.
    Idle,
}

impl State {
    /// Every state, in the order a life goes through them: the values `--status` offers.
    pub const ALL: [State; 10] = [
        State::Starting,
        State::Idle,
        State::Running,
        State::Restarting,
        State::Reconnecting,
        State::Exited,
        State::Killed,
        State::Failed,
        State::Lost,
        State::CrashLoop,
    ];

    pub fn word(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Restarting => "restarting",
            State::Reconnecting => "reconnecting",
            State::Exited => "exited",
            State::Killed => "killed",
            State::Failed => "failed",
            State::Lost => "lost",
            State::CrashLoop => "crash-loop",
            State::Idle => "idle",
        }
    }

    /// True for the states of a finished process, which `ps` shows only when asked.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Exited | State::Killed | State::Failed | State::Lost | State::CrashLoop
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

impl Status {
    pub fn state(&self) -> State {
        match self {
            Status::Starting => State::Starting,
            Status::Running => State::Running,
            Status::Restarting => State::Restarting,
            Status::Reconnecting => State::Reconnecting,
            Status::Exited(_) => State::Exited,
            Status::Killed(_) => State::Killed,
            Status::Failed(_) => State::Failed,
            Status::Lost => State::Lost,
            Status::CrashLoop { .. } => State::CrashLoop,
            Status::Idle => State::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_final_exactly_when_its_status_is() {
        let statuses = [
            Status::Starting,
            Status::Running,
            Status::Restarting,
            Status::Reconnecting,
            Status::Exited(0),
            Status::Killed(None),
            Status::Failed("why".into()),
            Status::Lost,
            Status::CrashLoop { restarts: 3 },
            Status::Idle,
        ];
        for status in statuses {
            assert_eq!(status.state().is_final(), status.is_final(), "{status}");
            assert!(State::ALL.contains(&status.state()));
        }
    }
}
