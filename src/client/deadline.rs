//! How long each exchange with the daemon may take, and what is said when that runs out: a daemon
//! that is stopped or stuck, or something else that listens, is reported instead of waited for.

use std::time::{Duration, Instant};

use super::Failure;
use crate::paths::Paths;
use crate::protocol::Request;

/// How long connecting and greeting may take. A daemon that is stopped (SIGSTOP) or stuck, or
/// something else that listens and never answers, is reported instead of waited for.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(2);

/// How long the daemon may take over each message of an answer: its requests are quick (a kill
/// adds its grace period; a followed log waits for as long as the log is quiet).
pub(super) const ANSWER_DEADLINE: Duration = Duration::from_secs(10);

/// How much longer than `forward --timeout` the command may take: the daemon's own report, which
/// says what the tunnel was doing when the time ran out, comes just after it; and even
/// `--timeout 0` leaves time to connect and hear about a tunnel that already works.
pub(super) const FORWARD_GRACE: Duration = Duration::from_millis(250);

/// How long to wait for the daemon's next message.
#[derive(Debug, Clone, Copy)]
pub(super) enum Patience {
    /// Each message within this long of the request or of the message before.
    Each(Duration),
    /// Every message before this moment, `limit` after the request.
    Until { at: Instant, limit: Duration },
    /// As long as it takes: a followed log is quiet for as long as its process is.
    Forever,
}

impl Patience {
    pub(super) fn for_request(request: &Request) -> Patience {
        match request {
            Request::Logs(logs) if logs.follow => Patience::Forever,
            Request::Kill(kill) => {
                Patience::Each(Duration::from_millis(kill.timeout_ms) + ANSWER_DEADLINE)
            }
            Request::Forward(forward) => {
                let limit = Duration::from_millis(forward.timeout_ms);
                Patience::Until {
                    at: Instant::now() + limit + FORWARD_GRACE,
                    limit,
                }
            }
            _ => Patience::Each(ANSWER_DEADLINE),
        }
    }
}

/// The earlier of a moment and an optional one.
pub(super) fn earliest(at: Instant, deadline: Option<Instant>) -> Instant {
    deadline.map_or(at, |deadline| deadline.min(at))
}

/// How long connecting and greeting may take now: `CONNECT_DEADLINE`, or less when the command's
/// own deadline is nearer.
pub(super) fn connect_limit(deadline: Option<Instant>) -> Duration {
    let left = deadline.map_or(CONNECT_DEADLINE, |d| {
        d.saturating_duration_since(Instant::now())
    });
    left.min(CONNECT_DEADLINE)
}

/// `2 s`, `0.5 s`.
pub(super) fn seconds(duration: Duration) -> String {
    let tenths = (duration.as_secs_f64() * 10.0).round();
    if tenths % 10.0 == 0.0 {
        format!("{} s", tenths / 10.0)
    } else {
        format!("{:.1} s", tenths / 10.0)
    }
}

/// "the daemon (pid N)", with the pid from the lock file when a daemon holds it.
pub(super) fn daemon_named(paths: &Paths) -> String {
    match crate::lock::holder(&paths.lock) {
        Ok(crate::lock::Holder::Daemon(pid)) => format!("the daemon (pid {pid})"),
        _ => "the daemon".to_string(),
    }
}

/// The failure of a connection that was not greeted in time.
pub fn not_answering(paths: &Paths) -> Failure {
    use crate::lock::Holder;
    match crate::lock::holder(&paths.lock) {
        Ok(Holder::Daemon(pid)) => Failure::new(format!("the daemon (pid {pid}) is not answering"))
            .hint(
                "it did not greet in time: it may be stopped (SIGSTOP) or stuck; `rhizome daemon stop` ends it",
            ),
        Ok(Holder::Starting) => Failure::new("the daemon is starting and not answering yet")
            .hint(format!(
                "try again in a moment; its log is in {}",
                paths.logs.display()
            )),
        _ => Failure::new(format!(
            "the daemon at {} is not answering",
            paths.socket.display()
        ))
        .hint(format!(
            "no daemon holds {}, so what listens there is not rhizome's daemon; remove the socket and the next command starts one",
            paths.lock.display()
        )),
    }
}
