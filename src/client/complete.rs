//! Shell completion: the script each shell loads, and the live values it asks for on every TAB.
//!
//! There is one script per shell, clap_complete's dynamic registration: on TAB the shell runs
//! `COMPLETE=SHELL rhizome -- WORDS...`, and `main` answers before anything else happens. So
//! `rhizome completions bash`, `COMPLETE=bash rhizome` and completions/rhizome.bash are the same
//! script, and every candidate comes from the clap definition (`cli.rs`) plus the functions here:
//! target names from the config, process ids and names from a running daemon, and after `run --`
//! programs and files (`complete_run`).
//!
//! Completing must be quick and harmless: it never starts a daemon, and gives up on one that does
//! not answer within `DAEMON_BUDGET`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use clap_complete::CompletionCandidate;
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Shells};

use super::Client;
use crate::forward::target::{self, Route};
use crate::names::{self, Meaning};
use crate::paths::Paths;
use crate::protocol::{Hello, ProcessInfo, Request, Response};

/// The environment variable that turns `rhizome` into a completer.
pub const VAR: &str = "COMPLETE";

/// How long a completion waits for the daemon's list, connecting included: a TAB that hangs is
/// worse than one that offers nothing. `RHIZOME_COMPLETE_TIMEOUT_MS` changes it (a slow machine,
/// the tests on a busy one).
const DAEMON_BUDGET: Duration = Duration::from_millis(40);

fn daemon_budget() -> Duration {
    std::env::var("RHIZOME_COMPLETE_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(DAEMON_BUDGET)
}

/// Answers the shell when it runs rhizome as its completer (`COMPLETE` set); otherwise returns at
/// once, having read one environment variable. In the registration script the completer is
/// whatever name rhizome was run by (`rhizome`, or the full path of a build).
pub fn answer_shell_if_asked() {
    if std::env::var_os(VAR).is_none() {
        return;
    }
    clap_complete::CompleteEnv::with_factory(command)
        .var(VAR)
        .bin("rhizome")
        .shells(SHELLS)
        .complete();
}

/// The command line as clap defines it, with the live candidates attached: the definitions stay
/// free of client code, and only a completing process pays for the lookups.
fn command() -> clap::Command {
    use clap_complete::{ArgValueCandidates, ArgValueCompleter};
    let candidates =
        |arg: clap::Arg, of: fn() -> Vec<CompletionCandidate>| arg.add(ArgValueCandidates::new(of));
    <crate::cli::Cli as clap::CommandFactory>::command()
        .mut_subcommand("logs", |c| {
            c.mut_arg("targets", |a| candidates(a, any_process))
        })
        .mut_subcommand("ps", |c| {
            c.mut_arg("targets", |a| candidates(a, any_process))
        })
        .mut_subcommand("kill", |c| {
            c.mut_arg("targets", |a| candidates(a, live_process))
                .mut_arg("signal", |a| candidates(a, signals))
        })
        .mut_subcommand("restart", |c| {
            c.mut_arg("targets", |a| candidates(a, any_process))
                .mut_arg("signal", |a| candidates(a, signals))
        })
        .mut_subcommand("exec", |c| c.mut_arg("targets", |a| candidates(a, targets)))
        .mut_subcommand("up", |c| c.mut_arg("env", |a| candidates(a, environments)))
        .mut_subcommand("down", |c| {
            c.mut_arg("env", |a| candidates(a, environments))
        })
        .mut_subcommand("forward", |c| {
            c.mut_arg("target", |a| candidates(a, targets))
        })
        .mut_subcommand("run", |c| {
            // The engine hands the words after `--` to the first positional, `before`.
            let command = || ArgValueCompleter::new(super::complete_run::command_word);
            c.mut_arg("before", |a| a.add(command()))
                .mut_arg("command", |a| a.add(command()))
        })
}

/// clap_complete's shells, with zsh's script fixed for installing as a file.
const SHELLS: Shells<'static> = Shells(&[&Bash, &Elvish, &Fish, &Powershell, &Zsh]);

/// Writes the registration script for `shell`, completing `rhizome` with the `rhizome` on PATH.
pub fn write_script(shell: clap_complete::Shell, out: &mut dyn Write) -> io::Result<()> {
    let name = shell.to_string();
    let completer: &dyn EnvCompleter = SHELLS
        .completer(&name)
        .ok_or_else(|| io::Error::other(format!("no completion script for {name}")))?;
    completer.write_registration(VAR, "rhizome", "rhizome", "rhizome", out)
}

/// `rhizome forward <TAB>`: every target in the config, with what it is.
/// `rhizome up <TAB>`: every environment in the config, with how many targets it has.
fn environments() -> Vec<CompletionCandidate> {
    let Ok(paths) = Paths::from_env() else {
        return Vec::new();
    };
    let Ok(config) = super::forward::load_config(&paths) else {
        return Vec::new();
    };
    config
        .environments
        .iter()
        .map(|(name, env)| {
            let count = env.databases.len() + env.services.len();
            CompletionCandidate::new(name).help(Some(format!("{count} targets").into()))
        })
        .collect()
}

pub fn targets() -> Vec<CompletionCandidate> {
    let Ok(paths) = Paths::from_env() else {
        return Vec::new();
    };
    let Ok(config) = super::forward::load_config(&paths) else {
        return Vec::new();
    };
    target::describe(&config)
        .into_iter()
        .map(|(name, resolved)| {
            let help = match resolved {
                Ok(t) => format!(
                    "{} {}/{}",
                    match t.route {
                        Route::Database { .. } => "database",
                        Route::Service { .. } => "service",
                    },
                    t.namespace,
                    t.resource()
                ),
                Err(err) => format!("invalid: {err}"),
            };
            CompletionCandidate::new(name).help(Some(help.into()))
        })
        .collect()
}

/// `rhizome kill -s <TAB>`: the signals `--signal` takes, by the names kill(1) lists.
fn signals() -> Vec<CompletionCandidate> {
    crate::protocol::Signal::ALL
        .iter()
        .map(|s| CompletionCandidate::new(s.short_name()).help(Some(s.to_string().into())))
        .collect()
}

/// `rhizome logs <TAB>` and `rhizome restart <TAB>`: every process the daemon remembers, finished
/// ones too (a finished one is read, or started again).
pub fn any_process() -> Vec<CompletionCandidate> {
    candidates(&fetch_processes(true))
}

/// `rhizome kill <TAB>`: the processes that are not finished.
pub fn live_process() -> Vec<CompletionCandidate> {
    candidates(&fetch_processes(false))
}

/// Ids first (`3`, described `web running`), then each name once, described by what it means as
/// the daemon reads it (`names::meaning`): `id 3, running` for its running process, the newest
/// finished one when none runs, and `2 running: ids 3, 5` when a name alone does not say which.
fn candidates(processes: &[ProcessInfo]) -> Vec<CompletionCandidate> {
    let mut by_id: Vec<&ProcessInfo> = processes.iter().collect();
    by_id.sort_by_key(|p| p.id);
    let mut out: Vec<CompletionCandidate> = by_id
        .iter()
        .map(|p| {
            CompletionCandidate::new(p.id.to_string())
                .help(Some(format!("{} {}", p.name, p.status.label()).into()))
        })
        .collect();
    let mut names: Vec<&str> = by_id.iter().map(|p| p.name.as_str()).collect();
    names.sort();
    names.dedup();
    out.extend(names.into_iter().filter_map(|name| {
        let named = by_id
            .iter()
            .filter(|p| p.name == name)
            .map(|p| (*p, !p.status.is_final()));
        let help = match names::meaning(named) {
            Meaning::Running(p) | Meaning::Finished(p) => {
                format!("id {}, {}", p.id, p.status.label())
            }
            Meaning::Several(running) => {
                let ids: Vec<String> = running.iter().map(|p| p.id.to_string()).collect();
                format!("{} running: ids {}", running.len(), ids.join(", "))
            }
            Meaning::Unknown => return None,
        };
        Some(CompletionCandidate::new(name).help(Some(help.into())))
    }));
    out
}

/// The daemon's process list, or nothing when no daemon runs or it does not answer in time.
fn fetch_processes(all: bool) -> Vec<ProcessInfo> {
    let Ok(paths) = Paths::from_env() else {
        return Vec::new();
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    runtime.block_on(async {
        let ask = async {
            // Not `connect`: meeting an older daemon, it would replace it.
            let (mut client, theirs) = Client::connect_any(&paths).await.ok()??;
            if theirs != Hello::ours() {
                return None;
            }
            // Nothing may reach the terminal while the shell completes.
            client.on_notice(|_| {});
            match client.call(&Request::Ps { all }).await.ok()? {
                Response::Ps(processes) => Some(processes),
                _ => None,
            }
        };
        tokio::time::timeout(daemon_budget(), ask)
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    })
}

/// clap_complete's zsh script ends in `compdef`, which is right for `source <(...)` but leaves
/// the first TAB with nothing when the script is installed as `_rhizome` on `$fpath`: compinit
/// autoloads the file as the completion function, and its first run would only register itself.
/// Run as that autoloaded function, it completes at once instead (as clap's static zsh scripts do).
#[derive(Debug, Clone, Copy)]
struct Zsh;

impl EnvCompleter for Zsh {
    fn name(&self) -> &'static str {
        clap_complete::env::Zsh.name()
    }

    fn is(&self, name: &str) -> bool {
        clap_complete::env::Zsh.is(name)
    }

    fn write_registration(
        &self,
        var: &str,
        name: &str,
        bin: &str,
        completer: &str,
        buf: &mut dyn Write,
    ) -> io::Result<()> {
        let mut script = Vec::new();
        clap_complete::env::Zsh.write_registration(var, name, bin, completer, &mut script)?;
        let script = String::from_utf8(script).map_err(io::Error::other)?;
        let function = format!("_clap_dynamic_completer_{}", name.replace('-', "_"));
        let register = format!("compdef {function} {bin}\n");
        let Some(head) = script.strip_suffix(&register) else {
            return Err(io::Error::other(
                "clap_complete's zsh script changed: it no longer ends in `compdef`",
            ));
        };
        write!(
            buf,
            "{head}if [ \"${{funcstack[1]}}\" = \"_{bin}\" ]; then\n    {function} \"$@\"\nelse\n    {register}fi\n"
        )
    }

    fn write_complete(
        &self,
        cmd: &mut clap::Command,
        args: Vec<OsString>,
        current_dir: Option<&Path>,
        buf: &mut dyn Write,
    ) -> io::Result<()> {
        clap_complete::env::Zsh.write_complete(cmd, args, current_dir, buf)
    }
}

#[cfg(test)]
mod tests {
    /// Attaching candidates re-adds an argument; the command must stay valid (positional
    /// indexes, required order) or every TAB would panic.
    #[test]
    fn the_completing_command_is_valid() {
        super::command().debug_assert();
    }
}
