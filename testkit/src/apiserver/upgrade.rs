//! Upgrade requests on `pods/P/exec` and `pods/P/portforward`: checks (pod
//! exists and runs, container, ports, fault switches), transport and subprotocol
//! negotiation, the `101 Switching Protocols` answer, and handing the connection
//! hyper gives up to exec or port-forward for as long as it lives, or until
//! `drop-streams` or the pod's deletion cut it. The transports:
//!
//! - exec: SPDY/3.1 POST (`v4`/`v5.channel.k8s.io` streams), or WebSocket GET with the
//!   `v5`/`v4.channel.k8s.io` channel protocol (kubectl 1.30+, kube-rs, Python);
//! - port-forward: SPDY/3.1 POST (`portforward.k8s.io`), WebSocket carrying a SPDY session
//!   (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+), or WebSocket with the channel protocol
//!   (`v4.channel.k8s.io`, `portforward.k8s.io` or none: kube-rs and Python).

use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::exec::{self, ExecOptions};
use super::http::{self, Body, Request, Response};
use super::state::Shared;
use super::{objects, portforward, portforward_ws, websocket};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Exec,
    PortForward,
}

/// Exec's WebSocket subprotocols, the preferred first (v5 adds the close channel).
const EXEC_WS_PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const EXEC_SPDY_PROTOCOLS: [&str; 2] = ["v4.channel.k8s.io", "v5.channel.k8s.io"];
/// kubectl 1.31+'s port-forward: a SPDY session inside WebSocket messages.
const PF_TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// The channel protocol's names for port-forward, as the kubelet accepts them; kube-rs and
/// the Python client offer `v5.channel.k8s.io, v4.channel.k8s.io` and get v4.
const PF_CHANNEL_PROTOCOLS: [&str; 2] = ["v4.channel.k8s.io", "portforward.k8s.io"];
const PF_SPDY_PROTOCOL: &str = "portforward.k8s.io";

/// How an accepted upgrade is served.
enum Transport {
    ExecWebSocket {
        accept: String,
        protocol: String,
    },
    /// kubectl's SPDY session, tunnelled in binary messages.
    SpdyTunnel {
        accept: String,
    },
    /// Port-forward channels; no subprotocol header when the client offered none.
    Channels {
        accept: String,
        protocol: Option<String>,
        ports: Vec<u16>,
    },
    Spdy {
        protocol: Option<String>,
    },
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
    let Some(current) = shared.pod().filter(|p| p.name == pod) else {
        return Err(Response::json(404, &objects::not_found("pods", "pods", "", pod)).closing());
    };
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
        let accept = websocket::accept_key(key);
        let offered = req.header_tokens("sec-websocket-protocol");
        let unsupported = || {
            status(
                400,
                "BadRequest",
                "no supported WebSocket subprotocol offered",
            )
        };
        return match target {
            Target::Exec => {
                let protocol = EXEC_WS_PROTOCOLS
                    .iter()
                    .find(|p| offered.iter().any(|o| o == *p))
                    .ok_or_else(unsupported)?;
                Ok(Transport::ExecWebSocket {
                    accept,
                    protocol: protocol.to_string(),
                })
            }
            Target::PortForward if offered.iter().any(|o| o == PF_TUNNEL_PROTOCOL) => {
                Ok(Transport::SpdyTunnel { accept })
            }
            Target::PortForward => {
                // The client's order decides, as in the kubelet's handshake.
                let protocol = offered
                    .iter()
                    .find(|o| PF_CHANNEL_PROTOCOLS.contains(&o.as_str()))
                    .cloned();
                if protocol.is_none() && !offered.is_empty() {
                    return Err(unsupported());
                }
                let ports =
                    portforward_ws::ports(req).map_err(|e| status(400, "BadRequest", &e))?;
                Ok(Transport::Channels {
                    accept,
                    protocol,
                    ports,
                })
            }
        };
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

/// The `101` for a transport.
fn switching(transport: &Transport) -> hyper::Response<Body> {
    let ws = |accept: &str, protocol: Option<&str>| {
        let mut h = vec![
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept),
        ];
        if let Some(p) = protocol {
            h.push(("Sec-WebSocket-Protocol", p));
        }
        http::switching_protocols(&h)
    };
    match transport {
        Transport::ExecWebSocket { accept, protocol } => ws(accept, Some(protocol)),
        Transport::SpdyTunnel { accept } => ws(accept, Some(PF_TUNNEL_PROTOCOL)),
        Transport::Channels {
            accept, protocol, ..
        } => ws(accept, protocol.as_deref()),
        Transport::Spdy { protocol } => {
            let mut h = vec![("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")];
            if let Some(p) = protocol {
                h.push(("X-Stream-Protocol-Version", p.as_str()));
            }
            http::switching_protocols(&h)
        }
    }
}

/// Answers an upgrade request: the refusal, or the `101` whose connection a task of its own
/// then serves, once hyper hands it over.
pub fn handle(
    shared: Arc<Shared>,
    req: &Request,
    on_upgrade: Option<OnUpgrade>,
    target: Target,
    pod: &str,
) -> hyper::Response<Body> {
    let transport = match negotiate(&shared, req, target, pod) {
        Ok(t) => t,
        Err(resp) => return resp.into_hyper(),
    };
    let (Some(guard), Some(on_upgrade)) = (shared.open_stream(pod), on_upgrade) else {
        let resp = Response::json(404, &objects::not_found("pods", "pods", "", pod)).closing();
        return resp.into_hyper();
    };
    let head = switching(&transport);
    // Counted before the 101 goes out, so that a client that has seen the 101
    // (kubectl printing `Forwarding from`) always finds it in the state.
    shared.count_upgrade(!matches!(transport, Transport::Spdy { .. }));
    let argv = req.query_all("command");
    let opts = ExecOptions::from_request(req);
    let pod = pod.to_string();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let io = TokioIo::new(upgraded);
        let serve = async {
            match (target, transport) {
                (Target::Exec, Transport::Spdy { .. }) => {
                    let (r, w) = tokio::io::split(io);
                    exec::serve_spdy(shared.clone(), pod.clone(), argv, opts, r, w).await
                }
                (Target::Exec, _) => {
                    let ws = websocket::server(io).await;
                    exec::serve_websocket(shared.clone(), pod.clone(), argv, opts, ws).await
                }
                (Target::PortForward, Transport::Spdy { .. }) => {
                    let (r, w) = tokio::io::split(io);
                    portforward::serve(shared.clone(), pod.clone(), r, w).await
                }
                (Target::PortForward, Transport::Channels { ports, .. }) => {
                    let ws = websocket::server(io).await;
                    portforward_ws::serve(shared.clone(), pod.clone(), ports, ws).await
                }
                (Target::PortForward, _) => {
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
            () = guard.cancelled() => {} // drop-streams / a deleted pod: cut it now
            () = serve => {}
        }
        drop(guard);
    });
    head
}
