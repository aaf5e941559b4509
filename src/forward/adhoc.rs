//! A tunnel without a config entry: `rhizome forward --context C --namespace N svc/web 8080:80`,
//! checked as strictly as a configured target. The context and namespace are required rather
//! than taken from kubectl's current context: a tunnel outlives the shell that opened it, and
//! every restart must reach the same cluster even after `kubectl config use-context`.

use std::num::NonZeroU16;

use super::check::Check;
use super::error::TargetError;
use crate::protocol::{Route, Target};

/// What the command line gives for a tunnel without a config entry.
pub struct AdHoc<'a> {
    /// `svc/NAME`, `deploy/NAME` or `pod/NAME`.
    pub resource: &'a str,
    /// `[LOCAL:]REMOTE` as kubectl reads it: `80` is local 80 to remote 80, `0:80` or `:80` any
    /// free local port.
    pub ports: &'a str,
    pub context: Option<&'a String>,
    pub namespace: Option<&'a String>,
    pub kubeconfig: Option<&'a String>,
}

/// The tunnel's target, named `NAMESPACE/RESOURCE` (`staging/svc/web`) in `ps`, `kill` and
/// `logs`.
pub fn target(spec: &AdHoc) -> Result<Target, TargetError> {
    let check = Check {
        target: spec.resource,
    };
    let resource = check.resource(spec.resource)?;
    let needs = |flag: &'static str| TargetError::NeedsFlag {
        resource: spec.resource.to_string(),
        flag,
    };
    let context = check.context(Some(spec.context.ok_or_else(|| needs("--context"))?))?;
    let namespace = check.k8s_name(
        "namespace",
        Some(spec.namespace.ok_or_else(|| needs("--namespace"))?),
    )?;
    let (local, remote) = ports(&check, spec.ports)?;
    Ok(Target {
        name: format!("{namespace}/{resource}"),
        context,
        namespace,
        kubeconfig: check.path("kubeconfig", spec.kubeconfig)?,
        local_port: local,
        scheme: scheme_for(remote.get()).to_string(),
        route: Route::Service {
            resource,
            remote_port: remote.get(),
        },
    })
}

/// `[LOCAL:]REMOTE`, kubectl's way: one port is both; a local 0 or nothing is any free port.
fn ports(check: &Check, value: &str) -> Result<(Option<NonZeroU16>, NonZeroU16), TargetError> {
    let bad = || {
        check.invalid(
            "ports",
            value,
            "give [LOCAL:]REMOTE, for example 8080:80, 80, or :80 for any free local port",
        )
    };
    let number = |s: &str| s.parse::<u16>().map_err(|_| bad());
    let (local, remote) = match value.split_once(':') {
        Some(("", remote)) => (0, number(remote)?),
        Some((local, remote)) => (number(local)?, number(remote)?),
        None => {
            let port = number(value)?;
            (port, port)
        }
    };
    let remote = NonZeroU16::new(remote).ok_or_else(bad)?;
    Ok((NonZeroU16::new(local), remote))
}

/// The URL scheme a well-known port speaks, so `rhizome forward ... 5432` prints a URL a
/// PostgreSQL client takes; `http` for the rest.
fn scheme_for(remote_port: u16) -> &'static str {
    match remote_port {
        3306 => "mysql",
        5432 => "postgresql",
        6379 => "redis",
        27017 => "mongodb",
        _ => "http",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(resource: &'a str, ports: &'a str, ctx: &'a String, ns: &'a String) -> AdHoc<'a> {
        AdHoc {
            resource,
            ports,
            context: Some(ctx),
            namespace: Some(ns),
            kubeconfig: None,
        }
    }

    #[test]
    fn ports_are_read_as_kubectl_reads_them() {
        let (ctx, ns) = ("c".to_string(), "staging".to_string());
        let t = target(&spec("svc/web", "8080:80", &ctx, &ns)).unwrap();
        assert_eq!(t.name, "staging/svc/web");
        assert_eq!(t.local_port, NonZeroU16::new(8080));
        assert_eq!(t.url(8080), "http://127.0.0.1:8080");
        let t = target(&spec("deploy/db", "5432", &ctx, &ns)).unwrap();
        assert_eq!(
            (t.local_port, t.scheme.as_str()),
            (NonZeroU16::new(5432), "postgresql")
        );
        for any in [":3306", "0:3306"] {
            let t = target(&spec("pod/db-0", any, &ctx, &ns)).unwrap();
            assert_eq!((t.local_port, t.scheme.as_str()), (None, "mysql"));
        }
        for bad in ["", "80:", "x:80", "80:0", "70000"] {
            let err = target(&spec("svc/web", bad, &ctx, &ns)).unwrap_err();
            assert!(
                err.to_string().contains("give [LOCAL:]REMOTE"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_context_and_namespace_are_required_and_checked() {
        let ns = "staging".to_string();
        let err = target(&AdHoc {
            resource: "svc/web",
            ports: "80",
            context: None,
            namespace: Some(&ns),
            kubeconfig: None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("needs --context"), "{err}");
        let evil = "--kubeconfig=/tmp/x".to_string();
        assert!(target(&spec("svc/web", "80", &evil, &ns)).is_err());
        assert!(target(&spec("svc/Web", "80", &ns, &ns)).is_err());
        assert!(target(&spec("secret/web", "80", &ns, &ns)).is_err());
    }
}
