//! Loopback TCP for tests: free ports, an echo server standing in for a database, round trips
//! through it, and raw HTTP/1.1 requests, plain or over TLS.

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
