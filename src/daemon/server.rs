//! The daemon's socket: binding it safely, accepting clients, and the orderly stop.

use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::Arc;

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
use crate::paths::Paths;

/// Clients served at once; each costs a socket and a task. More wait in the backlog.
const MAX_CONNECTIONS: usize = 1024;

/// How long clients still connected at the end get to read their last answer.
const CONNECTIONS_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

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

/// Binds the socket (mode 0600). The lock is held, so a socket file already there is stale and is
/// replaced; anything else at that path is refused rather than deleted.
pub fn bind(socket: &Path) -> anyhow::Result<Listener> {
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
    ListenerOptions::new()
        .name(name)
        .mode(0o600)
        .create_tokio()
        .with_context(|| format!("could not listen on {}", socket.display()))
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

/// Accepts clients until the daemon is asked to stop, then stops every child and returns.
pub async fn run(daemon: Arc<Daemon>, listener: Listener) -> anyhow::Result<()> {
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
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            // A client past the limit waits in the socket's backlog until one leaves.
            accepted = accept(&listener, &limit) => match accepted {
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
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = daemon.stop.cancelled() => break,
            _ = terminate.recv() => { tracing::info!("SIGTERM received"); break }
            _ = interrupt.recv() => { tracing::info!("SIGINT received"); break }
            _ = hangup.recv() => { tracing::info!("SIGHUP received"); break }
        }
    }
    tracing::info!(
        "stopping: ending every managed process; they come back when the daemon starts again"
    );
    daemon.stop.cancel();
    // Saved before the children end, so what should run is what runs now.
    let saving = daemon.clone();
    match tokio::task::spawn_blocking(move || saving.store.freeze(|| saving.snapshot())).await {
        Ok(Err(err)) => tracing::error!("could not save the state file: {err}"),
        Err(err) => tracing::error!("could not save the state file: {err}"),
        Ok(Ok(())) => {}
    }
    daemon.shutdown.cancel();
    drop(listener);
    let _ = fs::remove_file(&daemon.paths.socket);
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
