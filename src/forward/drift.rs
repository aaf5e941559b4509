//! What differs between the tunnel that runs and the one asked for, in rhizome.toml's words. A
//! target has at most one tunnel, so a `forward` or `restart` that asks for another configuration
//! is told exactly what it would change.

use crate::protocol::{Route, Target, TunnelSettings};

/// Each difference between the target a tunnel runs (`running`, listening on `port`) and
/// `wanted`, as `key old -> new` with rhizome.toml's key names; empty when `wanted` is what runs.
/// A wanted local port of "any" is met by whatever port the tunnel has.
pub fn differences(running: &Target, port: u16, wanted: &Target) -> Vec<String> {
    let mut found = Found::default();
    if let Some(new) = wanted.local_port {
        found.compare("local_port", port, new);
    }
    found.compare("context", &running.context, &wanted.context);
    found.compare("namespace", &running.namespace, &wanted.namespace);
    found.compare(
        "kubeconfig",
        running.kubeconfig.as_deref().unwrap_or("(none)"),
        wanted.kubeconfig.as_deref().unwrap_or("(none)"),
    );
    found.compare("scheme", &running.scheme, &wanted.scheme);
    match (&running.route, &wanted.route) {
        (
            Route::Service {
                resource,
                remote_port,
            },
            Route::Service {
                resource: new_resource,
                remote_port: new_port,
            },
        ) => {
            found.compare("resource", resource, new_resource);
            found.compare("remote_port", remote_port, new_port);
        }
        (
            Route::Database {
                deployment,
                sql_connection,
                connect,
                port_pattern,
            },
            Route::Database {
                deployment: new_deployment,
                sql_connection: new_sql,
                connect: new_connect,
                port_pattern: new_pattern,
            },
        ) => {
            found.compare("deployment", deployment, new_deployment);
            found.compare("sql_connection", sql_connection, new_sql);
            found.compare("connect", connect.join(" "), new_connect.join(" "));
            found.compare("port_pattern", port_pattern, new_pattern);
        }
        (old, new) => found.compare("kind", kind(old), kind(new)),
    }
    found.0
}

/// The differences of the `[forward]` settings a tunnel is kept up with, like `differences`.
pub fn setting_differences(running: &TunnelSettings, wanted: &TunnelSettings) -> Vec<String> {
    let mut found = Found::default();
    found.compare(
        "backoff_max_secs",
        running.backoff_max_ms / 1000,
        wanted.backoff_max_ms / 1000,
    );
    found.compare(
        "probe_interval_secs",
        running.probe_interval_ms / 1000,
        wanted.probe_interval_ms / 1000,
    );
    found.compare(
        "idle_stop_secs",
        running.idle_stop_ms / 1000,
        wanted.idle_stop_ms / 1000,
    );
    found.0
}

#[derive(Default)]
struct Found(Vec<String>);

impl Found {
    fn compare(&mut self, key: &str, old: impl ToString, new: impl ToString) {
        let (old, new) = (old.to_string(), new.to_string());
        if old != new {
            self.0.push(format!("{key} {old} -> {new}"));
        }
    }
}

fn kind(route: &Route) -> &'static str {
    match route {
        Route::Database { .. } => "database",
        Route::Service { .. } => "service",
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU16;

    use super::*;

    fn web(port: Option<u16>) -> Target {
        Target {
            name: "fake/web".into(),
            context: "c".into(),
            namespace: "n".into(),
            kubeconfig: None,
            local_port: port.and_then(NonZeroU16::new),
            scheme: "http".into(),
            route: Route::Service {
                resource: "svc/web".into(),
                remote_port: 80,
            },
        }
    }

    #[test]
    fn each_difference_is_named_with_its_key() {
        let running = web(Some(8080));
        assert!(differences(&running, 8080, &web(Some(8080))).is_empty());
        assert!(
            differences(&running, 8080, &web(None)).is_empty(),
            "any port is met by the tunnel's"
        );
        let mut wanted = web(Some(8081));
        wanted.namespace = "other".into();
        wanted.kubeconfig = Some("/k".into());
        assert_eq!(
            differences(&running, 8080, &wanted),
            [
                "local_port 8080 -> 8081",
                "namespace n -> other",
                "kubeconfig (none) -> /k"
            ]
        );
        wanted = web(None);
        wanted.route = Route::Database {
            deployment: "d".into(),
            sql_connection: "p:r:i".into(),
            connect: vec![],
            port_pattern: String::new(),
        };
        assert_eq!(
            differences(&running, 8080, &wanted),
            ["kind service -> database"]
        );
        let settings = |secs: u64| TunnelSettings {
            lazy: false,
            idle_stop_ms: 600_000,
            by_up: false,
            backoff_max_ms: secs * 1000,
            probe_interval_ms: 30_000,
        };
        assert_eq!(
            setting_differences(&settings(1), &settings(30)),
            ["backoff_max_secs 1 -> 30"]
        );
    }
}
