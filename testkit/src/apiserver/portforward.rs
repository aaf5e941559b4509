//! `kubectl port-forward` to the fake pod, over a SPDY/3.1 session (direct,
//! or tunnelled in WebSocket messages). Each local connection arrives as an
//! `error` stream and a `data` stream sharing a `requestid`; the pair is
//! spliced to 127.0.0.1:<port> if one of the pod's proxies listens there, or
//! else fails the way the kubelet does: a message on the error stream, then
//! FIN on both streams (which makes kubectl end the whole session). Each pair is a forwarded
//! connection that `fail-stream` can fail the same way.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::spdy_session::{self, Inbound, Stream};
use super::state::Shared;

/// Serves one port-forward session until the client closes it.
pub async fn serve<R, W>(shared: Arc<Shared>, pod: String, reader: R, writer: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (session, mut incoming) = spdy_session::start(reader, writer);
    let app = async move {
        let mut pending: HashMap<String, (Option<Stream>, Option<Stream>)> = HashMap::new();
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                s = incoming.recv() => {
                    let Some(s) = s else { break };
                    let key = s.header("requestid").unwrap_or_default().to_string();
                    let entry = pending.entry(key.clone()).or_default();
                    match s.header("streamtype") {
                        Some("error") => entry.0 = Some(s),
                        Some("data") => entry.1 = Some(s),
                        _ => {
                            let _ = s.tx.reset(super::spdy_frame::RST_PROTOCOL_ERROR).await;
                            continue;
                        }
                    }
                    if matches!(entry, (Some(_), Some(_)))
                        && let Some((Some(error), Some(data))) = pending.remove(&key)
                    {
                        tasks.spawn(forward(shared.clone(), pod.clone(), error, data));
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tasks.abort_all();
    };
    let _ = tokio::join!(session, app);
}

/// The kubelet's wording when the pod has nothing listening on the port.
pub fn connect_error(namespace: &str, pod: &str, uid: &str, port: u16) -> String {
    format!(
        "error forwarding port {port} to pod {pod}, uid {uid}: failed to connect to localhost:{port} \
         inside namespace \"{namespace}\", IPv4: dial tcp4 127.0.0.1:{port}: connect: connection \
         refused IPv6 dial tcp6 [::1]:{port}: connect: connection refused "
    )
}

async fn forward(shared: Arc<Shared>, pod: String, error: Stream, data: Stream) {
    let port: Option<u16> = data.header("port").and_then(|p| p.trim().parse().ok());
    let backend = match port {
        Some(port) if shared.pod_has_port(&pod, port) => {
            TcpStream::connect(("127.0.0.1", port)).await.ok()
        }
        _ => None,
    };
    let Some(backend) = backend else {
        let msg = match port {
            Some(port) => {
                let uid = shared.pod().map(|p| p.uid).unwrap_or_default();
                connect_error(&shared.cfg.namespace, &pod, &uid, port)
            }
            None => format!("invalid port header {:?}", data.header("port")),
        };
        let _ = error.tx.data(msg.as_bytes()).await;
        let _ = error.tx.fin().await;
        let _ = data.tx.fin().await;
        return;
    };
    let _ = backend.set_nodelay(true);
    let mut registered = shared.open_forward(&pod, port.unwrap_or(0), "spdy");
    let sent = registered.bytes_down();
    let (mut from_backend, mut to_backend) = backend.into_split();
    let Stream {
        rx: mut data_rx,
        tx: data_tx,
        ..
    } = data;
    // Client -> backend. Returns true if the client reset the stream.
    let stalls = shared.clone();
    let up = async move {
        while let Some(ev) = data_rx.recv().await {
            match ev {
                Inbound::Data(b) => {
                    stalls.stall_wait().await;
                    if to_backend.write_all(&b).await.is_err() {
                        return true;
                    }
                }
                Inbound::Fin => {
                    let _ = to_backend.shutdown().await;
                    return false;
                }
                Inbound::Reset(_) => return true,
            }
        }
        true
    };
    // Backend -> client, then FIN data and error: "this connection is done".
    let down_tx = data_tx.clone();
    let down = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from_backend.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    shared.stall_wait().await;
                    if down_tx.data(&buf[..n]).await.is_err() {
                        return;
                    }
                    sent.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        let _ = down_tx.fin().await;
    };
    tokio::pin!(up, down);
    tokio::select! {
        reset = &mut up => {
            if !reset {
                (&mut down).await;
            }
        }
        () = &mut down => {}
        message = registered.failed() => {
            // `fail-stream`: what the kubelet does when the pod's port breaks.
            let _ = error.tx.data(message.as_bytes()).await;
            let _ = data_tx.fin().await;
        }
    }
    let _ = error.tx.fin().await;
}
