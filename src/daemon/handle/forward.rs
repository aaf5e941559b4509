//! `rhizome forward`: find or create the tunnel, bind its local port, start its supervisor, and
//! answer once it carries traffic.

use std::io;
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use crate::connection::DaemonSide;
use crate::daemon::Daemon;
use crate::daemon::child::Ending;
use crate::daemon::process::{Order, Phase, Process, Restarted, TunnelPart, Work};
use crate::daemon::supervise::tunnel;
use crate::daemon::table::Claim;
use crate::forward::port;
use crate::forward::tunnel::Tunnel;
use crate::protocol::{ErrorReply, ForwardInfo, ForwardRequest, Response, Tool};

/// Answers one forward request on `conn`.
pub async fn open(
    daemon: &Arc<Daemon>,
    conn: &mut DaemonSide,
    request: ForwardRequest,
) -> io::Result<()> {
    if let Err(reply) = daemon.refuse_if_stopping() {
        return conn.send(&Response::Error(reply)).await;
    }
    let timeout = Duration::from_millis(request.timeout_ms);
    let target = &request.target;
    let claim = daemon
        .table
        .claim_tunnel(target, |id| -> Result<_, Refused> {
            let part = wanted(&request, bind(target.local_port, timeout)?);
            Ok(daemon.new_process(id, target.name.clone(), Work::tunnel(part)))
        });
    let (process, fresh) = match with_transport(claim, &request.tool) {
        Err(refusal) => {
            let reply = refusal.explain().await;
            return conn.send(&Response::Error(reply)).await;
        }
        Ok(Claim::Existing(process)) => (process, None),
        Ok(Claim::New(process, orders)) => (process, Some(orders)),
        Ok(Claim::Differs(process, changed)) if request.replace => {
            // On the old listener until `relisten` says otherwise.
            let Some(old) = process.tunnel() else {
                return Ok(());
            };
            let part = wanted(&request, old.tunnel.clone());
            return replace_tunnel(daemon, conn, &process, &old, part, changed).await;
        }
        Ok(Claim::Differs(process, changed)) => {
            let reply = differs(&process, &changed);
            return conn.send(&Response::Error(reply)).await;
        }
    };
    // Listening before the supervisor starts, so that no step is missed.
    let steps = process.steps();
    let fresh = match fresh {
        Some(orders) => {
            start_tunnel(daemon, &process, orders);
            if let Err(reply) = daemon.persist_start(&process).await {
                return conn.send(&Response::Error(reply)).await;
            }
            conn.send(&Response::TunnelCreated).await?;
            true
        }
        None => false,
    };
    wait_until_ready(conn, &process, steps, timeout, fresh).await
}

/// A tunnel carried by another transport than the one asked for differs too: `forward
/// --transport kubectl` (or a changed `transport` in rhizome.toml) is not answered with the
/// native tunnel that runs.
fn with_transport<E>(claim: Result<Claim, E>, tool: &Tool) -> Result<Claim, E> {
    let change = |process: &Process| {
        let running = process.tunnel()?.tool.transport();
        let wanted = tool.transport();
        (running != wanted).then(|| format!("transport {} -> {}", running.word(), wanted.word()))
    };
    Ok(match claim? {
        Claim::Existing(process) => match change(&process) {
            Some(changed) => Claim::Differs(process, vec![changed]),
            None => Claim::Existing(process),
        },
        Claim::Differs(process, mut changed) => {
            changed.extend(change(&process));
            Claim::Differs(process, changed)
        }
        new => new,
    })
}

/// The tunnel `request` asks for, on `tunnel`.
fn wanted(request: &ForwardRequest, tunnel: Arc<Tunnel>) -> TunnelPart {
    TunnelPart {
        target: request.target.clone(),
        tool: request.tool.clone(),
        context: request.context.clone().into(),
        wait: Duration::from_millis(request.timeout_ms),
        settings: request.settings,
        tunnel,
    }
}

/// The refusal of a forward that asks the target's tunnel for another configuration.
fn differs(process: &Process, changed: &[String]) -> ErrorReply {
    let name = &process.name;
    ErrorReply::new(format!(
        "the tunnel {name} (id {}) runs with another configuration than this forward asks for: {}",
        process.id,
        changed.join(", ")
    ))
    .with_hint(format!(
        "`rhizome restart {name}` rebuilds it from rhizome.toml, `rhizome forward --replace {name}` from this command"
    ))
}

/// `forward --replace`: the target's tunnel restarted with `part`, the configuration this forward
/// asks for, as the same process; answered like any forward once it carries traffic.
async fn replace_tunnel(
    daemon: &Arc<Daemon>,
    conn: &mut DaemonSide,
    process: &Arc<Process>,
    old: &TunnelPart,
    part: TunnelPart,
    changed: Vec<String>,
) -> io::Result<()> {
    let timeout = part.wait;
    let part = match relisten(daemon, process.id, old, part) {
        Ok(part) => part,
        Err(refusal) => return conn.send(&Response::Error(refusal.explain().await)).await,
    };
    let steps = process.steps();
    let changed = changed.join(", ");
    conn.send(&Response::Progress(format!(
        "replacing the tunnel (id {}): {changed}",
        process.id
    )))
    .await?;
    let why = format!("restarted by rhizome forward --replace: {changed}");
    if restart_with(process, old, part, Ending::term(REPLACE_GRACE), why)
        .await
        .is_none()
    {
        let reply = ErrorReply::new(format!(
            "the tunnel {} ended while it was being replaced",
            process.name
        ))
        .with_hint("run the forward again");
        return conn.send(&Response::Error(reply)).await;
    }
    if let Err(message) = daemon.persist().await {
        let reply = ErrorReply::new(format!("the tunnel was replaced, but {message}")).with_hint(
            "free space on that disk; until then a daemon restart brings back the old one",
        );
        return conn.send(&Response::Error(reply)).await;
    }
    wait_until_ready(conn, process, steps, timeout, false).await
}

/// Restarts the tunnel `process`, which runs `old`, with `part`; a listener bound for `part` that
/// the supervisor never took is closed again. `None`: the supervisor had finished.
pub(super) async fn restart_with(
    process: &Process,
    old: &TunnelPart,
    part: Arc<TunnelPart>,
    ending: Ending,
    why: String,
) -> Option<Restarted> {
    let listener = part.tunnel.clone();
    let restarted = process.restart(ending, why, Some(part)).await;
    if restarted.is_none() && !Arc::ptr_eq(&listener, &old.tunnel) {
        listener.close();
    }
    restarted
}

/// kubectl does not trap SIGTERM; a replaced tunnel's goes at once.
const REPLACE_GRACE: Duration = Duration::from_secs(2);

/// `part`, a new configuration for the tunnel `id` that runs `old`, made ready to take over: on
/// `old`'s listener when the port stays (or the target takes any port), else on a listener of its
/// own, bound here so that a port in use changes nothing.
pub(super) fn relisten(
    daemon: &Daemon,
    id: u32,
    old: &TunnelPart,
    mut part: TunnelPart,
) -> Result<Arc<TunnelPart>, Refused> {
    match part.target.local_port {
        Some(port) if port.get() != old.local_port() => {
            daemon.table.check_port(&part.target, id)?;
            part.tunnel = bind(Some(port), part.wait)?;
        }
        _ => part.tunnel = old.tunnel.clone(),
    }
    Ok(Arc::new(part))
}

/// Starts the supervisor of a tunnel whose port is bound.
pub fn start_tunnel(daemon: &Arc<Daemon>, process: &Arc<Process>, orders: mpsc::Receiver<Order>) {
    let Some(part) = process.tunnel() else {
        return;
    };
    tracing::info!(
        "tunnel {} (id {}) listening on {}",
        process.name,
        process.id,
        part.local_port()
    );
    daemon.supervisors.spawn(tunnel::supervise(
        daemon.clone(),
        process.clone(),
        part.clone(),
        orders,
    ));
}

/// Why a tunnel could not be claimed.
pub enum Refused {
    /// Another tunnel has the port, or the like: said as it is.
    Reply(ErrorReply),
    /// Something outside rhizome listens on the port.
    InUse(u16),
    /// Binding failed otherwise.
    Bind(u16, io::Error),
}

impl From<ErrorReply> for Refused {
    fn from(reply: ErrorReply) -> Refused {
        Refused::Reply(reply)
    }
}

impl Refused {
    /// The reason in words, without looking for a port's holder.
    pub fn describe(&self) -> String {
        match self {
            Refused::Reply(reply) => reply.message.clone(),
            Refused::InUse(port) => format!("local port {port} is in use by another process"),
            Refused::Bind(port, err) => format!("could not listen on 127.0.0.1:{port}: {err}"),
        }
    }

    /// The reply, naming the holder of a port in use where it can be found. Finding it scans
    /// `/proc` or runs `lsof`, so it is done off the runtime and outside the table's lock.
    pub async fn explain(self) -> ErrorReply {
        match self {
            Refused::Reply(reply) => reply,
            Refused::InUse(port) => {
                let holder = tokio::task::spawn_blocking(move || port::holder(port))
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "another process".into());
                ErrorReply::new(format!("local port {port} is in use by {holder}")).with_hint(
                    "stop that process, or choose another port with `rhizome forward --port N`",
                )
            }
            Refused::Bind(port, err) => {
                ErrorReply::new(format!("could not listen on 127.0.0.1:{port}: {err}"))
            }
        }
    }
}

/// Binds a tunnel's local port and starts accepting on it.
pub fn bind(port: Option<NonZeroU16>, wait: Duration) -> Result<Arc<Tunnel>, Refused> {
    let number = port.map_or(0, NonZeroU16::get);
    let listener = Tunnel::bind(port).map_err(|err| match err.kind() {
        io::ErrorKind::AddrInUse => Refused::InUse(number),
        _ => Refused::Bind(number, err),
    })?;
    Tunnel::start(listener, wait).map_err(|err| Refused::Bind(number, err))
}

/// Sends every progress step (`steps`, subscribed before the tunnel started) until the tunnel carries traffic (then its handle) or fails (then
/// why). A tunnel this request created and that is not ready in time is stopped: the user was told
/// it failed.
async fn wait_until_ready(
    conn: &mut DaemonSide,
    process: &Arc<Process>,
    mut steps: broadcast::Receiver<String>,
    timeout: Duration,
    fresh: bool,
) -> io::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut state = process.watch();
    let mut said: Option<String> = None;
    // A tunnel found running tells where it is first; a new one's steps are all in `steps`.
    let current = state.borrow().detail.clone().filter(|_| !fresh);
    if let Some(step) = current {
        conn.send(&Response::Progress(step.clone())).await?;
        said = Some(step);
    }
    let name = &process.name;
    let reply = loop {
        let phase = state.borrow_and_update().phase.clone();
        // Steps taken on the way to this phase are told before it.
        while let Ok(step) = steps.try_recv() {
            if said.as_ref() != Some(&step) {
                conn.send(&Response::Progress(step.clone())).await?;
                said = Some(step);
            }
        }
        match phase {
            // A lazy tunnel is ready once it holds its port: its first client wakes it.
            Phase::Running { .. } | Phase::Idle => {
                return conn.send(&Response::Forwarded(handle(process))).await;
            }
            Phase::Failed(reason) => {
                break ErrorReply::new(format!("could not forward {name}: {reason}"));
            }
            phase if phase.is_final() => {
                break ErrorReply::new(format!(
                    "the tunnel {name} was stopped ({}) before it was ready",
                    phase.status()
                ));
            }
            _ => {}
        }
        tokio::select! {
            step = steps.recv() => {
                if let Ok(step) = step
                    && said.as_ref() != Some(&step)
                {
                    conn.send(&Response::Progress(step.clone())).await?;
                    said = Some(step);
                }
                continue;
            }
            _ = state.changed() => continue,
            _ = tokio::time::sleep_until(deadline) => {}
            // The client gave up (Ctrl-C); the tunnel goes on starting.
            _ = conn.recv() => return Ok(()),
        }
        if fresh {
            process.kill(Ending::term(Duration::from_secs(2))).await;
        }
        let last = process
            .state()
            .detail
            .map(|d| format!("; last: {d}"))
            .unwrap_or_default();
        break ErrorReply::new(format!(
            "the tunnel {name} was not ready within {} s{last}",
            timeout.as_secs()
        ))
        .with_hint(
            "`rhizome logs` on the target shows what kubectl printed; --timeout waits longer",
        );
    };
    let reply = match reply.hint {
        Some(_) => reply,
        None => reply.with_hint(format!("`rhizome logs {name}` shows what kubectl printed")),
    };
    conn.send(&Response::Error(reply)).await
}

/// The original design's Handle for a working tunnel.
fn handle(process: &Process) -> ForwardInfo {
    let (url, port, sql_connection) = match process.tunnel() {
        Some(part) => (
            part.target.url(part.local_port()),
            part.local_port(),
            part.target.sql_connection().map(str::to_string),
        ),
        None => (String::new(), 0, None),
    };
    ForwardInfo {
        connection_string: url,
        local_port: port,
        sql_connection,
        target: process.name.clone(),
        id: process.id,
        pid: process.pid(),
        process: process.info(),
    }
}
