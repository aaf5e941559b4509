//! The whole conversation between a client and the daemon: `Request`, `Response` and what they carry.
//!
//! Messages are encoded with postcard, which identifies enum variants by position. A new
//! variant must therefore only ever be appended, and the first exchange on every connection is a
//! `Hello` carrying the version, so that a client and a daemon of different builds find out before
//! anything else is decoded. `Hello` and `Stop` are the first variants and must stay so: every
//! version of rhizome can greet and stop every other.

mod forward;
mod logs;
mod restart;
mod signal;
mod state;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use self::forward::{
    ForwardInfo, ForwardRequest, Route, Target, Tool, Transport, TunnelInfo, TunnelSettings,
};
pub use self::logs::{LogPart, MergedLogsRequest, MergedPiece};
pub use self::restart::{Configured, RestartReport, RestartRequest, Stopped};
pub use self::signal::Signal;
pub use self::state::State;

/// Bumped whenever the encoding of any message changes.
pub const PROTOCOL: u32 = 5;

/// The version string exchanged in the handshake; two builds talk only when these are equal.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Frames larger than this are refused by both sides, so a corrupt length cannot exhaust memory.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// The first message on every connection, in both directions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub version: String,
}

impl Hello {
    /// This build's greeting. `RHIZOME_TEST_VERSION` makes a process claim another version, so
    /// that tests can run a daemon that looks outdated.
    pub fn ours() -> Self {
        Hello {
            protocol: PROTOCOL,
            version: std::env::var("RHIZOME_TEST_VERSION").unwrap_or_else(|_| VERSION.to_string()),
        }
    }
}

/// What a client asks of the daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Must stay variant 0.
    Hello(Hello),
    /// Must stay variant 1: asks the daemon to stop its children and exit.
    Stop,
    Status,
    Ps {
        all: bool,
    },
    Spawn(SpawnRequest),
    Logs(LogsRequest),
    Kill(KillRequest),
    Forward(Box<ForwardRequest>),
    /// The logs of several processes, interleaved by time.
    MergedLogs(MergedLogsRequest),
    Restart(RestartRequest),
}

/// What the daemon answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// Must stay variant 0.
    Hello(Hello),
    /// Must stay variant 1: the request failed; the connection stays usable.
    Error(ErrorReply),
    /// The daemon has begun to stop; the connection closes when it is gone.
    Stopping,
    Status(DaemonStatus),
    Ps(Vec<ProcessInfo>),
    Spawned(ProcessInfo),
    /// Raw bytes of a log, already formatted line by line.
    LogChunk(Vec<u8>),
    /// The log ends here: the process finished (with `-f`), or everything asked for was sent.
    LogEnd,
    Killed(Vec<KillReport>),
    /// A step of a request that takes a while (`forward`), for the user to watch.
    Progress(String),
    Forwarded(ForwardInfo),
    /// Something the user should know, told once, before the answer to a request.
    Notice(String),
    /// Part of a log will never be sent, at this point of the stream: it went before it was read.
    LogGap(LogGap),
    /// The tunnel a `forward` waits for was created by this request (and goes on starting should
    /// the client leave); sent before its first step.
    TunnelCreated,
    /// Pieces of the logs a `MergedLogs` asked for, in the order they are to be shown.
    MergedLog(Vec<MergedPiece>),
    /// Of a `MergedLogs`: what the logs held when asked has all been sent; with `follow`, what
    /// comes next was written since.
    LogCaughtUp,
    Restarted(Vec<RestartReport>),
}

/// A failed request, as a sentence for the user and, where one is known, what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub message: String,
    pub hint: Option<String>,
}

impl ErrorReply {
    pub fn new(message: impl Into<String>) -> Self {
        ErrorReply {
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Environment and working directory of the client, so children run as if started from its shell.
/// Bytes rather than strings: neither has to be UTF-8.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientContext {
    pub cwd: Vec<u8>,
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Start a managed process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpawnRequest {
    pub name: String,
    pub kind: CommandKind,
    /// Program and arguments; never passed through a shell.
    pub argv: Vec<Vec<u8>>,
    pub restart: RestartPolicy,
    pub context: ClientContext,
    /// Restarts in a row, each of a run that ended within a minute, after which the process
    /// stops in `CrashLoop`; `None` restarts for good.
    pub max_restarts: Option<u32>,
}

/// Print a process's log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogsRequest {
    /// `<ID|NAME|PID>`.
    pub target: String,
    /// Only the last this many lines; all that are kept when `None`.
    pub lines: Option<u64>,
    pub follow: bool,
}

/// Stop managed processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KillRequest {
    /// `<ID|NAME|PID>`s; with `all`, a name means every running process of that name.
    pub targets: Vec<String>,
    /// With no targets: every running process.
    pub all: bool,
    /// How long to wait after the first signal before SIGKILL.
    pub timeout_ms: u64,
    /// The first signal sent to each process group (`kill --signal`).
    pub signal: Signal,
}

/// What `kill` did to one process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KillReport {
    pub id: u32,
    pub name: String,
    pub pid: Option<u32>,
    pub outcome: KillOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KillOutcome {
    /// The process group ended after `signal`, `elapsed_ms` after the first signal was sent.
    Ended { signal: Signal, elapsed_ms: u64 },
    /// It was not running (finished, or waiting to restart); nothing was signalled, and it
    /// will not be restarted.
    NotRunning,
    /// Another kill was ending it already; this is how that ended.
    AlreadyKilled { signal: Signal },
    /// It had finished before the kill came: nothing was done.
    AlreadyFinished,
}

/// What kind of thing a managed process is; decides its defaults and how it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Sleeper,
    Run,
    Forward,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Sleeper => "sleeper",
            Kind::Run => "run",
            Kind::Forward => "forward",
        })
    }
}

/// What a plain command is: a tunnel is never started by `Spawn`. The same positions as in `Kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandKind {
    Sleeper,
    Run,
}

impl From<CommandKind> for Kind {
    fn from(kind: CommandKind) -> Kind {
        match kind {
            CommandKind::Sleeper => Kind::Sleeper,
            CommandKind::Run => Kind::Run,
        }
    }
}

/// When a process that ended by itself is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RestartPolicy {
    #[default]
    Never,
    OnFailure,
    Always,
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RestartPolicy::Never => "never",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always => "always",
        })
    }
}

/// Where a managed process is in its life. `Exited`, `Killed`, `Failed`, `Lost` and `CrashLoop`
/// are final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Starting,
    Running,
    /// Ended by itself and waiting out its backoff before the next start.
    Restarting,
    /// Ended by itself with this exit code (or this signal number, as a negative code) and will not
    /// be started again.
    Exited(i32),
    /// Stopped by `rhizome kill` (or the daemon stopping); `None` when it was not running.
    Killed(Option<Signal>),
    /// Could not be started at all (or, for a tunnel, never got through).
    Failed(String),
    /// A tunnel whose path broke and is being rebuilt; its local port stays open.
    Reconnecting,
    /// A one-shot process that was running when its daemon died; it is not run again.
    Lost,
    /// Stopped restarting (`run --max-restarts`): this many restarts in a row each ended within
    /// a minute.
    CrashLoop {
        restarts: u32,
    },
    /// A lazy tunnel holding its local port with nothing behind it until a client connects.
    Idle,
}

impl Status {
    /// Whether a plain `ps` lists it: what is not over, and a crash loop, which was meant to run
    /// and waits for a person.
    pub fn is_listed(&self) -> bool {
        !self.is_final() || matches!(self, Status::CrashLoop { .. })
    }

    /// True once nothing about this process will change any more.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Status::Exited(_)
                | Status::Killed(_)
                | Status::Failed(_)
                | Status::Lost
                | Status::CrashLoop { .. }
        )
    }
}

impl Status {
    /// The status in one word, for tables: the reason of a failure is left to `Display`.
    pub fn label(&self) -> String {
        match self {
            Status::Failed(_) => "failed".to_string(),
            Status::CrashLoop { .. } => "crash-loop".to_string(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Starting => f.write_str("starting"),
            Status::Running => f.write_str("running"),
            Status::Restarting => f.write_str("restarting"),
            Status::Exited(code) if *code < 0 => write!(f, "exited(signal {})", -code),
            Status::Exited(code) => write!(f, "exited({code})"),
            Status::Killed(Some(signal)) => write!(f, "killed({signal})"),
            Status::Killed(None) => f.write_str("killed"),
            Status::Failed(reason) => write!(f, "failed({reason})"),
            Status::Reconnecting => f.write_str("reconnecting"),
            Status::Idle => f.write_str("idle"),
            Status::Lost => f.write_str("lost"),
            Status::CrashLoop { restarts: 1 } => f.write_str("crash-loop(1 restart)"),
            Status::CrashLoop { restarts } => write!(f, "crash-loop({restarts} restarts)"),
        }
    }
}

/// One row of `rhizome ps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub id: u32,
    pub name: String,
    pub kind: Kind,
    pub command: Vec<String>,
    /// The OS pid of the current (or last) run; `None` if it never started.
    pub pid: Option<u32>,
    pub status: Status,
    pub restart: RestartPolicy,
    /// Start of the current (or last) run, milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// Seconds the current run has been up; 0 when not running.
    pub uptime_secs: u64,
    pub restarts: u32,
    /// What the process is doing or why it last stopped, when there is something to say.
    pub detail: Option<String>,
    /// Set for tunnels.
    pub tunnel: Option<TunnelInfo>,
    /// When it finished, milliseconds since the Unix epoch; `None` while it may still run (and
    /// for a process finished before rhizome kept this).
    pub ended_at_ms: Option<i64>,
}

/// The answer to `rhizome daemon status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub pid: u32,
    pub version: String,
    pub uptime_secs: u64,
    pub socket: String,
    pub home: String,
    pub running: u32,
    pub finished: u32,
}

/// Lines of a log a reader will never see, told where they are missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogGap {
    /// The process whose log it is.
    pub name: String,
    pub cause: GapCause,
    pub size: GapSize,
}

/// Why part of a log was lost to a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GapCause {
    /// Rotation dropped files (past `keep_files`) faster than the reader read them.
    Rotated,
    /// Someone deleted a file before the reader got to it.
    Deleted,
}

/// How much was lost: lines when they could be counted, else bytes, else not even that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GapSize {
    Lines(u64),
    Bytes(u64),
    Unknown,
}
