//! One attempt at a tunnel's path: what it holds (`Attempt`), how it ends by itself (`Broke`),
//! building and watching it on the tunnel's transport, and ending what is left of it.

use std::time::{Duration, Instant, SystemTime};

use super::{Ctx, END_GRACE, LastLines, forwarder, native, watch};
use crate::daemon::child::{self, Ending};
use crate::daemon::process::Phase;
use crate::daemon::supervise::{self, Run};
use crate::forward::tunnel::Upstream;
use crate::protocol::{Signal, Tool};

/// The children and output of one attempt at the path.
#[derive(Default)]
pub(super) struct Attempt {
    pub(super) exec: Option<Run>,
    pub(super) forward: Option<Run>,
    /// What the native transport holds open.
    pub(super) native: native::Held,
    /// kubectl's last lines, to explain a failure.
    pub(super) output: LastLines,
    /// When the path started carrying traffic.
    pub(super) up_since: Option<Instant>,
}

/// Why an attempt ended by itself.
pub(super) enum Broke {
    /// The path never carried traffic.
    Failed(String),
    /// The path worked, then broke.
    Lost(String),
    /// A lazy tunnel had no client for its `idle_stop`: the upstream stops until the next one.
    Idle(Duration),
    /// The native client cannot serve this tunnel; kubectl may.
    Unsupported(String),
}

/// Builds the path and watches it; returns when it breaks.
pub(super) async fn run_attempt(ctx: &Ctx, attempt: &mut Attempt) -> Broke {
    if let Tool::Native { .. } = ctx.tool() {
        return native::run(ctx, attempt).await;
    }
    let (remote, ephemeral, mut lines) = match forwarder::build(ctx, attempt).await {
        Ok(built) => built,
        Err(broke) => return broke,
    };
    ctx.part
        .tunnel
        .set_upstream(Some(Upstream::Local(ephemeral)));
    attempt.up_since = Some(Instant::now());
    let pid = attempt.forward.as_ref().map(|run| run.pid);
    ctx.process.update(|s| {
        s.phase = match s.phase {
            // Up already on a guessed port, now confirmed.
            Phase::Running { since, .. } => Phase::Running { pid, since },
            _ => {
                s.started_at = SystemTime::now();
                Phase::running(pid)
            }
        };
        s.last_pid = pid;
        s.remote_port = Some(remote);
        s.detail = None;
    });
    ctx.say(&format!(
        "tunnel up: 127.0.0.1:{} -> pod:{remote} via {ephemeral}",
        ctx.part.local_port()
    ))
    .await;
    watch::watch(ctx, attempt, &mut lines, ephemeral).await
}

/// Ends what is left of an attempt, `signal` first; returns how the port-forward ended if it was
/// still running. kubectl's own grace (`END_GRACE`) bounds the wait, whatever `--timeout` said.
pub(super) async fn end_attempt(
    ctx: &Ctx,
    attempt: Attempt,
    signal: Signal,
) -> Option<(Signal, Duration)> {
    let ending = Ending {
        signal,
        grace: END_GRACE,
    };
    let mut ended = None;
    for (is_forward, run) in [(true, attempt.forward), (false, attempt.exec)] {
        let Some(mut run) = run else { continue };
        match run.child.try_wait() {
            Ok(Some(status)) => {
                child::reap_leftovers(run.pid, END_GRACE);
                supervise::finish(
                    &ctx.daemon,
                    &ctx.process,
                    run,
                    child::exit_code(Some(status)),
                )
                .await;
            }
            _ => {
                let result = supervise::end(&ctx.daemon, &ctx.process, run, ending).await;
                if is_forward {
                    ended = Some(result);
                }
            }
        }
    }
    ended
}
