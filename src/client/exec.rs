//! `rhizome exec TARGET... -- CMD`: open the tunnels, then run `CMD` in the foreground as this
//! process's child (never through a shell) with their addresses in its environment, and exit as
//! it exits. Passwords are fetched here and go only into `CMD`'s environment.

use std::process::{Command, ExitStatus};

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;

use super::Failure;
use super::exit::Exit;
use super::forward::{load_config, resolve};
use super::password;
use super::tunnel::{self, Opened, Wanted};
use crate::cli::ExecArgs;
use crate::forward::env::{Endpoint, variables};
use crate::paths::Paths;

pub async fn run(paths: &Paths, args: &ExecArgs) -> anyhow::Result<Exit> {
    let config = load_config(paths)?;
    let mut wanted = Vec::new();
    for name in &args.targets {
        wanted.push((name, resolve(&config, name, args.waiting.quiet)?));
    }
    // Before any tunnel: a failing password command costs nothing in the cluster, and an
    // interactive unlock is not mixed with progress lines.
    let mut passwords = Vec::new();
    for (_, (target, side)) in &wanted {
        passwords.push(match &side.access.password_command {
            Some(command) => Some(password::fetch(&target.name, command)?),
            None => None,
        });
    }
    let mut opened = Vec::new();
    for (label, (target, side)) in &wanted {
        let how = Wanted {
            label,
            waiting: &args.waiting,
            replace: false,
            lazy: None,
            transport: None,
            by_up: false,
        };
        let scheme = target.scheme.clone();
        let name = target.name.clone();
        match tunnel::open(paths, &config, target.clone(), side, &how).await? {
            Opened::Ready(info) => opened.push((name, scheme, info.local_port)),
            Opened::Interrupted => return Ok(Exit::Interrupted),
        }
    }
    let endpoints: Vec<Endpoint> = opened
        .iter()
        .zip(&wanted)
        .zip(&passwords)
        .map(
            |(((name, scheme, port), (_, (_, side))), password)| Endpoint {
                target: name,
                scheme,
                port: *port,
                access: &side.access,
                password: password.as_deref(),
            },
        )
        .collect();
    let status = run_command(&args.command, &variables(&endpoints))?;
    Ok(Exit::Command(exit_code(status)))
}

/// Runs `argv` with `vars` added to this environment, passing on every signal sent to this
/// process. Signals the terminal sends (Ctrl-C) already reach the command, which is in the
/// terminal's foreground process group with us: those are not sent a second time.
fn run_command(
    argv: &[std::ffi::OsString],
    vars: &[(String, String)],
) -> anyhow::Result<ExitStatus> {
    let shown = argv
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let Some((program, rest)) = argv.split_first() else {
        return Err(Failure::new("no command was given after `--`").into());
    };
    let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])
        .map_err(|err| Failure::new(format!("could not listen for signals: {err}")))?;
    let mut child = Command::new(program)
        .args(rest)
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .spawn()
        .map_err(|err| {
            let failure = Failure::new(format!("could not run `{shown}`: {err}"));
            match err.kind() {
                std::io::ErrorKind::NotFound => failure.hint(
                    "check the command's name; it runs without a shell (for shell syntax use `sh -c '...'`)",
                ),
                _ => failure,
            }
        })?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let handle = signals.handle();
    let relay = std::thread::spawn(move || {
        for origin in signals.forever() {
            if matches!(origin.cause, Cause::Sent(_))
                && let Ok(signal) = nix::sys::signal::Signal::try_from(origin.signal)
            {
                let _ = nix::sys::signal::kill(pid, signal);
            }
        }
    });
    let status = child.wait();
    handle.close();
    let _ = relay.join();
    status.map_err(|err| Failure::new(format!("could not wait for `{shown}`: {err}")).into())
}

/// The command's exit code, or 128 + the signal that ended it, as a shell reports it.
fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    u8::try_from(code & 0xff).unwrap_or(1)
}
