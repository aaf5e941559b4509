//! A tunnel's path on the native transport: the API client, a Ready pod, the proxy in it (for a
//! database) and its port, a stream per connection; then the watch of the pod, which ends the
//! attempt as soon as the pod is gone, so that the next attempt moves to the next pod before a
//! client needs it. No process runs and no probe reaches the database.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::sync::mpsc;

use super::proxy::{await_port, search_log};
use super::{Attempt, Broke, Ctx, STEP_TIMEOUT};
use crate::daemon::process::Phase;
use crate::forward::tunnel::Upstream;
use crate::native::client::{self, Place};
use crate::native::streams::{Note, PodStreams};
use crate::native::watch::{self, PodWatch};
use crate::native::{Refusal, describe, pods, proxy};
use crate::protocol::Route;

/// What an attempt on the native transport holds until it ends: the proxy's exec stream.
#[derive(Default)]
pub(super) struct Held {
    exec: Option<proxy::ProxyExec>,
}

/// The tunnel's API client, kept from one attempt to the next so that a rebuild after a pod
/// went away does not read the kubeconfig and run its credential plugin again. Forgotten after
/// an attempt that never came up, so that a fixed kubeconfig is read anew.
#[derive(Default)]
pub(super) struct Cache(Mutex<Option<kube::Client>>);

impl Cache {
    async fn client(&self, ctx: &Ctx) -> Result<kube::Client, Refusal> {
        if let Some(client) = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(client);
        }
        let target = &ctx.part.target;
        let place = Place {
            kubeconfig: target.kubeconfig.as_deref(),
            context: &target.context,
            env: &ctx.part.context.env,
            cwd: &ctx.part.context.cwd,
        };
        let client = client::connect(&place).await?;
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(client.clone());
        Ok(client)
    }

    pub(super) fn forget(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Builds the path and watches it; returns when it breaks.
pub(super) async fn run(ctx: &Ctx, attempt: &mut Attempt) -> Broke {
    let broke = run_path(ctx, attempt).await;
    if attempt.up_since.is_none() {
        ctx.native.forget();
    }
    broke
}

async fn run_path(ctx: &Ctx, attempt: &mut Attempt) -> Broke {
    ctx.process
        .update(|s| s.detail = Some("connecting to the API server".into()));
    let target = &ctx.part.target;
    let client = match ctx.native.client(ctx).await {
        Ok(client) => client,
        Err(refusal) => return refused(refusal),
    };
    let resolved = match pods::resolve(&client, target).await {
        Ok(resolved) => resolved,
        Err(refusal) => return refused(refusal),
    };
    let api: Api<Pod> = Api::namespaced(client, &target.namespace);
    let mut pods = PodWatch::start(api.clone(), &resolved.selector);
    ctx.process
        .update(|s| s.detail = Some("waiting for a Ready pod".into()));
    let pod = match pods.ready(STEP_TIMEOUT).await {
        Ok(pod) => pod,
        Err(why) => return Broke::Failed(format!("{}: {why}", target.resource())),
    };
    let pod_name = watch::name(&pod);
    ctx.say(&format!("pod {pod_name} chosen for {}", target.resource()))
        .await;
    ctx.process.update(|s| s.pod = Some(pod_name.clone()));
    let (notes_tx, notes) = mpsc::unbounded_channel();
    let streams = match &target.route {
        Route::Service { remote_port, .. } => match resolved.pod_port(&pod, *remote_port) {
            Ok(port) => open_streams(&api, &pod_name, port, &notes_tx).await,
            Err(why) => Err(Refusal::Failed(why)),
        },
        Route::Database { .. } => database_streams(ctx, &api, &pod_name, attempt, &notes_tx).await,
    };
    let streams = match streams {
        Ok(streams) => streams,
        Err(refusal) => return refused(refusal),
    };
    let remote = streams.port;
    ctx.part
        .tunnel
        .set_upstream(Some(Upstream::Streams(streams.clone())));
    attempt.up_since = Some(Instant::now());
    ctx.process.update(|s| {
        s.phase = match s.phase {
            // Up already on a known port, now confirmed.
            Phase::Running { since, .. } => Phase::Running { pid: None, since },
            _ => {
                s.started_at = SystemTime::now();
                Phase::running(None)
            }
        };
        s.remote_port = Some(remote);
        s.last_pid = None;
        s.detail = None;
    });
    ctx.say(&format!(
        "tunnel up: 127.0.0.1:{} -> {pod_name}:{remote} (native)",
        ctx.part.local_port()
    ))
    .await;
    follow(
        ctx,
        Path {
            api,
            pods,
            resolved,
            streams,
        },
        notes,
    )
    .await
}

/// A working path: the pod's API, its watch, and the streams to it.
struct Path {
    api: Api<Pod>,
    pods: PodWatch,
    resolved: pods::Resolved,
    streams: Arc<PodStreams>,
}

/// Follows a working path until its pod goes, its proxy stops listening, or a check after a
/// failed connection or a wake finds it broken; logs what its streams do meanwhile.
async fn follow(ctx: &Ctx, mut path: Path, mut notes: mpsc::UnboundedReceiver<Note>) -> Broke {
    let pod = path.streams.pod.clone();
    let remote = path.streams.port;
    let is_database = matches!(ctx.part.target.route, Route::Database { .. });
    let mut wakes = ctx.daemon.heartbeat.wakes();
    loop {
        tokio::select! {
            gone = path.pods.gone(&pod) => return Broke::Lost(gone.describe()),
            Some(note) = notes.recv() => match note {
                Note::Connection => {
                    ctx.say(&format!("Handling connection for {}", ctx.part.local_port())).await;
                }
                Note::Failed(message) => {
                    ctx.say(&format!(
                        "a connection's stream failed, the tunnel and its other connections carry on: {message}"
                    ))
                    .await;
                    if is_database && port_closed(&message) {
                        return Broke::Lost(format!(
                            "the proxy in pod {pod} no longer listens on port {remote}"
                        ));
                    }
                }
            },
            _ = wakes.changed() => {
                ctx.say(&format!(
                    "the daemon did not run for a while (sleep or freeze): checking pod {pod} and reopening its streams"
                ))
                .await;
                path.streams.forget_spare();
                if let Err(broke) = recheck(ctx, &path.api, &path.streams).await {
                    return broke;
                }
                // The watch's connection may be as dead as the streams were.
                path.pods = PodWatch::start(path.api.clone(), &path.resolved.selector);
            }
            _ = ctx.part.tunnel.splice_failed.notified() => {
                if let Err(broke) = recheck(ctx, &path.api, &path.streams).await {
                    return broke;
                }
            }
        }
    }
}

/// Streams to `port` of `pod`, the first opened (proof that the path works).
async fn open_streams(
    api: &Api<Pod>,
    pod: &str,
    port: u16,
    notes: &mpsc::UnboundedSender<Note>,
) -> Result<Arc<PodStreams>, Refusal> {
    let streams = PodStreams::new(api.clone(), pod.to_string(), port, notes.clone());
    streams.prime().await.map_err(|err| stream_refusal(&err))?;
    Ok(streams)
}

/// A database's streams, to the port its proxy says. When the port is known from before (a
/// rebuild, a target forwarded earlier, a daemon restarted), streams to it open while the exec
/// confirms it, and the tunnel is reported running once they work: only connections wait for
/// the confirmation. A port that moved gets streams of its own.
async fn database_streams(
    ctx: &Ctx,
    api: &Api<Pod>,
    pod: &str,
    attempt: &mut Attempt,
    notes: &mpsc::UnboundedSender<Note>,
) -> Result<Arc<PodStreams>, Refusal> {
    let Some(guess) = ctx.daemon.proxy_ports.get(&ctx.part.target.name) else {
        let port = proxy_port(ctx, api, pod, attempt).await?;
        return open_streams(api, pod, port, notes).await;
    };
    let (confirmed, early) = tokio::join!(proxy_port(ctx, api, pod, attempt), async {
        let early = open_streams(api, pod, guess, notes).await;
        if early.is_ok() {
            ctx.process.update(|s| {
                s.phase = Phase::running(None);
                s.remote_port = Some(guess);
                s.started_at = SystemTime::now();
                s.detail = Some("confirming the proxy port".into());
            });
        }
        early
    });
    let port = confirmed?;
    match early {
        Ok(streams) if port == guess => Ok(streams),
        _ => {
            if port != guess {
                ctx.say(&format!(
                    "the proxy listens on port {port} now; forwarding there"
                ))
                .await;
            }
            open_streams(api, pod, port, notes).await
        }
    }
}

/// The proxy's port in `pod`: the connect command's output says it, or else the pod's log.
async fn proxy_port(
    ctx: &Ctx,
    api: &Api<Pod>,
    pod: &str,
    attempt: &mut Attempt,
) -> Result<u16, Refusal> {
    let Route::Database {
        connect,
        port_pattern,
        ..
    } = &ctx.part.target.route
    else {
        return Err(Refusal::Failed("not a database target".into()));
    };
    let pattern = regex::Regex::new(port_pattern)
        .map_err(|err| Refusal::Failed(format!("port_pattern is invalid: {err}")))?;
    ctx.process
        .update(|s| s.detail = Some("starting proxy in pod".into()));
    let (tx, mut lines) = mpsc::channel(256);
    let exec = proxy::start(api, pod, connect, tx)
        .await
        .map_err(|err| stream_refusal(&err))?;
    let exec = attempt.native.exec.insert(exec);
    // Copied into the log as they come, for as long as the exec runs, as kubectl exec's are.
    let (logged_tx, mut logged) = mpsc::channel(256);
    let (daemon, process) = (ctx.daemon.clone(), ctx.process.clone());
    tokio::spawn(async move {
        while let Some(line) = lines.recv().await {
            daemon.say(&process, &line).await;
            let _ = logged_tx.try_send(line);
        }
    });
    let exit = async { (&mut exec.exit).await.ok().flatten().unwrap_or(0) };
    let found = await_port(
        &mut logged,
        exit,
        &pattern,
        &mut attempt.output,
        std::time::Duration::ZERO,
        "the exec",
    )
    .await
    .map_err(Refusal::Failed)?;
    if let Some(port) = found {
        ctx.say(&format!("the proxy listens on port {port} in the pod"))
            .await;
        ctx.daemon.proxy_ports.learn(&ctx.part.target.name, port);
        return Ok(port);
    }
    let port = search_log(ctx, &pattern, port_pattern, || proxy::pod_log(api, pod))
        .await
        .map_err(Refusal::Failed)?;
    ctx.daemon.proxy_ports.learn(&ctx.part.target.name, port);
    Ok(port)
}

/// After a failed connection or a wake: the pod must still be there and Ready, and a new stream
/// must open (it becomes the spare); then connections that failed against the old streams may
/// try again.
async fn recheck(ctx: &Ctx, api: &Api<Pod>, streams: &Arc<PodStreams>) -> Result<(), Broke> {
    let pod = &streams.pod;
    match api.get_opt(pod).await {
        Ok(Some(found)) if watch::is_ready(&found) => {}
        Ok(Some(_)) => return Err(Broke::Lost(format!("pod {pod} is not Ready"))),
        Ok(None) => return Err(Broke::Lost(format!("pod {pod} was deleted"))),
        Err(err) => {
            return Err(Broke::Lost(format!(
                "pod {pod} could not be checked: {}",
                describe(&err)
            )));
        }
    }
    streams.prime().await.map_err(|err| {
        Broke::Lost(format!(
            "a stream to pod {pod} could not be opened: {}",
            describe(&err)
        ))
    })?;
    ctx.part
        .tunnel
        .set_upstream(Some(Upstream::Streams(streams.clone())));
    Ok(())
}

/// Whether a stream's error says that nothing listens on the pod's port (the kubelet's words).
fn port_closed(message: &str) -> bool {
    message.contains("connection refused") || message.contains("failed to connect to localhost")
}

/// An upgrade the server refused is a protocol it does not serve, which kubectl may still
/// reach (by SPDY); anything else fails as it would for kubectl.
fn stream_refusal(err: &kube::Error) -> Refusal {
    let refused_upgrade = match err {
        kube::Error::UpgradeConnection(_) => true,
        kube::Error::Api(status) => matches!(status.code, 400 | 403 | 405 | 426 | 501),
        _ => false,
    };
    let why = describe(err);
    if refused_upgrade {
        Refusal::Unsupported(format!(
            "the API server refused the WebSocket stream the native client uses ({why})"
        ))
    } else {
        Refusal::Failed(why)
    }
}

fn refused(refusal: Refusal) -> Broke {
    match refusal {
        Refusal::Unsupported(why) => Broke::Unsupported(why),
        Refusal::Failed(why) => Broke::Failed(why),
    }
}
