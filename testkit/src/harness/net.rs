//! Loopback TCP for tests: free ports, an echo server standing in for a database, round trips
//! through it, a server of known bulk data and the reads that check it byte for byte, a client
//! that resets its connection, and raw HTTP/1.1 requests, plain or over TLS.

use std::fmt::Debug;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

/// How long one read or write of a round trip may block before the test fails.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A port that was free a moment ago, chosen below the kernel's ephemeral range (32768 and up on
/// Linux), so that no process binding "any port" in the meantime can take it. Also the address
/// to use for "nothing listens there".
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id() % 6_000 * 2;
    loop {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (20_000 + (offset + step * 7) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A TCP echo server on a free port, for as long as the test runs. Each connection gets back
/// what it sends; its end of sending ends the echo's.
pub fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = conn.try_clone().unwrap();
                let mut writer = conn;
                let _ = std::io::copy(&mut reader, &mut writer);
                let _ = writer.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// Sends `bytes` through a new connection to `addr` and reads back as many (the far end
/// echoes); any failure fails the test. What came back, for the caller to compare.
pub fn echo_round_trip(addr: impl ToSocketAddrs + Debug, bytes: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr:?}: {e}"));
    echo_on(stream, bytes).unwrap_or_else(|e| panic!("round trip through {addr:?}: {e}"))
}

/// Sends `bytes` on `stream`, then ends its sending side, while reading back until as many came
/// back or the far end closed: writing and reading at once, so that neither side's buffers fill.
pub fn echo_on(stream: TcpStream, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let payload = bytes.to_vec();
    let sender = std::thread::spawn(move || {
        writer.write_all(&payload)?;
        writer.shutdown(Shutdown::Write)
    });
    let mut back = Vec::with_capacity(bytes.len());
    let mut buf = vec![0u8; 64 * 1024];
    let mut reader = stream;
    let read = loop {
        if back.len() >= bytes.len() {
            break Ok(());
        }
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => back.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    let sent = sender.join().expect("the sending thread");
    read?;
    sent?;
    Ok(back)
}

/// A server of known bulk data on a free port, for as long as the test runs. A connection asks
/// with 24 bytes, a seed, a length and a pace (big-endian u64s; see [`bulk_ask`]), and gets
/// that many bytes of [`bulk_bytes`] for the seed, then the end of the server's sending. The
/// pace, a pause in microseconds after each 64 KiB, makes a transfer last however large the
/// buffers along the way, so that a test's fault surely comes mid-transfer. A connection that asks
/// nothing (a readiness check, a probe) is simply closed when its client goes. It keeps, by
/// seed, how far each transfer got and whether it ended: what says that a fault came
/// mid-transfer, and when a cut connection has reached the server.
#[derive(Clone)]
pub struct BulkServer {
    pub addr: SocketAddr,
    transfers: Arc<std::sync::Mutex<std::collections::HashMap<u64, Transfer>>>,
}

/// How far one transfer got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes written to the connection so far.
    pub written: usize,
    /// Whether the server is done with the connection, sent in full or cut.
    pub ended: bool,
}

/// How many bytes the bulk server writes at a time (and counts in `written`).
const BULK_CHUNK: usize = 64 * 1024;

impl BulkServer {
    pub fn start() -> BulkServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = BulkServer {
            addr: listener.local_addr().unwrap(),
            transfers: Default::default(),
        };
        let shared = server.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let server = shared.clone();
                std::thread::spawn(move || server.serve(conn));
            }
        });
        server
    }

    fn serve(&self, mut conn: TcpStream) {
        let mut ask = [0u8; 24];
        if conn.read_exact(&mut ask).is_err() {
            return;
        }
        let word = |i: usize| u64::from_be_bytes(ask[i * 8..i * 8 + 8].try_into().unwrap());
        let (seed, len, pace) = (word(0), word(1) as usize, Duration::from_micros(word(2)));
        let update = |f: &dyn Fn(&mut Transfer)| {
            let mut transfers = self.transfers.lock().unwrap_or_else(|e| e.into_inner());
            f(transfers.entry(seed).or_default());
        };
        update(&|t| *t = Transfer::default());
        let bytes = bulk_bytes(seed, len);
        // A client that goes mid-transfer ends the writes with an error: the transfer ends there.
        let sent = bytes.chunks(BULK_CHUNK).all(|chunk| {
            let ok = conn.write_all(chunk).is_ok();
            if ok {
                update(&|t| t.written += chunk.len());
                std::thread::sleep(pace);
            }
            ok
        });
        if sent {
            let _ = conn.shutdown(Shutdown::Write);
            let _ = std::io::copy(&mut conn, &mut std::io::sink());
        }
        update(&|t| t.ended = true);
    }

    /// How far the transfer of `seed` got; `None` before it was asked for.
    pub fn transfer(&self, seed: u64) -> Option<Transfer> {
        let transfers = self.transfers.lock().unwrap_or_else(|e| e.into_inner());
        transfers.get(&seed).copied()
    }
}

/// A [`BulkServer`]'s address, for a test that needs no more than the data.
pub fn bulk_server() -> SocketAddr {
    BulkServer::start().addr
}

/// The `len` bytes the bulk server sends for `seed`: splitmix64 of the seed and each 8-byte
/// word's index, so that a lost, repeated or reordered chunk shows at its offset.
pub fn bulk_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len + 8);
    for i in 0..len.div_ceil(8) as u64 {
        let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_add(1);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Asks the bulk server, through `stream`, for `len` bytes of `seed`, with a pause of `pace`
/// after each 64 KiB (`Duration::ZERO`: as fast as they go).
pub fn bulk_ask(
    stream: &mut TcpStream,
    seed: u64,
    len: usize,
    pace: Duration,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut ask = [0u8; 24];
    ask[..8].copy_from_slice(&seed.to_be_bytes());
    ask[8..16].copy_from_slice(&(len as u64).to_be_bytes());
    ask[16..].copy_from_slice(&(pace.as_micros() as u64).to_be_bytes());
    stream.write_all(&ask)
}

/// Reads exactly `expected.len()` bytes from `stream` and compares them with `expected`, which
/// starts at byte `offset` of the transfer. `Err` says what went wrong and where: the
/// connection ended or failed after so many bytes, or the first byte that differs.
pub fn read_expecting(
    stream: &mut impl Read,
    expected: &[u8],
    offset: usize,
) -> Result<(), String> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < expected.len() {
        let want = (expected.len() - got).min(buf.len());
        let n = match stream.read(&mut buf[..want]) {
            Ok(0) => return Err(format!("ended after {} bytes", offset + got)),
            Ok(n) => n,
            Err(e) => return Err(format!("{e} after {} bytes", offset + got)),
        };
        if let Some(i) = (0..n).find(|&i| buf[i] != expected[got + i]) {
            return Err(format!("byte {} differs", offset + got + i));
        }
        got += n;
    }
    Ok(())
}

/// Closes `stream` with a reset (SO_LINGER 0), as a client that crashes or gives up does: the
/// other end reads `connection reset`, not an orderly end.
pub fn reset(stream: TcpStream) {
    // tokio's socket (no runtime needed) sets SO_LINGER 0; closing it then sends the RST.
    let socket = tokio::net::TcpSocket::from_std_stream(stream);
    socket.set_zero_linger().expect("SO_LINGER 0");
    drop(socket);
}

/// Random bytes.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    fastrand::fill(&mut bytes);
    bytes
}

/// One raw HTTP/1.1 request with `Connection: close`; (status, body).
pub fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{}", request_head(addr, method, path, None)).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    parse_response(&raw)
}

/// One HTTP/1.1 request over TLS to `addr` (an IP and port), trusting only `ca_pem`, with
/// `token` as its bearer token if given; (status, body).
pub fn https(
    addr: &str,
    ca_pem: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
) -> (u16, String) {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("a PEM certificate")).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let ip = addr
        .parse::<SocketAddr>()
        .unwrap_or_else(|e| panic!("{addr}: {e}"))
        .ip();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::IpAddress(ip.into())).unwrap();
    let sock = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(request_head(addr, method, path, token).as_bytes())
        .unwrap_or_else(|e| panic!("TLS to {addr}: {e}"));
    let mut raw = Vec::new();
    // A server that closes without close_notify ends the read with an error; what came is kept.
    let _ = tls.read_to_end(&mut raw);
    parse_response(&String::from_utf8_lossy(&raw))
}

fn request_head(addr: &str, method: &str, path: &str, token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

/// (status, body) of a whole response; the body de-chunked if it was sent chunked.
fn parse_response(raw: &str) -> (u16, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    if !chunked {
        return (code, body.to_string());
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].strip_prefix("\r\n").unwrap_or(&tail[n..]);
    }
    (code, out)
}
