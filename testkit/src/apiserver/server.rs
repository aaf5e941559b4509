//! The accept loop and per-connection HTTP/1.1 keep-alive loop: reads each
//! request, serves `/_control` at once, applies the configured delay to
//! everything else, and routes API paths to discovery, objects, logs, or the
//! exec / port-forward upgrades.

use std::sync::Arc;

use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};

use super::http::{self, ReadError, Request, Response};
use super::state::Shared;
use super::upgrade::{self, Target};
use super::{control, discovery, logs, objects};

/// Accepts connections forever.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(shared.clone(), stream));
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

async fn connection(shared: Arc<Shared>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, r);
    loop {
        let req = match http::read_request(&mut reader).await {
            Ok(Some(req)) => req,
            Ok(None) | Err(ReadError::Io(_)) => return,
            Err(ReadError::Bad(msg)) => {
                let body = objects::status(400, "BadRequest", &msg);
                let _ = http::write_response(&mut w, &Response::json(400, &body).closing()).await;
                return;
            }
        };
        if shared.cfg.verbose {
            eprintln!(
                "fake-apiserver: {} {} {:?}",
                req.method, req.path, req.query
            );
        }
        // `Connection: close` asks for the connection to end after this answer.
        let close = req.header_has_token("connection", "close");
        if req.segments.first().map(String::as_str) == Some("_control") {
            let mut resp = control::handle(&shared, &req);
            resp.close |= close;
            if http::write_response(&mut w, &resp).await.is_err() || resp.close {
                return;
            }
            continue;
        }
        shared.count_request();
        let delay = shared.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match route(&shared, &req) {
            Route::Respond(mut resp) => {
                resp.close |= close;
                if http::write_response(&mut w, &resp).await.is_err() || resp.close {
                    return;
                }
            }
            Route::Logs(pod) => match logs::respond(&shared, &req, &pod, &mut reader, &mut w).await
            {
                Ok(true) if !close => {}
                _ => return,
            },
            Route::Upgrade(target, pod) => {
                upgrade::handle(shared, req, target, pod, reader, w).await;
                return;
            }
        }
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
