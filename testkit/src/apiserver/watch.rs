//! List and watch of pods, with resource versions, as native clients use them (kube-rs's
//! `watcher`, the Python client's `Watch`): `GET .../pods` answers a `PodList` carrying the
//! cluster's current `resourceVersion`; with `watch=true` it streams one JSON event per line,
//! `{"type":"ADDED|MODIFIED|DELETED","object":{...}}`, from `resourceVersion` on (none or `0`:
//! the current pod as ADDED first), ending with an `ERROR` event holding a `410 Gone` Status when
//! that version is older than the kept history, after `timeoutSeconds`, or cut by `drop-streams`.
//! `sendInitialEvents=true` ends the initial ADDED events with the `k8s.io/initial-events-end`
//! BOOKMARK that streaming lists wait for. `labelSelector` and `fieldSelector` (`metadata.name`,
//! `metadata.namespace`, `status.phase`, `spec.nodeName`) filter both.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::http::{self, Body, Request, Response};
use super::objects;
use super::state::{Event, Gone, Shared};

/// The fields a pod's `fieldSelector` may name, with where they are in the object.
const FIELDS: [(&str, &[&str]); 4] = [
    ("metadata.name", &["metadata", "name"]),
    ("metadata.namespace", &["metadata", "namespace"]),
    ("status.phase", &["status", "phase"]),
    ("spec.nodeName", &["spec", "nodeName"]),
];

/// What a list or watch selects.
struct Filter {
    /// The namespace of the path, or `None` for all namespaces.
    namespace: Option<String>,
    labels: String,
    /// (field path, wanted value, negated).
    fields: Vec<(&'static [&'static str], String, bool)>,
}

impl Filter {
    fn parse(req: &Request, namespace: Option<&str>) -> Result<Filter, String> {
        let mut fields = Vec::new();
        for term in req
            .query("fieldSelector")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let (key, value, negated) = if let Some((k, v)) = term.split_once("!=") {
                (k, v, true)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, v, false)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, v, false)
            } else {
                return Err(format!("invalid field selector: {term:?}"));
            };
            let path = FIELDS
                .iter()
                .find(|(name, _)| *name == key.trim())
                .map(|(_, path)| *path)
                .ok_or_else(|| format!("field label not supported: {}", key.trim()))?;
            fields.push((path, value.trim().to_string(), negated));
        }
        Ok(Filter {
            namespace: namespace.map(str::to_string),
            labels: req.query("labelSelector").unwrap_or("").to_string(),
            fields,
        })
    }

    fn matches(&self, pod: &Value) -> bool {
        let meta = &pod["metadata"];
        if let Some(ns) = &self.namespace
            && meta["namespace"].as_str() != Some(ns)
        {
            return false;
        }
        let labels: Vec<(String, String)> = meta["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        if !objects::selector_matches(&self.labels, &labels) {
            return false;
        }
        self.fields.iter().all(|(path, want, negated)| {
            let got = path.iter().fold(pod, |v, k| &v[*k]).as_str().unwrap_or("");
            (got == want) != *negated
        })
    }
}

fn bad_request(message: &str) -> hyper::Response<Body> {
    Response::json(400, &objects::status(400, "BadRequest", message)).into_hyper()
}

/// Answers a pod list, or starts a watch, for the pods of `namespace` (`None`: all of them).
pub fn respond(
    shared: &Arc<Shared>,
    req: &Request,
    namespace: Option<&str>,
) -> hyper::Response<Body> {
    let filter = match Filter::parse(req, namespace) {
        Ok(f) => f,
        Err(e) => return bad_request(&e),
    };
    let (pod, rv) = shared.snapshot();
    let current: Vec<Value> = pod
        .map(|p| objects::pod(&shared.cfg, &p))
        .into_iter()
        .filter(|p| filter.matches(p))
        .collect();
    if !req.query_flag("watch") {
        return Response::json(200, &objects::pod_list(current, rv)).into_hyper();
    }
    let from = match req.query("resourceVersion").unwrap_or("") {
        "" | "0" => None,
        v => match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return bad_request(&format!("invalid resource version: {v:?}")),
        },
    };
    let initial = req.query_flag("sendInitialEvents");
    let timeout = req
        .query("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let (resp, body) = http::streaming("application/json");
    let shared = shared.clone();
    tokio::spawn(async move {
        let _counted = shared.open_watch();
        let dropped = shared.drop_token();
        let mut changes = shared.subscribe();
        changes.borrow_and_update();
        let stream = async {
            // Where to resume: the given version, or now with the current pod as ADDED.
            let mut last = match from {
                Some(n) if !initial => n,
                _ => {
                    for object in &current {
                        body.send(line("ADDED", object)).await?;
                    }
                    if initial {
                        let bookmark = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {
                            "resourceVersion": rv.to_string(),
                            "annotations": {"k8s.io/initial-events-end": "true"}}});
                        body.send(line("BOOKMARK", &bookmark)).await?;
                    }
                    rv
                }
            };
            loop {
                shared.stall_wait().await;
                match shared.events_since(last) {
                    Ok(events) => {
                        for Event {
                            resource_version,
                            kind,
                            object,
                        } in events
                        {
                            last = resource_version;
                            if filter.matches(&object) {
                                body.send(line(kind.as_str(), &object)).await?;
                            }
                        }
                    }
                    Err(Gone { oldest }) => {
                        let message = format!("too old resource version: {last} ({oldest})");
                        let status = objects::status(410, "Expired", &message);
                        body.send(line("ERROR", &status)).await?;
                        return Ok(());
                    }
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return Ok(()) },
                    () = body.closed() => return Err(()),
                }
            }
        };
        let ends = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stream => {}
            () = ends => {}
            () = dropped.cancelled() => body.abort().await,
        }
    });
    resp
}

/// One watch event, a line of JSON.
fn line(kind: &str, object: &Value) -> Vec<u8> {
    let mut bytes = json!({"type": kind, "object": object})
        .to_string()
        .into_bytes();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &str) -> Request {
        let uri = format!("/api/v1/pods?{query}");
        let (parts, ()) = hyper::Request::builder()
            .uri(uri)
            .body(())
            .unwrap()
            .into_parts();
        Request::from_parts(&parts)
    }

    #[test]
    fn field_and_label_selectors() {
        let pod = json!({"metadata": {"name": "p1", "namespace": "e2e", "labels": {"app": "db"}},
                         "status": {"phase": "Running"}, "spec": {"nodeName": "n"}});
        let matches = |q: &str, ns: Option<&str>| Filter::parse(&req(q), ns).unwrap().matches(&pod);
        assert!(matches("", None));
        assert!(matches("", Some("e2e")));
        assert!(!matches("", Some("other")));
        assert!(matches("fieldSelector=metadata.name%3Dp1", None));
        assert!(!matches("fieldSelector=metadata.name%3Dp2", None));
        assert!(matches(
            "fieldSelector=status.phase!%3DPending,spec.nodeName%3D%3Dn",
            None
        ));
        assert!(matches("labelSelector=app%3Ddb", None));
        assert!(!matches("labelSelector=app%3Dweb", None));
        assert!(Filter::parse(&req("fieldSelector=spec.bogus%3Dx"), None).is_err());
    }

    #[test]
    fn events_are_lines_of_json() {
        let l = line("ADDED", &json!({"kind": "Pod"}));
        assert_eq!(l.last(), Some(&b'\n'));
        let v: Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(v["type"], "ADDED");
        assert_eq!(v["object"]["kind"], "Pod");
    }
}
