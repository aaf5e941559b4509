//! What a target's resource means in the API: which pods may serve it (a Deployment's or a
//! Service's selector, or one pod), and for a Service the pod port behind its port, as
//! `kubectl port-forward` resolves them.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;

use super::watch::Selector;
use super::{Refusal, describe};
use crate::protocol::{Route, Target};

/// Where a target's connections go: its pods, and the port in them.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub selector: Selector,
    /// A Service's `targetPort`, which may name a container port; `None`: the remote port.
    pub target_port: Option<IntOrString>,
}

/// Resolves the target's resource (`deploy/D` for a database).
pub async fn resolve(client: &kube::Client, target: &Target) -> Result<Resolved, Refusal> {
    let namespace = &target.namespace;
    let (kind, name) = match &target.route {
        Route::Database { deployment, .. } => ("deploy", deployment.as_str()),
        Route::Service { resource, .. } => resource.split_once('/').unwrap_or(("pod", resource)),
    };
    match kind {
        "svc" | "service" | "services" => {
            let api: Api<Service> = Api::namespaced(client.clone(), namespace);
            let service = api
                .get(name)
                .await
                .map_err(|e| failed("service", name, &e))?;
            let spec = service.spec.unwrap_or_default();
            let labels = labels(spec.selector.unwrap_or_default().into_iter());
            if labels.is_empty() {
                return Err(Refusal::Failed(format!(
                    "service {name} has no selector, so no pod to forward to"
                )));
            }
            let remote = match &target.route {
                Route::Service { remote_port, .. } => i32::from(*remote_port),
                Route::Database { .. } => 0,
            };
            let port = spec
                .ports
                .unwrap_or_default()
                .into_iter()
                .find(|p| p.port == remote);
            let Some(port) = port else {
                return Err(Refusal::Failed(format!(
                    "service {name} has no port {remote}"
                )));
            };
            Ok(Resolved {
                selector: Selector::Labels(labels),
                target_port: port.target_port,
            })
        }
        "deploy" | "deployment" | "deployments" => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            let deployment = api
                .get(name)
                .await
                .map_err(|e| failed("deployment", name, &e))?;
            let selector = deployment.spec.map(|s| s.selector).unwrap_or_default();
            let labels = labels(selector.match_labels.unwrap_or_default().into_iter());
            if labels.is_empty() {
                return Err(Refusal::Failed(format!(
                    "deployment {name} has no matchLabels selector, which the native transport needs; set transport = \"kubectl\" for it"
                )));
            }
            Ok(Resolved {
                selector: Selector::Labels(labels),
                target_port: None,
            })
        }
        _ => Ok(Resolved {
            selector: Selector::Named(name.to_string()),
            target_port: None,
        }),
    }
}

impl Resolved {
    /// The port in `pod` that the target's `remote` port leads to.
    pub fn pod_port(&self, pod: &Pod, remote: u16) -> Result<u16, String> {
        match &self.target_port {
            None => Ok(remote),
            Some(IntOrString::Int(port)) => u16::try_from(*port)
                .map_err(|_| format!("the service's targetPort {port} is not a port")),
            Some(IntOrString::String(named)) => pod
                .spec
                .iter()
                .flat_map(|spec| &spec.containers)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(named))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| {
                    format!(
                        "pod {} has no container port named {named}",
                        super::watch::name(pod)
                    )
                }),
        }
    }
}

fn labels(pairs: impl Iterator<Item = (String, String)>) -> String {
    pairs
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn failed(kind: &str, name: &str, err: &kube::Error) -> Refusal {
    Refusal::Failed(format!(
        "{kind} {name} could not be read: {}",
        describe(err)
    ))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};

    use super::*;

    fn pod_with_port(name: &str, port: i32) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some(name.into()),
                        container_port: port,
                        ..ContainerPort::default()
                    }]),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn resolved(target_port: Option<IntOrString>) -> Resolved {
        Resolved {
            selector: Selector::Labels("app=web".into()),
            target_port,
        }
    }

    #[test]
    fn a_services_port_leads_to_its_target_port_by_number_or_by_name() {
        let pod = pod_with_port("http", 8080);
        assert_eq!(resolved(None).pod_port(&pod, 80), Ok(80));
        assert_eq!(
            resolved(Some(IntOrString::Int(9000))).pod_port(&pod, 80),
            Ok(9000)
        );
        let named = resolved(Some(IntOrString::String("http".into())));
        assert_eq!(named.pod_port(&pod, 80), Ok(8080));
        let missing = resolved(Some(IntOrString::String("grpc".into())));
        assert!(
            missing
                .pod_port(&pod, 80)
                .unwrap_err()
                .contains("no container port named grpc")
        );
    }
}
