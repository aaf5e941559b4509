//! `rhizome targets`: what `forward` can open, read from the config here in the client, as a
//! table that fits the terminal or as JSON. A target the config gets wrong is listed with its
//! reason, and makes the command fail, so a script (or CI checking a config) notices.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use serde::Serialize;

use super::exit::Exit;
use super::forward::load_config;
use super::output::{self, note};
use super::sanitize;
use super::table::{self, Cell, Column, Table};
use super::{Failure, style::Paint};
use crate::cli::TargetsArgs;
use crate::config;
use crate::forward::target::{self, Route, Target, TargetError};
use crate::paths::Paths;

pub fn run(paths: &Paths, args: &TargetsArgs) -> anyhow::Result<Exit> {
    let config = load_config(paths)?;
    let described = target::describe(&config);
    if args.json {
        output::println(serde_json::to_string(&List::of(&described))?)?;
    } else {
        output::print(to_table(&described).render(table::width(), Paint::stdout()))?;
        if std::io::stdout().is_terminal() {
            note(format_args!("config: {}", config::path(paths).display()));
        }
    }
    let invalid: Vec<String> = described
        .values()
        .filter_map(|resolved| resolved.as_ref().err().map(ToString::to_string))
        .collect();
    if invalid.is_empty() {
        return Ok(Exit::Success);
    }
    Err(Failure::new(invalid.join("; "))
        .hint(format!(
            "fix {} (or point RHIZOME_CONFIG at another file)",
            config::path(paths).display()
        ))
        .into())
}

/// `{"targets": [...], "count": N, "invalid": N}`.
#[derive(Debug, Serialize)]
struct List<'a> {
    targets: Vec<Entry<'a>>,
    /// How many targets there are, invalid ones included.
    count: usize,
    invalid: usize,
}

/// One target; every key is there for every target, `null` where it has no value (all but
/// `name` and `error` for an invalid one).
#[derive(Debug, Serialize)]
struct Entry<'a> {
    name: &'a str,
    /// `database` or `service`.
    kind: Option<&'static str>,
    context: Option<&'a str>,
    namespace: Option<&'a str>,
    kubeconfig: Option<&'a str>,
    /// What kubectl forwards to: `svc/web`, or a database's proxy deployment.
    resource: Option<String>,
    sql_connection: Option<&'a str>,
    /// `null`: any free port.
    local_port: Option<u16>,
    /// A service's port; `null` for a database, whose proxy says its port when it starts.
    remote_port: Option<u16>,
    scheme: Option<&'a str>,
    /// Why the target cannot be used; `null` when it can.
    error: Option<String>,
}

impl<'a> List<'a> {
    fn of(described: &'a BTreeMap<String, Result<Target, TargetError>>) -> List<'a> {
        let targets: Vec<Entry<'a>> = described
            .iter()
            .map(|(name, resolved)| entry(name, resolved))
            .collect();
        List {
            count: targets.len(),
            invalid: targets.iter().filter(|t| t.error.is_some()).count(),
            targets,
        }
    }
}

fn entry<'a>(name: &'a str, resolved: &'a Result<Target, TargetError>) -> Entry<'a> {
    let t = resolved.as_ref().ok();
    Entry {
        name,
        kind: t.map(kind),
        context: t.map(|t| t.context.as_str()),
        namespace: t.map(|t| t.namespace.as_str()),
        kubeconfig: t.and_then(|t| t.kubeconfig.as_deref()),
        resource: t.map(Target::resource),
        sql_connection: t.and_then(Target::sql_connection),
        local_port: t.and_then(|t| t.local_port).map(|p| p.get()),
        remote_port: t.and_then(remote_port),
        scheme: t.map(|t| t.scheme.as_str()),
        error: resolved.as_ref().err().map(ToString::to_string),
    }
}

fn kind(t: &Target) -> &'static str {
    match t.route {
        Route::Database { .. } => "database",
        Route::Service { .. } => "service",
    }
}

fn remote_port(t: &Target) -> Option<u16> {
    match t.route {
        Route::Service { remote_port, .. } => Some(remote_port),
        Route::Database { .. } => None,
    }
}

/// The table: where each target points, the part that can be long (UPSTREAM, then CONTEXT,
/// then the name) giving way first. Values come from a config file: shown escaped.
fn to_table(described: &BTreeMap<String, Result<Target, TargetError>>) -> Table {
    let mut table = Table::new(vec![
        Column::shrink("TARGET", 2),
        Column::keep("KIND"),
        Column::keep("LOCAL"),
        Column::shrink("CONTEXT", 1),
        Column::shrink("UPSTREAM", 0),
    ]);
    for (name, resolved) in described {
        let cells: [String; 5] = match resolved {
            Ok(t) => [
                name.clone(),
                kind(t).into(),
                t.local_port.map_or("any".into(), |port| port.to_string()),
                t.context.clone(),
                upstream(t),
            ],
            // The row names the target already.
            Err(err) => [
                name.clone(),
                "invalid".into(),
                String::new(),
                String::new(),
                err.to_string()
                    .strip_prefix(&format!("target {name}: "))
                    .map(str::to_string)
                    .unwrap_or_else(|| err.to_string()),
            ],
        };
        table.row(cells.map(|c| Cell::new(sanitize::field(&c))).to_vec());
    }
    table
}

/// `NAMESPACE/RESOURCE[:PORT] [SQL_CONNECTION]`.
fn upstream(t: &Target) -> String {
    let port = remote_port(t).map(|p| format!(":{p}")).unwrap_or_default();
    let sql = t
        .sql_connection()
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    format!("{}/{}{port}{sql}", t.namespace, t.resource())
}
