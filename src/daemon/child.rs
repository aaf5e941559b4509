//! The OS side of a managed process: spawning it as its own process group, and ending that group.
//!
//! Every child is the leader of a new process group, so a signal to the group reaches whatever it
//! started too, and the daemon never signals anything but the groups of its own children.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal as OsSignal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::spawner::Spawner;
use crate::protocol::Signal;

/// Starts `argv` with exactly `env` (and the daemon's mark) in `cwd`, output piped for capture,
/// stdin empty, from the spawning thread. The program is looked up in the `PATH` of `env`, never
/// run through a shell.
pub async fn spawn(
    spawner: &Spawner,
    argv: &[OsString],
    env: &[(OsString, OsString)],
    cwd: &Path,
) -> io::Result<Child> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the command is empty"))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    spawner.spawn(command).await
}

/// Describes a spawn error as the user should read it.
pub fn describe_spawn_error(argv: &[OsString], cwd: &Path, err: &io::Error) -> String {
    let program = argv
        .first()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    match err.kind() {
        io::ErrorKind::NotFound if !cwd.is_dir() => {
            format!("the working directory {} does not exist", cwd.display())
        }
        // A path is not looked up on PATH: the file itself is missing.
        io::ErrorKind::NotFound if program.contains('/') => {
            format!("`{program}`: no such file (from {})", cwd.display())
        }
        // Not a shell: one argument is one program name, spaces and all.
        io::ErrorKind::NotFound if program.contains(char::is_whitespace) => format!(
            "`{program}` was not found: no shell is used, so the whole argument was taken as one program name"
        ),
        io::ErrorKind::NotFound => {
            format!("`{program}` was not found (searched the PATH of this shell)")
        }
        io::ErrorKind::PermissionDenied => {
            format!("`{program}` is not executable (permission denied)")
        }
        _ => format!("`{program}` could not be started: {err}"),
    }
}

/// How a run is ended: `signal` to its process group first (SIGTERM unless `kill --signal` says
/// otherwise), then SIGKILL for whatever of it is left after `grace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub signal: Signal,
    pub grace: Duration,
}

impl Ending {
    /// SIGTERM, then SIGKILL after `grace`: how the daemon ends a run unless told otherwise.
    pub const fn term(grace: Duration) -> Ending {
        Ending {
            signal: Signal::Term,
            grace,
        }
    }
}

/// Ends the process group led by `child` as `ending` says (with SIGKILL first, there is nothing
/// to wait for before it). Returns the last signal sent and the time from the first signal until
/// the group was gone.
pub async fn terminate(
    child: &mut Child,
    pgid: u32,
    ending: Ending,
) -> (Signal, Duration, Option<ExitStatus>) {
    let start = Instant::now();
    if ending.signal != Signal::Kill {
        signal_group(pgid, os_signal(ending.signal));
        let waited = tokio::time::timeout(ending.grace, wait_group(child, pgid)).await;
        if let Ok(status) = waited {
            return (ending.signal, start.elapsed(), status);
        }
    }
    signal_group(pgid, OsSignal::SIGKILL);
    let status = wait_group(child, pgid).await;
    (Signal::Kill, start.elapsed(), status)
}

/// The OS's number for a signal the protocol names.
fn os_signal(signal: Signal) -> OsSignal {
    match signal {
        Signal::Term => OsSignal::SIGTERM,
        Signal::Kill => OsSignal::SIGKILL,
        Signal::Int => OsSignal::SIGINT,
        Signal::Hup => OsSignal::SIGHUP,
        Signal::Quit => OsSignal::SIGQUIT,
        Signal::Usr1 => OsSignal::SIGUSR1,
        Signal::Usr2 => OsSignal::SIGUSR2,
    }
}

/// Waits for the leader to exit and then for the rest of its group to be gone.
async fn wait_group(child: &mut Child, pgid: u32) -> Option<ExitStatus> {
    let status = child.wait().await.ok();
    group_gone(pgid).await;
    status
}

/// Polls until nothing of the group runs: `killpg(pgid, 0)` at a growing interval (a group
/// usually goes within milliseconds of its leader). Once that has taken a while, members that have
/// exited but wait to be reaped (zombies, reparented to an init that may be slow to reap them)
/// count as gone: that check scans `/proc`, so it runs off the runtime and only then.
async fn group_gone(pgid: u32) {
    let mut interval = Duration::from_millis(2);
    loop {
        if !group_signalable(pgid) {
            return;
        }
        if interval >= ZOMBIE_CHECK_AFTER {
            let live = tokio::task::spawn_blocking(move || has_live_member(pgid))
                .await
                .unwrap_or(true);
            if !live {
                return;
            }
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(MAX_POLL);
    }
}

/// The longest wait between two looks at a group that is going.
const MAX_POLL: Duration = Duration::from_millis(100);
/// Polls at this interval or longer also look for zombies.
const ZOMBIE_CHECK_AFTER: Duration = Duration::from_millis(32);

/// After the leader ended by itself, whatever it left behind in its group is stopped too: the
/// daemon promises no orphans. Runs in the background.
pub fn reap_leftovers(pgid: u32, grace: Duration) {
    if group_signalable(pgid) {
        tokio::spawn(end_group(pgid, grace));
    }
}

/// Ends a process group that is not (or no longer) our child: SIGTERM, then SIGKILL for whatever
/// is left after `grace`.
pub async fn end_group(pgid: u32, grace: Duration) {
    signal_group(pgid, OsSignal::SIGTERM);
    if tokio::time::timeout(grace, group_gone(pgid)).await.is_err() {
        signal_group(pgid, OsSignal::SIGKILL);
    }
}

/// Ends one process that leads no group: SIGTERM, then SIGKILL after `grace`.
pub async fn end_process(pid: u32, grace: Duration) {
    let target = Pid::from_raw(pid as i32);
    let alive = || nix::sys::signal::kill(target, None).is_ok();
    let _ = nix::sys::signal::kill(target, OsSignal::SIGTERM);
    let gone = async {
        let mut interval = Duration::from_millis(2);
        while alive() {
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(MAX_POLL);
        }
    };
    if tokio::time::timeout(grace, gone).await.is_err() {
        let _ = nix::sys::signal::kill(target, OsSignal::SIGKILL);
    }
}

/// Whether the group has a member the kernel still knows (a zombie counts).
fn group_signalable(pgid: u32) -> bool {
    !matches!(killpg(Pid::from_raw(pgid as i32), None), Err(Errno::ESRCH))
}

/// Scans /proc for a member of `pgid` that is not a zombie. Blocks.
#[cfg(target_os = "linux")]
fn has_live_member(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .any(|entry| {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                return false;
            };
            // Fields after the command name: state, ppid, pgrp, ...
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let group = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
            group == Some(pgid) && state != Some("Z")
        })
}

/// Without /proc, a member the kernel knows is taken to be alive.
#[cfg(not(target_os = "linux"))]
fn has_live_member(_pgid: u32) -> bool {
    true
}

fn signal_group(pgid: u32, signal: OsSignal) {
    if let Err(err) = killpg(Pid::from_raw(pgid as i32), signal)
        && err != Errno::ESRCH
    {
        tracing::warn!("could not send {signal} to process group {pgid}: {err}");
    }
}

/// An exit status as one number: the exit code, or minus the signal that ended the process.
pub fn exit_code(status: Option<ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(status) => status
            .code()
            .or_else(|| status.signal().map(|s| -s))
            .unwrap_or(-1),
        None => -1,
    }
}

/// The lifecycle line for a run that ended with `code` (as from `exit_code`).
pub fn finished_line(code: i32) -> String {
    if code < 0 {
        let name = OsSignal::try_from(-code)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| (-code).to_string());
        format!("subprocess finished (signal {name})")
    } else {
        format!("subprocess finished (exit {code})")
    }
}

/// The kernel's start time of `pid` (clock ticks since boot), which tells a process from a later
/// one that reused its pid. Linux only; elsewhere `None`, and such pids are never signalled by a
/// later daemon.
pub fn start_time(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Field 22; the fields after the command name start at field 3.
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(19)?
            .parse()
            .ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group led by a shell that ignores SIGTERM and says so on stdout once it does.
    async fn stubborn() -> (Child, u32) {
        let mut child = Command::new("sh")
            .args([
                "-c",
                "trap '' TERM; echo ready; while :; do sleep 0.05; done",
            ])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut ready = [0u8; 6];
        tokio::io::AsyncReadExt::read_exact(&mut out, &mut ready)
            .await
            .unwrap();
        let pgid = child.id().unwrap();
        (child, pgid)
    }

    #[tokio::test]
    async fn sigkill_first_does_not_wait_out_the_grace() {
        let (mut child, pgid) = stubborn().await;
        let ending = Ending {
            signal: Signal::Kill,
            grace: Duration::from_secs(60),
        };
        let (signal, took, status) = terminate(&mut child, pgid, ending).await;
        assert_eq!(signal, Signal::Kill);
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(exit_code(status), -9);
    }

    #[tokio::test]
    async fn another_first_signal_is_followed_by_sigkill_after_the_grace() {
        let (mut child, pgid) = stubborn().await;
        let ending = Ending {
            signal: Signal::Term,
            grace: Duration::from_millis(200),
        };
        let (signal, took, _) = terminate(&mut child, pgid, ending).await;
        assert_eq!(signal, Signal::Kill, "SIGTERM was ignored");
        assert!(took >= Duration::from_millis(200), "{took:?}");
    }
}
