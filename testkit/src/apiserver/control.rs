//! The fault-injection and inspection endpoints under `/_control/`, served on the API port to
//! plain HTTP as well as TLS and without a token, so that a test can drive them with a raw TCP
//! client. GET and POST both work; each answers 200 with a short JSON body (400 for a bad
//! parameter, 404 for an unknown name, 409 when there is nothing to act on).
//!
//! - `state`: the pod, its resource version, proxy ports, open streams and forwarded
//!   connections (`forwards`, with their ids and the bytes each sent its client), watches and
//!   counters.
//! - `drop-streams`: cut every upgraded connection, watch and followed log at once.
//! - `fail-stream[?id=N][&message=M]`: fail one forwarded connection (the newest by default)
//!   the way the kubelet does, a message on its error stream, while the others carry on.
//! - `delete-pod`, `create-pod[?ready=false]`, `replace-pod[?ready=false]`: the pod goes (a
//!   DELETED event; its proxies and streams end), a new one comes (ADDED; a new name, no proxy:
//!   the next connect command starts one on a new port).
//! - `pod-ready?ready=true|false`, `pod-phase?phase=P`: change the pod in place (MODIFIED).
//! - `stall?secs=N` (or `ms=M`): stop answering for that long: new connections, requests and
//!   the bytes of open streams wait it out.
//! - `delay?ms=M`: every API request waits that long; `refuse-upgrades?n=N`: the next N
//!   commands' upgrades are refused (403).
//! - `compact`: forget the event history, so a watch from an older version gets `410 Gone`.
//! - `rotate-token`: a new bearer token; the old one is refused (401) and the credential
//!   plugin hands out the new one.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::http::{Request, Response};
use super::state::Shared;
use super::{auth, kubeconfig};

const PHASES: [&str; 5] = ["Pending", "Running", "Succeeded", "Failed", "Unknown"];

/// The message `fail-stream` sends when none is given.
const DEFAULT_FAILURE: &str = "fake-apiserver: stream failed by /_control/fail-stream";

fn ok(mut v: serde_json::Value) -> Response {
    v["ok"] = true.into();
    Response::json(200, &v)
}

fn bad(m: &str) -> Response {
    Response::json(400, &json!({"ok": false, "error": m}))
}

fn conflict(m: &str) -> Response {
    Response::json(409, &json!({"ok": false, "error": m}))
}

/// `?ready=` as a boolean, `true` when absent.
fn ready_param(req: &Request) -> Result<bool, Response> {
    match req.query("ready") {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(bad("ready must be true or false")),
    }
}

pub fn handle(shared: &Arc<Shared>, req: &Request) -> Response {
    let name = req.segments.get(1).map(String::as_str).unwrap_or("");
    let number = |key: &str| req.query(key).map(|v| v.trim().parse::<u64>());
    match name {
        "state" => Response::json(200, &shared.state_json()),
        "drop-streams" => {
            shared.drop_streams();
            ok(json!({}))
        }
        "fail-stream" => {
            let id = match number("id") {
                None => None,
                Some(Ok(id)) => Some(id),
                Some(Err(_)) => return bad("fail-stream's id must be a number"),
            };
            let message = req.query("message").unwrap_or(DEFAULT_FAILURE);
            match shared.fail_forward(id, message) {
                Some(id) => ok(json!({"id": id})),
                None => conflict("no such open forwarded connection"),
            }
        }
        "delete-pod" => match shared.delete_pod() {
            Some(pod) => ok(json!({"deleted": pod})),
            None => conflict("the deployment has no pod"),
        },
        "create-pod" => match ready_param(req) {
            Ok(ready) => ok(json!({"pod": shared.create_pod(ready)})),
            Err(resp) => resp,
        },
        "replace-pod" => match ready_param(req) {
            Ok(ready) => ok(json!({"pod": shared.replace_pod(ready)})),
            Err(resp) => resp,
        },
        "pod-ready" => match req.query("ready") {
            Some(v @ ("true" | "false")) => {
                if shared.set_ready(v == "true") {
                    ok(json!({"ready": v == "true"}))
                } else {
                    conflict("the deployment has no pod")
                }
            }
            _ => bad("pod-ready needs ?ready=true|false"),
        },
        "pod-phase" => match req.query("phase") {
            Some(p) if PHASES.contains(&p) => {
                if shared.set_phase(p) {
                    ok(json!({"phase": p}))
                } else {
                    conflict("the deployment has no pod")
                }
            }
            _ => bad("pod-phase needs ?phase=Pending|Running|Succeeded|Failed|Unknown"),
        },
        "stall" => {
            let d = match (number("secs"), number("ms")) {
                (Some(Ok(s)), None) => Duration::from_secs(s),
                (None, Some(Ok(ms))) => Duration::from_millis(ms),
                _ => return bad("stall needs ?secs=<seconds> or ?ms=<milliseconds>"),
            };
            shared.stall(d);
            ok(json!({"stall_ms": d.as_millis() as u64}))
        }
        "delay" => match number("ms") {
            Some(Ok(ms)) => {
                shared.set_delay_ms(ms);
                ok(json!({"delay_ms": ms}))
            }
            _ => bad("delay needs ?ms=<milliseconds>"),
        },
        "refuse-upgrades" => match number("n") {
            Some(Ok(n)) => {
                shared.set_refusals(n);
                ok(json!({"refuse_upgrades": n}))
            }
            _ => bad("refuse-upgrades needs ?n=<count>"),
        },
        "compact" => ok(json!({"resource_version": shared.compact().to_string()})),
        "rotate-token" => {
            let token = auth::new_token();
            if let Some(path) = &shared.cfg.kubeconfig_out {
                let files = kubeconfig::PluginFiles::beside(path);
                if let Err(e) = kubeconfig::write_atomic(&files.token, &token) {
                    return Response::json(500, &json!({"ok": false, "error": e.to_string()}));
                }
            }
            shared.set_token(token);
            ok(json!({}))
        }
        _ => Response::json(
            404,
            &json!({"ok": false, "error": format!("no control {name:?}")}),
        ),
    }
}
