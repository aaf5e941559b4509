//! The one thread that starts every child, and the mark every child carries.
//!
//! A daemon that dies hard (SIGKILL, OOM) cannot stop its children, and a child exists before its
//! pid can be written to the state file. Two things make sure no child outlives its daemon
//! unnoticed, neither of which depends on the state file:
//!
//! - On Linux every child is forked by this thread, which lives as long as the daemon, with
//!   `PR_SET_PDEATHSIG` = SIGKILL: the kernel kills the child the moment the daemon is gone. (The
//!   death signal fires when the forking *thread* exits, which is why one long-lived thread forks
//!   them all instead of whichever runtime worker happens to run.)
//! - Everywhere, each child's environment carries `RHIZOME_DAEMON=<instance>@<home>`, inherited by
//!   whatever it starts. The next daemon of the same home looks for processes marked by another
//!   instance and ends them (`sweep.rs`), even those that left their process group.

use std::io;
use std::sync::mpsc as std_mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// The environment variable that marks a child as this home's, started by which daemon.
pub const MARK: &str = "RHIZOME_DAEMON";

/// Which daemon, of which home, started a process: `<instance>@<home>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// Unique to one daemon's life: its pid and the moment it started.
    pub instance: String,
    pub home: String,
}

impl Mark {
    /// The mark of the daemon starting now in `home`.
    pub fn new(home: &std::path::Path) -> Mark {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Mark {
            instance: format!("{}-{started}", std::process::id()),
            home: home.display().to_string(),
        }
    }

    /// The variable's value.
    pub fn value(&self) -> String {
        format!("{}@{}", self.instance, self.home)
    }

    /// Reads a value written by `value`.
    pub fn parse(value: &str) -> Option<Mark> {
        let (instance, home) = value.split_once('@')?;
        Some(Mark {
            instance: instance.to_string(),
            home: home.to_string(),
        })
    }
}

/// A command to start, and where its child goes.
struct Job {
    command: Command,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// The handle to the spawning thread.
pub struct Spawner {
    jobs: std_mpsc::Sender<Job>,
    mark: Mark,
}

impl Spawner {
    /// Starts the thread. It enters `runtime`, so the children it starts are reaped and awaited
    /// there like any other.
    pub fn start(runtime: tokio::runtime::Handle, mark: Mark) -> io::Result<Spawner> {
        let (jobs, queue) = std_mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("spawner".into())
            .spawn(move || {
                let _entered = runtime.enter();
                for mut job in queue {
                    let _ = job.reply.send(job.command.spawn());
                }
            })?;
        Ok(Spawner { jobs, mark })
    }

    /// The mark this daemon's children carry.
    pub fn mark(&self) -> &Mark {
        &self.mark
    }

    /// Starts `command`, marked, from the spawning thread.
    pub async fn spawn(&self, mut command: Command) -> io::Result<Child> {
        command.env(MARK, self.mark.value());
        die_with_the_daemon(&mut command);
        let (reply, child) = oneshot::channel();
        self.jobs
            .send(Job { command, reply })
            .map_err(|_| io::Error::other("the daemon's spawning thread is gone"))?;
        child
            .await
            .map_err(|_| io::Error::other("the daemon's spawning thread is gone"))?
    }
}

/// Asks the kernel to kill the child when the thread that forked it (the spawner, which lives as
/// long as the daemon) is gone; a child whose daemon died before it got that far exits at once.
#[cfg(target_os = "linux")]
fn die_with_the_daemon(command: &mut Command) {
    let daemon = nix::unistd::getpid();
    // SAFETY: between fork and exec only async-signal-safe calls: prctl, getppid, _exit.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            if nix::unistd::getppid() != daemon {
                nix::libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Elsewhere the mark and the next daemon's sweep are the guarantee.
#[cfg(not(target_os = "linux"))]
fn die_with_the_daemon(_command: &mut Command) {}
