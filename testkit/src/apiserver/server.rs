//! The accept loop and, per connection, hyper's HTTP/1.1 server. One port serves both TLS and
//! plain HTTP, told apart by the first byte (a TLS handshake record starts with 0x16): the API
//! over TLS, `/_control` over either, and an API request on plain HTTP gets the answer Go's
//! server gives, `400 Client sent an HTTP request to an HTTPS server`. API requests must carry
//! the bearer token (401 otherwise), wait out the configured delay, and are routed to discovery,
//! objects, logs, or the exec / port-forward upgrades.

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
use super::upgrade::{self, Target};
use super::{auth, control, discovery, logs, objects};

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

/// What to do with one API request.
enum Route {
    Respond(Response),
    Logs(String),
    Upgrade(Target, String),
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
    match scheme {
        Scheme::PlainOnly => {}
        Scheme::PlainBesideTls => {
            let text = "Client sent an HTTP request to an HTTPS server.\n";
            return Response::text(400, text).closing().into_hyper();
        }
        Scheme::Tls => {
            if !auth::authorized(&req, shared.token()) {
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
    match route(&shared, &req) {
        Route::Respond(resp) => resp.into_hyper(),
        Route::Logs(pod) => logs::respond(&shared, &req, &pod),
        Route::Upgrade(target, pod) => upgrade::handle(shared, req, on_upgrade, target, pod),
    }
}

fn not_found() -> Response {
    let body = objects::status(
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    Response::json(404, &body)
}

fn route(shared: &Shared, req: &Request) -> Route {
    let cfg = &shared.cfg;
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let ok = |v: serde_json::Value| Route::Respond(Response::json(200, &v));
    let ns_ok = |ns: &str| ns == cfg.namespace;
    let pod_404 = |p: &str| {
        Route::Respond(Response::json(
            404,
            &objects::not_found("pods", "pods", "", p),
        ))
    };
    match seg.as_slice() {
        ["version"] => ok(discovery::version()),
        ["api"] => ok(discovery::api_versions()),
        ["apis"] => ok(discovery::api_group_list()),
        ["api", "v1"] => ok(discovery::core_v1_resources()),
        ["apis", "apps", "v1"] => ok(discovery::apps_v1_resources()),
        ["apis", "apps", "v1", "namespaces", ns, "deployments", d] => {
            if ns_ok(ns) && *d == cfg.deployment {
                ok(objects::deployment(cfg, &shared.pod()))
            } else {
                let body = objects::not_found("deployments", "deployments", "apps", d);
                Route::Respond(Response::json(404, &body))
            }
        }
        ["apis", "apps", "v1", "deployments"]
        | ["apis", "apps", "v1", "namespaces", _, "deployments"] => {
            let items = match seg.get(4) {
                Some(ns) if !ns_ok(ns) => vec![],
                _ => vec![objects::deployment(cfg, &shared.pod())],
            };
            ok(
                serde_json::json!({"kind": "DeploymentList", "apiVersion": "apps/v1",
                                  "metadata": {"resourceVersion": "100"}, "items": items}),
            )
        }
        ["api", "v1", "namespaces", ns] => {
            if ns_ok(ns) {
                ok(objects::namespace(ns))
            } else {
                let body = objects::not_found("namespaces", "namespaces", "", ns);
                Route::Respond(Response::json(404, &body))
            }
        }
        ["api", "v1", "pods"] | ["api", "v1", "namespaces", _, "pods"] => {
            let pod = shared.pod();
            let selector = req.query("labelSelector").unwrap_or("");
            let in_ns = seg.get(3).is_none_or(|ns| ns_ok(ns));
            let items =
                if in_ns && objects::selector_matches(selector, &objects::pod_labels(cfg, &pod)) {
                    vec![objects::pod(cfg, &pod)]
                } else {
                    vec![]
                };
            ok(objects::pod_list(items))
        }
        ["api", "v1", "namespaces", ns, "pods", p] => {
            let pod = shared.pod();
            if ns_ok(ns) && *p == pod.name {
                ok(objects::pod(cfg, &pod))
            } else {
                pod_404(p)
            }
        }
        ["api", "v1", "namespaces", ns, "pods", p, sub] if ns_ok(ns) => match *sub {
            "log" => {
                if let Some(c) = req.query("container")
                    && c != objects::CONTAINER
                {
                    let msg = format!("container {c} is not valid for pod {p}");
                    let body = objects::status(400, "BadRequest", &msg);
                    return Route::Respond(Response::json(400, &body));
                }
                Route::Logs(p.to_string())
            }
            "exec" => Route::Upgrade(Target::Exec, p.to_string()),
            "portforward" => Route::Upgrade(Target::PortForward, p.to_string()),
            _ => not_found_route(),
        },
        ["api", "v1", "namespaces", _, "pods", p, _] => pod_404(p),
        _ => not_found_route(),
    }
}

fn not_found_route() -> Route {
    Route::Respond(not_found())
}
