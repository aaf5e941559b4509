//! What the client checks before it says anything to whatever listens at the socket path, as tmux
//! and ssh-agent do. On a shared machine another user can make `/tmp/rhizome-$UID` first and
//! listen in it, and a request that starts a process carries this shell's whole environment. So
//! the socket's directory must be the user's own private directory (`paths::check_socket_dir`),
//! and the process at the other end of the connection must run as the user; otherwise the client
//! stops with the path and its owner, having sent nothing, not even its greeting.

use std::path::Path;

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::StreamCommon;

use super::Failure;
use crate::paths::{self, PathError, Paths, SocketDir};

impl From<PathError> for Failure {
    fn from(err: PathError) -> Self {
        Failure::from(&err)
    }
}

impl From<&PathError> for Failure {
    fn from(err: &PathError) -> Self {
        let hint = err.hint();
        let failure = Failure::new(err.to_string());
        match hint {
            Some(hint) => failure.hint(hint),
            None => failure,
        }
    }
}

/// Whether a daemon can be listening in the socket's directory; an error when the directory is
/// not one to trust.
pub fn socket_dir(paths: &Paths) -> Result<bool, Failure> {
    Ok(paths::check_socket_dir(paths)? == SocketDir::Private)
}

/// Checks who is at the other end of a connected socket, before anything is sent to it.
pub fn peer(stream: &Stream, socket: &Path) -> Result<(), Failure> {
    let me = nix::unistd::geteuid().as_raw();
    let creds = stream.peer_creds().map_err(|err| {
        Failure::new(format!(
            "could not tell who listens on {}: {err}; nothing was sent to it",
            socket.display()
        ))
    })?;
    match creds.euid() {
        Some(uid) if uid == me => Ok(()),
        other => {
            let owner = other.map_or("an unknown uid".to_string(), |uid| format!("uid {uid}"));
            let pid = creds
                .pid()
                .map(|pid| format!(", pid {pid}"))
                .unwrap_or_default();
            Err(Failure::new(format!(
                "{} is served by {owner}{pid}, not by you (uid {me}); nothing was sent to it",
                socket.display()
            ))
            .hint(
                "remove it (another user may be listening there), or set RHIZOME_HOME to a directory of your own",
            ))
        }
    }
}
