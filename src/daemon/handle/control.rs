//! `rhizome daemon status`: what the daemon says of itself.

use crate::daemon::Daemon;
use crate::protocol::DaemonStatus;

pub(super) fn status(daemon: &Daemon) -> DaemonStatus {
    let (running, finished) = daemon.table.counts();
    DaemonStatus {
        pid: std::process::id(),
        version: crate::protocol::VERSION.to_string(),
        uptime_secs: daemon.started.elapsed().as_secs(),
        socket: daemon.paths.socket.display().to_string(),
        home: daemon.paths.home.display().to_string(),
        running,
        finished,
    }
}
