//! The daemon's socket: binding it safely, accepting clients, keeping the socket and the lock
//! file in place, and the orderly stop.

use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use interprocess::local_socket::tokio::Listener;
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::{GenericFilePath, ListenerOptions};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing_appender::non_blocking::WorkerGuard;

use super::Daemon;
use super::{handle, restore, sweep};
use crate::lock::{FileId, Lock};
use crate::paths::Paths;

/// The daemon's own log: `logs/daemon.YYYY-MM-DD.log`, daily, seven kept. The writer never drops
/// lines (`lossy(false)`): a burst waits rather than vanishes. In the foreground it also goes to
/// stderr.
pub fn init_tracing(paths: &Paths, foreground: bool) -> anyhow::Result<WorkerGuard> {
    use tracing_subscriber::prelude::*;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("daemon")
        .filename_suffix("log")
        .max_log_files(7)
        .build(&paths.logs)
        .with_context(|| format!("could not open the daemon log in {}", paths.logs.display()))?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("daemon-log")
        .finish(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("RHIZOME_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let file = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    let stderr = foreground.then(|| tracing_subscriber::fmt::layer().with_writer(io::stderr));
    tracing_subscriber::registry()
        .with(filter)
        .with(file)
        .with(stderr)
        .try_init()
        .context("could not set up the daemon log")?;
    Ok(guard)
}

/// The listening socket, and which file it is, so that the daemon can tell its own socket from
/// whatever is at the path later.
pub struct Bound {
    listener: Listener,
    id: Option<FileId>,
}

/// Binds the socket (mode 0600). The lock is held, so a socket file already there is stale and is
/// replaced; anything else at that path is refused rather than deleted.
pub fn bind(socket: &Path) -> anyhow::Result<Bound> {
    match fs::symlink_metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => fs::remove_file(socket)
            .with_context(|| format!("could not remove the stale socket {}", socket.display()))?,
        Ok(_) => anyhow::bail!(
            "{} exists and is not a socket; move it away or set RHIZOME_HOME to another directory",
            socket.display()
        ),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(err).with_context(|| format!("could not inspect {}", socket.display()));
        }
    }
    let name = socket
        .to_fs_name::<GenericFilePath>()
        .with_context(|| format!("{} cannot be a socket name", socket.display()))?;
    // The daemon removes the socket itself, and only while the file at the path is its own: the
    // listener's own clean-up would delete whatever is at the path by then.
    let listener = ListenerOptions::new()
        .name(name)
        .mode(0o600)
        .reclaim_name(false)
        .create_tokio()
        .with_context(|| format!("could not listen on {}", socket.display()))?;
    let id = FileId::at(socket).ok().flatten();
    Ok(Bound { listener, id })
}

/// Lets the daemon use as many file descriptors as the system allows it: every child costs two
/// pipes, every client a socket.
pub fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        // macOS reports an unlimited hard limit that setrlimit refuses; stay within a sane cap.
        let target = hard.min(1 << 20);
        if target > soft
            && let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, target, hard)
        {
            tracing::warn!("could not raise the open-file limit from {soft} to {target}: {err}");
        }
    }
}

/// Clients served at once; each costs a socket and a task. More wait in the backlog.
const MAX_CONNECTIONS: usize = 1024;

/// How long clients still connected at the end get to read their last answer.
const CONNECTIONS_GRACE: Duration = Duration::from_secs(2);

/// Waits for a free connection slot, then for a client.
async fn accept(
    listener: &Listener,
    limit: &Arc<Semaphore>,
) -> io::Result<(Stream, OwnedSemaphorePermit)> {
    let permit = limit
        .clone()
        .acquire_owned()
        .await
        .map_err(io::Error::other)?;
    Ok((listener.accept().await?, permit))
}

/// How often the daemon checks that its socket and lock file are still there.
const WATCH_FILES: Duration = Duration::from_secs(1);

/// What ended the accept loop.
enum Stop {
    /// A client or a signal asked: the state is saved, the children come back next time.
    Asked,
    /// Another daemon holds the lock of this home now: it is the one that serves, and the state
    /// file is its own.
    Replaced,
}

/// Accepts clients until the daemon is asked to stop, then stops every child and returns.
pub async fn run(daemon: Arc<Daemon>, mut socket: Bound, lock: &mut Lock) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    tracing::info!(
        "daemon {} started, pid {}, socket {}",
        crate::protocol::VERSION,
        std::process::id(),
        daemon.paths.socket.display()
    );
    sweep::sweep(&daemon).await;
    restore::restore(&daemon).await;
    tokio::spawn(daemon.clone().keep_state_saved());
    tokio::spawn({
        let daemon = daemon.clone();
        async move { daemon.heartbeat.run(daemon.shutdown.clone()).await }
    });
    let mut watch = tokio::time::interval(WATCH_FILES);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let stop = loop {
        tokio::select! {
            // A client past the limit waits in the socket's backlog until one leaves.
            accepted = accept(&socket.listener, &limit) => match accepted {
                Ok((stream, permit)) => {
                    let daemon = daemon.clone();
                    daemon.connections.clone().spawn(async move {
                        handle::connection(daemon, stream).await;
                        drop(permit);
                    });
                }
                Err(err) => {
                    tracing::warn!("could not accept a client: {err}");
                    // Out of file descriptors, most likely: give clients time to leave.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = watch.tick() => {
                if keep_files(&daemon.paths, &mut socket, lock).await.is_err() {
                    break Stop::Replaced;
                }
            }
            _ = daemon.stop.cancelled() => break Stop::Asked,
            _ = terminate.recv() => { tracing::info!("SIGTERM received"); break Stop::Asked }
            _ = interrupt.recv() => { tracing::info!("SIGINT received"); break Stop::Asked }
            _ = hangup.recv() => { tracing::info!("SIGHUP received"); break Stop::Asked }
        }
    };
    tracing::info!(
        "stopping: ending every managed process; they come back when the daemon starts again"
    );
    daemon.stop.cancel();
    match stop {
        // Saved before the children end, so what should run is what runs now.
        Stop::Asked => {
            let saving = daemon.clone();
            let saved =
                tokio::task::spawn_blocking(move || saving.store.freeze(|| saving.snapshot()))
                    .await
                    .unwrap_or_else(|err| Err(io::Error::other(err)));
            if let Err(err) = saved {
                tracing::error!("could not save the state file: {err}");
            }
        }
        Stop::Replaced => daemon.store.abandon(),
    }
    daemon.shutdown.cancel();
    let Bound { listener, id } = socket;
    drop(listener);
    // Only our own socket: another daemon's may be at the path by now.
    if id.is_some() && FileId::at(&daemon.paths.socket).ok().flatten() == id {
        let _ = fs::remove_file(&daemon.paths.socket);
    }
    daemon.supervisors.close();
    daemon.supervisors.wait().await;
    daemon.connections.close();
    if tokio::time::timeout(CONNECTIONS_GRACE, daemon.connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("some clients were still connected when the daemon stopped");
    }
    daemon.writer.flush().await;
    tracing::info!("daemon stopped");
    Ok(())
}

/// Puts back the lock file and the socket when something removed them (tmp cleaners do): without
/// the socket no client finds this daemon, and without the lock file the next client would start
/// a second daemon for the same home. `Err` when another daemon holds the lock now.
async fn keep_files(paths: &Paths, socket: &mut Bound, lock: &mut Lock) -> Result<(), ()> {
    let (lock_path, socket_path) = (paths.lock.clone(), paths.socket.clone());
    let found = tokio::task::spawn_blocking(move || {
        (FileId::at(&lock_path).ok(), FileId::at(&socket_path).ok())
    })
    .await;
    let Ok((lock_at, socket_at)) = found else {
        return Ok(());
    };
    if lock_at.is_some_and(|at| at != Some(lock.id())) {
        let paths_now = paths.clone();
        let relocked = tokio::task::spawn_blocking(move || relock(&paths_now)).await;
        match relocked {
            Ok(Ok(Some(new))) => {
                tracing::warn!(
                    "the lock file {} was removed or replaced; it is back, locked by this daemon",
                    paths.lock.display()
                );
                *lock = new;
            }
            Ok(Ok(None)) => {
                // Held by someone else. Only a daemon that wrote its pid counts: a client taking
                // the lock for an instant to see whether it is free does not.
                let other = crate::lock::read_pid(&paths.lock).filter(|&pid| {
                    pid != std::process::id()
                        && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None)
                            .is_ok()
                });
                if let Some(pid) = other {
                    tracing::error!(
                        "the lock file {} was removed, and another daemon (pid {pid}) has locked a new one; it serves this home now, so this daemon stops",
                        paths.lock.display()
                    );
                    return Err(());
                }
            }
            Ok(Err(err)) => tracing::warn!(
                "the lock file {} was removed, and could not be made again: {err:#}",
                paths.lock.display()
            ),
            Err(_) => {}
        }
    }
    if socket_at.is_some_and(|at| at.is_none()) {
        match bind(&paths.socket) {
            Ok(bound) => {
                tracing::warn!(
                    "the socket {} was removed; it is back",
                    paths.socket.display()
                );
                *socket = bound;
            }
            Err(err) => {
                tracing::warn!("the socket was removed, and binding it again failed: {err:#}")
            }
        }
    }
    Ok(())
}

/// Makes the lock file again (and its directory, if that went too) and locks it with this pid.
fn relock(paths: &Paths) -> anyhow::Result<Option<Lock>> {
    paths.ensure_dirs()?;
    let Some(mut lock) = Lock::try_acquire(&paths.lock)? else {
        return Ok(None);
    };
    lock.write_pid()?;
    Ok(Some(lock))
}
