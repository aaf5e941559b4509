//! Forward targets: resolving `ENV/NAME` from the config into everything the daemon needs, and
//! validating every value that will reach kubectl's command line.

use std::collections::BTreeMap;
use std::num::NonZeroU16;

use super::access::Access;
use super::check::Check;
pub use super::check::{is_address, names_a_resource};
pub use super::error::TargetError;
use crate::config::{Config, Database, Environment, Service, TransportChoice};
pub use crate::protocol::{Route, Target};
use crate::similar::closest;

/// The Cloud SQL Auth Proxy v2 line announcing a port, the default `port_pattern`.
pub const DEFAULT_PORT_PATTERN: &str = r"\[{sql_connection}\] Listening on [^ ]+:(\d+)";

/// Every target name in the config, sorted.
pub fn names(config: &Config) -> Vec<String> {
    let mut names = Vec::new();
    for (env, environment) in &config.environments {
        for name in environment
            .databases
            .keys()
            .chain(environment.services.keys())
        {
            names.push(format!("{env}/{name}"));
        }
    }
    names.sort();
    names
}

/// Resolves and validates `ENV/NAME`, or a short `NAME` that only one environment has (the
/// target's `name` then says which it was).
pub fn resolve(config: &Config, name: &str) -> Result<Target, TargetError> {
    let all = names(config);
    let unknown = || TargetError::Unknown {
        name: name.to_string(),
        close: closest(name, all.iter().map(String::as_str)),
    };
    if !name.contains('/') && !name.is_empty() {
        let full: Vec<&String> = all
            .iter()
            .filter(|n| n.split_once('/').is_some_and(|(_, entry)| entry == name))
            .collect();
        return match full.as_slice() {
            [only] => resolve(config, only),
            [] => Err(unknown()),
            several => Err(TargetError::Ambiguous {
                name: name.to_string(),
                candidates: several.iter().map(|n| n.to_string()).collect(),
            }),
        };
    }
    let (env, entry) = name
        .split_once('/')
        .filter(|(env, entry)| !env.is_empty() && !entry.is_empty() && !entry.contains('/'))
        .ok_or_else(|| TargetError::BadName(name.to_string()))?;
    let environment = config.environments.get(env).ok_or_else(unknown)?;
    if let Some(database) = environment.databases.get(entry) {
        database_target(name, environment, database)
    } else if let Some(service) = environment.services.get(entry) {
        service_target(name, environment, service)
    } else {
        Err(unknown())
    }
}

fn database_target(name: &str, env: &Environment, db: &Database) -> Result<Target, TargetError> {
    let check = Check { target: name };
    let sql_connection = check.sql_connection(&db.sql_connection)?;
    let connect: Vec<String> = env
        .connect
        .clone()
        .unwrap_or_else(|| vec!["/connect.sh".into(), "{sql_connection}".into()])
        .iter()
        .map(|arg| arg.replace("{sql_connection}", &sql_connection))
        .collect();
    if connect.is_empty() {
        return Err(check.invalid("connect", "[]", "the command needs at least a program"));
    }
    for arg in &connect {
        check.plain("connect", arg)?;
    }
    let pattern = env
        .port_pattern
        .as_deref()
        .unwrap_or(DEFAULT_PORT_PATTERN)
        .replace("{sql_connection}", &regex::escape(&sql_connection));
    match regex::Regex::new(&pattern) {
        Ok(re) if re.captures_len() >= 2 => {}
        Ok(_) => {
            return Err(check.invalid(
                "port_pattern",
                &pattern,
                "it needs a capture group for the port",
            ));
        }
        Err(_) => {
            return Err(check.invalid(
                "port_pattern",
                &pattern,
                "it is not a valid regular expression",
            ));
        }
    }
    let deployment = db.deployment.as_ref().or(env.deployment.as_ref());
    Ok(Target {
        name: name.to_string(),
        context: check.context(db.context.as_ref().or(env.context.as_ref()))?,
        namespace: check.k8s_name(
            "namespace",
            db.namespace.as_ref().or(env.namespace.as_ref()),
        )?,
        kubeconfig: check.path(
            "kubeconfig",
            db.kubeconfig.as_ref().or(env.kubeconfig.as_ref()),
        )?,
        local_port: db.local_port.and_then(NonZeroU16::new),
        scheme: check.scheme(db.scheme.as_deref().unwrap_or("mysql"))?,
        route: Route::Database {
            deployment: check.k8s_name("deployment", deployment)?,
            sql_connection,
            connect,
            port_pattern: pattern,
        },
    })
}

fn service_target(name: &str, env: &Environment, svc: &Service) -> Result<Target, TargetError> {
    let check = Check { target: name };
    let resource = check.resource(&svc.resource)?;
    if svc.remote_port == 0 {
        return Err(check.invalid("remote_port", "0", "it must be a port from 1 to 65535"));
    }
    Ok(Target {
        name: name.to_string(),
        context: check.context(svc.context.as_ref().or(env.context.as_ref()))?,
        namespace: check.k8s_name(
            "namespace",
            svc.namespace.as_ref().or(env.namespace.as_ref()),
        )?,
        kubeconfig: check.path(
            "kubeconfig",
            svc.kubeconfig.as_ref().or(env.kubeconfig.as_ref()),
        )?,
        local_port: svc.local_port.and_then(NonZeroU16::new),
        scheme: check.scheme(svc.scheme.as_deref().unwrap_or("http"))?,
        route: Route::Service {
            resource,
            remote_port: svc.remote_port,
        },
    })
}

/// What the client alone needs of a target: its login, and where simulate mode leads. None of
/// it goes to the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSide {
    pub access: Access,
    /// `HOST:PORT` of a real server the simulated tunnel leads to, instead of the echo server.
    pub simulate_upstream: Option<String>,
    /// The target's `lazy`, else its environment's; `None`: as `[forward] lazy` says.
    pub lazy: Option<bool>,
    /// The target's `transport`, else its environment's; `None`: as `[forward] transport` says.
    pub transport: Option<TransportChoice>,
    /// `rhizome up` with no environment opens it.
    pub autostart: bool,
}

/// The client-side settings of the target named `name` (as `resolve` named it); none for a
/// target that is not in the config (one given on the command line).
pub fn client_side(config: &Config, name: &str) -> Result<ClientSide, TargetError> {
    let Some((env, entry)) = name.split_once('/') else {
        return Ok(ClientSide::default());
    };
    let Some(environment) = config.environments.get(env) else {
        return Ok(ClientSide::default());
    };
    let (user, database, password_command, simulate_upstream, lazy, transport, autostart) =
        if let Some(db) = environment.databases.get(entry) {
            (
                &db.user,
                &db.database,
                &db.password_command,
                &db.simulate_upstream,
                db.lazy,
                db.transport,
                db.autostart,
            )
        } else if let Some(svc) = environment.services.get(entry) {
            (
                &svc.user,
                &svc.database,
                &svc.password_command,
                &svc.simulate_upstream,
                svc.lazy,
                svc.transport,
                svc.autostart,
            )
        } else {
            return Ok(ClientSide::default());
        };
    let check = Check { target: name };
    for (field, value) in [("user", user), ("database", database)] {
        if let Some(value) = value {
            check.plain(field, value)?;
            if value.is_empty() {
                return Err(check.invalid(field, value, "it cannot be empty"));
            }
        }
    }
    if let Some(command) = password_command {
        if command.first().is_none_or(|program| program.is_empty()) {
            return Err(check.invalid(
                "password_command",
                &format!("{command:?}"),
                "the command needs at least a program, e.g. [\"op\", \"read\", \"op://vault/item/password\"]",
            ));
        }
        for arg in command {
            check.plain("password_command", arg)?;
        }
    }
    if let Some(upstream) = simulate_upstream {
        check.address("simulate_upstream", upstream)?;
    }
    Ok(ClientSide {
        access: Access {
            user: user.clone(),
            database: database.clone(),
            password_command: password_command.clone(),
        },
        simulate_upstream: simulate_upstream.clone(),
        lazy: lazy.or(environment.lazy),
        transport: transport.or(environment.transport),
        autostart,
    })
}

/// Targets as a list for `rhizome targets`: name, kind, where it points.
pub fn describe(config: &Config) -> BTreeMap<String, Result<Target, TargetError>> {
    names(config)
        .into_iter()
        .map(|name| {
            let target = resolve(config, &name);
            (name, target)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn built_in() -> Config {
        parse(crate::config::BUILT_IN).unwrap()
    }

    #[test]
    fn the_built_in_target_resolves() {
        let target = resolve(&built_in(), "na-prod/billing-bookkeeper").unwrap();
        assert_eq!(target.local_port, NonZeroU16::new(3306));
        assert_eq!(target.url(3306), "mysql://127.0.0.1:3306");
        assert_eq!(target.resource(), "deploy/gke-cloudsql-access");
        let Route::Database {
            connect,
            port_pattern,
            ..
        } = &target.route
        else {
            panic!()
        };
        assert_eq!(
            connect,
            &[
                "/connect.sh",
                "clover-prod-databases:us-central1:billing-bookkeeper"
            ]
        );
        let re = regex::Regex::new(port_pattern).unwrap();
        let line = "2026/11/25 08:00:00 [clover-prod-databases:us-central1:billing-bookkeeper] Listening on 127.0.0.1:3307";
        assert_eq!(&re.captures(line).unwrap()[1], "3307");
    }

    #[test]
    fn unknown_targets_suggest_close_names() {
        let err = resolve(&built_in(), "na-prod/billing").unwrap_err();
        assert_eq!(
            err.to_string(),
            "there is no target `na-prod/billing`; did you mean na-prod/billing-bookkeeper?"
        );
        assert_eq!(
            resolve(&built_in(), "billing").unwrap_err().to_string(),
            "there is no target `billing`; did you mean na-prod/billing-bookkeeper?"
        );
        assert!(matches!(
            resolve(&built_in(), "na-prod/a/b"),
            Err(TargetError::BadName(_))
        ));
    }

    #[test]
    fn a_short_name_is_the_one_target_of_that_name() {
        let svc = |env: &str, name: &str| {
            format!(
                "[environments.{env}.services.{name}]\nresource = \"svc/{name}\"\nremote_port = 80\ncontext = \"c\"\nnamespace = \"n\"\n"
            )
        };
        let config =
            parse(&(svc("staging", "web") + &svc("prod", "web") + &svc("staging", "api"))).unwrap();
        assert_eq!(resolve(&config, "api").unwrap().name, "staging/api");
        assert_eq!(
            resolve(&config, "web").unwrap_err().to_string(),
            "`web` is a target in several environments: prod/web, staging/web; name one of them"
        );
    }

    fn service(context: &str, namespace: &str) -> Config {
        parse(&format!(
            "[environments.e.services.s]\nresource = \"svc/web\"\nremote_port = 80\ncontext = {context:?}\nnamespace = {namespace:?}\n"
        ))
        .unwrap()
    }

    #[test]
    fn shell_metacharacters_newlines_and_dots_are_refused_by_field() {
        assert!(resolve(&service("gke_p_z_c", "web"), "e/s").is_ok());
        for (field, config) in [
            ("namespace", service("ok", "web; rm -rf /")),
            ("namespace", service("ok", "../etc")),
            ("namespace", service("ok", "$(id)")),
            ("context", service("prod\nevil", "ok")),
            ("context", service("--kubeconfig=/tmp/x", "ok")),
            ("context", service("a..b", "ok")),
            ("context", service("a`b`", "ok")),
        ] {
            let err = resolve(&config, "e/s").unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("target e/s: `{field}` = ")),
                "{err}"
            );
        }
    }
}
