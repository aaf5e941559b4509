//! The WebSocket side of upgraded connections, on tokio-tungstenite: the handshake's accept
//! key, a server stream over an upgraded connection, the channel messages of the Kubernetes
//! `v4`/`v5.channel.k8s.io` protocols (one leading channel byte), and a tunnel that turns the
//! binary messages of a connection into a plain byte stream (for
//! `SPDY/3.1+portforward.k8s.io`, where kubectl carries a whole SPDY session inside WebSocket
//! messages). tungstenite answers pings and close frames by itself.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// How long to wait for the client's answer to our close frame before dropping the connection.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.trim().as_bytes())
}

/// The server side of a WebSocket over a connection whose `101` has been sent.
pub async fn server<S>(io: S) -> WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // kubectl sends no extensions, so none is negotiated; messages up to 16 MiB, as before.
    let config = WebSocketConfig::default()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20));
    WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await
}

/// A binary message on a channel: the channel byte, then the payload.
pub fn channel_message(channel: u8, payload: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(payload.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(payload);
    Message::binary(bytes)
}

/// A close frame with status 1000 (normal closure), which kubectl treats as success.
pub fn close_normal() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// Sends our close frame and waits (briefly) for the client's, reading and ignoring anything
/// else it sends meanwhile: nothing may be sent after a close.
pub async fn close<S>(ws: &mut WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let finish = async {
        let _ = ws.send(close_normal()).await;
        while let Some(Ok(_)) = ws.next().await {}
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, finish).await;
}

/// Carries a byte stream inside binary messages. Returns the future that pumps it (it ends
/// when the client closes the WebSocket or the connection, or the local side ends) and the
/// local end of the byte stream. A text message ends the tunnel: the protocol has none.
pub fn byte_tunnel<S>(
    ws: WebSocketStream<S>,
) -> (impl std::future::Future<Output = ()>, DuplexStream)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (local, remote) = tokio::io::duplex(256 * 1024);
    let fut = async move {
        let (mut from_app, mut to_app) = tokio::io::split(remote);
        let (mut sink, mut stream) = ws.split();
        let inbound = async {
            while let Some(Ok(m)) = stream.next().await {
                match m {
                    Message::Binary(b) => {
                        if !b.is_empty() && to_app.write_all(&b).await.is_err() {
                            return;
                        }
                    }
                    Message::Text(_) | Message::Close(_) => return,
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
        };
        let outbound = async {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match from_app.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(n) => {
                        let msg = Message::binary(Bytes::copy_from_slice(&buf[..n]));
                        if sink.send(msg).await.is_err() {
                            return false;
                        }
                    }
                }
            }
        };
        let app_ended = tokio::select! {
            () = inbound => false,
            ended = outbound => ended,
        };
        let mut ws = match stream.reunite(sink) {
            Ok(ws) => ws,
            Err(_) => return,
        };
        if app_ended {
            // The app side ended: say goodbye properly.
            close(&mut ws).await;
        } else {
            // The client closed: let tungstenite's reply to its close frame go out.
            let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
        }
    };
    (fut, local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn channel_messages_lead_with_the_channel() {
        assert_eq!(
            channel_message(3, b"{}"),
            Message::binary(vec![3, b'{', b'}'])
        );
    }
}
