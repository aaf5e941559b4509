//! Steps 2 to 6 of a tunnel's path: the proxy's port (from `proxy`), then a `kubectl
//! port-forward` (or its simulated stand-in) to it, and its local port accepting connections.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::{Attempt, Broke, Ctx, END_GRACE, LastLines, STEP_TIMEOUT, proxy};
use crate::daemon::child::{self, Ending};
use crate::daemon::logs::capture::Tap;
use crate::daemon::process::Phase;
use crate::daemon::supervise::{self, Run};
use crate::forward::kubectl::{self, Kubectl, Tool};
use crate::protocol::Route;

/// A working forwarder: the port in the pod, kubectl's local port, and kubectl's output.
pub(super) type Built = (u16, SocketAddr, mpsc::Receiver<String>);

/// Steps 2 to 6: the proxy in the pod, its port, and a forwarder whose port works.
///
/// For a database whose proxy port is known from before (a reconnect, or a target forwarded
/// earlier), kubectl port-forward starts on that port at once, while exec confirms it, and the
/// tunnel is reported running as soon as the forwarder works: one kubectl start on the way
/// instead of two. Connections wait for the confirmation; a port that moved gets a new forwarder.
pub(super) async fn build(ctx: &Ctx, attempt: &mut Attempt) -> Result<Built, Broke> {
    let Attempt {
        exec,
        forward,
        output,
        ..
    } = attempt;
    let remote = match &ctx.part.target.route {
        Route::Service { remote_port, .. } => *remote_port,
        Route::Database { .. } => {
            let Some(guess) = ctx.daemon.proxy_ports.get(&ctx.part.target.name) else {
                let remote = proxy::find_proxy_port(ctx, exec, output)
                    .await
                    .map_err(Broke::Failed)?;
                ctx.daemon.proxy_ports.learn(&ctx.part.target.name, remote);
                return finish_build(ctx, forward, output, remote).await;
            };
            let mut lines = start_forward(ctx, forward, guess).await?;
            let run = forward.as_mut().ok_or_else(no_forwarder)?;
            let pid = run.pid;
            let (confirmed, ready) =
                tokio::join!(proxy::find_proxy_port(ctx, exec, output), async {
                    let mut early_output = LastLines::default();
                    let ready = wait_forwarding(ctx, run, &mut lines, &mut early_output).await;
                    if ready.is_ok() {
                        ctx.process.update(|s| {
                            s.phase = Phase::running(Some(pid));
                            s.last_pid = Some(pid);
                            s.remote_port = Some(guess);
                            s.started_at = SystemTime::now();
                            s.detail = Some("confirming the proxy port".into());
                        });
                    }
                    ready
                });
            let remote = confirmed.map_err(Broke::Failed)?;
            ctx.daemon.proxy_ports.learn(&ctx.part.target.name, remote);
            if remote == guess {
                return ready.map(|ephemeral| (remote, ephemeral, lines));
            }
            if let Some(run) = forward.take() {
                ctx.say(&format!(
                    "the proxy listens on port {remote} now; forwarding there"
                ))
                .await;
                supervise::end(&ctx.daemon, &ctx.process, run, Ending::term(END_GRACE)).await;
            }
            remote
        }
    };
    finish_build(ctx, forward, output, remote).await
}

/// The last of `build`: a forwarder to `remote`, and its port working.
pub(super) async fn finish_build(
    ctx: &Ctx,
    forward: &mut Option<Run>,
    output: &mut LastLines,
    remote: u16,
) -> Result<Built, Broke> {
    ctx.process.update(|s| {
        s.remote_port = Some(remote);
        s.detail = Some("forwarding".into());
    });
    let mut lines = start_forward(ctx, forward, remote).await?;
    let run = forward.as_mut().ok_or_else(no_forwarder)?;
    let ephemeral = wait_forwarding(ctx, run, &mut lines, output).await?;
    Ok((remote, ephemeral, lines))
}

pub(super) fn no_forwarder() -> Broke {
    Broke::Failed("kubectl port-forward did not start".into())
}

/// Waits for kubectl to say which local port it picked, then for that port to accept a
/// connection (the test connection through the whole path, marked in the log as rhizome's own,
/// and read in the background to learn whether the server greets).
pub(super) async fn wait_forwarding(
    ctx: &Ctx,
    run: &mut Run,
    lines: &mut mpsc::Receiver<String>,
    output: &mut LastLines,
) -> Result<SocketAddr, Broke> {
    let own = &ctx.probes;
    let waited = tokio::time::timeout(STEP_TIMEOUT, async {
        loop {
            tokio::select! {
                line = lines.recv() => match line {
                    Some(line) => {
                        let port = kubectl::forwarding_port(&line);
                        output.push(line);
                        if let Some(port) = port {
                            return Ok(port);
                        }
                    }
                    None => return Err(None),
                },
                status = run.child.wait() => return Err(Some(child::exit_code(status.ok()))),
            }
        }
    })
    .await;
    let ephemeral = match waited {
        Ok(Ok(port)) => SocketAddr::from(([127, 0, 0, 1], port)),
        Ok(Err(code)) => {
            drain(lines, output).await;
            let code = code.map(|c| format!(" with code {c}")).unwrap_or_default();
            return Err(Broke::Failed(format!(
                "kubectl port-forward exited{code}{}",
                output.explain()
            )));
        }
        Err(_) => {
            return Err(Broke::Failed(format!(
                "kubectl port-forward printed no `Forwarding from` line within {} s{}",
                STEP_TIMEOUT.as_secs(),
                output.explain()
            )));
        }
    };
    own.expect();
    let ready = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(ephemeral)).await;
    let Ok(Ok(stream)) = ready else {
        own.unexpect();
        return Err(Broke::Failed(format!(
            "kubectl says it forwards on {ephemeral}, but that port does not accept connections"
        )));
    };
    ctx.greets.learn_from(stream);
    Ok(ephemeral)
}

/// Starts `kubectl port-forward` (or its simulated stand-in) to `remote` as the attempt's
/// forwarder, and returns its output.
pub(super) async fn start_forward(
    ctx: &Ctx,
    forward: &mut Option<Run>,
    remote: u16,
) -> Result<mpsc::Receiver<String>, Broke> {
    let (tap, lines) = mpsc::channel(256);
    let argv = match ctx.tool() {
        Tool::Kubectl(program) => Kubectl {
            program: &program,
            target: &ctx.part.target,
        }
        .port_forward(remote),
        Tool::Native { .. } => return Err(Broke::Failed(super::native_here())),
        tool @ (Tool::Simulated | Tool::SimulatedTo(_)) => {
            let iteration = ctx.process.state().restarts;
            ctx.say(&format!(
                "Forwarding localhost:{} -> pod:{remote} (iteration {iteration})",
                ctx.part.local_port()
            ))
            .await;
            let upstream = match &tool {
                Tool::SimulatedTo(upstream) => Some(upstream.as_str()),
                _ => None,
            };
            simulated_forward(remote, upstream)
        }
    };
    ctx.probes.reset();
    let tap = Tap {
        lines: tap,
        own: Some(ctx.probes.clone()),
    };
    let run = supervise::start_child(&ctx.daemon, &ctx.process, &argv, Some(tap))
        .await
        .map_err(Broke::Failed)?;
    *forward = Some(run);
    Ok(lines)
}

/// Reads what is left of a child's output once it has exited.
pub(super) async fn drain(lines: &mut mpsc::Receiver<String>, output: &mut LastLines) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(line) = lines.recv().await {
            output.push(line);
        }
    })
    .await;
}

/// The simulated port-forward: this binary, serving an echo "database", or relaying to
/// `upstream`.
pub(super) fn simulated_forward(remote: u16, upstream: Option<&str>) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![
        crate::paths::own_executable().into_os_string(),
        "__simulate-forward".into(),
        "--remote".into(),
        remote.to_string().into(),
    ];
    if let Some(upstream) = upstream {
        argv.extend(["--upstream".into(), upstream.into()]);
    }
    argv
}
