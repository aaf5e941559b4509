//! `rhizome up [ENV]` and `rhizome down [ENV]`: a whole environment at once. `up` opens every
//! target's tunnel (lazily unless the target says otherwise, so an environment costs nothing
//! until used) and marks them as its own; `down` stops them for good.

use serde_json::json;

use super::exit::Exit;
use super::forward::{load_config, resolve};
use super::output::{self, note};
use super::style::Paint;
use super::table::{self, Cell, Column, Table};
use super::tunnel::{self, Opened, Wanted};
use super::{Client, Failure, sanitize, unexpected};
use crate::cli::{DownArgs, KillArgs, UpArgs};
use crate::config::Config;
use crate::forward::target;
use crate::paths::Paths;
use crate::protocol::{Request, Response, Signal};

/// What became of one target.
struct Opening {
    target: String,
    result: Result<(String, String), String>,
}

pub async fn up(paths: &Paths, args: &UpArgs) -> anyhow::Result<Exit> {
    let config = load_config(paths)?;
    let names = chosen(&config, args.env.as_deref())?;
    // All at once: a lazy tunnel answers at once, an eager one is built in the daemon anyway.
    let openings =
        futures_util::future::join_all(names.iter().map(|name| open(paths, &config, name, args)))
            .await;
    let failed: Vec<&Opening> = openings.iter().filter(|o| o.result.is_err()).collect();
    if args.json {
        let targets: Vec<serde_json::Value> = openings
            .iter()
            .map(|o| match &o.result {
                Ok((url, status)) => {
                    json!({"target": o.target, "url": url, "status": status, "error": null})
                }
                Err(why) => {
                    json!({"target": o.target, "url": null, "status": "failed", "error": why})
                }
            })
            .collect();
        output::println(json!({"targets": targets, "failed": failed.len()}))?;
    } else {
        let mut rows = Table::new(vec![
            Column::shrink("TARGET", 1),
            Column::shrink("URL", 0),
            Column::keep("STATUS"),
        ]);
        for o in &openings {
            let (url, status) = match &o.result {
                Ok((url, status)) => (url.clone(), status.clone()),
                Err(_) => (String::new(), "failed".into()),
            };
            rows.row(vec![
                Cell::new(sanitize::field(&o.target)),
                Cell::new(sanitize::field(&url)),
                Cell::new(status),
            ]);
        }
        output::print(rows.render(table::width(), Paint::stdout()))?;
    }
    for o in &failed {
        if let Err(why) = &o.result {
            note(format_args!(
                "error: {}: {}",
                sanitize::text(&o.target),
                sanitize::text(why)
            ));
        }
    }
    Ok(if failed.is_empty() {
        Exit::Success
    } else {
        Exit::Failure
    })
}

/// The targets `up ENV` opens: every target of ENV; without ENV, those with `autostart = true`.
fn chosen(config: &Config, env: Option<&str>) -> anyhow::Result<Vec<String>> {
    let names = target::names(config);
    let chosen: Vec<String> = match env {
        Some(env) => names.into_iter().filter(|n| in_env(n, env)).collect(),
        None => names
            .into_iter()
            .filter(|n| target::client_side(config, n).is_ok_and(|side| side.autostart))
            .collect(),
    };
    if chosen.is_empty() {
        let failure = match env {
            Some(env) => {
                let envs: Vec<&str> = config.environments.keys().map(String::as_str).collect();
                let hint = match crate::similar::closest(env, envs.iter().copied()).as_slice() {
                    [] => format!("the environments are {}", envs.join(", ")),
                    close => format!("did you mean {}?", close.join(", ")),
                };
                Failure::new(format!("rhizome.toml has no environment `{env}` with targets"))
                    .hint(hint)
            }
            None => Failure::new("no target has `autostart = true`, so `rhizome up` has nothing to open")
                .hint("name an environment (`rhizome up ENV`), or set `autostart = true` on targets in rhizome.toml"),
        };
        return Err(failure.into());
    }
    Ok(chosen)
}

/// Whether the target (or tunnel) `name` is one of environment `env`'s: `ENV/NAME`.
fn in_env(name: &str, env: &str) -> bool {
    name.split_once('/').is_some_and(|(e, _)| e == env)
}

/// Opens one target's tunnel, lazily unless the target or its environment says `lazy = false`.
async fn open(paths: &Paths, config: &Config, name: &str, args: &UpArgs) -> Opening {
    let opened = async {
        let (target, side) = resolve(config, name, true)?;
        let how = Wanted {
            label: name,
            waiting: &crate::cli::Waiting {
                quiet: true,
                ..args.waiting.clone()
            },
            replace: false,
            lazy: Some(side.lazy.unwrap_or(true)),
            transport: None,
            by_up: true,
        };
        match tunnel::open(paths, config, target, &side, &how).await? {
            Opened::Ready(info) => {
                Ok((info.connection_string.clone(), info.process.status.label()))
            }
            Opened::Interrupted => Err(anyhow::anyhow!("interrupted")),
        }
    };
    Opening {
        target: name.to_string(),
        result: opened.await.map_err(|err: anyhow::Error| err.to_string()),
    }
}

pub async fn down(paths: &Paths, args: &DownArgs) -> anyhow::Result<Exit> {
    let Some(mut client) = Client::connect(paths).await? else {
        note("no rhizome daemon is running, so no tunnel is open");
        return Ok(Exit::Success);
    };
    let rows = match client.call(&Request::Ps { all: false }).await? {
        Response::Ps(rows) => rows,
        other => return Err(unexpected(other)),
    };
    drop(client);
    let ids: Vec<String> = rows
        .iter()
        .filter(|row| match (&row.tunnel, args.env.as_deref()) {
            (Some(_), Some(env)) => in_env(&row.name, env),
            (Some(tunnel), None) => tunnel.by_up,
            (None, _) => false,
        })
        .map(|row| row.id.to_string())
        .collect();
    if ids.is_empty() {
        note(match &args.env {
            Some(env) => format!("no tunnel of `{}` is open", sanitize::text(env)),
            None => "no tunnel that `rhizome up` opened is open".to_string(),
        });
        return Ok(Exit::Success);
    }
    super::kill::run(
        paths,
        &KillArgs {
            targets: ids,
            all: false,
            timeout: args.timeout,
            signal: Signal::Term,
        },
    )
    .await
}
