//! The accept loop and, per connection, hyper's HTTP/1.1 server. One port serves both TLS and
//! plain HTTP, told apart by the first byte (a TLS handshake record starts with 0x16): the API
//! over TLS, `/_control` over either, and an API request on plain HTTP gets the answer Go's
//! server gives, `400 Client sent an HTTP request to an HTTPS server`. API requests must carry
//! the bearer token (401 otherwise), wait out a `stall` and the configured delay, and go to
//! [`routes`](super::routes).

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::http::{Body, Request, Response};
use super::state::Shared;
use super::{auth, control, routes};

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Accepts connections forever; with `tls`, the API is served over TLS only.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, tls: Option<TlsAcceptor>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(shared.clone(), stream, tls.clone()));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

async fn connection(shared: Arc<Shared>, stream: TcpStream, tls: Option<TlsAcceptor>) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = tls else {
        return http(shared, stream, Scheme::PlainOnly).await;
    };
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) if first[0] == TLS_HANDSHAKE => {}
        Ok(1) => return http(shared, stream, Scheme::PlainBesideTls).await,
        _ => return,
    }
    shared.stall_wait().await;
    if let Ok(stream) = acceptor.accept(stream).await {
        http(shared, stream, Scheme::Tls).await
    }
}

/// How a connection came in, which decides what it may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// `--plain-http`: the API on plain HTTP, no token.
    PlainOnly,
    /// Plain HTTP to a TLS server: `/_control` only.
    PlainBesideTls,
    /// TLS: the API, with the token.
    Tls,
}

async fn http<S>(shared: Arc<Shared>, io: S, scheme: Scheme)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, scheme, req).await) }
    });
    // Upgrades (WebSocket GET, SPDY POST) keep the connection for the new protocol.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

async fn handle(
    shared: Arc<Shared>,
    scheme: Scheme,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Body> {
    let (mut parts, _body) = req.into_parts();
    let on_upgrade = parts.extensions.remove::<OnUpgrade>();
    let req = Request::from_parts(&parts);
    if shared.cfg.verbose {
        eprintln!(
            "fake-apiserver: {} {} {:?}",
            req.method, req.path, req.query
        );
    }
    if req.segments.first().map(String::as_str) == Some("_control") {
        return control::handle(&shared, &req).into_hyper();
    }
    // A stalled server answers nothing, on connections old and new.
    shared.stall_wait().await;
    match scheme {
        Scheme::PlainOnly => {}
        Scheme::PlainBesideTls => {
            let text = "Client sent an HTTP request to an HTTPS server.\n";
            return Response::text(400, text).closing().into_hyper();
        }
        Scheme::Tls => {
            if !auth::authorized(&req, &shared.token()) {
                shared.count_unauthorized();
                return auth::unauthorized().into_hyper();
            }
        }
    }
    shared.count_request();
    let delay = shared.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    routes::route(&shared, req, on_upgrade)
}
