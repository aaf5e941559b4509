//! Watching a working tunnel: kubectl exiting, and kubectl running but no longer forwarding
//! (found by probing its port).

use std::net::SocketAddr;
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
                    attempt.output.push(line);
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
        if probe(ephemeral, &ctx.probes).await {
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

/// Whether a connection through kubectl works: it must be accepted and not closed at once
/// without a byte (what kubectl does when it can no longer reach the pod). A server that speaks
/// first (MySQL) answers; a silent one (HTTP) simply stays open.
/// kubectl logs the probe's connection like any other: `own` marks that line as the probe's.
async fn probe(addr: SocketAddr, own: &OwnLines) -> bool {
    own.expect();
    let connect = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await;
    let Ok(Ok(mut stream)) = connect else {
        own.unexpect();
        return false;
    };
    let mut byte = [0u8; 1];
    !matches!(
        tokio::time::timeout(Duration::from_millis(500), stream.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}
