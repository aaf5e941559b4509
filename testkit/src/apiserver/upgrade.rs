//! Upgrade requests on `pods/P/exec` and `pods/P/portforward`: checks (pod
//! exists and runs, container, fault switches), transport and subprotocol
//! negotiation (WebSocket GET or SPDY/3.1 POST), the `101 Switching
//! Protocols` answer, and handing the connection hyper gives up to exec or
//! port-forward for as long as it lives, or until `drop-streams` / `replace-pod` cut it.

use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::exec::{self, ExecOptions};
use super::http::{self, Body, Request, Response};
use super::state::Shared;
use super::{objects, portforward, websocket};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Exec,
    PortForward,
}

const EXEC_WS_PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const EXEC_SPDY_PROTOCOLS: [&str; 2] = ["v4.channel.k8s.io", "v5.channel.k8s.io"];
const PF_WS_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
const PF_SPDY_PROTOCOL: &str = "portforward.k8s.io";

enum Transport {
    WebSocket { accept: String, protocol: String },
    Spdy { protocol: Option<String> },
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    Response::json(code, &objects::status(code, reason, message)).closing()
}

/// Decides how to answer; `Err` is the refusal to send.
fn negotiate(
    shared: &Shared,
    req: &Request,
    target: Target,
    pod: &str,
) -> Result<Transport, Response> {
    let cfg = &shared.cfg;
    let current = shared.pod();
    if current.name != pod {
        return Err(Response::json(404, &objects::not_found("pods", "pods", "", pod)).closing());
    }
    let websocket = req.header_has_token("upgrade", "websocket");
    let spdy = req.header_has_token("upgrade", "SPDY/3.1");
    if !websocket && !spdy {
        return Err(status(400, "BadRequest", "Upgrade request required"));
    }
    if websocket && cfg.no_websocket {
        return Err(status(
            400,
            "BadRequest",
            "fake-apiserver: WebSocket upgrades are disabled",
        ));
    }
    if shared.take_refusal(websocket) {
        return Err(status(
            403,
            "Forbidden",
            "fake-apiserver: upgrade refused by /_control/refuse-upgrades",
        ));
    }
    if target == Target::Exec
        && let Some(c) = req.query("container")
        && c != objects::CONTAINER
    {
        let msg = format!("container {c} is not valid for pod {pod}");
        return Err(status(400, "BadRequest", &msg));
    }
    if current.phase != "Running" {
        let msg = match target {
            Target::Exec => format!("container not found (\"{}\")", objects::CONTAINER),
            Target::PortForward => format!("pod {pod} is not running (phase {})", current.phase),
        };
        return Err(status(400, "BadRequest", &msg));
    }
    if websocket {
        let key = req
            .header("sec-websocket-key")
            .ok_or_else(|| status(400, "BadRequest", "missing Sec-WebSocket-Key"))?;
        let offered = req.header_tokens("sec-websocket-protocol");
        let supported: &[&str] = match target {
            Target::Exec => &EXEC_WS_PROTOCOLS,
            Target::PortForward => &[PF_WS_PROTOCOL],
        };
        let protocol = supported
            .iter()
            .find(|p| offered.iter().any(|o| o == *p))
            .ok_or_else(|| {
                status(
                    400,
                    "BadRequest",
                    "no supported WebSocket subprotocol offered",
                )
            })?;
        return Ok(Transport::WebSocket {
            accept: websocket::accept_key(key),
            protocol: protocol.to_string(),
        });
    }
    let offered = req.header_tokens("x-stream-protocol-version");
    let protocol = match target {
        Target::Exec => {
            let p = EXEC_SPDY_PROTOCOLS
                .iter()
                .find(|p| offered.iter().any(|o| o == *p))
                .ok_or_else(|| {
                    status(
                        403,
                        "Forbidden",
                        "unable to upgrade: unable to negotiate protocol",
                    )
                })?;
            Some(p.to_string())
        }
        Target::PortForward => offered
            .iter()
            .any(|o| o == PF_SPDY_PROTOCOL)
            .then(|| PF_SPDY_PROTOCOL.to_string()),
    };
    Ok(Transport::Spdy { protocol })
}

/// Answers an upgrade request: the refusal, or the `101` whose connection a task of its own
/// then serves, once hyper hands it over.
pub fn handle(
    shared: Arc<Shared>,
    req: Request,
    on_upgrade: Option<OnUpgrade>,
    target: Target,
    pod: String,
) -> hyper::Response<Body> {
    let transport = match negotiate(&shared, &req, target, &pod) {
        Ok(t) => t,
        Err(resp) => return resp.into_hyper(),
    };
    let (Some(guard), Some(on_upgrade)) = (shared.open_stream(&pod), on_upgrade) else {
        let resp = Response::json(404, &objects::not_found("pods", "pods", "", &pod)).closing();
        return resp.into_hyper();
    };
    let (head, is_ws) = match &transport {
        Transport::WebSocket { accept, protocol } => (
            http::switching_protocols(&[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept),
                ("Sec-WebSocket-Protocol", protocol),
            ]),
            true,
        ),
        Transport::Spdy { protocol } => {
            let mut h = vec![("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")];
            if let Some(p) = protocol {
                h.push(("X-Stream-Protocol-Version", p.as_str()));
            }
            (http::switching_protocols(&h), false)
        }
    };
    // Counted before the 101 goes out, so that a client that has seen the 101
    // (kubectl printing `Forwarding from`) always finds it in the state.
    shared.count_upgrade(is_ws);
    let argv = req.query_all("command");
    let opts = ExecOptions::from_request(&req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let io = TokioIo::new(upgraded);
        let serve = async {
            match (target, is_ws) {
                (Target::Exec, false) => {
                    let (r, w) = tokio::io::split(io);
                    exec::serve_spdy(shared.clone(), pod.clone(), argv, opts, r, w).await
                }
                (Target::Exec, true) => {
                    let ws = websocket::server(io).await;
                    exec::serve_websocket(shared.clone(), pod.clone(), argv, opts, ws).await
                }
                (Target::PortForward, false) => {
                    let (r, w) = tokio::io::split(io);
                    portforward::serve(shared.clone(), pod.clone(), r, w).await
                }
                (Target::PortForward, true) => {
                    let ws = websocket::server(io).await;
                    let (tunnel, local) = websocket::byte_tunnel(ws);
                    let (r, w) = tokio::io::split(local);
                    let spdy = portforward::serve(shared.clone(), pod.clone(), r, w);
                    // Either side ending ends the connection.
                    tokio::select! {
                        () = tunnel => {}
                        () = spdy => {}
                    }
                }
            }
        };
        tokio::select! {
            () = guard.cancelled() => {} // drop-streams / replace-pod: cut it now
            () = serve => {}
        }
        drop(guard);
    });
    head
}
