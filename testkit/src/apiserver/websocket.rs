//! RFC 6455 WebSocket pieces the fake API server needs: the handshake accept
//! key, reading (masked, possibly fragmented) client frames into messages,
//! writing unmasked server frames, and a tunnel that turns the binary messages
//! of a connection into a plain byte stream (for `SPDY/3.1+portforward.k8s.io`,
//! where kubectl carries a whole SPDY session inside WebSocket messages).

use std::io;

use base64::Engine as _;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Largest message accepted from a client.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// One complete message (fragments joined) or control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Binary(Vec<u8>),
    Text(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// A close frame's status code (1005 when it carried none).
    Close(u16),
}

/// Reads messages from the client side of a connection.
pub struct MessageReader<R> {
    r: R,
    /// A fragmented data message in progress (control frames may interleave).
    partial: Option<(u8, Vec<u8>)>,
}

impl<R: AsyncRead + Unpin> MessageReader<R> {
    pub fn new(r: R) -> Self {
        MessageReader { r, partial: None }
    }

    /// The next message; `Ok(None)` on EOF between frames.
    pub async fn next(&mut self) -> io::Result<Option<Message>> {
        loop {
            let Some((fin, opcode, payload)) = self.frame().await? else {
                return if self.partial.is_none() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            };
            match opcode {
                OP_PING => return Ok(Some(Message::Ping(payload))),
                OP_PONG => return Ok(Some(Message::Pong(payload))),
                OP_CLOSE => {
                    let code = match payload.as_slice() {
                        [a, b, ..] => u16::from_be_bytes([*a, *b]),
                        _ => 1005,
                    };
                    return Ok(Some(Message::Close(code)));
                }
                OP_TEXT | OP_BINARY => {
                    if self.partial.is_some() {
                        return Err(invalid("new message inside a fragmented one"));
                    }
                    if fin {
                        return Ok(Some(finish(opcode, payload)));
                    }
                    self.partial = Some((opcode, payload));
                }
                OP_CONTINUATION => {
                    let Some((op, mut data)) = self.partial.take() else {
                        return Err(invalid("continuation without a message"));
                    };
                    data.extend_from_slice(&payload);
                    if data.len() > MAX_MESSAGE {
                        return Err(invalid("message too large"));
                    }
                    if fin {
                        return Ok(Some(finish(op, data)));
                    }
                    self.partial = Some((op, data));
                }
                _ => return Err(invalid("unknown opcode")),
            }
        }
    }

    async fn frame(&mut self) -> io::Result<Option<(bool, u8, Vec<u8>)>> {
        let mut head = [0u8; 2];
        match self.r.read(&mut head[..1]).await? {
            0 => return Ok(None),
            _ => self.r.read_exact(&mut head[1..]).await?,
        };
        let fin = head[0] & 0x80 != 0;
        let opcode = head[0] & 0x0f;
        let masked = head[1] & 0x80 != 0;
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.r.read_exact(&mut b).await?;
                u16::from_be_bytes(b) as u64
            }
            127 => {
                let mut b = [0u8; 8];
                self.r.read_exact(&mut b).await?;
                u64::from_be_bytes(b)
            }
            n => n as u64,
        };
        if len > MAX_MESSAGE as u64 {
            return Err(invalid("frame too large"));
        }
        let mut mask = [0u8; 4];
        if masked {
            self.r.read_exact(&mut mask).await?;
        }
        let mut payload = vec![0u8; len as usize];
        self.r.read_exact(&mut payload).await?;
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        Ok(Some((fin, opcode, payload)))
    }
}

fn finish(opcode: u8, payload: Vec<u8>) -> Message {
    if opcode == OP_TEXT {
        Message::Text(payload)
    } else {
        Message::Binary(payload)
    }
}

fn invalid(m: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m.to_string())
}

/// Encodes one unmasked, final server frame.
pub fn encode_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// A close frame with a status code.
pub fn close_frame(code: u16) -> Vec<u8> {
    encode_frame(OP_CLOSE, &code.to_be_bytes())
}

/// Carries a byte stream inside binary messages. Returns the future that pumps
/// it (it ends when the client closes the WebSocket or the connection) and the
/// local end of the byte stream. Pings are answered; a close is answered with
/// close 1000. Text messages end the tunnel.
pub fn byte_tunnel<R, W>(
    reader: R,
    mut writer: W,
) -> (
    impl std::future::Future<Output = io::Result<()>>,
    DuplexStream,
)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (local, remote) = tokio::io::duplex(256 * 1024);
    let fut = async move {
        let (mut from_app, mut to_app) = tokio::io::split(remote);
        let (frames_tx, mut frames_rx) = mpsc::channel::<Vec<u8>>(64);
        let mut messages = MessageReader::new(reader);
        let pongs = frames_tx.clone();
        let inbound = async move {
            while let Some(m) = messages.next().await? {
                match m {
                    Message::Binary(b) => {
                        if !b.is_empty() {
                            to_app.write_all(&b).await?;
                        }
                    }
                    Message::Ping(p) => {
                        let _ = pongs.send(encode_frame(OP_PONG, &p)).await;
                    }
                    Message::Pong(_) => {}
                    Message::Close(_) => {
                        let _ = pongs.send(close_frame(1000)).await;
                        return Ok::<_, io::Error>(true);
                    }
                    Message::Text(_) => return Err(invalid("text message in a byte tunnel")),
                }
            }
            Ok(false)
        };
        let outbound = async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = from_app.read(&mut buf).await?;
                if n == 0 {
                    // The app side ended: say goodbye properly.
                    let _ = frames_tx.send(close_frame(1000)).await;
                    return Ok::<_, io::Error>(());
                }
                if frames_tx
                    .send(encode_frame(OP_BINARY, &buf[..n]))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
        };
        let write = async move {
            while let Some(f) = frames_rx.recv().await {
                writer.write_all(&f).await?;
                writer.flush().await?;
                if f.first() == Some(&(0x80 | OP_CLOSE)) {
                    return Ok::<_, io::Error>(());
                }
            }
            Ok(())
        };
        tokio::pin!(inbound, outbound, write);
        tokio::select! {
            r = &mut inbound => {
                if matches!(r, Ok(true)) {
                    // Let the close reply go out before tearing down.
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), &mut write).await;
                }
                r.map(|_| ())
            }
            r = &mut write => r,
            r = &mut outbound => {
                let _ = r;
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), &mut write).await;
                Ok(())
            }
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

    fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        if payload.len() < 126 {
            out.push(0x80 | payload.len() as u8);
        } else {
            out.push(0x80 | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[tokio::test]
    async fn reads_fragmented_and_control_messages() {
        let mut raw = masked(OP_BINARY, false, b"ab");
        raw.extend(masked(OP_PING, true, b"p"));
        raw.extend(masked(OP_CONTINUATION, true, &vec![7u8; 300]));
        raw.extend(masked(OP_BINARY, true, b""));
        raw.extend(masked(OP_CLOSE, true, &1000u16.to_be_bytes()));
        let mut r = MessageReader::new(&raw[..]);
        assert_eq!(r.next().await.unwrap(), Some(Message::Ping(b"p".to_vec())));
        let mut expect = b"ab".to_vec();
        expect.extend(vec![7u8; 300]);
        assert_eq!(r.next().await.unwrap(), Some(Message::Binary(expect)));
        assert_eq!(r.next().await.unwrap(), Some(Message::Binary(vec![])));
        assert_eq!(r.next().await.unwrap(), Some(Message::Close(1000)));
        assert_eq!(r.next().await.unwrap(), None);
    }

    #[test]
    fn encodes_lengths() {
        assert_eq!(encode_frame(OP_BINARY, b"x"), vec![0x82, 1, b'x']);
        assert_eq!(
            &encode_frame(OP_BINARY, &[0; 200])[..4],
            &[0x82, 126, 0, 200]
        );
        assert_eq!(&encode_frame(OP_BINARY, &[0; 70000])[..2], &[0x82, 127]);
    }
}
