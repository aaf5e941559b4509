//! The command line, defined once with clap: the source of `--help`, completions and man pages.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueHint};
use clap_complete::Shell;

use crate::protocol::Signal;

mod signal;
mod tunnel;
mod values;

pub use self::tunnel::{
    DownArgs, ExecArgs, ForwardArgs, ForwardFormat, TargetsArgs, UpArgs, Waiting,
};

pub use self::signal::expand_signal_words;
use self::signal::parse_signal;
pub use self::values::{EnvVar, Restart, Since};
use self::values::{parse_env, parse_interval, parse_pattern, parse_seconds};

#[derive(Debug, Parser)]
#[command(
    name = "rhizome",
    version,
    about = "Keeps long-running helper processes alive, above all kubectl port-forward tunnels to databases",
    long_about = "Keeps long-running helper processes alive, above all kubectl port-forward tunnels \
                  to databases.\n\nEvery command talks to a per-user background daemon over a Unix \
                  socket and starts that daemon if it is not running. `rhizome` alone shows whether \
                  the daemon runs and the most useful commands.",
    after_help = "Examples:\n  rhizome sleeper\n  rhizome run --name web -- python3 -m http.server 8000\n  rhizome ps\n  rhizome logs -f web\n  rhizome kill web\n  rhizome forward na-prod/billing-bookkeeper"
)]
pub struct Cli {
    /// When to use colors: auto (on a terminal, unless NO_COLOR is set), always, never
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value_t = ColorWhen::Auto,
        hide_possible_values = true
    )]
    pub color: ColorWhen,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    // No doc comments: the flag's help names them all.
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start any command under the daemon, with this shell's directory and environment
    #[command(
        override_usage = "rhizome run [OPTIONS] -- <CMD>...",
        long_about = "Start any command under the daemon, with this shell's directory and environment.\n\n\
                      The command goes after `--` and is run as given, without a shell: write \
                      `sh -c '...'` for pipes, globs or `&&`. With --restart, a command that ends \
                      by itself is started again after a wait that doubles from 0.1 s up to 30 s \
                      (back to 0.1 s after a run of a minute), and its log says when; with \
                      --max-restarts N it gives up after N restarts in a row that each ended \
                      within a minute, and `ps` shows it `crash-loop`.",
        after_help = "Examples:\n  rhizome run --name web --restart on-failure -- python3 -m http.server 8000\n  rhizome run --cwd ~/src/api --env PORT=8080 --env DEBUG=1 -- ./serve\n  rhizome run --restart always --max-restarts 5 -- ./worker --queue jobs\n  rhizome run -- sh -c 'make watch 2>&1 | grep -v noise'"
    )]
    Run(RunArgs),

    /// List managed processes
    #[command(
        long_about = "List managed processes: the running ones, or with --all the finished ones \
                      the daemon remembers too.\n\nRows fit the terminal (COLUMNS, else its \
                      width): long names and commands end in `…`; `--json` has them whole. PID is \
                      empty while nothing runs (a tunnel without a live kubectl).",
        after_help = "Examples:\n  rhizome ps\n  rhizome ps web 7\n  rhizome ps --status failed,lost\n  rhizome ps --all --json | jq '.finished[] | {name, exit_code}'"
    )]
    Ps(PsArgs),

    /// Print a managed process's log, or several interleaved by time
    #[command(
        override_usage = "rhizome logs [OPTIONS] <ID|NAME|PID>...\n       rhizome logs [OPTIONS] --all",
        after_help = "Examples:\n  rhizome logs web\n  rhizome logs -n 20 -f 3\n  rhizome logs --since 10m --grep 'error|warn' web\n  rhizome logs --raw web | jq .\n  rhizome logs -f web worker          # both, each line behind [web] or [worker]\n  rhizome logs --all -n 10 -f         # every process, the last 10 lines of each, then new ones"
    )]
    Logs(LogsArgs),

    /// Stop managed processes: SIGTERM (or --signal) to the process group, SIGKILL after the timeout
    #[command(
        after_help = "A name means the running process of that name; when several run, name one by its id, or all of them with --all NAME. The signal can also be written as kill(1) takes it: -9, -KILL, -INT, -SIGHUP.\n\nExamples:\n  rhizome kill web\n  rhizome kill --all web        # every running process named web\n  rhizome kill --all --timeout 2\n  rhizome kill -s INT web       # SIGINT first, as Ctrl-C would; SIGKILL after 5 s\n  rhizome kill -9 web           # SIGKILL at once"
    )]
    Kill(KillArgs),

    /// Start processes again at once, under the same ids and logs
    #[command(
        long_about = "Start processes again as the same processes: the same id, log and command, \
                      with the environment and directory they were started with.\n\nA running \
                      process is stopped (SIGTERM, or --signal, to its process group, SIGKILL \
                      after --timeout) \
                      and started again at once, without the backoff of an automatic restart. One \
                      that has finished (exited, killed, failed) is started again under its id, \
                      as `pm2 restart` does, when it finished under the running daemon: an \
                      earlier daemon keeps too little of what is over to run it again.\n\nA \
                      tunnel keeps its local port open while kubectl is started afresh, and is \
                      rebuilt from its target's entry in rhizome.toml as it is now: a changed \
                      local_port moves it there, and a port given with `forward --port` is \
                      not kept. A target no longer in rhizome.toml restarts as it \
                      was.\n\nThe process's log says `restarted by rhizome restart`.",
        after_help = "Examples:\n  rhizome restart web\n  rhizome restart 3 4\n  rhizome restart --all web      # every running process named web\n  rhizome restart --all          # everything that runs\n  rhizome restart -s HUP web     # SIGHUP instead of SIGTERM to end the run\n  rhizome restart na-prod/billing-bookkeeper   # after editing its entry in rhizome.toml"
    )]
    Restart(RestartArgs),

    /// Control the background daemon
    #[command(
        subcommand,
        after_help = "Examples:\n  rhizome daemon status\n  rhizome daemon restart"
    )]
    Daemon(DaemonCommand),

    /// Open a tunnel to a target (or find the one already open) and print its address
    #[command(
        after_help = "A target has one tunnel: a forward finds the one that runs. When that one runs with another configuration than this forward asks for (rhizome.toml changed, another --port), the forward says what differs and is refused; `rhizome restart ENV/NAME` rebuilds the tunnel from rhizome.toml, --replace from this command, on the same id.\n\nCtrl-C stops the waiting, not the tunnel: one this command started goes on starting in the background, and it says so (`rhizome kill ENV/NAME` stops it).\n\nExamples:\n  rhizome forward na-prod/billing-bookkeeper\n  mysql -h 127.0.0.1 -P \"$(rhizome forward na-prod/billing-bookkeeper --format port)\"\n  eval \"$(rhizome forward na-prod/billing-bookkeeper --format env)\"\n  RHIZOME_SIMULATE=1 rhizome forward na-prod/billing-bookkeeper   # no cluster needed\n  rhizome forward --context staging-ctx --namespace web svc/frontend 8080:80   # no config entry\n  rhizome forward --replace --port 3307 na-prod/billing-bookkeeper"
    )]
    Forward(ForwardArgs),

    /// Open the tunnels to targets, then run a command with their addresses in its environment
    #[command(
        override_usage = "rhizome exec [OPTIONS] <TARGET>... -- <CMD>...",
        long_about = "Open the tunnels to targets (or find them open), then run a command in the foreground, without a shell, with their addresses in its environment; exit with its exit status.\n\nThe first target gives RHIZOME_HOST, RHIZOME_PORT, RHIZOME_URL (as `forward` prints it), DATABASE_URL (with the password, when the target has a `password_command`) and what its client reads: MYSQL_HOST, MYSQL_TCP_PORT, MYSQL_PWD for mysql; PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE for postgresql. Every target also gives RHIZOME_<ENV>_<NAME>_URL, _HOST and _PORT. Signals sent to rhizome (SIGINT, SIGTERM, SIGHUP, SIGQUIT) are passed to the command; the password is never sent to the daemon or written anywhere.",
        after_help = "Examples:\n  rhizome exec na-prod/billing-bookkeeper -- mysql -e 'SELECT 1'\n  rhizome exec staging/orders staging/users -- ./run-tests.sh\n  rhizome exec staging/orders -- sh -c 'psql \"$DATABASE_URL\"'"
    )]
    Exec(ExecArgs),

    /// Open the tunnels of an environment, lazily unless a target says otherwise
    #[command(
        long_about = "Open the tunnels of every target of ENV, or with no ENV of every target marked `autostart = true`: lazily (the port at once, the path on the first connection) unless a target or its environment says `lazy = false`. One line per target (TARGET, URL, STATUS); exits 1 if any could not be opened, naming which and why.",
        after_help = "Examples:\n  rhizome up staging\n  rhizome up            # the targets with autostart = true\n  rhizome up staging --json | jq -r '.targets[].url'\n  rhizome down staging"
    )]
    Up(UpArgs),

    /// Stop the tunnels `rhizome up` opened, for good
    #[command(
        long_about = "Stop the tunnels of ENV's targets, or with no ENV every tunnel `rhizome up` opened, as `kill` stops them.",
        after_help = "Examples:\n  rhizome down staging\n  rhizome down"
    )]
    Down(DownArgs),

    /// List the targets `forward` knows, from rhizome.toml and the built-in ones
    #[command(
        long_about = "List the targets `forward` knows, from rhizome.toml and the built-in ones.\n\n\
                      Rows fit the terminal like `ps`. A target the config gets wrong is listed \
                      as invalid, its reason on stderr, and the command exits 1.",
        after_help = "Examples:\n  rhizome targets\n  rhizome targets --json | jq -r '.targets[].name'"
    )]
    Targets(TargetsArgs),

    /// Print a shell completion script that completes commands, flags, targets and process ids
    #[command(
        long_about = "Print a shell completion script.\n\nThe script asks rhizome for the \
                      candidates on every TAB, so target names (from rhizome.toml) and the ids \
                      and names of managed processes (from a running daemon; completing never \
                      starts one) complete too. It is the same script as `COMPLETE=SHELL \
                      rhizome` prints, and as the repository's completions/ directory holds; it \
                      runs `rhizome`, which must be on PATH.",
        after_help = "Examples:\n  source <(rhizome completions bash)            # in ~/.bashrc\n  rhizome completions zsh > ~/.zfunc/_rhizome   # with fpath=(~/.zfunc $fpath) before compinit\n  rhizome completions fish > ~/.config/fish/completions/rhizome.fish"
    )]
    Completions {
        /// The shell to complete in
        #[arg(value_enum)]
        shell: Shell,
    },

    /// Start a test process that prints a count, one line per interval
    #[command(after_help = "Example:\n  SLEEP_OVERRIDE=0.1 rhizome sleeper --count 20")]
    Sleeper(SleeperArgs),

    /// The managed process behind `rhizome sleeper` (internal)
    #[command(name = "__sleeper", hide = true)]
    SleeperChild(SleeperArgs),

    /// The stand-in for kubectl port-forward in simulate mode (internal)
    #[command(name = "__simulate-forward", hide = true)]
    SimulateForward {
        #[arg(long)]
        remote: u16,
        /// Relay every connection to HOST:PORT instead of echoing it
        #[arg(long)]
        upstream: Option<String>,
    },

    /// Write completions/ and man/ under DIR, as checked in (`cargo run -q -- __generate .`)
    #[command(name = "__generate", hide = true)]
    Generate {
        #[arg(value_name = "DIR", value_hint = ValueHint::DirPath)]
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
pub struct SleeperArgs {
    /// How many lines to print (0, 1, ... COUNT-1)
    #[arg(long, default_value_t = 5)]
    pub count: u64,
    /// Seconds between lines; the SLEEP_OVERRIDE environment variable takes precedence
    #[arg(long, default_value_t = 1.0, value_parser = parse_interval)]
    pub interval: f64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Name shown by `ps` and accepted by `logs` and `kill` (default: the program's file name)
    #[arg(long)]
    pub name: Option<String>,
    /// When to start the command again after it ends by itself
    #[arg(long, value_enum, default_value_t = Restart::Never)]
    pub restart: Restart,
    /// With --restart: give up after N restarts in a row that each ended within a minute (`ps`
    /// shows crash-loop); without it, restarts go on for good
    #[arg(long, value_name = "N")]
    pub max_restarts: Option<u32>,
    /// Set KEY to VALUE for the command, over this shell's environment (repeatable)
    #[arg(
        long = "env",
        short = 'e',
        value_name = "KEY=VALUE",
        value_parser = clap::builder::OsStringValueParser::new().try_map(parse_env)
    )]
    pub env: Vec<EnvVar>,
    /// Run the command in DIR (relative to this shell's directory) instead of this one
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub cwd: Option<PathBuf>,
    /// Words given without `--`: only kept to say that the command goes after `--`
    #[arg(hide = true, value_name = "WORDS", allow_hyphen_values = true)]
    pub before: Vec<OsString>,
    /// The command and its arguments
    #[arg(
        required_unless_present = "before",
        last = true,
        value_name = "CMD",
        value_hint = ValueHint::CommandWithArguments
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Only these processes: a name shows those of that name (finished ones with --all), an id
    /// or pid that one process, finished or not
    #[arg(value_name = "ID|NAME|PID")]
    pub targets: Vec<String>,
    /// Also show finished processes the daemon still remembers (the newest 100)
    #[arg(long, short)]
    pub all: bool,
    /// Only processes in STATE (repeat it, or separate states with commas); a finished state
    /// shows finished processes without --all
    #[arg(long, value_name = "STATE", value_delimiter = ',')]
    pub status: Vec<crate::protocol::State>,
    /// Print JSON: {"running": [...], "count": N, "finished": [...]}, the fields in the README
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Print only the last LINES lines of each process (with --since, --grep or --raw, the last LINES shown)
    #[arg(short = 'n', long = "lines", value_name = "LINES")]
    pub lines: Option<u64>,
    /// Keep printing new lines until the processes end (Ctrl-C stops only this command)
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines from the last DURATION (90s, 10m, 1h30m) or since a time of day (14:30)
    #[arg(
        long,
        value_name = "WHEN",
        long_help = "Only lines from the last DURATION (90s, 10m, 1h30m) or since a time of day \
                     (14:30, 14:30:15).\n\nLog lines carry a time of day but no date, so each is \
                     read against today's clock: as the latest moment, at or before now, with \
                     that time. --since therefore looks back at most a day, and 14:30 before \
                     half past two means yesterday's."
    )]
    pub since: Option<Since>,
    /// Only lines whose text matches the regular expression PATTERN ((?i) ignores case)
    #[arg(long, value_name = "PATTERN", value_parser = parse_pattern)]
    pub grep: Option<regex::Regex>,
    /// Print only what the process wrote: no time stamp, no `[name] pid=N`, none of the daemon's lines (`subprocess started`, ...); with several processes, no `[name]` prefix either
    #[arg(long)]
    pub raw: bool,
    /// Every process that is not finished, interleaved; with -f also those started later, until Ctrl-C
    #[arg(long, conflicts_with = "targets")]
    pub all: bool,
    /// Ids, names or pids of the processes; several are interleaved by time, each line behind its `[name]`
    #[arg(value_name = "ID|NAME|PID", required_unless_present = "all")]
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Ids, names or pids of the processes to stop (with --all, every running process of a name)
    #[arg(value_name = "ID|NAME|PID", required_unless_present = "all")]
    pub targets: Vec<String>,
    /// Stop every running process, or with names every running process of those names
    #[arg(long)]
    pub all: bool,
    /// Seconds to wait after the first signal before sending SIGKILL
    #[arg(long, default_value = "5", value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// The first signal, by name or number: TERM, INT, HUP, QUIT, KILL (no wait), USR1, USR2
    #[arg(short, long, default_value = "TERM", value_name = "SIG", value_parser = parse_signal)]
    pub signal: Signal,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Ids, names or pids of the processes to restart (with --all, every running process of a
    /// name)
    #[arg(value_name = "ID|NAME|PID", required_unless_present = "all")]
    pub targets: Vec<String>,
    /// Restart every running process, or with names every running process of those names
    #[arg(long)]
    pub all: bool,
    /// Seconds to wait after the first signal before sending SIGKILL to the run that is ended
    #[arg(long, default_value = "5", value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// The first signal to the run that is ended: TERM, INT, HUP, QUIT, KILL (no wait), USR1, USR2
    #[arg(short, long, default_value = "TERM", value_name = "SIG", value_parser = parse_signal)]
    pub signal: Signal,
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Start the daemon in the background if it is not running
    #[command(after_help = "Example:\n  rhizome daemon start")]
    Start,
    /// Stop the daemon and everything it runs
    #[command(after_help = "Example:\n  rhizome daemon stop")]
    Stop,
    /// Stop the daemon if it runs, then start it again
    #[command(after_help = "Example (after installing a new rhizome):\n  rhizome daemon restart")]
    Restart,
    /// Show whether the daemon runs (exit 0, 3 if not, 4 if not answering), without starting it
    #[command(
        long_about = "Show whether the daemon runs (exit 0, 3 if not, 4 if not answering), without \
                      starting it; and where things are: the config file (and whether it is there), \
                      the logs directory, and whether the daemon starts at login (`daemon install`).",
        after_help = "Exit codes: 0 running, 3 not running, 4 running but not answering within 2 s (stopped, stuck, or its socket gone).\n\nExamples:\n  rhizome daemon status >/dev/null || echo \"no daemon\"\n  rhizome daemon status --json | jq .processes.count"
    )]
    Status {
        /// Print JSON: {"status", "pid", "version", ..., "processes": what `ps --all --json` prints}
        #[arg(long)]
        json: bool,
    },
    /// Run the daemon in the foreground (for systemd, launchd, or debugging)
    #[command(after_help = "Example:\n  RHIZOME_LOG=debug rhizome daemon run")]
    Run,
    /// Start the daemon at login: write a systemd user unit (Linux) or a launchd agent (macOS)
    #[command(
        long_about = "Start the daemon at login: write a systemd user unit (Linux: \
                      $XDG_CONFIG_HOME/systemd/user/rhizome.service, ~/.config/systemd/user by \
                      default) or a launchd agent (macOS: ~/Library/LaunchAgents/rhizome.plist) that \
                      runs `rhizome daemon run` by this binary's absolute path, with RHIZOME_HOME and \
                      RHIZOME_CONFIG if they are set.\n\nIt prints the command that starts the \
                      service and does not run it. Commands find the service's daemon by its socket \
                      like any other, and start one of their own only when none runs. Running it \
                      again rewrites the file for this binary and environment.",
        after_help = "Examples:\n  rhizome daemon install && systemctl --user enable --now rhizome\n  rhizome daemon status   # \"at login  installed and enabled\""
    )]
    Install,
    /// Remove what `daemon install` wrote (refused while systemd has it enabled)
    #[command(
        after_help = "Examples:\n  systemctl --user disable --now rhizome && rhizome daemon uninstall"
    )]
    Uninstall,
}

#[cfg(test)]
mod tests;
