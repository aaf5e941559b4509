//! The arguments of the commands that open tunnels (`forward`, `exec`) and list their targets.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Args, ValueHint};

use super::values::parse_seconds;
use crate::config::TransportChoice;

/// How a command waits for its tunnels, the same for every command that opens them.
#[derive(Debug, Clone, Args)]
pub struct Waiting {
    /// Seconds to wait for each tunnel to carry traffic
    #[arg(long, default_value = "60", value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// Run without a cluster: an echo server stands in for the database (also RHIZOME_SIMULATE=1)
    #[arg(long)]
    pub simulate: bool,
    /// Print no progress on stderr (a spinner on a terminal, `rhizome: STEP` lines elsewhere)
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// Target name: ENV/NAME, or NAME when one environment has it (see `rhizome targets`); or,
    /// with PORTS, a resource: svc/NAME, deploy/NAME or pod/NAME
    // Indexes are explicit: completion re-adds this argument with candidates, after the others.
    #[arg(value_name = "TARGET", index = 1)]
    pub target: String,
    /// For a resource without a config entry: [LOCAL:]REMOTE, as kubectl reads it (`8080:80`;
    /// `80` for 80 on both sides; `:80` for any free local port)
    #[arg(value_name = "PORTS", index = 2)]
    pub ports: Option<String>,
    /// The kubeconfig context of a resource without a config entry
    #[arg(long, value_name = "CONTEXT", requires = "ports")]
    pub context: Option<String>,
    /// The namespace of a resource without a config entry
    #[arg(long, value_name = "NAMESPACE", requires = "ports")]
    pub namespace: Option<String>,
    /// The kubeconfig file of a resource without a config entry (default: kubectl's)
    #[arg(long, value_name = "FILE", requires = "ports", value_hint = ValueHint::FilePath)]
    pub kubeconfig: Option<String>,
    /// What to print on stdout
    #[arg(long, value_enum, default_value_t = ForwardFormat::Url)]
    pub format: ForwardFormat,
    /// Local port to listen on, instead of the target's
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    #[command(flatten)]
    pub waiting: Waiting,
    /// When the target's tunnel runs with another configuration (rhizome.toml changed, another
    /// --port), restart it with this one instead of refusing
    #[arg(long)]
    pub replace: bool,
    /// Open the port now and build the path only when the first client connects (also the
    /// target's `lazy = true`); after `idle_stop_secs` without a client the path stops again
    #[arg(long)]
    pub lazy: bool,
    /// Put the password in the output (from the target's `password_command`, run now)
    #[arg(long)]
    pub with_password: bool,
    /// What carries the tunnel, instead of the target's `transport`: the native client, kubectl,
    /// or auto (native, else kubectl)
    #[arg(long, value_enum, value_name = "TRANSPORT")]
    pub transport: Option<TransportChoice>,
}

/// Output of `rhizome forward`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ForwardFormat {
    /// mysql://127.0.0.1:3306, with the target's user and database when it has them
    Url,
    /// 3306
    Port,
    /// the tunnel as `ps --json` shows a process, with "user" and "database" (and "password" with --with-password)
    Json,
    /// `export RHIZOME_HOST=...`, `RHIZOME_PORT`, `RHIZOME_URL` lines for `eval`
    Env,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Targets whose tunnels the command needs: ENV/NAME, or NAME when one environment has it
    // Indexes are explicit: completion re-adds this argument with candidates, after the others.
    #[arg(value_name = "TARGET", required = true, index = 1)]
    pub targets: Vec<String>,
    /// The command and its arguments
    #[arg(
        required = true,
        last = true,
        index = 2,
        value_name = "CMD",
        value_hint = ValueHint::CommandWithArguments
    )]
    pub command: Vec<OsString>,
    #[command(flatten)]
    pub waiting: Waiting,
}

#[derive(Debug, Args)]
pub struct TargetsArgs {
    /// Print JSON: {"targets": [...], "count": N, "invalid": N}, the fields in the README
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The environment whose targets to open (default: the targets with `autostart = true`)
    #[arg(value_name = "ENV")]
    pub env: Option<String>,
    /// Print JSON: {"targets": [{"target", "url", "status", "error"}], "failed": N}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub waiting: Waiting,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The environment whose tunnels to stop (default: every tunnel `rhizome up` opened)
    #[arg(value_name = "ENV")]
    pub env: Option<String>,
    /// Seconds to wait after SIGTERM before sending SIGKILL
    #[arg(long, default_value = "5", value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Duration,
}
