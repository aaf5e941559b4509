//! Exit codes as a type: what each code means is said once, here, and `main` is the one place
//! that turns it into the process's status (fd's `exit_codes.rs` is the model).

use std::process::ExitCode;

/// How a command ended, as the shell sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done as asked; also a reader that went away early (`rhizome ps | head -1`).
    Success,
    /// The request failed, or stdout could not take the answer: the `error:` line says which.
    Failure,
    /// The command line was wrong. clap exits with this code by itself; it is named here so
    /// that every code rhizome uses is.
    Usage,
    /// `daemon status` found no daemon.
    NotRunning,
    /// `daemon status` found a daemon that does not answer: stopped (SIGSTOP), stuck, or its
    /// socket gone and not put back; or something else listens on the socket.
    NotAnswering,
    /// Ctrl-C ended the command: 128 + SIGINT, as a shell reports it.
    Interrupted,
    /// `exec`: its command's own exit status (128 + N when signal N ended it).
    Command(u8),
}

impl Exit {
    /// Every code of rhizome's own, in the order the man page's EXIT STATUS lists them; `exec`
    /// passes its command's on (`Command`), which the page lists after them.
    pub const ALL: [Exit; 6] = [
        Exit::Success,
        Exit::Failure,
        Exit::Usage,
        Exit::NotRunning,
        Exit::NotAnswering,
        Exit::Interrupted,
    ];

    /// What the code tells a script, as the man page says it.
    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Success => {
                "Done as asked; also when the reader of the output went away early (`rhizome ps | head -1`)."
            }
            Exit::Failure => {
                "The request failed, or the output could not be written: the `error:` line says which."
            }
            Exit::Usage => "The command line was wrong.",
            Exit::NotRunning => "`daemon status` found no daemon.",
            Exit::NotAnswering => {
                "`daemon status` found a daemon that does not answer: stopped (SIGSTOP), stuck, or its socket gone; or something else listens on the socket."
            }
            Exit::Interrupted => "Ctrl-C ended the command (128 + SIGINT, as a shell reports it).",
            Exit::Command(_) => {
                "`rhizome exec`: its command's own exit status (128 + N when signal N ended it)."
            }
        }
    }

    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::NotRunning => 3,
            Exit::NotAnswering => 4,
            Exit::Interrupted => 130,
            Exit::Command(code) => code,
        }
    }

    /// The status of one of rhizome's other roles (the daemon in the foreground, the sleeper,
    /// the simulated kubectl), which end with 0 or 1.
    pub const fn of_status(status: i32) -> Exit {
        if status == 0 {
            Exit::Success
        } else {
            Exit::Failure
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Exit;
    use crate::cli::Cli;

    #[test]
    fn usage_is_the_code_clap_exits_with() {
        let err = Cli::try_parse_from(["rhizome", "--no-such-flag"]).unwrap_err();
        assert_eq!(err.exit_code(), i32::from(Exit::Usage.code()));
    }

    #[test]
    fn codes_are_the_documented_ones() {
        let codes = Exit::ALL.map(Exit::code);
        assert_eq!(codes, [0, 1, 2, 3, 4, 130]);
        assert_eq!(Exit::of_status(0), Exit::Success);
        assert_eq!(Exit::of_status(1), Exit::Failure);
    }
}
