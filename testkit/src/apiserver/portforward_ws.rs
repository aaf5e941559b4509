//! Port-forward over WebSocket with the Kubernetes channel protocol, as kube-rs
//! (`kube-client/src/api/portforward.rs`) and the Python client (`kubernetes/stream/ws_client.py`)
//! speak it, and as the kubelet serves it (`v4.channel.k8s.io`; also `portforward.k8s.io`, or no
//! subprotocol at all):
//!
//! - `GET .../pods/P/portforward?ports=A,B` (or `ports` repeated): the port at index `i` has the
//!   data channel `2i` and the error channel `2i+1`.
//! - Every binary message starts with its channel byte. The server's first message on each
//!   channel is the port alone, two bytes little-endian (`[2i, lo, hi]`, then `[2i+1, lo, hi]`);
//!   both clients refuse anything else as a first message. The client sends no such prefix.
//! - Data flows as `[2i, bytes...]` both ways. An error is one message on `2i+1` (the kubelet's
//!   text), after which that port is done; the clients treat the port as unusable.
//! - There is no half-close: when the pod's side of every port has ended the server closes the
//!   WebSocket (1000); when the client closes it, everything ends.
//!
//! kube-rs opens one such connection per local connection, so each is counted as a forwarded
//! connection that `fail-stream` can fail alone, with the others untouched.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::http::Request;
use super::portforward::connect_error;
use super::state::Shared;
use super::websocket::{self, channel_message};

/// The ports a request asks for, in order: `ports=A,B`, the parameter possibly repeated.
pub fn ports(req: &Request) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for value in req.query_all("ports") {
        for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n),
                _ => return Err(format!("invalid port {p:?}")),
            }
        }
    }
    if ports.is_empty() {
        return Err("query parameter \"ports\" is required".into());
    }
    Ok(ports)
}

/// The first message on each channel of port `index`: the port, little-endian.
pub fn port_prefix(index: usize, port: u16) -> [Message; 2] {
    let le = port.to_le_bytes();
    [
        channel_message(2 * index as u8, &le),
        channel_message(2 * index as u8 + 1, &le),
    ]
}

/// Serves one port-forward connection until the client closes it or every port is done.
pub async fn serve<S>(shared: Arc<Shared>, pod: String, ports: Vec<u16>, ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(64);
    let mut inputs = Vec::with_capacity(ports.len());
    let mut tasks = JoinSet::new();
    for (index, &port) in ports.iter().enumerate() {
        for m in port_prefix(index, port) {
            let _ = out_tx.send(m).await;
        }
        let (in_tx, in_rx) = mpsc::channel::<Bytes>(64);
        inputs.push(in_tx);
        tasks.spawn(forward(
            shared.clone(),
            pod.clone(),
            index,
            port,
            in_rx,
            out_tx.clone(),
        ));
    }
    // Once every port's task is done, the channel closes: time to close the WebSocket.
    drop(out_tx);
    let write = async {
        while let Some(m) = out_rx.recv().await {
            if sink.send(m).await.is_err() {
                return false;
            }
        }
        true
    };
    let read = async {
        while let Some(Ok(m)) = stream.next().await {
            match m {
                Message::Binary(b) if !b.is_empty() => {
                    let channel = usize::from(b[0]);
                    // Only data channels carry client bytes; a write to an error channel is
                    // ignored, as the kubelet ignores it.
                    if channel % 2 == 0
                        && let Some(input) = inputs.get(channel / 2)
                    {
                        let _ = input.send(b.slice(1..)).await;
                    }
                }
                Message::Close(_) | Message::Text(_) => return,
                _ => {}
            }
        }
    };
    let ports_done = tokio::select! {
        done = write => done,
        () = read => false,
    };
    tasks.abort_all();
    let Ok(mut ws) = stream.reunite(sink) else {
        return;
    };
    if ports_done {
        websocket::close(&mut ws).await;
    } else {
        // The client closed (or broke) the connection: let tungstenite's reply go out.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), ws.close(None)).await;
    }
}

/// One port of the connection: the pod's port spliced to the channels `2 * index` (data) and
/// `2 * index + 1` (error), until the pod's side ends, the client goes, or `fail-stream`.
async fn forward(
    shared: Arc<Shared>,
    pod: String,
    index: usize,
    port: u16,
    mut input: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<Message>,
) {
    let (data_ch, error_ch) = (2 * index as u8, 2 * index as u8 + 1);
    let mut forward = shared.open_forward(&pod, port, "websocket");
    let sent = forward.bytes_down();
    let backend = if shared.pod_has_port(&pod, port) {
        TcpStream::connect(("127.0.0.1", port)).await.ok()
    } else {
        None
    };
    let Some(backend) = backend else {
        let uid = shared.pod().map(|p| p.uid).unwrap_or_default();
        let msg = connect_error(&shared.cfg.namespace, &pod, &uid, port);
        let _ = out.send(channel_message(error_ch, msg.as_bytes())).await;
        return;
    };
    let _ = backend.set_nodelay(true);
    let (mut from_pod, mut to_pod) = backend.into_split();
    let up = async {
        while let Some(bytes) = input.recv().await {
            shared.stall_wait().await;
            if to_pod.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from_pod.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    shared.stall_wait().await;
                    if out.send(channel_message(data_ch, &buf[..n])).await.is_err() {
                        return;
                    }
                    sent.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
        message = forward.failed() => {
            let _ = out.send(channel_message(error_ch, message.as_bytes())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &str) -> Request {
        let (parts, ()) = hyper::Request::builder()
            .uri(format!("/api/v1/namespaces/e2e/pods/p/portforward?{query}"))
            .body(())
            .unwrap()
            .into_parts();
        Request::from_parts(&parts)
    }

    #[test]
    fn parses_ports_like_the_kubelet() {
        assert_eq!(ports(&req("ports=3306")), Ok(vec![3306]));
        assert_eq!(ports(&req("ports=80%2C1234")), Ok(vec![80, 1234]));
        assert_eq!(ports(&req("ports=80&ports=81")), Ok(vec![80, 81]));
        assert!(ports(&req("")).is_err());
        assert!(ports(&req("ports=0")).is_err());
        assert!(ports(&req("ports=http")).is_err());
    }

    #[test]
    fn first_messages_are_the_port_little_endian() {
        let [data, error] = port_prefix(1, 3306);
        assert_eq!(data, Message::binary(vec![2, 0xea, 0x0c]));
        assert_eq!(error, Message::binary(vec![3, 0xea, 0x0c]));
    }
}
