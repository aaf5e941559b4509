//! The command line, defined once with clap: the source of `--help`, completions and man pages.

use std::ffi::OsString;

use clap::{Args, Parser, Subcommand};

use crate::protocol::RestartPolicy;

#[derive(Debug, Parser)]
#[command(
    name = "rhizome",
    version,
    about = "Keeps long-running helper processes alive, above all kubectl port-forward tunnels to databases",
    long_about = "Keeps long-running helper processes alive, above all kubectl port-forward tunnels \
                  to databases.\n\nEvery command talks to a per-user background daemon over a Unix \
                  socket and starts that daemon if it is not running.",
    after_help = "Examples:\n  rhizome sleeper\n  rhizome run --name web -- python3 -m http.server 8000\n  rhizome ps\n  rhizome logs -f web\n  rhizome kill web"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a test process that prints a count, one line per interval
    #[command(after_help = "Example:\n  SLEEP_OVERRIDE=0.1 rhizome sleeper --count 20")]
    Sleeper(SleeperArgs),

    /// Start any command under the daemon, with this shell's directory and environment
    #[command(
        after_help = "Example:\n  rhizome run --name web --restart on-failure -- python3 -m http.server 8000"
    )]
    Run(RunArgs),

    /// List managed processes
    #[command(after_help = "Examples:\n  rhizome ps\n  rhizome ps --all --json")]
    Ps(PsArgs),

    /// Print a managed process's log
    #[command(after_help = "Examples:\n  rhizome logs web\n  rhizome logs -n 20 -f 3")]
    Logs(LogsArgs),

    /// Stop managed processes: SIGTERM to the process group, SIGKILL after the timeout
    #[command(after_help = "Examples:\n  rhizome kill web\n  rhizome kill --all --timeout 2")]
    Kill(KillArgs),

    /// Control the background daemon
    #[command(subcommand)]
    Daemon(DaemonCommand),

    /// Open a tunnel to a target (or find the one already open) and print its address
    #[command(
        after_help = "Examples:\n  rhizome forward na-prod/billing-bookkeeper\n  mysql -h 127.0.0.1 -P \"$(rhizome forward na-prod/billing-bookkeeper --format port)\"\n  eval \"$(rhizome forward na-prod/billing-bookkeeper --format env)\"\n  RHIZOME_SIMULATE=1 rhizome forward na-prod/billing-bookkeeper   # no cluster needed"
    )]
    Forward(ForwardArgs),

    /// List the targets `forward` knows, from rhizome.toml and the built-in ones
    #[command(after_help = "Example:\n  rhizome targets --json")]
    Targets(TargetsArgs),

    /// The managed process behind `rhizome sleeper` (internal)
    #[command(name = "__sleeper", hide = true)]
    SleeperChild(SleeperArgs),

    /// The stand-in for kubectl port-forward in simulate mode (internal)
    #[command(name = "__simulate-forward", hide = true)]
    SimulateForward {
        #[arg(long)]
        remote: u16,
    },
}

#[derive(Debug, Clone, Args)]
pub struct SleeperArgs {
    /// How many lines to print (0, 1, ... COUNT-1)
    #[arg(long, default_value_t = 5)]
    pub count: u64,
    /// Seconds between lines; the SLEEP_OVERRIDE environment variable takes precedence
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Name shown by `ps` and accepted by `logs` and `kill` (default: the program's file name)
    #[arg(long)]
    pub name: Option<String>,
    /// When to start the command again after it ends by itself
    #[arg(long, value_enum, default_value_t = RestartPolicy::Never)]
    pub restart: RestartPolicy,
    /// The command and its arguments
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Also show finished processes the daemon still remembers (the newest 100)
    #[arg(long, short)]
    pub all: bool,
    /// Print JSON: {"running": [...], "count": N}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Print only the last LINES lines
    #[arg(short = 'n', long = "lines", value_name = "LINES")]
    pub lines: Option<u64>,
    /// Keep printing new lines until the process ends (Ctrl-C stops only this command)
    #[arg(short, long)]
    pub follow: bool,
    /// Id, name or pid of the process
    #[arg(value_name = "ID|NAME|PID")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Ids, names or pids of the processes to stop
    #[arg(
        value_name = "ID|NAME|PID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub targets: Vec<String>,
    /// Stop every running process
    #[arg(long)]
    pub all: bool,
    /// Seconds to wait after SIGTERM before sending SIGKILL
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub timeout: f64,
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Start the daemon in the background if it is not running
    Start,
    /// Stop the daemon and everything it runs
    Stop,
    /// Stop the daemon if it runs, then start it again
    Restart,
    /// Show whether the daemon runs (exit 0) or not (exit 3), without starting it
    Status,
    /// Run the daemon in the foreground (for systemd, launchd, or debugging)
    Run,
}

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// Target name, ENV/NAME (see `rhizome targets`)
    #[arg(value_name = "ENV/NAME")]
    pub target: String,
    /// What to print on stdout
    #[arg(long, value_enum, default_value_t = ForwardFormat::Url)]
    pub format: ForwardFormat,
    /// Local port to listen on, instead of the target's
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Seconds to wait for the tunnel to carry traffic
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub timeout: f64,
    /// Run without a cluster: an echo server stands in for the database (also RHIZOME_SIMULATE=1)
    #[arg(long)]
    pub simulate: bool,
    /// Print no progress on stderr
    #[arg(long, short)]
    pub quiet: bool,
}

/// Output of `rhizome forward`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ForwardFormat {
    /// mysql://127.0.0.1:3306
    Url,
    /// 3306
    Port,
    /// {"connection_string", "local_port", "sql_connection", "target", "id", "pid"}
    Json,
    /// RHIZOME_HOST=..., RHIZOME_PORT=..., RHIZOME_URL=... lines for `eval`
    Env,
}

#[derive(Debug, Args)]
pub struct TargetsArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}
