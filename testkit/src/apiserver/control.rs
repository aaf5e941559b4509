//! The fault-injection and inspection endpoints under `/_control/`, plain
//! HTTP on the API port so a test can drive them with a raw TCP client:
//! `drop-streams`, `refuse-upgrades?n=N`, `replace-pod`, `delay?ms=M`,
//! `pod-phase?phase=P` and `state`. Each answers 200 with a short JSON body
//! (400 for a bad parameter, 404 for an unknown name). GET and POST both work.

use std::sync::Arc;

use serde_json::json;

use super::http::{Request, Response};
use super::state::Shared;

const PHASES: [&str; 5] = ["Pending", "Running", "Succeeded", "Failed", "Unknown"];

pub fn handle(shared: &Arc<Shared>, req: &Request) -> Response {
    let name = req.segments.get(1).map(String::as_str).unwrap_or("");
    let bad = |m: &str| Response::json(400, &json!({"ok": false, "error": m}));
    match name {
        "drop-streams" => {
            shared.drop_streams();
            Response::json(200, &json!({"ok": true}))
        }
        "refuse-upgrades" => match req.query("n").map(|v| v.trim().parse::<u64>()) {
            Some(Ok(n)) => {
                shared.set_refusals(n);
                Response::json(200, &json!({"ok": true, "refuse_upgrades": n}))
            }
            _ => bad("refuse-upgrades needs ?n=<count>"),
        },
        "replace-pod" => {
            let pod = shared.replace_pod();
            Response::json(200, &json!({"ok": true, "pod": pod}))
        }
        "delay" => match req.query("ms").map(|v| v.trim().parse::<u64>()) {
            Some(Ok(ms)) => {
                shared.set_delay_ms(ms);
                Response::json(200, &json!({"ok": true, "delay_ms": ms}))
            }
            _ => bad("delay needs ?ms=<milliseconds>"),
        },
        "pod-phase" => match req.query("phase") {
            Some(p) if PHASES.contains(&p) => {
                shared.set_phase(p);
                Response::json(200, &json!({"ok": true, "phase": p}))
            }
            _ => bad("pod-phase needs ?phase=Pending|Running|Succeeded|Failed|Unknown"),
        },
        "state" => Response::json(200, &shared.state_json()),
        _ => Response::json(
            404,
            &json!({"ok": false, "error": format!("no control {name:?}")}),
        ),
    }
}
