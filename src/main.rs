//! The `rhizome` binary: parse the command line, then act as the client, the daemon, or a
//! managed test process.

use std::process::ExitCode;

use clap::Parser;
use rhizome::cli::{Cli, Command, DaemonCommand};
use rhizome::client::exit::Exit;
use rhizome::client::output::{StdoutError, note};
use rhizome::client::sanitize;
use rhizome::client::style::{ERROR, HINT, Paint};
use rhizome::client::{self, Failure};
use rhizome::paths::{PathError, Paths};

fn main() -> ExitCode {
    // A shell asking for completions (`COMPLETE` set) is answered here; otherwise this costs one
    // environment lookup.
    client::complete::answer_shell_if_asked();
    // `kill -9 web` as kill(1) spells it: clap would take `-9` for an unknown flag.
    let args = rhizome::cli::expand_signal_words(std::env::args_os());
    client::style::choose_early(args.iter().cloned());
    let cli = Cli::parse_from(args);
    client::style::choose(cli.color);
    match run(cli) {
        Ok(exit) => exit.into(),
        Err(err) => report(&err).into(),
    }
}

/// Says what ended the command, as an `error:` line and perhaps a `hint:`, and how it exits. The
/// one place a failed write to stdout is judged: a reader that went away (`rhizome ps | head -1`)
/// got what it wanted and the command ends quietly; any other failure is an error. Messages
/// carry names, commands and kubectl's words: their control characters are shown escaped.
fn report(err: &anyhow::Error) -> Exit {
    let paint = Paint::stderr();
    let error = paint.paint(ERROR, "error:");
    if let Some(stdout) = err.downcast_ref::<StdoutError>() {
        if stdout.is_closed() {
            return Exit::Success;
        }
        note(format_args!("{error} {stdout}"));
        return Exit::Failure;
    }
    // A path refused by the daemon's own start (`daemon run`, `daemon start`) says its fix too.
    let from_path = err.downcast_ref::<PathError>().map(Failure::from);
    match err.downcast_ref::<Failure>().or(from_path.as_ref()) {
        Some(failure) => {
            note(format_args!("{error} {}", sanitize::text(&failure.message)));
            if let Some(hint) = &failure.hint {
                let hint = sanitize::text(hint);
                note(format_args!("{} {hint}", paint.paint(HINT, "hint:")));
            }
            failure.code
        }
        None => {
            note(format_args!(
                "{error} {}",
                sanitize::text(&format!("{err:#}"))
            ));
            Exit::Failure
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Exit> {
    let command = match cli.command {
        // Managed children of the daemon: no daemon, no paths needed.
        Some(Command::SleeperChild(args)) => {
            return Ok(Exit::of_status(rhizome::sleeper::run(&args)));
        }
        Some(Command::SimulateForward { remote, upstream }) => {
            return Ok(Exit::of_status(rhizome::forward::simulate::run(
                remote,
                upstream.as_deref(),
            )));
        }
        // Neither needs a daemon or the paths.
        Some(Command::Completions { shell }) => return client::generate::print_script(shell),
        Some(Command::Generate { dir }) => return client::generate::run(&dir),
        Some(command) => command,
        None => return client::overview::run(),
    };
    let paths = Paths::from_env()?;
    // Commands without a runtime: `start` forks, `run` builds its own, `targets` reads a file,
    // `install` and `uninstall` write one.
    match &command {
        Command::Daemon(DaemonCommand::Start) => return client::daemon::start(&paths),
        Command::Daemon(DaemonCommand::Run) => {
            return rhizome::daemon::run_foreground(&paths).map(Exit::of_status);
        }
        Command::Targets(args) => return client::targets::run(&paths, args),
        Command::Daemon(DaemonCommand::Install) => return client::install::install(&paths),
        Command::Daemon(DaemonCommand::Uninstall) => return client::install::uninstall(),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match &command {
            Command::Sleeper(args) => client::spawn::sleeper(&paths, args).await,
            Command::Run(args) => client::spawn::run(&paths, args).await,
            Command::Ps(args) => client::ps::run(&paths, args).await,
            Command::Logs(args) => client::logs::run(&paths, args).await,
            Command::Kill(args) => client::kill::run(&paths, args).await,
            Command::Restart(args) => client::restart::run(&paths, args).await,
            Command::Forward(args) => client::forward::forward(&paths, args).await,
            Command::Exec(args) => client::exec::run(&paths, args).await,
            Command::Up(args) => client::up::up(&paths, args).await,
            Command::Down(args) => client::up::down(&paths, args).await,
            Command::Daemon(DaemonCommand::Status { json }) => {
                client::daemon::status(&paths, *json).await
            }
            Command::Daemon(DaemonCommand::Stop) => client::daemon::stop(&paths).await,
            Command::Daemon(DaemonCommand::Restart) => client::daemon::restart(&paths).await,
            Command::Daemon(
                DaemonCommand::Start
                | DaemonCommand::Run
                | DaemonCommand::Install
                | DaemonCommand::Uninstall,
            )
            | Command::Targets(_)
            | Command::SleeperChild(_)
            | Command::SimulateForward { .. }
            | Command::Completions { .. }
            | Command::Generate { .. } => {
                unreachable!("handled before the runtime is built")
            }
        }
    })
}
