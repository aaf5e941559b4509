//! The JSON objects the fake cluster serves: its Deployment, its pod (alone
//! and in a PodList), its Namespace, and `metav1.Status` error bodies. Every
//! object carries `kind`, `apiVersion` and `metadata.namespace`, which kubectl
//! needs to resolve `deploy/D` to the pod.

use serde_json::{Value, json};

use super::config::Config;
use super::state::PodView;

pub const CONTAINER: &str = "main";

/// The Deployment, its status counting the pod if it has one (and if that one is Ready).
pub fn deployment(cfg: &Config, pod: Option<&PodView>) -> Value {
    let ready = i32::from(pod.is_some_and(is_ready));
    let replicas = i32::from(pod.is_some());
    json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": cfg.deployment, "namespace": cfg.namespace,
                      "uid": "00000000-0000-4000-8000-000000000001",
                      "resourceVersion": "100", "generation": 1,
                      "labels": {"app": cfg.deployment}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": cfg.deployment}},
            "template": {
                "metadata": {"labels": {"app": cfg.deployment}},
                "spec": {"containers": [container()]}
            }
        },
        "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
                   "updatedReplicas": replicas, "observedGeneration": 1}
    })
}

fn container() -> Value {
    json!({"name": CONTAINER, "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2",
           "command": ["sleep", "infinity"]})
}

/// The pod's labels; the pod list matches `labelSelector` against these.
pub fn pod_labels(cfg: &Config, pod: &PodView) -> Vec<(String, String)> {
    vec![
        ("app".to_string(), cfg.deployment.clone()),
        ("pod-template-hash".to_string(), pod.template_hash.clone()),
    ]
}

/// Whether the pod's Ready condition is True: Running, and not made unready by `pod-ready`.
pub fn is_ready(pod: &PodView) -> bool {
    pod.phase == "Running" && pod.ready
}

pub fn pod(cfg: &Config, pod: &PodView) -> Value {
    let running = pod.phase == "Running";
    let ready = is_ready(pod);
    let labels: serde_json::Map<String, Value> = pod_labels(cfg, pod)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let condition = |kind: &str, status: bool| {
        json!({"type": kind, "status": if status { "True" } else { "False" },
               "lastProbeTime": null, "lastTransitionTime": pod.created})
    };
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": pod.name, "namespace": cfg.namespace, "uid": pod.uid,
                      "resourceVersion": pod.resource_version.to_string(), "creationTimestamp": pod.created,
                      "labels": labels,
                      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                          "name": format!("{}-{}", cfg.deployment, pod.template_hash),
                          "uid": "00000000-0000-4000-8000-000000000002",
                          "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"containers": [container()], "nodeName": "fake-node",
                 "restartPolicy": "Always"},
        "status": {
            "phase": pod.phase,
            "conditions": [condition("Initialized", true), condition("Ready", ready),
                           condition("ContainersReady", ready), condition("PodScheduled", true)],
            "containerStatuses": [{"name": CONTAINER, "ready": ready, "restartCount": 0,
                                   "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2",
                                   "imageID": "", "started": running,
                                   "state": if running {
                                       json!({"running": {"startedAt": pod.created}})
                                   } else {
                                       json!({"waiting": {"reason": "ContainerCreating"}})
                                   }}],
            "podIP": "10.0.0.10", "hostIP": "10.0.0.1", "startTime": pod.created
        }
    })
}

/// A list as of the cluster's resource version `rv`: the version a watch resumes from.
pub fn pod_list(items: Vec<Value>, rv: u64) -> Value {
    json!({"kind": "PodList", "apiVersion": "v1",
           "metadata": {"resourceVersion": rv.to_string()}, "items": items})
}

pub fn namespace(name: &str) -> Value {
    json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name},
           "status": {"phase": "Active"}})
}

/// A `metav1.Status` failure.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// The 404 for a named object, as the real API server words it.
pub fn not_found(resource: &str, kind: &str, group: &str, name: &str) -> Value {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let mut s = status(
        404,
        "NotFound",
        &format!("{qualified} \"{name}\" not found"),
    );
    s["details"] = json!({"name": name, "group": group, "kind": kind});
    s
}

/// Whether a `labelSelector` (equality terms joined by commas) selects `labels`.
pub fn selector_matches(selector: &str, labels: &[(String, String)]) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            let (key, want, negate) = if let Some((k, v)) = term.split_once("!=") {
                (k, v, true)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, v, false)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, v, false)
            } else {
                // A bare key: the label must exist.
                return labels.iter().any(|(k, _)| k == term);
            };
            let have = labels
                .iter()
                .find(|(k, _)| k == key.trim())
                .map(|(_, v)| v.as_str());
            (have == Some(want.trim())) != negate
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let l = vec![
            ("app".to_string(), "d".to_string()),
            ("x".to_string(), "y".to_string()),
        ];
        assert!(selector_matches("app=d", &l));
        assert!(selector_matches("app==d,x=y", &l));
        assert!(selector_matches("", &l));
        assert!(!selector_matches("app=e", &l));
        assert!(selector_matches("app!=e", &l));
        assert!(selector_matches("x", &l));
        assert!(!selector_matches("z", &l));
    }
}
