//! Steps 2 and 3 of a database tunnel: start the Cloud SQL proxy in the pod with `kubectl exec`,
//! and learn which port it listens on from exec's output or the pod's log.

use std::collections::HashMap;
use std::ffi::OsString;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::{Ctx, LastLines, PORT_SEARCH, STEP_TIMEOUT, native_here, shown};
use crate::daemon::child;
use crate::daemon::logs::capture::Tap;
use crate::daemon::supervise;
use crate::daemon::supervise::Run;
use crate::forward::kubectl::{self, Kubectl, Tool};
use crate::forward::target::Route;

/// Steps 2 and 3 for a database: start the Cloud SQL proxy in the pod, and learn its port from the
/// exec's output or the pod's log.
pub(super) async fn find_proxy_port(
    ctx: &Ctx,
    exec: &mut Option<Run>,
    output: &mut LastLines,
) -> Result<u16, String> {
    let Route::Database { port_pattern, .. } = &ctx.part.target.route else {
        return Err("not a database target".into());
    };
    let pattern =
        regex::Regex::new(port_pattern).map_err(|err| format!("port_pattern is invalid: {err}"))?;
    ctx.process
        .update(|s| s.detail = Some("starting proxy in pod".into()));
    let program = match ctx.tool() {
        Tool::Kubectl(program) => program,
        Tool::Native { .. } => return Err(native_here()),
        Tool::Simulated | Tool::SimulatedTo(_) => {
            let kubectl = Kubectl {
                program: "kubectl".as_ref(),
                target: &ctx.part.target,
            };
            ctx.say(&format!("Context: {}", ctx.part.target.context))
                .await;
            ctx.say(&format!("Namespace: {}", ctx.part.target.namespace))
                .await;
            ctx.say(&format!(
                "would run: {}",
                shown(&kubectl.exec().unwrap_or_default())
            ))
            .await;
            ctx.say(&format!(
                "would read the proxy's port from: {}",
                shown(&kubectl.logs())
            ))
            .await;
            return Ok(3307);
        }
    };
    let kubectl = Kubectl {
        program: &program,
        target: &ctx.part.target,
    };
    let argv = kubectl.exec().unwrap_or_default();
    let (tap, mut lines) = mpsc::channel(256);
    let tap = Tap {
        lines: tap,
        own: None,
    };
    let run = supervise::start_child(&ctx.daemon, &ctx.process, &argv, Some(tap)).await?;
    let run = exec.insert(run);
    // A proxy in the foreground keeps exec running: once the port is known, a second more is
    // enough, and exec is left running with the attempt.
    let exit = async { child::exit_code(run.child.wait().await.ok()) };
    let found = await_port(
        &mut lines,
        exit,
        &pattern,
        output,
        Duration::from_secs(1),
        "kubectl exec",
    )
    .await?;
    if let Some(port) = found {
        ctx.say(&format!("the proxy listens on port {port} in the pod"))
            .await;
        return Ok(port);
    }
    let argv = kubectl.logs();
    search_log(ctx, &pattern, port_pattern, || read_pod_log(ctx, &argv)).await
}

/// Reads the pod's log with `read` every 250 ms, until a line matches `pattern` or
/// `PORT_SEARCH` has passed.
pub(super) async fn search_log<F, Fut>(
    ctx: &Ctx,
    pattern: &regex::Regex,
    port_pattern: &str,
    mut read: F,
) -> Result<u16, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    ctx.process
        .update(|s| s.detail = Some("waiting for port".into()));
    let deadline = Instant::now() + PORT_SEARCH;
    loop {
        let log = read().await;
        if let Some(port) = log
            .as_deref()
            .ok()
            .and_then(|text| kubectl::proxy_port(pattern, text))
        {
            ctx.say(&format!(
                "the pod's log says the proxy listens on port {port}"
            ))
            .await;
            return Ok(port);
        }
        if Instant::now() >= deadline {
            let why = log.err().map(|e| format!(" ({e})")).unwrap_or_default();
            return Err(format!(
                "no line of the pod's log matched /{port_pattern}/ within {} s{why}",
                PORT_SEARCH.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reads the connect command's output until it has said the proxy's port (then `linger` more,
/// to see a failing exit) or has ended; `exit` is its exit code once it ends. `Ok(None)`: it
/// ended well without saying the port, which the pod's log may then tell.
pub(super) async fn await_port(
    lines: &mut mpsc::Receiver<String>,
    exit: impl Future<Output = i32>,
    pattern: &regex::Regex,
    output: &mut LastLines,
    linger: Duration,
    what: &str,
) -> Result<Option<u16>, String> {
    tokio::pin!(exit);
    let mut found = None;
    let mut deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    let exited = loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => {
                    if let Some(port) = kubectl::proxy_port(pattern, &line) {
                        if found.is_none() {
                            deadline = deadline.min(tokio::time::Instant::now() + linger);
                        }
                        found = Some(port);
                    }
                    output.push(line);
                    if found.is_some() && linger.is_zero() {
                        break None;
                    }
                }
                // Output closed: the exit follows.
                None => break Some((&mut exit).await),
            },
            code = &mut exit => {
                // Its last lines may still be on their way: read the output to its end.
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Some(line) = lines.recv().await {
                        found = kubectl::proxy_port(pattern, &line).or(found);
                        output.push(line);
                    }
                })
                .await;
                break Some(code);
            }
            _ = tokio::time::sleep_until(deadline) => break None,
        }
    };
    if exited.is_none() && found.is_none() {
        return Err(format!(
            "{what} did not finish within {} s{}",
            STEP_TIMEOUT.as_secs(),
            output.explain()
        ));
    }
    if let Some(code) = exited.filter(|&code| code != 0) {
        return Err(format!(
            "{what} of the proxy failed with exit code {code}{}",
            output.explain()
        ));
    }
    Ok(found)
}

/// Runs `kubectl logs` and returns its stdout. The pod's log is read, not copied into the
/// tunnel's log; kubectl's complaints are.
async fn read_pod_log(ctx: &Ctx, argv: &[OsString]) -> Result<String, String> {
    let context = &ctx.part.context;
    let mut child = child::spawn(&ctx.daemon.spawner, argv, &context.env, &context.cwd)
        .await
        .map_err(|err| child::describe_spawn_error(argv, &context.cwd, &err))?;
    let pid = child.id().unwrap_or(0);
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let read = async {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        if let Some(out) = out.as_mut() {
            let _ = out.read_to_end(&mut stdout).await;
        }
        if let Some(err) = err.as_mut() {
            let _ = err.read_to_end(&mut stderr).await;
        }
        (stdout, stderr, child.wait().await.ok())
    };
    let (stdout, stderr, status) = match tokio::time::timeout(STEP_TIMEOUT, read).await {
        Ok(done) => done,
        Err(_) => {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::SIGKILL,
            );
            return Err("kubectl logs did not answer".into());
        }
    };
    let stderr = String::from_utf8_lossy(&stderr);
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        ctx.say(&format!("kubectl logs: {line}")).await;
    }
    match child::exit_code(status) {
        0 => Ok(String::from_utf8_lossy(&stdout).into_owned()),
        code => Err(format!(
            "kubectl logs exited with code {code}: {}",
            stderr.trim()
        )),
    }
}

/// The proxy port each database target was last found on. A guess, never trusted: it lets
/// kubectl port-forward start while exec confirms the port.
#[derive(Debug, Default)]
pub struct ProxyPorts(Mutex<HashMap<String, u16>>);

impl ProxyPorts {
    pub fn get(&self, target: &str) -> Option<u16> {
        self.0.lock().ok()?.get(target).copied()
    }

    pub fn learn(&self, target: &str, port: u16) {
        if let Ok(mut ports) = self.0.lock() {
            ports.insert(target.to_string(), port);
        }
    }
}
