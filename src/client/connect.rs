//! Reaching the daemon: connect (or start it), check who listens, greet, and every exchange
//! after, each within its deadline.

use std::io;
use std::time::{Duration, Instant};

use anyhow::Context;
use interprocess::local_socket::GenericFilePath;
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;

use super::deadline::{
    CONNECT_DEADLINE, FORWARD_GRACE, Patience, connect_limit, daemon_named, earliest,
    not_answering, seconds,
};
use super::start::{START_DEADLINE, start_daemon_process_by};
use super::{Failure, daemon, output, sanitize, trust, unexpected};
use crate::connection::ClientSide;
use crate::paths::Paths;
use crate::protocol::{Hello, Request, Response};

/// A greeted connection to the daemon.
pub struct Client {
    conn: ClientSide,
    paths: Paths,
    /// Where the daemon's notices go: printed on stderr, unless a command shows them its own way
    /// (around a spinner) or must not show them at all (a shell's completion).
    notice: Option<ShowNotice>,
    /// How long the next message may take, set by each request sent.
    patience: Patience,
    /// The end of the whole command, for one that has its own (`forward --timeout`).
    deadline: Option<Instant>,
}

/// Shows one notice from the daemon.
type ShowNotice = Box<dyn FnMut(&str) + Send>;

/// What answers at the socket.
pub enum Reached {
    /// Nothing listens: there is no socket, or a stale one.
    Absent,
    /// A daemon, of any version, that greeted back.
    Greeted(Box<Client>, Hello),
    /// Something took the connection but did not greet in time: a stopped or stuck daemon, or
    /// something else that listens there.
    Silent,
}

impl Client {
    /// Connects to the daemon, starting one first if none is running.
    pub async fn connect_or_start(paths: &Paths) -> anyhow::Result<Client> {
        Client::connect_or_start_by(paths, None).await
    }

    /// Like `connect_or_start`, for a command that must be over within `limit` (`forward
    /// --timeout`): connecting, starting a daemon and every answer all count against it.
    pub async fn connect_or_start_within(paths: &Paths, limit: Duration) -> anyhow::Result<Client> {
        let deadline = Instant::now() + limit + FORWARD_GRACE;
        let mut client = Client::connect_or_start_by(paths, Some(deadline)).await?;
        client.deadline = Some(deadline);
        Ok(client)
    }

    async fn connect_or_start_by(
        paths: &Paths,
        deadline: Option<Instant>,
    ) -> anyhow::Result<Client> {
        if let Some(client) = Client::connect_by(paths, deadline).await? {
            return Ok(client);
        }
        let start_deadline = earliest(Instant::now() + START_DEADLINE, deadline);
        let start_limit = start_deadline.saturating_duration_since(Instant::now());
        start_daemon_process_by(paths, start_deadline).await?;
        loop {
            match Client::reach(paths, connect_limit(deadline)).await? {
                Reached::Greeted(client, theirs) if theirs == Hello::ours() => return Ok(*client),
                Reached::Greeted(_, theirs) => {
                    return Err(Failure::new(format!(
                        "the daemon that started is rhizome {}, not this rhizome {}",
                        theirs.version,
                        Hello::ours().version
                    ))
                    .hint(
                        "another rhizome started a daemon at the same moment; run the command again",
                    )
                    .into());
                }
                Reached::Silent => return Err(not_answering(paths).into()),
                Reached::Absent => {}
            }
            if Instant::now() >= start_deadline {
                let holder = crate::lock::read_pid(&paths.lock)
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                return Err(Failure::new(format!(
                    "the daemon{holder} did not start answering on {} within {}",
                    paths.socket.display(),
                    seconds(start_limit)
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
        Client::connect_by(paths, None).await
    }

    async fn connect_by(
        paths: &Paths,
        deadline: Option<Instant>,
    ) -> anyhow::Result<Option<Client>> {
        match Client::reach(paths, connect_limit(deadline)).await? {
            Reached::Absent => Ok(None),
            Reached::Silent => Err(not_answering(paths).into()),
            Reached::Greeted(client, theirs) if theirs == Hello::ours() => Ok(Some(*client)),
            Reached::Greeted(client, theirs) => Box::pin(client.upgrade(theirs)).await.map(Some),
        }
    }

    /// Connects and greets whatever daemon runs, of any version, and says which version it is.
    pub async fn connect_any(paths: &Paths) -> anyhow::Result<Option<(Client, Hello)>> {
        match Client::reach(paths, CONNECT_DEADLINE).await? {
            Reached::Absent => Ok(None),
            Reached::Silent => Err(not_answering(paths).into()),
            Reached::Greeted(client, theirs) => Ok(Some((*client, theirs))),
        }
    }

    /// Connects and greets within `limit`, having checked first that the socket's directory and
    /// then the process at the other end are the user's own (see `trust`): nothing is sent
    /// before both checks pass.
    pub async fn reach(paths: &Paths, limit: Duration) -> anyhow::Result<Reached> {
        if !trust::socket_dir(paths)? {
            return Ok(Reached::Absent);
        }
        let name = paths
            .socket
            .as_path()
            .to_fs_name::<GenericFilePath>()
            .with_context(|| format!("{} cannot be a socket name", paths.socket.display()))?;
        let deadline = tokio::time::Instant::now() + limit;
        let stream = match tokio::time::timeout_at(deadline, Stream::connect(name)).await {
            Err(_) => return Ok(Reached::Silent),
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) if daemon_absent(&err) => return Ok(Reached::Absent),
            Ok(Err(err)) if err.kind() == io::ErrorKind::PermissionDenied => {
                return Err(Failure::new(format!(
                    "permission denied connecting to {}: it belongs to another user",
                    paths.socket.display()
                ))
                .hint("set RHIZOME_HOME to a directory of your own")
                .into());
            }
            Ok(Err(err)) => {
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
            conn: ClientSide::new(stream),
            paths: paths.clone(),
            notice: None,
            patience: Patience::Forever,
            deadline: None,
        };
        match tokio::time::timeout_at(deadline, client.greet()).await {
            Err(_) => Ok(Reached::Silent),
            Ok(Ok(theirs)) => Ok(Reached::Greeted(Box::new(client), theirs)),
            Ok(Err(err)) => Err(err),
        }
    }

    /// Says hello and returns the daemon's.
    async fn greet(&mut self) -> anyhow::Result<Hello> {
        // A daemon that refuses us says why and hangs up, perhaps before our greeting arrives:
        // read its answer even when sending failed.
        let sent = self.conn.send(&Request::Hello(Hello::ours())).await;
        let answer = self.receive().await;
        let answer = match (sent, answer) {
            (Err(err), Err(_)) => return Err(err.into()),
            (_, answer) => answer?,
        };
        match answer {
            Response::Hello(theirs) => Ok(theirs),
            other => Err(unexpected(other)),
        }
    }

    /// Replaces a daemon of another version with one of this version. Its processes come back
    /// (the daemon's state file survives it). A newer daemon is left alone: replacing it with an
    /// older one would be a downgrade.
    async fn upgrade(mut self: Box<Self>, theirs: Hello) -> anyhow::Result<Client> {
        let ours = Hello::ours();
        if version_number(&theirs.version) > version_number(&ours.version) {
            return Err(Failure::new(format!(
                "the running daemon is rhizome {} but this is the older rhizome {}",
                theirs.version, ours.version
            ))
            .hint("use the newer rhizome binary, or `rhizome daemon restart` to run this one")
            .into());
        }
        // The same version with another protocol is a build of the same release: say which.
        let (old, new) = if theirs.version == ours.version {
            (
                format!("{} (protocol {})", theirs.version, theirs.protocol),
                format!("protocol {}", ours.protocol),
            )
        } else {
            (theirs.version.clone(), ours.version.clone())
        };
        output::note(format_args!(
            "rhizome: the running daemon is rhizome {old}; restarting it as {new} (its processes come back)"
        ));
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
            let received = match self.wait_until() {
                Some(until) => {
                    let left = until.saturating_duration_since(Instant::now());
                    match tokio::time::timeout(left, self.conn.recv()).await {
                        Ok(received) => received,
                        Err(_) => return Err(self.silence().into()),
                    }
                }
                None => self.conn.recv().await,
            };
            return match received {
                Ok(Some(Response::Error(reply))) => Err(Failure::from(reply).into()),
                Ok(Some(Response::Notice(notice))) => {
                    match &mut self.notice {
                        Some(show) => show(&notice),
                        None => output::note(format_args!("rhizome: {}", sanitize::text(&notice))),
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

    /// When waiting for the next message ends.
    fn wait_until(&self) -> Option<Instant> {
        let patience = match self.patience {
            Patience::Each(limit) => Some(Instant::now() + limit),
            Patience::Until { at, .. } => Some(at),
            Patience::Forever => None,
        };
        match (patience, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The failure of a daemon that greeted, then did not answer in time.
    fn silence(&self) -> Failure {
        let limit = match self.patience {
            Patience::Each(limit) | Patience::Until { limit, .. } => limit,
            Patience::Forever => Duration::ZERO,
        };
        Failure::new(format!(
            "{} did not answer within {}",
            daemon_named(&self.paths),
            seconds(limit)
        ))
        .hint("`rhizome daemon status` says whether it is stuck; `rhizome daemon stop` ends it")
    }

    /// Sends a request without waiting for an answer.
    pub async fn send(&mut self, request: &Request) -> anyhow::Result<()> {
        self.patience = Patience::for_request(request);
        Ok(self.conn.send(request).await?)
    }

    /// Waits until the daemon closes the connection, as it does when it exits (or for as long as
    /// a daemon may take to stop; `daemon::wait_for_exit` then says what happened).
    pub async fn closed(&mut self) {
        let drain = async { while let Ok(Some(_)) = self.conn.recv().await {} };
        let _ = tokio::time::timeout(daemon::STOP_DEADLINE, drain).await;
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
