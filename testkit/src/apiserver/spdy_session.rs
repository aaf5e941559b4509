//! A server-side SPDY/3.1 session over any byte stream (a raw upgraded TCP
//! connection, or the byte stream carried inside a WebSocket tunnel). It
//! answers every SYN_STREAM at once with a SYN_REPLY, hands each new stream to
//! the application as a [`Stream`], routes DATA / FIN / RST to it, echoes the
//! client's (odd) PINGs, and serialises every outgoing frame through one writer
//! so header compression stays one continuous zlib stream.

use std::collections::HashMap;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::spdy_frame::{self as wire, Frame, HeaderDecoder, HeaderEncoder};

/// Largest DATA payload this server writes in one frame.
const MAX_DATA_FRAME: usize = 32 * 1024;

/// What arrives on a stream from the client.
#[derive(Debug)]
pub enum Inbound {
    Data(Vec<u8>),
    /// The client half-closed the stream.
    Fin,
    /// The client reset the stream (RST_STREAM status code).
    Reset(u32),
}

/// What the session writes to the client.
#[derive(Debug)]
enum Outbound {
    SynReply(u32),
    Data {
        id: u32,
        fin: bool,
        payload: Vec<u8>,
    },
    Reset {
        id: u32,
        status: u32,
    },
    Ping(u32),
}

/// The sending side of one stream.
#[derive(Clone, Debug)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Outbound>,
}

impl StreamWriter {
    /// Sends bytes as DATA frames. Errors only when the session is gone.
    pub async fn data(&self, bytes: &[u8]) -> io::Result<()> {
        for chunk in bytes.chunks(MAX_DATA_FRAME) {
            self.send(Outbound::Data {
                id: self.id,
                fin: false,
                payload: chunk.to_vec(),
            })
            .await?;
        }
        Ok(())
    }

    /// Half-closes the stream with an empty DATA frame carrying FIN.
    pub async fn fin(&self) -> io::Result<()> {
        self.send(Outbound::Data {
            id: self.id,
            fin: true,
            payload: Vec::new(),
        })
        .await
    }

    /// Resets the stream.
    pub async fn reset(&self, status: u32) -> io::Result<()> {
        self.send(Outbound::Reset {
            id: self.id,
            status,
        })
        .await
    }

    async fn send(&self, o: Outbound) -> io::Result<()> {
        self.out
            .send(o)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "SPDY session closed"))
    }
}

/// A stream the client opened.
#[derive(Debug)]
pub struct Stream {
    pub id: u32,
    /// The SYN_STREAM headers, names lower-case.
    pub headers: Vec<(String, String)>,
    pub rx: mpsc::Receiver<Inbound>,
    pub tx: StreamWriter,
}

impl Stream {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Starts a session. Returns the future that drives it (it ends when the
/// client closes, sends GOAWAY, or breaks the protocol; dropping it tears the
/// session down) and the receiver of new streams.
pub fn start<R, W>(
    reader: R,
    writer: W,
) -> (
    impl std::future::Future<Output = io::Result<()>>,
    mpsc::Receiver<Stream>,
)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (out_tx, out_rx) = mpsc::channel::<Outbound>(64);
    let (new_tx, new_rx) = mpsc::channel::<Stream>(16);
    let fut = async move {
        tokio::select! {
            r = read_loop(reader, out_tx, new_tx) => r,
            w = write_loop(writer, out_rx) => w,
        }
    };
    (fut, new_rx)
}

async fn read_loop<R: AsyncRead + Unpin>(
    reader: R,
    out: mpsc::Sender<Outbound>,
    new_streams: mpsc::Sender<Stream>,
) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut decoder = HeaderDecoder::default();
    let mut streams: HashMap<u32, mpsc::Sender<Inbound>> = HashMap::new();
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    loop {
        let Some(frame) = wire::read_frame(&mut reader).await? else {
            return Ok(());
        };
        match frame {
            Frame::Data {
                stream_id,
                flags,
                payload,
            } => {
                let Some(tx) = streams.get(&stream_id) else {
                    continue; // unknown or finished stream: ignore, like spdystream
                };
                let mut alive = true;
                if !payload.is_empty() {
                    alive = tx.send(Inbound::Data(payload)).await.is_ok();
                }
                if flags & wire::FLAG_FIN != 0 {
                    let _ = tx.send(Inbound::Fin).await;
                    alive = false;
                }
                if !alive {
                    streams.remove(&stream_id);
                }
            }
            Frame::Control {
                kind,
                flags,
                payload,
                ..
            } => match kind {
                wire::TYPE_SYN_STREAM => {
                    let id = wire::be_u32(&payload, 0)
                        .ok_or_else(|| bad("short SYN_STREAM".into()))?
                        & 0x7fff_ffff;
                    let block = payload
                        .get(10..)
                        .ok_or_else(|| bad("short SYN_STREAM".into()))?;
                    let headers = decoder.decode(block).map_err(bad)?;
                    if id == 0 || streams.contains_key(&id) {
                        let _ = out
                            .send(Outbound::Reset {
                                id: id.max(1),
                                status: wire::RST_PROTOCOL_ERROR,
                            })
                            .await;
                        continue;
                    }
                    let (tx, rx) = mpsc::channel(64);
                    if out.send(Outbound::SynReply(id)).await.is_err() {
                        return Ok(());
                    }
                    if flags & wire::FLAG_FIN != 0 {
                        let _ = tx.send(Inbound::Fin).await;
                    } else {
                        streams.insert(id, tx);
                    }
                    let stream = Stream {
                        id,
                        headers,
                        rx,
                        tx: StreamWriter {
                            id,
                            out: out.clone(),
                        },
                    };
                    if new_streams.send(stream).await.is_err() {
                        // Nobody accepts streams any more: refuse politely.
                        let _ = out
                            .send(Outbound::Reset {
                                id,
                                status: wire::RST_CANCEL,
                            })
                            .await;
                    }
                }
                wire::TYPE_RST_STREAM => {
                    if let (Some(id), Some(status)) =
                        (wire::be_u32(&payload, 0), wire::be_u32(&payload, 4))
                        && let Some(tx) = streams.remove(&(id & 0x7fff_ffff))
                    {
                        let _ = tx.send(Inbound::Reset(status)).await;
                    }
                }
                wire::TYPE_PING => {
                    // Echo only the client's (odd) pings; even IDs are replies
                    // to our own pings, and echoing them would ping-pong forever.
                    if let Some(id) = wire::be_u32(&payload, 0)
                        && id % 2 == 1
                        && out.send(Outbound::Ping(id)).await.is_err()
                    {
                        return Ok(());
                    }
                }
                wire::TYPE_GOAWAY => return Ok(()),
                _ => {} // SETTINGS, WINDOW_UPDATE, HEADERS, unknown: ignored
            },
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::Receiver<Outbound>,
) -> io::Result<()> {
    let mut encoder = HeaderEncoder::default();
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        buf.clear();
        encode(&mut encoder, &mut buf, first);
        // Batch whatever else is already queued into one write.
        while buf.len() < 256 * 1024 {
            match rx.try_recv() {
                Ok(o) => encode(&mut encoder, &mut buf, o),
                Err(_) => break,
            }
        }
        writer.write_all(&buf).await?;
        writer.flush().await?;
    }
    // Every sender is gone: the reader ended, so the session is over.
    std::future::pending::<()>().await;
    Ok(())
}

fn encode(encoder: &mut HeaderEncoder, buf: &mut Vec<u8>, o: Outbound) {
    match o {
        Outbound::SynReply(id) => {
            let mut payload = id.to_be_bytes().to_vec();
            payload.extend_from_slice(&encoder.encode(&[]));
            wire::encode_control(buf, wire::TYPE_SYN_REPLY, 0, &payload);
        }
        Outbound::Data { id, fin, payload } => wire::encode_data(buf, id, fin, &payload),
        Outbound::Reset { id, status } => {
            let mut payload = id.to_be_bytes().to_vec();
            payload.extend_from_slice(&status.to_be_bytes());
            wire::encode_control(buf, wire::TYPE_RST_STREAM, 0, &payload);
        }
        Outbound::Ping(id) => wire::encode_control(buf, wire::TYPE_PING, 0, &id.to_be_bytes()),
    }
}
