//! Where each API request goes: discovery, the Deployment and Namespace, the pod (get, list
//! and watch), its log, and the exec / port-forward upgrades; a Status 404 for anything else,
//! as the real server words it.

use std::sync::Arc;

use hyper::upgrade::OnUpgrade;

use super::http::{Body, Request, Response};
use super::state::Shared;
use super::upgrade::{self, Target};
use super::{discovery, logs, objects, watch};

fn not_found() -> Response {
    let body = objects::status(
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    Response::json(404, &body)
}

fn pod_not_found(pod: &str) -> Response {
    Response::json(404, &objects::not_found("pods", "pods", "", pod))
}

/// Answers one authenticated API request.
pub fn route(
    shared: &Arc<Shared>,
    req: Request,
    on_upgrade: Option<OnUpgrade>,
) -> hyper::Response<Body> {
    let cfg = &shared.cfg;
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let ok = |v: serde_json::Value| Response::json(200, &v).into_hyper();
    let ns_ok = |ns: &str| ns == cfg.namespace;
    match seg.as_slice() {
        ["version"] => ok(discovery::version()),
        ["api"] => ok(discovery::api_versions()),
        ["apis"] => ok(discovery::api_group_list()),
        ["api", "v1"] => ok(discovery::core_v1_resources()),
        ["apis", "apps", "v1"] => ok(discovery::apps_v1_resources()),
        ["apis", "apps", "v1", "namespaces", ns, "deployments", d] => {
            if ns_ok(ns) && *d == cfg.deployment {
                ok(objects::deployment(cfg, shared.pod().as_ref()))
            } else {
                let body = objects::not_found("deployments", "deployments", "apps", d);
                Response::json(404, &body).into_hyper()
            }
        }
        ["apis", "apps", "v1", "deployments"]
        | ["apis", "apps", "v1", "namespaces", _, "deployments"] => {
            let items = match seg.get(4) {
                Some(ns) if !ns_ok(ns) => vec![],
                _ => vec![objects::deployment(cfg, shared.pod().as_ref())],
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
                Response::json(404, &body).into_hyper()
            }
        }
        ["api", "v1", "pods"] => watch::respond(shared, &req, None),
        ["api", "v1", "namespaces", ns, "pods"] => watch::respond(shared, &req, Some(ns)),
        ["api", "v1", "namespaces", ns, "pods", p] => match shared.pod() {
            Some(pod) if ns_ok(ns) && *p == pod.name => ok(objects::pod(cfg, &pod)),
            _ => pod_not_found(p).into_hyper(),
        },
        ["api", "v1", "namespaces", ns, "pods", p, sub] if ns_ok(ns) => match *sub {
            "log" => {
                if let Some(c) = req.query("container")
                    && c != objects::CONTAINER
                {
                    let msg = format!("container {c} is not valid for pod {p}");
                    let body = objects::status(400, "BadRequest", &msg);
                    return Response::json(400, &body).into_hyper();
                }
                logs::respond(shared, &req, p)
            }
            "exec" => upgrade::handle(shared.clone(), &req, on_upgrade, Target::Exec, p),
            "portforward" => {
                upgrade::handle(shared.clone(), &req, on_upgrade, Target::PortForward, p)
            }
            _ => not_found().into_hyper(),
        },
        ["api", "v1", "namespaces", _, "pods", p, _] => pod_not_found(p).into_hyper(),
        _ => not_found().into_hyper(),
    }
}
