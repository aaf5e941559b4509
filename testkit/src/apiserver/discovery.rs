//! Plain (non-aggregated) API discovery: `/api`, `/apis`, `/api/v1`,
//! `/apis/apps/v1`, and `/version`. Plain discovery served as
//! `application/json` works with kubectl 1.27 to 1.33 alike; the `deploy`
//! short name on deployments is what makes `deploy/D` resolve.

use serde_json::{Value, json};

pub fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

pub fn api_group_list() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}
    }]})
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub fn core_v1_resources() -> Value {
    json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "namespaces", "singularName": "namespace", "namespaced": false,
         "kind": "Namespace", "verbs": ["get", "list"], "shortNames": ["ns"]},
        {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
         "verbs": VERBS, "shortNames": ["po"], "categories": ["all"]},
        {"name": "pods/exec", "singularName": "", "namespaced": true, "kind": "PodExecOptions",
         "verbs": ["create", "get"]},
        {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod",
         "verbs": ["get"]},
        {"name": "pods/portforward", "singularName": "", "namespaced": true,
         "kind": "PodPortForwardOptions", "verbs": ["create", "get"]}
    ]})
}

pub fn apps_v1_resources() -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
        {"name": "deployments", "singularName": "deployment", "namespaced": true,
         "kind": "Deployment", "verbs": VERBS, "shortNames": ["deploy"], "categories": ["all"]}
    ]})
}

/// `/version`. kubectl does not ask for it for these commands, but a
/// version-dispatching wrapper might.
pub fn version() -> Value {
    json!({"major": "1", "minor": "32", "gitVersion": "v1.32.5", "gitCommit": "fake",
           "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
           "goVersion": "go1.23.0", "compiler": "gc", "platform": "linux/amd64"})
}
