//! HTTP/1.1 as the routes see it, on top of hyper: a request reduced to what they read (decoded
//! path segments and query pairs, headers), and the answers they give: a fixed-length JSON or
//! text response, a streamed body (`logs -f`, watch), and the `101 Switching Protocols` of an
//! upgrade. hyper does the parsing, keep-alive, chunking and the upgrade hand-off; nothing here
//! knows about Kubernetes.

use std::io;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderMap, HeaderValue};
use tokio::sync::mpsc;

/// Every response body: fixed or streamed. A streamed body that yields an error makes hyper
/// cut the connection, which is how a dropped stream looks to the client.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, io::Error>;

/// One request head, parsed.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The raw path, without the query.
    pub path: String,
    /// Percent-decoded, non-empty path segments.
    pub segments: Vec<String>,
    /// Decoded query pairs, in order (`+` decodes to a space).
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
}

impl Request {
    /// The request as the routes read it, from hyper's head.
    pub fn from_parts(parts: &http::request::Parts) -> Self {
        let path = parts.uri.path().to_string();
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(s, false))
            .collect();
        let query = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k, true), percent_decode(v, true))
            })
            .collect();
        Request {
            method: parts.method.to_string(),
            path,
            segments,
            query,
            headers: parts.headers.clone(),
        }
    }

    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of a header, with repeated lines and comma-joined lists flattened.
    pub fn header_tokens(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
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

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`), as Go's `url.QueryUnescape`
/// does for what kubectl sends. Invalid escapes are kept literally; invalid UTF-8 is replaced.
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
    /// kubectl needs `application/json` on every JSON answer, errors included (1.33 tries
    /// protobuf without it).
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

    /// The hyper response; `Connection: close` makes hyper end the connection after it.
    pub fn into_hyper(self) -> hyper::Response<Body> {
        let mut builder = hyper::Response::builder()
            .status(self.status)
            .header("content-type", self.content_type)
            .header("cache-control", "no-cache, private");
        if self.close {
            builder = builder.header("connection", "close");
        }
        builder
            .body(full(self.body))
            .expect("a response built from valid parts")
    }
}

/// A fixed body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The sending side of a streamed (chunked) body.
pub struct BodySender {
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl BodySender {
    /// Sends one chunk; `Err` once the client is gone. Empty data sends nothing (an empty
    /// chunk would end the body).
    pub async fn send(&self, data: impl Into<Bytes>) -> Result<(), ()> {
        let data = data.into();
        if data.is_empty() {
            return Ok(());
        }
        self.tx.send(Ok(data)).await.map_err(|_| ())
    }

    /// Cuts the connection instead of ending the body cleanly: what a client sees when the
    /// server drops it mid-stream.
    pub async fn abort(self) {
        let _ = self
            .tx
            .send(Err(io::Error::other("stream dropped by the server")))
            .await;
    }

    /// Resolves when the client has gone away (hyper dropped the body).
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// A streamed `200` with `content_type`: its response and the sender of its chunks. Dropping
/// the sender ends the body cleanly (the terminating chunk).
pub fn streaming(content_type: &'static str) -> (hyper::Response<Body>, BodySender) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(16);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item.map(Frame::data), rx))
    });
    let body = StreamBody::new(stream).boxed_unsync();
    let resp = hyper::Response::builder()
        .status(200)
        .header("content-type", content_type)
        .header("cache-control", "no-cache, private")
        .body(body)
        .expect("a response built from valid parts");
    (resp, BodySender { tx })
}

/// A `101 Switching Protocols` with the given headers.
pub fn switching_protocols(headers: &[(&str, &str)]) -> hyper::Response<Body> {
    let mut resp = hyper::Response::new(full(Bytes::new()));
    *resp.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            resp.headers_mut().append(name, value);
        }
    }
    resp
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

    #[test]
    fn reads_segments_query_and_repeated_headers() {
        let req = http::Request::builder()
            .method("POST")
            .uri("/api/v1/x?command=a&command=b+c&ports=80%2C81")
            .header("X-Stream-Protocol-Version", "v4.channel.k8s.io")
            .header("X-Stream-Protocol-Version", "v5.channel.k8s.io")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let req = Request::from_parts(&parts);
        assert_eq!(req.method, "POST");
        assert_eq!(req.segments, vec!["api", "v1", "x"]);
        assert_eq!(req.query_all("command"), vec!["a", "b c"]);
        assert_eq!(req.query("ports"), Some("80,81"));
        assert_eq!(
            req.header_tokens("x-stream-protocol-version"),
            vec!["v4.channel.k8s.io", "v5.channel.k8s.io"]
        );
    }
}
