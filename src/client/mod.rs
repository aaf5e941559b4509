//! The client half of every command: reach the daemon (starting it when needed), greet it, and
//! render its answers. One module per command's rendering, plus what every command shares:
//! colors (`style`), shell completion (`complete`) and the generated files (`generate`).

pub mod complete;
pub mod daemon;
pub mod forward;
pub mod generate;
pub mod kill;
pub mod logs;
pub mod overview;
pub mod ps;
pub mod spawn;
pub mod style;
pub mod trust;

use std::io;
use std::os::unix::ffi::OsStringExt;
use std::time::{Duration, Instant};

use anyhow::Context;
use interprocess::local_socket::GenericFilePath;
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;

use crate::connection::Connection;
use crate::paths::Paths;
use crate::protocol::{ClientContext, ErrorReply, Hello, Request, Response};

/// How long a client waits for a daemon that is starting (its own or another client's).
const START_DEADLINE: Duration = Duration::from_secs(5);

/// A failure to show the user: one sentence, maybe a hint, and the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub message: String,
    pub hint: Option<String>,
    pub code: i32,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            hint: None,
            code: 1,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl From<ErrorReply> for Failure {
    fn from(reply: ErrorReply) -> Self {
        Failure {
            message: reply.message,
            hint: reply.hint,
            code: 1,
        }
    }
}

/// A greeted connection to the daemon.
pub struct Client {
    conn: Connection,
    paths: Paths,
    /// Where the daemon's notices go: printed on stderr, unless a command shows them its own way
    /// (around a spinner) or must not show them at all (a shell's completion).
    notice: Option<ShowNotice>,
}

/// Shows one notice from the daemon.
type ShowNotice = Box<dyn FnMut(&str) + Send>;

impl Client {
    /// Connects to the daemon, starting one first if none is running.
    pub async fn connect_or_start(paths: &Paths) -> anyhow::Result<Client> {
        if let Some(client) = Client::connect(paths).await? {
            return Ok(client);
        }
        start_daemon_process(paths).await?;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some((client, theirs)) = Client::connect_any(paths).await? {
                if theirs == Hello::ours() {
                    return Ok(client);
                }
                return Err(Failure::new(format!(
                    "the daemon that started is rhizome {}, not this rhizome {}",
                    theirs.version,
                    Hello::ours().version
                ))
                .hint("another rhizome started a daemon at the same moment; run the command again")
                .into());
            }
            if Instant::now() >= deadline {
                let holder = crate::lock::read_pid(&paths.lock)
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                return Err(Failure::new(format!(
                    "the daemon{holder} did not start answering on {} within {} s",
                    paths.socket.display(),
                    START_DEADLINE.as_secs()
                ))
                .hint(format!("its output is in {}", paths.logs.display()))
                .into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Connects to a running daemon; `None` when none is listening. Never starts one, but a
    /// daemon of an older version is replaced by this one (its processes come back).
    pub async fn connect(paths: &Paths) -> anyhow::Result<Option<Client>> {
        match Client::connect_any(paths).await? {
            None => Ok(None),
            Some((client, theirs)) if theirs == Hello::ours() => Ok(Some(client)),
            Some((client, theirs)) => Box::pin(client.upgrade(theirs)).await.map(Some),
        }
    }

    /// Connects and greets whatever daemon runs, of any version, and says which version it is.
    /// The socket's directory and then the process at the other end must be the user's own (see
    /// `trust`): nothing is sent before both checks pass.
    pub async fn connect_any(paths: &Paths) -> anyhow::Result<Option<(Client, Hello)>> {
        if !trust::socket_dir(paths)? {
            return Ok(None);
        }
        let name = paths
            .socket
            .as_path()
            .to_fs_name::<GenericFilePath>()
            .with_context(|| format!("{} cannot be a socket name", paths.socket.display()))?;
        let stream = match Stream::connect(name).await {
            Ok(stream) => stream,
            Err(err) if daemon_absent(&err) => return Ok(None),
            Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
                return Err(Failure::new(format!(
                    "permission denied connecting to {}: it belongs to another user",
                    paths.socket.display()
                ))
                .hint("set RHIZOME_HOME to a directory of your own")
                .into());
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!(
                        "could not connect to the daemon at {}",
                        paths.socket.display()
                    )
                });
            }
        };
        trust::peer(&stream, &paths.socket)?;
        let mut client = Client {
            conn: Connection::new(stream),
            paths: paths.clone(),
            notice: None,
        };
        // A daemon that refuses us says why and hangs up, perhaps before our greeting arrives:
        // read its answer even when sending failed.
        let sent = client.conn.send(&Request::Hello(Hello::ours())).await;
        let answer = client.receive().await;
        let answer = match (sent, answer) {
            (Err(err), Err(_)) => return Err(err.into()),
            (_, answer) => answer?,
        };
        match answer {
            Response::Hello(theirs) => Ok(Some((client, theirs))),
            other => Err(unexpected(other)),
        }
    }

    /// Replaces a daemon of another version with one of this version. Its processes come back
    /// (the daemon's state file survives it). A newer daemon is left alone: replacing it with an
    /// older one would be a downgrade.
    async fn upgrade(mut self, theirs: Hello) -> anyhow::Result<Client> {
        let ours = Hello::ours();
        if version_number(&theirs.version) > version_number(&ours.version) {
            return Err(Failure::new(format!(
                "the running daemon is rhizome {} but this is the older rhizome {}",
                theirs.version, ours.version
            ))
            .hint("use the newer rhizome binary, or `rhizome daemon restart` to run this one")
            .into());
        }
        eprintln!(
            "rhizome: the running daemon is rhizome {}; restarting it as {} (its processes come back)",
            theirs.version, ours.version
        );
        // `Stop` is the same request in every version.
        self.send(&Request::Stop).await?;
        self.closed().await;
        let paths = self.paths.clone();
        daemon::wait_for_exit(&paths, None).await?;
        Client::connect_or_start(&paths).await
    }

    /// Shows the daemon's notices with `show` instead of printing them on stderr.
    pub fn on_notice(&mut self, show: impl FnMut(&str) + Send + 'static) {
        self.notice = Some(Box::new(show));
    }

    /// Sends a request and returns the daemon's one answer; an error answer becomes a `Failure`.
    pub async fn call(&mut self, request: &Request) -> anyhow::Result<Response> {
        self.conn.send(request).await?;
        self.receive().await
    }

    /// The next message from the daemon; an error answer becomes a `Failure`.
    pub async fn receive(&mut self) -> anyhow::Result<Response> {
        self.next().await?.ok_or_else(|| {
            Failure::new("the daemon closed the connection before answering")
                .hint(format!("its log is in {}", self.paths.logs.display()))
                .into()
        })
    }

    /// Like `receive`, but `None` when the daemon closed the connection.
    pub async fn next(&mut self) -> anyhow::Result<Option<Response>> {
        loop {
            return match self.conn.recv::<Response>().await {
                Ok(Some(Response::Error(reply))) => Err(Failure::from(reply).into()),
                Ok(Some(Response::Notice(notice))) => {
                    match &mut self.notice {
                        Some(show) => show(&notice),
                        None => eprintln!("rhizome: {notice}"),
                    }
                    continue;
                }
                Ok(response) => Ok(response),
                Err(err) => {
                    Err(anyhow::Error::new(err).context("could not read the daemon's answer"))
                }
            };
        }
    }

    /// Sends a request without waiting for an answer.
    pub async fn send(&mut self, request: &Request) -> anyhow::Result<()> {
        Ok(self.conn.send(request).await?)
    }

    /// Waits until the daemon closes the connection.
    pub async fn closed(&mut self) {
        while let Ok(Some(_)) = self.conn.recv::<Response>().await {}
    }
}

/// A version as a comparable number: the leading `MAJOR.MINOR.PATCH` digits.
fn version_number(version: &str) -> (u64, u64, u64) {
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|part| part.parse::<u64>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

/// Connecting failed because nobody listens: no socket file, or a stale one.
fn daemon_absent(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// An answer that does not fit the request: a bug on one side, reported as such.
pub fn unexpected(response: Response) -> anyhow::Error {
    anyhow::anyhow!("the daemon gave an unexpected answer: {response:?}")
}

/// Runs `rhizome daemon start` as a separate process and waits for it: the daemon must be forked
/// from a process with no threads, which this client (with its runtime) is not.
pub async fn start_daemon_process(paths: &Paths) -> anyhow::Result<()> {
    let exe = std::env::current_exe()
        .context("could not find the rhizome executable to start the daemon")?;
    let output = tokio::process::Command::new(&exe)
        .args(["daemon", "start"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .with_context(|| format!("could not run {} to start the daemon", exe.display()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message = stderr
        .lines()
        .find_map(|line| line.strip_prefix("error: "))
        .unwrap_or(stderr.trim());
    let hint = stderr
        .lines()
        .find_map(|line| line.strip_prefix("hint: "))
        .map(str::to_string)
        .unwrap_or_else(|| format!("its output is in {}", paths.logs.display()));
    Err(
        Failure::new(format!("the daemon could not start: {message}"))
            .hint(hint)
            .into(),
    )
}

/// This shell's directory and environment, sent with requests that start processes.
pub fn context() -> anyhow::Result<ClientContext> {
    let cwd = std::env::current_dir()
        .context("the current directory cannot be read (was it removed?)")?;
    Ok(ClientContext {
        cwd: cwd.into_os_string().into_vec(),
        env: std::env::vars_os()
            .map(|(k, v)| (k.into_vec(), v.into_vec()))
            .collect(),
    })
}
