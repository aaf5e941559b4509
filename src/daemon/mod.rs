//! The daemon: one per home, holding the process table and serving clients on the socket.
//!
//! `start` detaches a daemon into the background (or finds one already there); `run_foreground`
//! serves in the calling process. Both take the lock before anything else, so at most one
//! daemon per home ever serves.

pub mod backoff;
pub mod child;
mod handle;
pub mod heartbeat;
pub mod logs;
mod phase;
pub mod process;
mod restore;
mod server;
pub mod spawner;
pub mod state;
pub mod supervise;
mod sweep;
pub mod table;
pub mod work;

use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::logs::writer::LogWriter;
use self::table::Table;
use crate::config::Rotation;
use crate::lock::{self, Lock};
use crate::paths::Paths;
use crate::protocol::ErrorReply;

/// How long a child whose start could not be saved gets to stop.
const UNDO_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// State shared by every task of the daemon.
pub struct Daemon {
    pub paths: Paths,
    pub table: Table,
    pub writer: LogWriter,
    pub rotation: Rotation,
    /// The desired state on disk.
    pub store: state::Store,
    /// Cancelled when a client or a signal asks the daemon to stop.
    pub stop: CancellationToken,
    /// Cancelled once the state is saved for the last time: supervisors then end their children.
    pub shutdown: CancellationToken,
    /// Supervisors, which must all finish (their children stopped) before the daemon exits.
    pub supervisors: TaskTracker,
    /// Client connections, waited for (briefly) after the supervisors, so that every client is
    /// told how its request ended.
    pub connections: TaskTracker,
    pub started: Instant,
    /// Something the next client should be told, once (a state file that had to be set aside).
    pub notice: std::sync::Mutex<Option<String>>,
    /// The proxy port each database target was last found on, a head start for its next tunnel.
    pub proxy_ports: supervise::tunnel::ProxyPorts,
    /// Starts every child, marked as this daemon's (see `spawner.rs`).
    pub spawner: spawner::Spawner,
    /// Tells native tunnels when the daemon did not run for a while (a sleep, a freeze).
    pub heartbeat: heartbeat::Heartbeat,
}

impl Daemon {
    /// A daemon with an empty table, whose logs go through `writer`.
    pub fn new(
        paths: Paths,
        writer: LogWriter,
        rotation: Rotation,
        spawner: spawner::Spawner,
    ) -> Arc<Daemon> {
        Arc::new(Daemon {
            spawner,
            store: state::Store::new(&paths.state),
            paths,
            table: Table::default(),
            writer,
            rotation,
            stop: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            supervisors: TaskTracker::new(),
            connections: TaskTracker::new(),
            started: Instant::now(),
            notice: std::sync::Mutex::new(None),
            proxy_ports: Default::default(),
            heartbeat: Default::default(),
        })
    }

    /// A new table entry for `id` and its log: the one way an entry is built.
    pub fn new_process(
        &self,
        id: u32,
        name: String,
        work: process::Work,
    ) -> (
        Arc<process::Process>,
        tokio::sync::mpsc::Receiver<process::Order>,
    ) {
        let log = Arc::new(logs::ProcessLog::new(
            &self.paths.logs,
            id,
            &name,
            self.rotation,
        ));
        process::Process::new(id, name, work, log, self.store.changed.clone())
    }

    /// Writes a line of the daemon's own into a process's log, among the process's output.
    pub async fn say(&self, process: &process::Process, message: &str) {
        let mut fmt = logs::format::LineFormatter::new(&process.name, None);
        self.writer
            .append(&process.log, fmt.lifecycle(message))
            .await;
    }

    /// The refusal of anything new once the daemon is stopping.
    pub fn refuse_if_stopping(&self) -> Result<(), ErrorReply> {
        if self.stop.is_cancelled() {
            return Err(crate::protocol::ErrorReply::new(
                "the daemon is stopping and starts nothing new",
            )
            .with_hint("run the command again in a moment"));
        }
        Ok(())
    }

    /// Called once a process is final: its log is closed, and the oldest finished processes are
    /// forgotten.
    pub async fn retire(self: &Arc<Self>, process: &process::Process) {
        self.writer.close(&process.log).await;
        self.forget_old().await;
    }

    /// Forgets the oldest finished processes and deletes their logs, once the state file no
    /// longer names them: a daemon that dies in between leaves files the next one deletes, never
    /// an entry whose log is gone.
    pub async fn forget_old(self: &Arc<Self>) {
        let forgotten = self.table.prune();
        if forgotten.is_empty() {
            return;
        }
        // Unsaved, or the last file was written before the prune: the file may still name them,
        // so their logs stay, and the next daemon forgets them again.
        if self.persist().await.is_err() || self.store.is_frozen() {
            return;
        }
        for process in forgotten {
            self.writer.remove(&process.log).await;
        }
    }

    /// The table as the state file should say it.
    pub fn snapshot(&self) -> state::StateFile {
        let (next_id, processes) = self.table.all();
        state::snapshot(next_id, &processes)
    }

    /// Writes the state file now. Called before a new process is reported started, so that what a
    /// user was told runs is on disk before a crash could lose it.
    ///
    /// The error names the file: a start that cannot be saved is undone by its caller.
    pub async fn persist(self: &Arc<Self>) -> Result<(), String> {
        let daemon = self.clone();
        let saved = tokio::task::spawn_blocking(move || daemon.store.save(|| daemon.snapshot()))
            .await
            .unwrap_or_else(|err| Err(std::io::Error::other(err)));
        saved.map_err(|err| {
            let message = format!(
                "could not save the state file {}: {err}",
                self.store.path().display()
            );
            tracing::error!("{message}");
            message
        })
    }

    /// Saves the state after a start; a start that cannot be saved is undone (the child stopped,
    /// the entry failed), since after a crash the next daemon would not know it.
    pub async fn persist_start(
        self: &Arc<Self>,
        process: &process::Process,
    ) -> Result<(), ErrorReply> {
        let Err(message) = self.persist().await else {
            return Ok(());
        };
        process.kill(child::Ending::term(UNDO_GRACE)).await;
        process.set_phase(process::Phase::Failed(message.clone()));
        Err(
            ErrorReply::new(format!("{} was stopped again: {message}", process.name))
                .with_hint("free space on that disk (or fix its permissions) and start it again"),
        )
    }

    /// Rewrites the state file whenever the table changes, coalescing bursts of changes.
    pub async fn keep_state_saved(self: Arc<Self>) {
        loop {
            self.store.changed.notified().await;
            let _ = self.persist().await;
        }
    }

    /// The notice for the next client, taken so that it is told once.
    pub fn take_notice(&self) -> Option<String> {
        self.notice.lock().ok()?.take()
    }
}

/// What `start` found.
pub enum Started {
    /// A new daemon is serving, with this pid.
    New(u32),
    /// Another process holds the lock: a daemon is running or just starting.
    AlreadyRunning,
}

/// Starts a daemon in the background and returns once it serves, or finds that one holds the lock.
///
/// Runs before any runtime or thread exists in this process: `daemonize` forks, and a fork keeps
/// only the calling thread. The detached grandchild reports back through a pipe once its socket is
/// bound, or sends the error that stopped it.
pub fn start(paths: &Paths) -> anyhow::Result<Started> {
    paths.ensure_dirs()?;
    let Some(lock) = Lock::try_acquire(&paths.lock)
        .with_context(|| format!("could not open the lock file {}", paths.lock.display()))?
    else {
        return Ok(Started::AlreadyRunning);
    };
    let output = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(paths.logs.join("daemon.out"))
        .with_context(|| format!("could not open {}", paths.logs.join("daemon.out").display()))?;
    let (mut ready_rx, ready_tx) = io::pipe()?;
    let outcome = daemonize::Daemonize::new()
        .working_directory("/")
        .umask(0o077)
        .stdout(output.try_clone()?)
        .stderr(output)
        .execute();
    match outcome {
        daemonize::Outcome::Parent(result) => {
            result.context("could not fork the daemon")?;
            drop(ready_tx);
            drop(lock);
            let mut report = String::new();
            ready_rx.read_to_string(&mut report)?;
            match report.strip_prefix("ready ") {
                Some(pid) => Ok(Started::New(pid.trim().parse().unwrap_or(0))),
                None if report.is_empty() => anyhow::bail!(
                    "the daemon exited while starting; its output is in {}",
                    paths.logs.join("daemon.out").display()
                ),
                None => anyhow::bail!("{}", report.trim()),
            }
        }
        daemonize::Outcome::Child(result) => {
            drop(ready_rx);
            let code = match result {
                Ok(_) => serve(paths.clone(), lock, Some(ready_tx)),
                Err(err) => {
                    let _ = write!(&ready_tx, "could not detach the daemon: {err}");
                    1
                }
            };
            std::process::exit(code);
        }
    }
}

/// Serves in the foreground until stopped: `rhizome daemon run`.
pub fn run_foreground(paths: &Paths) -> anyhow::Result<i32> {
    paths.ensure_dirs()?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let lock = Lock::try_acquire(&paths.lock)
        .with_context(|| format!("could not open the lock file {}", paths.lock.display()))?
        .with_context(|| {
            let pid = lock::read_pid(&paths.lock)
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default();
            format!(
                "a daemon{pid} already runs for {}; stop it with `rhizome daemon stop`",
                paths.home.display()
            )
        })?;
    Ok(serve(paths.clone(), lock, None))
}

/// Builds the runtime and serves; returns the process exit code. Errors before the socket is bound
/// go to `ready` (the starting client shows them); later ones to the daemon's log.
fn serve(paths: Paths, mut lock: Lock, ready: Option<io::PipeWriter>) -> i32 {
    let report = |ready: &Option<io::PipeWriter>, message: &str| match ready {
        Some(pipe) => {
            let _ = write!(&*pipe, "{message}");
        }
        None => eprintln!("error: {message}"),
    };
    if let Err(err) = lock.write_pid() {
        report(
            &ready,
            &format!(
                "could not write the lock file {}: {err}",
                paths.lock.display()
            ),
        );
        return 1;
    }
    let _log_guard = match server::init_tracing(&paths, ready.is_none()) {
        Ok(guard) => guard,
        Err(err) => {
            report(&ready, &format!("{err:#}"));
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            report(
                &ready,
                &format!("could not start the daemon's runtime: {err}"),
            );
            return 1;
        }
    };
    let listener = match runtime.block_on(async { server::bind(&paths.socket) }) {
        Ok(listener) => listener,
        Err(err) => {
            report(&ready, &format!("{err:#}"));
            return 1;
        }
    };
    let (writer, writer_thread) = match LogWriter::start() {
        Ok(started) => started,
        Err(err) => {
            report(&ready, &format!("could not start the log writer: {err}"));
            return 1;
        }
    };
    server::raise_fd_limit();
    // A broken config must not keep the daemon from supervising: it runs with the defaults and
    // the commands that need the config report the error.
    let config_path = crate::config::path(&paths);
    let rotation = match crate::config::load(&config_path) {
        Ok(config) => config.logs.rotation(),
        Err(err) => {
            tracing::warn!("{err}; using the default log rotation");
            Rotation::default()
        }
    };
    if let Some(mut pipe) = ready {
        let _ = write!(pipe, "ready {}", std::process::id());
    }
    let mark = spawner::Mark::new(&paths.home);
    let spawner = match spawner::Spawner::start(runtime.handle().clone(), mark) {
        Ok(spawner) => spawner,
        Err(err) => {
            tracing::error!("could not start the spawning thread: {err}");
            return 1;
        }
    };
    let daemon = Daemon::new(paths, writer, rotation, spawner);
    let result = runtime.block_on(server::run(daemon, listener, &mut lock));
    // Every log handle is gone with the runtime's tasks; the writer thread then drains and ends.
    drop(runtime);
    let _ = writer_thread.join();
    drop(lock);
    match result {
        Ok(()) => 0,
        Err(err) => {
            tracing::error!("{err:#}");
            1
        }
    }
}
