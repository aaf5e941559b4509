//! Minimal HTTP/1.1 for the fake API server: reading one request head (and
//! discarding a `Content-Length` body) from a buffered connection, decoding
//! paths and query strings, and writing responses, either with a fixed length
//! or chunked (for `logs -f`). Nothing here knows about Kubernetes.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request head accepted (request line plus headers).
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted (bodies are read and ignored).
const MAX_BODY: u64 = 1024 * 1024;

/// One parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The raw path, without the query.
    pub path: String,
    /// Percent-decoded, non-empty path segments.
    pub segments: Vec<String>,
    /// Decoded query pairs, in order (`+` decodes to a space).
    pub query: Vec<(String, String)>,
    /// Header names lower-cased; repeated headers stay separate entries.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, with repeated lines and comma-joined lists flattened.
    pub fn header_tokens(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Whether a comma-separated header contains `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.header_tokens(name)
            .iter()
            .any(|t| t.eq_ignore_ascii_case(token))
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a query parameter, in order.
    pub fn query_all(&self, name: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean query flag: `true` or `1` count as set.
    pub fn query_flag(&self, name: &str) -> bool {
        matches!(self.query(name), Some(v) if v.eq_ignore_ascii_case("true") || v == "1")
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The bytes were not an acceptable HTTP/1.1 request; answer 400 and close.
    Bad(String),
    /// The connection failed.
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads one request head and discards its body. `Ok(None)` is a clean EOF
/// before any byte of a new request.
pub async fn read_request<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Request>, ReadError> {
    let mut lines: Vec<String> = Vec::new();
    let mut total = 0usize;
    loop {
        let mut line = Vec::new();
        let budget = (MAX_HEAD - total) as u64;
        let n = (&mut *reader)
            .take(budget)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            if lines.is_empty() && total == 0 {
                return Ok(None);
            }
            return Err(ReadError::Bad(
                "connection closed inside the request head".into(),
            ));
        }
        total += n;
        if !line.ends_with(b"\n") {
            return Err(ReadError::Bad("request head too large".into()));
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.is_empty() {
            if lines.is_empty() {
                // Tolerate stray blank lines between requests.
                continue;
            }
            break;
        }
        lines.push(String::from_utf8_lossy(&line).into_owned());
    }
    let request = parse_head(&lines)?;
    if request.header("transfer-encoding").is_some() {
        return Err(ReadError::Bad(
            "chunked request bodies are not supported".into(),
        ));
    }
    if let Some(len) = request.header("content-length") {
        let len: u64 = len
            .trim()
            .parse()
            .map_err(|_| ReadError::Bad("bad Content-Length".into()))?;
        if len > MAX_BODY {
            return Err(ReadError::Bad("request body too large".into()));
        }
        let copied = tokio::io::copy(&mut (&mut *reader).take(len), &mut tokio::io::sink()).await?;
        if copied != len {
            return Err(ReadError::Bad("connection closed inside the body".into()));
        }
    }
    Ok(Some(request))
}

fn parse_head(lines: &[String]) -> Result<Request, ReadError> {
    let first = lines
        .first()
        .ok_or_else(|| ReadError::Bad("empty request".into()))?;
    let mut parts = first.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(format!("bad request line {first:?}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad(format!("unsupported version {version:?}")));
    }
    let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let segments = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let query = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect();
    let mut headers = Vec::new();
    for line in &lines[1..] {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ReadError::Bad(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        segments,
        query,
        headers,
    })
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`). Invalid
/// escapes are kept literally; invalid UTF-8 is replaced.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A complete response with a fixed-length body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Close the connection after writing.
    pub close: bool,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response {
            status,
            content_type: "application/json",
            body: value.to_string().into_bytes(),
            close: false,
        }
    }

    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            close: false,
        }
    }

    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }
}

/// The standard reason phrase for the statuses this server uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes a fixed-length response.
pub async fn write_response<W: AsyncWrite + Unpin>(w: &mut W, resp: &Response) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-cache, private\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    );
    if resp.close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&resp.body);
    w.write_all(&bytes).await?;
    w.flush().await
}

/// Writes the head of a chunked response.
pub async fn write_chunked_head<W: AsyncWrite + Unpin>(
    w: &mut W,
    status: u16,
    content_type: &str,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache, private\r\n\r\n",
        reason(status)
    );
    w.write_all(head.as_bytes()).await?;
    w.flush().await
}

/// Writes one chunk (nothing for empty data: an empty chunk would end the body).
pub async fn write_chunk<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    w.write_all(&out).await?;
    w.flush().await
}

/// Writes the terminating chunk.
pub async fn write_last_chunk<W: AsyncWrite + Unpin>(w: &mut W) -> io::Result<()> {
    w.write_all(b"0\r\n\r\n").await?;
    w.flush().await
}

/// The bytes of a `101 Switching Protocols` with the given headers.
pub fn switching_protocols(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_like_go() {
        assert_eq!(percent_decode("echo+a%3Bb", true), "echo a;b");
        assert_eq!(percent_decode("app%3Ddb-proxy", true), "app=db-proxy");
        assert_eq!(percent_decode("100%", true), "100%");
        assert_eq!(percent_decode("%zz", true), "%zz");
        assert_eq!(percent_decode("a+b", false), "a+b");
    }

    #[tokio::test]
    async fn reads_request_and_body() {
        let raw = b"POST /api/v1/x?command=a&command=b+c HTTP/1.1\r\nHost: h\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nX-Stream-Protocol-Version: v5.channel.k8s.io\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n";
        let mut r = tokio::io::BufReader::new(&raw[..]);
        let req = read_request(&mut r).await.unwrap().unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.segments, vec!["api", "v1", "x"]);
        assert_eq!(req.query_all("command"), vec!["a", "b c"]);
        assert_eq!(
            req.header_tokens("x-stream-protocol-version"),
            vec!["v4.channel.k8s.io", "v5.channel.k8s.io"]
        );
        let next = read_request(&mut r).await.unwrap().unwrap();
        assert_eq!(next.method, "GET");
        assert!(read_request(&mut r).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn rejects_garbage() {
        let mut r = tokio::io::BufReader::new(&b"\x00\x01\x02\r\n\r\n"[..]);
        assert!(matches!(read_request(&mut r).await, Err(ReadError::Bad(_))));
    }
}
