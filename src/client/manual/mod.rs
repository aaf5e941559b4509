//! The parts of the manual clap cannot derive from the command line: rhizome(1)'s EXIT STATUS
//! (from `Exit`), ENVIRONMENT, FILES and SEE ALSO, and the rhizome.toml(5) page with the README's
//! table of keys (both from `config::keys`, in `config.rs`).

mod config;
mod roff;

pub use self::config::{readme_with_keys, toml_page};
use super::exit::Exit;

/// Every environment variable rhizome reads, with what it does. A test finds every `RHIZOME_`
/// name in the sources and checks that rhizome(1) has it.
pub const READ: [(&str, &str); 18] = [
    (
        "RHIZOME_HOME",
        "Puts everything under this directory: socket, lock, `rhizome.toml`, `logs/`, `state/`. Without it, the XDG directories (see FILES). One daemon runs per home.",
    ),
    (
        "RHIZOME_CONFIG",
        "The config file to read instead of `rhizome.toml` in the config directory; see rhizome.toml(5).",
    ),
    (
        "RHIZOME_KUBECTL",
        "The kubectl program, a name on PATH or a path; it wins over the config's `kubectl`.",
    ),
    (
        "RHIZOME_SIMULATE",
        "Set to anything but `0`: `forward` runs without a cluster, as with `--simulate`; an echo server stands in for the database.",
    ),
    (
        "RHIZOME_SIMULATE_UPSTREAM",
        "`HOST:PORT`: in simulate mode, the tunnel leads there instead of to the echo server (a real database without a cluster); it wins over a target's `simulate_upstream`.",
    ),
    (
        "RHIZOME_LOG",
        "The daemon's log filter (`info` if unset; `debug` for more), read when the daemon starts.",
    ),
    (
        "RHIZOME_COMPLETE_TIMEOUT_MS",
        "How long TAB completion waits for the daemon's list of processes, in milliseconds (40 if unset).",
    ),
    (
        "RHIZOME_TEST_VERSION",
        "For tests: the version rhizome claims when it greets, to play an outdated client or daemon.",
    ),
    (
        "XDG_CONFIG_HOME",
        "Where the config directory is (Linux; `~/.config` if unset), and the systemd user unit `daemon install` writes.",
    ),
    (
        "XDG_STATE_HOME",
        "Where `logs/` and `state/` are (Linux; `~/.local/state` if unset).",
    ),
    (
        "XDG_RUNTIME_DIR",
        "Where the socket and the lock are; without it, `$TMPDIR/rhizome-UID`.",
    ),
    ("TMPDIR", "See XDG_RUNTIME_DIR (`/tmp` if unset)."),
    (
        "HOME",
        "The base of the directories above, and of `~/Library/LaunchAgents` (macOS).",
    ),
    (
        "PATH",
        "Where `run` finds a command and `forward` finds kubectl, as this shell would.",
    ),
    (
        "NO_COLOR",
        "Set and not empty: no colors, unless `--color always`.",
    ),
    (
        "TERM",
        "`dumb`: no colors, and `forward` prints `rhizome: STEP` lines instead of a spinner.",
    ),
    (
        "COMPLETE",
        "Set by the completion scripts: rhizome answers the shell with candidates instead of running a command (see rhizome-completions(1)).",
    ),
    (
        "SLEEP_OVERRIDE",
        "Seconds between the lines of `rhizome sleeper`, instead of `--interval`.",
    ),
];

/// The variables rhizome sets for others.
pub const SET: [(&str, &str); 5] = [
    (
        "RHIZOME_DAEMON",
        "In the environment of every process the daemon starts: which daemon, of which home, started it, so that the next daemon finds the processes a crashed one left.",
    ),
    (
        "RHIZOME_HOST",
        "For the first target, in the environment of `exec`'s command (`127.0.0.1`), with RHIZOME_PORT and RHIZOME_URL; and printed by `forward --format env` (`export RHIZOME_HOST=127.0.0.1`) for `eval`.",
    ),
    ("RHIZOME_PORT", "The tunnel's local port; see RHIZOME_HOST."),
    (
        "RHIZOME_URL",
        "The tunnel's URL, with the target's user and database but no password; see RHIZOME_HOST.",
    ),
    (
        "RHIZOME_<ENV>_<NAME>_URL",
        "For every target of `exec`, with `_HOST` and `_PORT`: the target's name in capitals, anything but letters and digits as `_` (`RHIZOME_NA_PROD_BILLING_BOOKKEEPER_URL`). `exec` also sets DATABASE_URL (with the password) and what the first target's client reads (MYSQL_HOST, PGHOST, ...); see rhizome-exec(1).",
    ),
];

/// Where rhizome's files are, by default and with `RHIZOME_HOME`.
const FILES: [(&str, &str); 6] = [
    (
        "rhizome.toml",
        "The config file, in `$XDG_CONFIG_HOME/rhizome` (`~/.config/rhizome`; on macOS `~/Library/Application Support/rhizome`); see rhizome.toml(5).",
    ),
    (
        "logs/",
        "In `$XDG_STATE_HOME/rhizome` (`~/.local/state/rhizome`; on macOS `~/Library/Application Support/rhizome`): `ID-NAME.log` per process, rotated by size, and `daemon.YYYY-MM-DD.log`, the daemon's own.",
    ),
    (
        "state/processes.json",
        "Beside `logs/`: what the daemon runs, so that the next daemon finds the truth after a crash.",
    ),
    (
        "rhizome.sock, rhizome.lock",
        "The daemon's socket and lock, in `$XDG_RUNTIME_DIR/rhizome`, else `$TMPDIR/rhizome-UID`.",
    ),
    (
        "DIR",
        "With `RHIZOME_HOME=DIR`, all of the above are in DIR. `rhizome daemon status` shows where they are.",
    ),
    (
        "rhizome.service, rhizome.plist",
        "Written by `rhizome daemon install`: a systemd user unit in `$XDG_CONFIG_HOME/systemd/user` (`~/.config/systemd/user`), or a launchd agent in `~/Library/LaunchAgents`.",
    ),
];

/// EXIT STATUS, ENVIRONMENT and FILES of rhizome(1), in roff: they go before its EXAMPLES.
pub fn main_sections() -> String {
    let mut page = roff::section("EXIT STATUS");
    for exit in Exit::ALL {
        page += &roff::item(&roff::bold(&exit.code().to_string()), exit.meaning());
    }
    page += &roff::item("\\fIN\\fR", Exit::Command(0).meaning());
    page += &roff::section("ENVIRONMENT");
    for (name, what) in READ {
        page += &roff::item(&roff::bold(name), what);
    }
    page += ".PP\nrhizome sets these for others:\n";
    for (name, what) in SET {
        page += &roff::item(&roff::bold(name), what);
    }
    page += &files();
    page
}

/// FILES, on rhizome(1) and rhizome.toml(5).
fn files() -> String {
    let mut section = roff::section("FILES");
    for (file, what) in FILES {
        section += &roff::item(&format!("\\fI{}\\fR", roff::literal(file)), what);
    }
    section
}

/// SEE ALSO, the last section of rhizome(1).
pub fn see_also() -> String {
    format!(
        "{}\\fBrhizome.toml\\fR(5), \\fBsystemd.service\\fR(5), \\fBlaunchd.plist\\fR(5)\n",
        roff::section("SEE ALSO")
    )
}
