//! The supervisor of one tunnel: builds the path (proxy in the pod, its port, kubectl
//! port-forward or the native client's streams), points the tunnel's listener at it, watches it,
//! and rebuilds it when it breaks, until the tunnel is killed.
//!
//! Each attempt's children live in an `Attempt` owned by the supervisor loop, not by the
//! attempt's future, so whatever interrupts an attempt (a kill, the daemon stopping) can still end
//! them. `proxy` holds the exec and log steps, `watch` the watching of a working path through
//! kubectl, `native` the whole path on the native transport.

mod attempt;
mod forwarder;
mod idle;
mod last_lines;
mod native;
mod proxy;
mod watch;

use self::attempt::{Attempt, Broke, end_attempt, run_attempt};
use self::last_lines::LastLines;
pub use self::proxy::ProxyPorts;

use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::daemon::Daemon;
use crate::daemon::backoff::{Backoff, REBUILDS_PER_MINUTE, Rebuilds};
use crate::daemon::logs::capture::OwnLines;
use crate::daemon::process::{Order, Phase, Process, RestartOrder, Restarted, TunnelPart};
use crate::daemon::supervise::{Waited, wait_out};
use crate::protocol::{KillOutcome, Signal, Tool};

/// How long kubectl may take to start the proxy, or to print its `Forwarding from` line.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the pod's log is searched for the proxy's port.
const PORT_SEARCH: Duration = Duration::from_secs(10);
/// After a failed probe, the next comes this soon.
const REPROBE: Duration = Duration::from_secs(1);
/// Failed probes in a row that count as kubectl having exited.
const PROBES_TO_RESTART: u32 = 2;
/// Attempts that fail before the tunnel ever worked; then the error goes to the user.
const QUICK_FAILURES: u32 = 3;
/// kubectl does not trap SIGTERM, so it goes at once; this is only a bound.
const END_GRACE: Duration = Duration::from_secs(2);
/// Lines of kubectl output kept to explain a failure.
const LAST_LINES: usize = 8;

#[cfg(test)]
mod tests;

/// What one tunnel's supervisor works with.
struct Ctx {
    daemon: Arc<Daemon>,
    process: Arc<Process>,
    /// The tunnel's fixed part: its target, tool, settings and listener.
    part: Arc<TunnelPart>,
    /// kubectl's `Handling connection` lines caused by the daemon's own connections (the readiness
    /// check, probes), marked as such in the log so that they do not read as a client's.
    probes: Arc<OwnLines>,
    /// The native transport's API client, from one attempt to the next.
    native: native::Cache,
    /// Whether the server behind the tunnel greets, for kubectl's probes.
    greets: Arc<watch::Greets>,
}

/// Runs the tunnel of `process` (whose listener is bound) until it is killed, the daemon stops,
/// or it fails `QUICK_FAILURES` times before ever working. A restart ends the attempt and begins
/// the next at once, on the same listener or, when the restart brings a new part, on its.
pub async fn supervise(
    daemon: Arc<Daemon>,
    process: Arc<Process>,
    part: Arc<TunnelPart>,
    mut orders: mpsc::Receiver<Order>,
) {
    let mut ctx = Ctx {
        daemon: daemon.clone(),
        process: process.clone(),
        part,
        probes: Arc::new(OwnLines::new(
            "Handling connection for ",
            "  (rhizome's own connection)",
        )),
        native: native::Cache::default(),
        greets: Arc::default(),
    };
    let mut fresh = Fresh::new(&ctx.part);
    loop {
        if ctx.part.settings.lazy && !ctx.part.tunnel.has_client() {
            match idle::asleep(&ctx, &mut orders).await {
                Waited::Elapsed => {}
                Waited::Stopped => {
                    close(&ctx, Phase::Killed(None));
                    break;
                }
                Waited::Restart(order) => {
                    restarting(&ctx, &order.why).await;
                    take_restart(&mut ctx, &mut fresh, order, None).await;
                    continue;
                }
            }
        }
        let idle_stop = Duration::from_millis(ctx.part.settings.idle_stop_ms);
        let stops_when_idle = ctx.part.settings.lazy && !idle_stop.is_zero();
        let mut attempt = Attempt::default();
        let interrupt = tokio::select! {
            broke = run_attempt(&ctx, &mut attempt) => Ok(broke),
            _ = ctx.part.tunnel.idle_for(idle_stop), if stops_when_idle => {
                Ok(Broke::Idle(idle_stop))
            }
            Some(order) = orders.recv() => Err(Some(order)),
            _ = daemon.shutdown.cancelled() => Err(None),
        };
        ctx.part.tunnel.set_upstream(None);
        let ran_for = attempt.up_since.map(|t| t.elapsed()).unwrap_or_default();
        let was_up = attempt.up_since.is_some();
        fresh.ever_up |= was_up;
        if let Err(Some(Order::Restart(order))) = &interrupt {
            // Said first, so the log reads why before kubectl's `finished` lines.
            restarting(&ctx, &order.why).await;
        }
        // A kill or restart may ask for another first signal; the daemon stopping sends SIGTERM.
        let signal = match &interrupt {
            Err(Some(Order::Kill(order))) => order.ending.signal,
            Err(Some(Order::Restart(order))) => order.ending.signal,
            _ => Signal::Term,
        };
        let ended = end_attempt(&ctx, attempt, signal).await;
        let broke = match interrupt {
            Ok(broke) => broke,
            Err(Some(Order::Restart(order))) => {
                take_restart(&mut ctx, &mut fresh, order, ended).await;
                continue;
            }
            Err(order) => {
                close(&ctx, Phase::Killed(ended.map(|(signal, _)| signal)));
                if let Some(Order::Kill(order)) = order {
                    let outcome = match ended {
                        Some((signal, took)) => KillOutcome::Ended {
                            signal,
                            elapsed_ms: took.as_millis() as u64,
                        },
                        None => KillOutcome::NotRunning,
                    };
                    let _ = order.reply.send(outcome);
                }
                break;
            }
        };
        // `auto` moves to kubectl when the native client cannot serve a tunnel that never worked;
        // otherwise it is a failure like any other.
        let broke = match broke {
            Broke::Unsupported(why) => match &ctx.part.tool {
                Tool::Native {
                    fallback: Some(kubectl),
                } if !fresh.ever_up => {
                    ctx.say(&format!("using kubectl ({}): {why}", kubectl.display()))
                        .await;
                    process.update(|s| {
                        s.fallback = Some(why);
                        // kubectl picks its own pod.
                        s.pod = None;
                    });
                    continue;
                }
                _ => Broke::Failed(format!(
                    "{why}; transport = \"kubectl\" uses kubectl instead"
                )),
            },
            other => other,
        };
        let reason = match broke {
            Broke::Idle(after) => {
                ctx.say(&format!(
                    "no client for {}s: the upstream stops until the next one connects",
                    after.as_secs()
                ))
                .await;
                continue;
            }
            Broke::Failed(reason) if !fresh.ever_up => {
                fresh.quick_failures += 1;
                if fresh.quick_failures >= QUICK_FAILURES {
                    ctx.say(&format!(
                        "giving up after {} failed attempts: {reason}",
                        fresh.quick_failures
                    ))
                    .await;
                    close(&ctx, Phase::Failed(reason));
                    break;
                }
                reason
            }
            Broke::Failed(reason) | Broke::Lost(reason) | Broke::Unsupported(reason) => reason,
        };
        // A path that carried traffic is rebuilt at once, however often it breaks, short of a
        // tight loop; the delay grows only over attempts that never came up.
        let (delay, reason) = if !was_up {
            (fresh.backoff.after_run(ran_for), reason)
        } else if fresh.rebuilds.at_once(Instant::now()) {
            fresh.backoff.reset();
            (Duration::ZERO, reason)
        } else {
            let delay = fresh.backoff.after_run(ran_for);
            let why = format!(
                "{reason} (rebuilt {REBUILDS_PER_MINUTE} times within a minute: waiting between rebuilds)"
            );
            (delay, why)
        };
        ctx.say(&format!(
            "{reason}; reconnecting in {:.1}s",
            delay.as_secs_f64()
        ))
        .await;
        process.update(|s| {
            s.phase = if fresh.ever_up {
                Phase::Reconnecting
            } else {
                Phase::Starting
            };
            s.detail = Some(reason);
        });
        match wait_out(delay, &mut orders, &daemon.shutdown).await {
            Waited::Elapsed => {}
            Waited::Stopped => {
                close(&ctx, Phase::Killed(None));
                break;
            }
            Waited::Restart(order) => {
                restarting(&ctx, &order.why).await;
                take_restart(&mut ctx, &mut fresh, order, None).await;
                continue;
            }
        }
        process.update(|s| s.restarts += 1);
    }
    daemon.retire(&process).await;
}

/// How far the tunnel is from its last fresh start (its creation, or a restart with a new
/// configuration): a configuration that never worked gives up after `QUICK_FAILURES`.
struct Fresh {
    backoff: Backoff,
    rebuilds: Rebuilds,
    quick_failures: u32,
    ever_up: bool,
}

impl Fresh {
    fn new(part: &TunnelPart) -> Fresh {
        Fresh {
            backoff: Backoff::with_max(Duration::from_millis(part.settings.backoff_max_ms)),
            rebuilds: Rebuilds::default(),
            quick_failures: 0,
            ever_up: false,
        }
    }
}

/// A restart begins: its reason in the log, and the phase a client waiting for the tunnel sees.
async fn restarting(ctx: &Ctx, why: &str) {
    ctx.say(why).await;
    ctx.process.update(|s| {
        s.phase = Phase::Reconnecting;
        s.detail = Some("restarting".into());
    });
}

/// The attempt a restart ended is over: the tunnel takes the restart's part if it brings one
/// (closing the old listener when the new one is another), starts afresh (no backoff, its quick
/// failures counted from zero), and
/// the restart is told how the old port-forward ended. A new part is on disk before the next
/// attempt starts, so that a daemon that dies from then on brings the tunnel back as it is now.
async fn take_restart(
    ctx: &mut Ctx,
    fresh: &mut Fresh,
    order: RestartOrder,
    stopped: Option<(Signal, Duration)>,
) {
    ctx.process.update(|s| s.restarts += 1);
    match order.part {
        Some(part) => {
            if !Arc::ptr_eq(&part.tunnel, &ctx.part.tunnel) {
                ctx.part.tunnel.close();
            }
            ctx.process.set_tunnel(part.clone());
            ctx.native.forget();
            *fresh = Fresh::new(&part);
            ctx.part = part;
            let _ = ctx.daemon.persist().await;
        }
        // The same configuration: a fresh start too, but one that worked before keeps
        // reconnecting rather than giving up.
        None => {
            fresh.backoff.reset();
            fresh.quick_failures = 0;
        }
    }
    let _ = order.reply.send(Restarted {
        stopped,
        failed: None,
    });
}

/// The tunnel is over: its port closes and its phase is final.
fn close(ctx: &Ctx, phase: Phase) {
    ctx.part.tunnel.close();
    ctx.process.set_phase(phase);
}

fn shown(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A native tool where only kubectl (or its simulated stand-in) can run.
fn native_here() -> String {
    "the native transport runs no kubectl step".into()
}

impl Ctx {
    /// What carries the tunnel now: its tool, or the kubectl `auto` fell back to.
    fn tool(&self) -> Tool {
        self.part.tool_now(&self.process.state())
    }

    /// A line of the tunnel's own in its log, among kubectl's.
    async fn say(&self, message: &str) {
        self.daemon.say(&self.process, message).await;
    }
}
