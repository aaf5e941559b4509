//! SPDY/3.1 wire format, as far as kubectl uses it: reading and writing data
//! and control frames, and the header blocks of SYN_STREAM / SYN_REPLY, which
//! are zlib streams primed with the SPDY/3 dictionary (one inflate context and
//! one deflate context per connection and direction). No flow control exists
//! here on purpose: kubectl's SPDY library implements none.

use std::io;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::spdy_dictionary::dictionary;

pub const TYPE_SYN_STREAM: u16 = 1;
pub const TYPE_SYN_REPLY: u16 = 2;
pub const TYPE_RST_STREAM: u16 = 3;
pub const TYPE_PING: u16 = 6;
pub const TYPE_GOAWAY: u16 = 7;

pub const FLAG_FIN: u8 = 0x01;

/// RST_STREAM status codes used here.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_CANCEL: u32 = 5;

/// Largest header block (after inflation) accepted from a client.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// One frame as read from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream_id: u32,
        flags: u8,
        payload: Vec<u8>,
    },
    Control {
        version: u16,
        kind: u16,
        flags: u8,
        payload: Vec<u8>,
    },
}

/// Reads one frame. `Ok(None)` is a clean EOF at a frame boundary.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Frame>> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        let n = r.read(&mut head[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    let flags = head[4];
    let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    if head[0] & 0x80 != 0 {
        Ok(Some(Frame::Control {
            version: u16::from_be_bytes([head[0] & 0x7f, head[1]]),
            kind: u16::from_be_bytes([head[2], head[3]]),
            flags,
            payload,
        }))
    } else {
        Ok(Some(Frame::Data {
            stream_id: u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff,
            flags,
            payload,
        }))
    }
}

/// Appends a DATA frame. Payloads longer than the 24-bit limit are split.
pub fn encode_data(out: &mut Vec<u8>, stream_id: u32, fin: bool, payload: &[u8]) {
    const MAX: usize = 0x00ff_ffff;
    let mut chunks: Vec<&[u8]> = payload.chunks(MAX).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
        out.push(if fin && i == last { FLAG_FIN } else { 0 });
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes()[1..]);
        out.extend_from_slice(chunk);
    }
}

/// Appends a control frame (version 3).
pub fn encode_control(out: &mut Vec<u8>, kind: u16, flags: u8, payload: &[u8]) {
    out.extend_from_slice(&[0x80, 0x03]);
    out.extend_from_slice(&kind.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(payload);
}

/// Reads the big-endian u32 at `at`, if the slice is long enough.
pub fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Inflates the client's header blocks: one zlib context for the connection.
pub struct HeaderDecoder {
    z: Decompress,
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        HeaderDecoder {
            z: Decompress::new(true),
        }
    }
}

impl HeaderDecoder {
    /// Inflates one header block and parses its name/value pairs. Names are
    /// lower-cased; several values for one name stay NUL-joined.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<(String, String)>, String> {
        let raw = self.inflate(block)?;
        parse_header_block(&raw)
    }

    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, String> {
        let mut out: Vec<u8> = Vec::with_capacity(input.len() * 4 + 256);
        let mut pos = 0usize;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(1024));
            }
            let (in0, out0) = (self.z.total_in(), self.z.total_out());
            let res = self
                .z
                .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync);
            pos += (self.z.total_in() - in0) as usize;
            let produced = self.z.total_out() - out0;
            match res {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {
                    let out_full = out.len() == out.capacity();
                    if pos >= input.len() && !out_full {
                        break;
                    }
                    if pos < input.len() && produced == 0 && !out_full && self.z.total_in() == in0 {
                        return Err("header block inflation made no progress".into());
                    }
                }
                Err(e) => match e.needs_dictionary() {
                    Some(_) => {
                        self.z
                            .set_dictionary(dictionary())
                            .map_err(|e| format!("setting the SPDY dictionary failed: {e}"))?;
                    }
                    None => return Err(format!("bad header block: {e}")),
                },
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err("header block too large".into());
            }
        }
        Ok(out)
    }
}

/// Parses an uncompressed header block.
pub fn parse_header_block(raw: &[u8]) -> Result<Vec<(String, String)>, String> {
    let count = be_u32(raw, 0).ok_or("header block too short")? as usize;
    let mut at = 4usize;
    let mut pairs = Vec::new();
    for _ in 0..count {
        let mut field = || -> Result<String, String> {
            let len = be_u32(raw, at).ok_or("truncated header block")? as usize;
            at += 4;
            let bytes = raw
                .get(at..at.checked_add(len).ok_or("bad length")?)
                .ok_or("truncated header block")?;
            at += len;
            Ok(String::from_utf8_lossy(bytes).into_owned())
        };
        let name = field()?.to_ascii_lowercase();
        let value = field()?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// Serialises an uncompressed header block.
pub fn build_header_block(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut raw = (pairs.len() as u32).to_be_bytes().to_vec();
    for (n, v) in pairs {
        raw.extend_from_slice(&(n.len() as u32).to_be_bytes());
        raw.extend_from_slice(n.to_ascii_lowercase().as_bytes());
        raw.extend_from_slice(&(v.len() as u32).to_be_bytes());
        raw.extend_from_slice(v.as_bytes());
    }
    raw
}

/// Deflates this server's header blocks: one continuous zlib stream for the
/// connection, sync-flushed after each block. kubectl does not need the
/// dictionary on this side, so none is used.
pub struct HeaderEncoder {
    z: Compress,
}

impl Default for HeaderEncoder {
    fn default() -> Self {
        HeaderEncoder {
            z: Compress::new(Compression::default(), true),
        }
    }
}

impl HeaderEncoder {
    pub fn encode(&mut self, pairs: &[(&str, &str)]) -> Vec<u8> {
        let raw = build_header_block(pairs);
        let mut out: Vec<u8> = Vec::with_capacity(raw.len() + 64);
        let mut pos = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let in0 = self.z.total_in();
            // Compressing into a growable Vec with a sync flush cannot fail.
            let _ = self
                .z
                .compress_vec(&raw[pos..], &mut out, FlushCompress::Sync);
            pos += (self.z.total_in() - in0) as usize;
            if pos >= raw.len() && out.len() < out.capacity() {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_blocks_round_trip_with_dictionary() {
        // Compress like kubectl does: with the dictionary, one stream, sync flush.
        let mut c = Compress::new(Compression::best(), true);
        c.set_dictionary(dictionary()).unwrap();
        let mut dec = HeaderDecoder::default();
        for round in 0..3 {
            let port = format!("{}", 3300 + round);
            let raw = build_header_block(&[("streamtype", "error"), ("port", &port)]);
            let mut out = Vec::with_capacity(1024);
            c.compress_vec(&raw, &mut out, FlushCompress::Sync).unwrap();
            let pairs = dec.decode(&out).unwrap();
            assert_eq!(pairs[0], ("streamtype".to_string(), "error".to_string()));
            assert_eq!(pairs[1], ("port".to_string(), port));
        }
    }

    #[test]
    fn encoder_output_inflates() {
        let mut enc = HeaderEncoder::default();
        let mut d = Decompress::new(true);
        for _ in 0..3 {
            let block = enc.encode(&[]);
            let mut out = Vec::with_capacity(64);
            d.decompress_vec(&block, &mut out, FlushDecompress::Sync)
                .unwrap();
            assert_eq!(out, vec![0, 0, 0, 0]);
        }
    }

    #[test]
    fn garbage_header_block_is_an_error() {
        let mut dec = HeaderDecoder::default();
        assert!(dec.decode(b"\x01\x02\x03\x04garbage").is_err());
        assert!(parse_header_block(&[0, 0, 0, 5, 0, 0]).is_err());
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let mut buf = Vec::new();
        encode_data(&mut buf, 3, true, b"hello");
        encode_control(&mut buf, TYPE_PING, 0, &1u32.to_be_bytes());
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r).await.unwrap(),
            Some(Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                payload: b"hello".to_vec()
            })
        );
        assert_eq!(
            read_frame(&mut r).await.unwrap(),
            Some(Frame::Control {
                version: 3,
                kind: TYPE_PING,
                flags: 0,
                payload: vec![0, 0, 0, 1]
            })
        );
        assert_eq!(read_frame(&mut r).await.unwrap(), None);
    }
}
