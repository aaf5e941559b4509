//! The signals a client may ask the daemon to send, by the names people type.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The signals `kill` and `restart` send: the first one chosen with `--signal` (SIGTERM unless
/// told), SIGKILL after the timeout. Stored in the state file by variant name, so variants are
/// only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    Term,
    Kill,
    Int,
    Hup,
    Quit,
    Usr1,
    Usr2,
}

impl Signal {
    /// Every signal, in the order the accepted names are listed to the user.
    pub const ALL: [Signal; 7] = [
        Signal::Term,
        Signal::Int,
        Signal::Hup,
        Signal::Quit,
        Signal::Kill,
        Signal::Usr1,
        Signal::Usr2,
    ];

    /// The name without `SIG`, as `kill -l` lists it: `TERM`.
    pub fn short_name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Int => "INT",
            Signal::Hup => "HUP",
            Signal::Quit => "QUIT",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
        }
    }

    /// The signal a name means, as kill(1) takes it: `TERM`, `SIGTERM`, any case.
    pub fn from_name(name: &str) -> Option<Signal> {
        let upper = name.to_ascii_uppercase();
        let short = upper.strip_prefix("SIG").unwrap_or(&upper);
        Signal::ALL.into_iter().find(|s| s.short_name() == short)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.short_name())
    }
}
