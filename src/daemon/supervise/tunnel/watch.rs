//! Watching a working tunnel: kubectl exiting, and kubectl running but no longer forwarding
//! (found by probing its port).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::forwarder::drain;
use super::{Attempt, Broke, Ctx, PROBES_TO_RESTART, REPROBE};
use crate::daemon::child;
use crate::daemon::logs::capture::OwnLines;
use crate::forward::kubectl;

/// Watches a working path until kubectl exits or stops forwarding. It is probed every
/// `probe_interval`, after any failed connection or connection error kubectl prints, after the
/// daemon did not run for a while (a sleep, a freeze: kubectl's session may be dead), and again
/// soon after a failed probe.
pub(super) async fn watch(
    ctx: &Ctx,
    attempt: &mut Attempt,
    lines: &mut mpsc::Receiver<String>,
    ephemeral: SocketAddr,
) -> Broke {
    let interval = match ctx.part.settings.probe_interval_ms {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    };
    let mut failed_probes = 0;
    let mut next_probe = interval.map(|i| tokio::time::Instant::now() + i);
    // Closed output means the exit follows; stop listening to it.
    let mut output_open = true;
    let mut wakes = ctx.daemon.heartbeat.wakes();
    loop {
        let Some(run) = attempt.forward.as_mut() else {
            return Broke::Lost("kubectl port-forward is gone".into());
        };
        tokio::select! {
            status = run.child.wait() => {
                let code = child::exit_code(status.ok());
                drain(lines, &mut attempt.output).await;
                return Broke::Lost(format!("kubectl port-forward exited with code {code}{}", attempt.output.explain()));
            }
            _ = sleep_until(next_probe) => {}
            _ = ctx.part.tunnel.splice_failed.notified() => {}
            _ = wakes.changed() => {}
            line = lines.recv(), if output_open => match line {
                Some(line) => {
                    let bad = kubectl::is_connection_error(&line);
                    let dead = kubectl::is_session_dead(&line);
                    attempt.output.push(line);
                    if dead {
                        return Broke::Lost(format!("kubectl can no longer open a stream to the pod{}", attempt.output.explain()));
                    }
                    if !bad {
                        continue;
                    }
                }
                None => {
                    output_open = false;
                    continue;
                }
            },
        }
        if probe(ephemeral, &ctx.probes, &ctx.greets).await {
            failed_probes = 0;
            next_probe = interval.map(|i| tokio::time::Instant::now() + i);
        } else {
            failed_probes += 1;
            tracing::info!(
                "{}: probe of {ephemeral} failed ({failed_probes} in a row)",
                ctx.process.name
            );
            if failed_probes >= PROBES_TO_RESTART {
                return Broke::Lost(format!(
                    "kubectl runs but does not forward ({PROBES_TO_RESTART} probes of {ephemeral} failed in a row)"
                ));
            }
            next_probe = Some(tokio::time::Instant::now() + REPROBE);
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Whether the server behind the tunnel speaks first (MySQL's greeting), learnt from rhizome's
/// own connections. Then a probe that gets no byte has failed: kubectl 1.27, after a client's
/// reset, goes on accepting connections but opens no stream for them, and says nothing.
#[derive(Debug, Default)]
pub(super) struct Greets(AtomicBool);

/// How long a server known to speak first may take to do so through kubectl.
const GREETING: Duration = Duration::from_secs(2);

impl Greets {
    fn known(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Learns from `stream` (the readiness check's connection) in the background: the forward
    /// does not wait for it.
    pub(super) fn learn_from(self: &Arc<Self>, mut stream: TcpStream) {
        let greets = self.clone();
        tokio::spawn(async move {
            let mut byte = [0u8; 1];
            if let Ok(Ok(1..)) = tokio::time::timeout(GREETING, stream.read(&mut byte)).await {
                greets.0.store(true, Ordering::Relaxed);
            }
        });
    }
}

/// Whether a connection through kubectl works: it must be accepted and not closed at once
/// without a byte (what kubectl does when it can no longer reach the pod), and greet when the
/// server is known to (`Greets`). A silent server (HTTP) simply stays open.
/// kubectl logs the probe's connection like any other: `own` marks that line as the probe's.
async fn probe(addr: SocketAddr, own: &OwnLines, greets: &Greets) -> bool {
    own.expect();
    let connect = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await;
    let Ok(Ok(mut stream)) = connect else {
        own.unexpect();
        return false;
    };
    let mut byte = [0u8; 1];
    let wait = if greets.known() {
        GREETING
    } else {
        Duration::from_millis(500)
    };
    match tokio::time::timeout(wait, stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => false,
        Ok(Ok(_)) => {
            greets.0.store(true, Ordering::Relaxed);
            true
        }
        Err(_) => !greets.known(),
    }
}
